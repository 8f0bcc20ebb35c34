//! The volume objects every executor has made (lvols, replica and frontend subsystems,
//! raids, controllers with our naming), per node, orphans marked.
//!
//! An *orphan* is an object whose name belongs to a volume that no live volume record
//! names (the executor decides this from the records it holds). Orphans are reported, with
//! a warning naming node and object, and never deleted automatically.
//!
//! [`list`] asks every node that answered this run's observation for its objects, in
//! parallel. A node that is down, or whose engine is not running (it has no objects to
//! list then), is reported in [`Listing::unlisted`] with why, rather than failing the whole
//! read, as long as one executor answers. Security, configuration and other executor
//! failures stay errors naming the node. [`classify`] and [`shape`] are the pure part.

use std::collections::BTreeMap;

use super::{OpsError, Outcome, Session, Warning};
use crate::{ClientError, FleetError, v1};

/// One object on one node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeObject {
    /// The node it lives on.
    pub node: String,
    /// `lvol` | `replica_subsystem` | `frontend_subsystem` | `raid` | `controller`.
    pub kind: String,
    /// lvol: `lvs/name`; subsystem: NQN; raid and controller: their names.
    pub name: String,
    /// The volume its name belongs to.
    pub volume: String,
    /// No live volume record names the volume.
    pub orphan: bool,
    /// A short description from the executor (size, state, listener).
    pub detail: String,
}

/// A node whose objects are not in the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlisted {
    /// Node name.
    pub node: String,
    /// Why (unreachable, engine not running).
    pub reason: String,
}

/// The objects of the nodes that could be listed, and the nodes that could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by node, volume, kind, name.
    pub objects: Vec<NodeObject>,
    /// Sorted by node.
    pub unlisted: Vec<Unlisted>,
}

impl Listing {
    /// The orphans among [`Listing::objects`].
    pub fn orphans(&self) -> impl Iterator<Item = &NodeObject> {
        self.objects.iter().filter(|o| o.orphan)
    }
}

/// Which objects to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this node (it must be one of the fleet's).
    pub node: Option<String>,
    /// Only orphans.
    pub orphans_only: bool,
}

/// What one node answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Its objects.
    Listed(Vec<v1::VolumeObject>),
    /// Down or cut off: not dialled again in this run, or the call failed as a down
    /// node's does.
    Down(String),
    /// The executor answered, but its engine is not running: there is nothing to list.
    EngineNotRunning(String),
    /// Any other failure (security, configuration, an executor error).
    Failed(String),
}

/// `message` without a leading `node <node>: ` (the executor names its node; our
/// messages name it already).
fn without_node<'a>(node: &str, message: &'a str) -> &'a str {
    message
        .strip_prefix("node ")
        .and_then(|m| m.strip_prefix(node))
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message)
}

/// What a failed `ListVolumeObjects` means. `engine_state` is the node's engine state as
/// observed in this run, if known.
pub fn classify(e: &ClientError, engine_state: Option<&str>) -> Answer {
    if e.is_node_down() {
        return Answer::Down(e.detail());
    }
    match e {
        ClientError::Rpc {
            node,
            code: tonic::Code::FailedPrecondition,
            message,
            ..
        } => {
            let msg = without_node(node, message);
            Answer::EngineNotRunning(match engine_state {
                Some(state) if state != "running" && !state.is_empty() => {
                    format!("{msg} (engine_state {state}); its objects can be listed once it runs")
                }
                _ => format!("{msg}; its objects can be listed once it runs"),
            })
        }
        other => Answer::Failed(other.detail()),
    }
}

/// The kind and name of an object as a message shows it, e.g. `lvol lvs-d1/v1-r-0a1b2c3d`.
fn object_text(o: &NodeObject) -> String {
    let mut s = format!("{} {} (volume {}", o.kind, o.name, o.volume);
    if !o.detail.is_empty() {
        s.push_str(", ");
        s.push_str(&o.detail);
    }
    s.push(')');
    s
}

/// One warning per node that holds orphans, naming each one.
pub fn orphan_warnings(objects: &[NodeObject]) -> Vec<Warning> {
    let mut per_node: BTreeMap<&str, Vec<&NodeObject>> = BTreeMap::new();
    for o in objects.iter().filter(|o| o.orphan) {
        per_node.entry(o.node.as_str()).or_default().push(o);
    }
    per_node
        .into_iter()
        .map(|(node, os)| {
            let n = os.len();
            Warning {
                summary: format!(
                    "Node {node} has {n} orphaned volume object{}",
                    if n == 1 { "" } else { "s" }
                ),
                detail: format!(
                    "No volume record names the volume{} of {}: {}. \
                     v2engine reports orphans and never deletes them automatically; \
                     remove them with SPDK's RPCs once nothing needs their data.",
                    if n == 1 { "" } else { "s" },
                    if n == 1 {
                        "this object"
                    } else {
                        "these objects"
                    },
                    os.iter()
                        .map(|o| object_text(o))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }
        })
        .collect()
}

/// The listing from each asked node's answer: pure, so that every case is tested.
///
/// Errors: any [`Answer::Failed`] (naming every such node), or no executor answering at
/// all (every asked node down, each named; no node asked is an empty listing). Otherwise the objects (only orphans with
/// `orphans_only`), the nodes that are down or without a running engine in `unlisted`, and
/// warnings: one per node holding orphans, one per node that is down.
pub fn shape(
    answers: BTreeMap<String, Answer>,
    orphans_only: bool,
) -> Result<Outcome<Listing>, OpsError> {
    let failed: Vec<(String, String)> = answers
        .iter()
        .filter_map(|(n, a)| match a {
            Answer::Failed(r) => Some((n.clone(), format!("cannot list its volume objects: {r}"))),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(OpsError::Nodes(failed));
    }
    let answered = answers
        .values()
        .any(|a| matches!(a, Answer::Listed(_) | Answer::EngineNotRunning(_)));
    if !answered && !answers.is_empty() {
        return Err(OpsError::Nodes(
            answers
                .into_iter()
                .map(|(n, a)| {
                    let r = match a {
                        Answer::Down(r) => r,
                        _ => String::new(),
                    };
                    (n, format!("cannot list its volume objects: {r}"))
                })
                .collect(),
        ));
    }
    let mut listing = Listing::default();
    let mut warnings = Vec::new();
    for (node, a) in answers {
        match a {
            Answer::Listed(objs) => {
                listing
                    .objects
                    .extend(
                        objs.into_iter()
                            .filter(|o| o.orphan || !orphans_only)
                            .map(|o| NodeObject {
                                node: node.clone(),
                                kind: o.kind,
                                name: o.name,
                                volume: o.volume,
                                orphan: o.orphan,
                                detail: o.detail,
                            }),
                    )
            }
            Answer::Down(reason) => {
                warnings.push(Warning {
                    summary: format!("Node {node} is unreachable"),
                    detail: format!(
                        "its volume objects (and any orphans among them) are not listed: {reason}"
                    ),
                });
                listing.unlisted.push(Unlisted { node, reason });
            }
            Answer::EngineNotRunning(reason) => listing.unlisted.push(Unlisted { node, reason }),
            Answer::Failed(_) => {}
        }
    }
    listing.objects.sort_by(|a, b| {
        (&a.node, &a.volume, &a.kind, &a.name).cmp(&(&b.node, &b.volume, &b.kind, &b.name))
    });
    let mut all = orphan_warnings(&listing.objects);
    all.extend(warnings);
    Ok(Outcome {
        value: listing,
        warnings: all,
    })
}

/// The first node error of a fleet error, as an [`Answer`].
pub(crate) fn fleet_answer(e: FleetError, engine_state: Option<&str>) -> Answer {
    match e {
        FleetError::Nodes(errs) => match errs.first() {
            Some(ce) => classify(ce, engine_state),
            None => Answer::Failed("no error detail".into()),
        },
        other => Answer::Failed(other.to_string()),
    }
}

/// Lists the volume objects of every node (or of `filter.node`): the run's volume
/// inventory (one `ListVolumeObjects` per node per run, shared with volume plans and
/// reads). Nodes found down by this run's observation are not dialled again; they, and
/// nodes whose engine is not running, are in `unlisted`. See [`shape`] for what fails the
/// listing.
pub async fn list(s: &Session, filter: &Filter) -> Result<Outcome<Listing>, OpsError> {
    if let Some(n) = &filter.node {
        s.check_node("node", n)?;
    }
    let inv = super::volume::inventory(s).await;
    let answers: BTreeMap<String, Answer> = inv
        .answers
        .iter()
        .filter(|(n, _)| filter.node.as_deref().is_none_or(|f| f == n.as_str()))
        .map(|(n, a)| (n.clone(), a.clone()))
        .collect();
    shape(answers, filter.orphans_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, volume: &str, orphan: bool) -> v1::VolumeObject {
        v1::VolumeObject {
            kind: kind.into(),
            name: name.into(),
            volume: volume.into(),
            orphan,
            detail: "64 MiB thin".into(),
        }
    }

    fn answers(list: Vec<(&str, Answer)>) -> BTreeMap<String, Answer> {
        list.into_iter().map(|(n, a)| (n.to_string(), a)).collect()
    }

    #[test]
    fn objects_are_tagged_with_their_node_and_sorted() {
        let out = shape(
            answers(vec![
                (
                    "node-2",
                    Answer::Listed(vec![
                        obj("raid", "v1", "v1", false),
                        obj("lvol", "lvs-d1/v1-r-00000002", "v1", false),
                    ]),
                ),
                (
                    "node-1",
                    Answer::Listed(vec![obj("lvol", "lvs-d1/v1-r-00000001", "v1", false)]),
                ),
            ]),
            false,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = out
            .value
            .objects
            .iter()
            .map(|o| (o.node.as_str(), o.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [("node-1", "lvol"), ("node-2", "lvol"), ("node-2", "raid")]
        );
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert!(out.value.unlisted.is_empty());
    }

    #[test]
    fn orphans_warn_per_node_naming_each_object_and_never_deleting() {
        let out = shape(
            answers(vec![
                (
                    "node-1",
                    Answer::Listed(vec![
                        obj("lvol", "lvs-d1/ghost-r-0a1b2c3d", "ghost", true),
                        obj(
                            "replica_subsystem",
                            "nqn.2026-11.io.v2engine:ghost-r-0a1b2c3d",
                            "ghost",
                            true,
                        ),
                        obj("lvol", "lvs-d1/v1-r-00000001", "v1", false),
                    ]),
                ),
                ("node-2", Answer::Listed(vec![])),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(out.value.objects.len(), 3);
        assert_eq!(out.value.orphans().count(), 2);
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        let w = &out.warnings[0];
        assert_eq!(w.summary, "Node node-1 has 2 orphaned volume objects");
        assert!(
            w.detail
                .contains("lvol lvs-d1/ghost-r-0a1b2c3d (volume ghost")
                && w.detail
                    .contains("replica_subsystem nqn.2026-11.io.v2engine:ghost-r-0a1b2c3d")
                && w.detail.contains("never deletes them automatically")
                && !w.detail.contains("v1-r-"),
            "{}",
            w.detail
        );
    }

    #[test]
    fn orphans_only_keeps_only_orphans() {
        let out = shape(
            answers(vec![(
                "node-1",
                Answer::Listed(vec![
                    obj("lvol", "lvs-d1/ghost-r-0a1b2c3d", "ghost", true),
                    obj("lvol", "lvs-d1/v1-r-00000001", "v1", false),
                ]),
            )]),
            true,
        )
        .unwrap();
        assert_eq!(out.value.objects.len(), 1);
        assert_eq!(out.value.objects[0].volume, "ghost");
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(
            out.warnings[0].summary,
            "Node node-1 has 1 orphaned volume object"
        );
    }

    #[test]
    fn down_and_engineless_nodes_are_unlisted_not_fatal() {
        let out = shape(
            answers(vec![
                ("node-1", Answer::Listed(vec![])),
                (
                    "node-2",
                    Answer::Down("unreachable: connection refused".into()),
                ),
                (
                    "node-3",
                    Answer::EngineNotRunning("the engine is not running".into()),
                ),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            out.value.unlisted,
            [
                Unlisted {
                    node: "node-2".into(),
                    reason: "unreachable: connection refused".into()
                },
                Unlisted {
                    node: "node-3".into(),
                    reason: "the engine is not running".into()
                },
            ]
        );
        // Only the down node warns: a stopped engine is a state the user chose or sees
        // on the node's own resource.
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert_eq!(out.warnings[0].summary, "Node node-2 is unreachable");
    }

    #[test]
    fn engines_stopped_everywhere_is_an_empty_listing() {
        let out = shape(
            answers(vec![(
                "node-1",
                Answer::EngineNotRunning("the engine is not running".into()),
            )]),
            false,
        )
        .unwrap();
        assert!(out.value.objects.is_empty());
        assert_eq!(out.value.unlisted.len(), 1);
    }

    #[test]
    fn no_node_is_an_empty_listing() {
        let out = shape(BTreeMap::new(), false).unwrap();
        assert_eq!(out.value, Listing::default());
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn every_node_down_is_an_error_naming_each() {
        let e = shape(
            answers(vec![
                ("node-1", Answer::Down("unreachable: timed out".into())),
                ("node-2", Answer::Down("unreachable: no route".into())),
            ]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("node node-1: cannot list its volume objects: unreachable: timed out")
                && e.contains("node node-2"),
            "{e}"
        );
    }

    #[test]
    fn other_failures_are_errors_naming_the_node() {
        let e = shape(
            answers(vec![
                ("node-1", Answer::Listed(vec![])),
                (
                    "node-2",
                    Answer::Failed("host key of node-2 does not match".into()),
                ),
            ]),
            false,
        )
        .unwrap_err();
        match e {
            OpsError::Nodes(v) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].0, "node-2");
                assert!(v[0].1.contains("host key"), "{}", v[0].1);
            }
            other => panic!("unexpected {other}"),
        }
    }

    fn rpc(code: tonic::Code, message: &str) -> ClientError {
        ClientError::Rpc {
            node: "node-3".into(),
            method: "ListVolumeObjects",
            code,
            message: message.into(),
        }
    }

    #[test]
    fn classify_tells_down_from_engine_stopped_from_failed() {
        assert!(matches!(
            classify(&rpc(tonic::Code::Unavailable, "connection reset"), None),
            Answer::Down(_)
        ));
        let a = classify(
            &rpc(
                tonic::Code::FailedPrecondition,
                "node node-3: the engine is not running",
            ),
            Some("waiting_for_reboot"),
        );
        assert_eq!(
            a,
            Answer::EngineNotRunning(
                "the engine is not running (engine_state waiting_for_reboot); its objects can be listed once it runs".into()
            )
        );
        let a = classify(
            &rpc(
                tonic::Code::FailedPrecondition,
                "node node-3: the engine is not running",
            ),
            Some("running"),
        );
        assert_eq!(
            a,
            Answer::EngineNotRunning(
                "the engine is not running; its objects can be listed once it runs".into()
            )
        );
        assert!(matches!(
            classify(&rpc(tonic::Code::Internal, "spdk: bdev_get_bdevs failed"), None),
            Answer::Failed(m) if m.contains("bdev_get_bdevs")
        ));
        assert!(matches!(
            classify(
                &ClientError::Unreachable {
                    node: "node-3".into(),
                    reason: "timed out".into()
                },
                None
            ),
            Answer::Down(_)
        ));
    }
}
