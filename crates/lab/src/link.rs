//! Pure: cutting and restoring a node's link, to simulate a node failure or a network
//! partition (`v2engine-lab cut NODE` / `restore NODE`).
//!
//! A node's only way to anything is its veth pair, whose root-namespace end (`veth_host`) is a
//! port of the lab's bridge. `cut` sets that port administratively down:
//! - the bridge stops forwarding to and from the port and forgets the MAC addresses learnt on
//!   it, so frames for the node are flooded to the other ports only and dropped;
//! - the node's own end (`eth0`) loses its carrier, so nothing it sends leaves the namespace;
//! - nothing in the node is touched: its addresses and routes stay, its processes keep running
//!   and keep their sockets, exactly as behind a pulled cable.
//!
//! Nothing is reset or refused: packets simply vanish in both directions. A new TCP connection
//! to the node times out (or fails with "no route to host" once the sender's ARP entry for the
//! node has expired); an established one stops delivering, so a TCP keep-alive or an
//! application keep-alive (SPDK's NVMe-oF keep-alive, SSH's `ServerAliveInterval`) notices
//! within its own timeout. Both directions are cut, so the node equally loses the others.
//!
//! The alternative, detaching the port from the bridge (`nomaster`), was not chosen: the
//! port stays up with its carrier, and the root namespace still answers the node's ARP
//! requests for the bridge address on the detached port (Linux answers ARP for any local
//! address on any interface by default), so the partition would leak.
//!
//! `restore` re-attaches the port to the bridge if needed and sets it up; without STP the
//! bridge forwards at once. The node's connections resume when their next retransmission or
//! keep-alive gets through, unless their peer gave up meanwhile.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::state::NodeState;

/// Why a node's link cannot be cut or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The node's bridge port does not exist: the lab is down or was half built.
    #[error(
        "{node}: its bridge port {link} does not exist (is the lab up? `v2engine-lab up --dir {dir}` builds it)"
    )]
    Missing {
        /// The node.
        node: String,
        /// The bridge port (root end of the node's veth pair).
        link: String,
        /// The lab directory, for the hint.
        dir: PathBuf,
    },
}

/// The state of a node's link as the root namespace shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// The bridge port is up and on the lab's bridge: the node is reachable.
    Up,
    /// The bridge port is down: the node is cut off from the host and the other nodes.
    Cut,
    /// The bridge port is up but not on the lab's bridge (changed outside v2engine-lab): the
    /// node is cut off too.
    Detached,
    /// The bridge port does not exist (the lab is down).
    Missing,
    /// The links could not be listed.
    #[default]
    Unknown,
}

impl LinkState {
    /// The word shown in the status table and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Cut => "cut",
            LinkState::Detached => "detached",
            LinkState::Missing => "missing",
            LinkState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `ip` shows of a node's bridge port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// The port is administratively up (`UP` among its flags).
    pub admin_up: bool,
    /// The bridge it is enslaved to.
    pub master: Option<String>,
}

/// The link state of a node whose bridge port is `port` (`None`: no such link), on a lab
/// whose bridge is `bridge`.
pub fn link_state(port: Option<&PortStatus>, bridge: &str) -> LinkState {
    match port {
        None => LinkState::Missing,
        Some(p) if !p.admin_up => LinkState::Cut,
        Some(p) if p.master.as_deref() != Some(bridge) => LinkState::Detached,
        Some(_) => LinkState::Up,
    }
}

/// One change to a bridge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStep {
    /// `ip link set PORT down`.
    Down,
    /// `ip link set PORT master BRIDGE`.
    Attach,
    /// `ip link set PORT up`.
    Up,
}

fn missing(node: &NodeState, dir: &std::path::Path) -> LinkError {
    LinkError::Missing {
        node: node.name.clone(),
        link: node.veth_host.clone(),
        dir: dir.to_path_buf(),
    }
}

/// What cutting `node` takes, its bridge port being `port`: nothing when it is already down.
pub fn cut_steps(
    node: &NodeState,
    port: Option<&PortStatus>,
    dir: &std::path::Path,
) -> Result<Vec<LinkStep>, LinkError> {
    let port = port.ok_or_else(|| missing(node, dir))?;
    Ok(if port.admin_up {
        vec![LinkStep::Down]
    } else {
        Vec::new()
    })
}

/// What restoring `node` takes: back on `bridge` when it was detached, then up. Nothing when
/// it is up on the bridge already.
pub fn restore_steps(
    node: &NodeState,
    port: Option<&PortStatus>,
    bridge: &str,
    dir: &std::path::Path,
) -> Result<Vec<LinkStep>, LinkError> {
    let port = port.ok_or_else(|| missing(node, dir))?;
    let mut steps = Vec::new();
    if port.master.as_deref() != Some(bridge) {
        steps.push(LinkStep::Attach);
    }
    if !port.admin_up {
        steps.push(LinkStep::Up);
    }
    Ok(steps)
}

/// Which command changed a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkCommand {
    /// `v2engine-lab cut`.
    Cut,
    /// `v2engine-lab restore`.
    Restore,
}

/// What `cut` or `restore` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkChange {
    /// The command.
    pub command: LinkCommand,
    /// The lab directory.
    pub dir: PathBuf,
    /// The node.
    pub node: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its bridge port.
    pub link: String,
    /// The link state before.
    pub before: LinkState,
    /// The steps taken (none: it already was as asked).
    pub steps: Vec<LinkStep>,
    /// After `restore`: whether the node's sshd answered from the host in time.
    pub ssh_answers: Option<bool>,
}

impl LinkChange {
    /// The line the CLI prints.
    pub fn message(&self) -> String {
        let (node, link, dir) = (&self.node, &self.link, self.dir.display());
        match (self.command, self.steps.is_empty()) {
            (LinkCommand::Cut, true) => {
                format!("{node} was already cut (its bridge port {link} is down)")
            }
            (LinkCommand::Cut, false) => format!(
                "{node} cut: its bridge port {link} is down; {} is unreachable from the host and \
                 the other nodes, its processes keep running \
                 (`v2engine-lab restore {node} --dir {dir}` brings it back)",
                self.address
            ),
            (LinkCommand::Restore, true) => {
                format!("{node} was not cut (its bridge port {link} is up on the bridge)")
            }
            (LinkCommand::Restore, false) => {
                let ssh = match self.ssh_answers {
                    Some(true) => format!("; its sshd at {} answers", self.address),
                    Some(false) => format!(
                        "; but its sshd at {} does not answer (see `v2engine-lab status --dir {dir}`)",
                        self.address
                    ),
                    None => String::new(),
                };
                format!("{node} restored: its bridge port {link} is up on the bridge{ssh}")
            }
        }
    }
}

/// A remark for the status of a node whose link is `state` with `recorded_cut` in lab.json;
/// `None` when the node is simply up.
pub fn remark(node: &str, state: LinkState, recorded_cut: bool) -> Option<String> {
    let restore = format!("`v2engine-lab restore {node}` brings it back");
    match (state, recorded_cut) {
        (LinkState::Up, false) | (LinkState::Unknown, false) => None,
        (LinkState::Up, true) => Some(format!(
            "{node}: link: lab.json records a cut but its bridge port is up \
             (`v2engine-lab cut {node}` cuts it again)"
        )),
        (LinkState::Cut, true) => Some(format!(
            "{node}: link: cut (bridge port down); unreachable from the host and the other \
             nodes, its processes keep running; {restore}"
        )),
        (LinkState::Cut, false) => Some(format!(
            "{node}: link: its bridge port is down but no cut is recorded (changed outside \
             v2engine-lab?); {restore}"
        )),
        (LinkState::Detached, _) => Some(format!(
            "{node}: link: its bridge port is not on the lab's bridge; {restore}"
        )),
        (LinkState::Missing, _) => Some(format!(
            "{node}: link: its bridge port does not exist (the lab is down?); \
             `v2engine-lab up` rebuilds it"
        )),
        (LinkState::Unknown, true) => Some(format!(
            "{node}: link: lab.json records a cut; the links could not be listed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{LabRequest, plan_lab};
    use crate::state::{LabState, SpdkOptions};
    use std::collections::BTreeSet;
    use std::path::Path;

    const BR: &str = "v2e0badcafebr";

    fn lab() -> LabState {
        plan_lab(
            &LabRequest {
                dir: "/l".into(),
                nodes: 2,
                fragmented: None,
                disk_size_mib: 1,
                executor: "/bin/v2engine-executor".into(),
                spdk: SpdkOptions::default(),
            },
            &BTreeSet::new(),
        )
        .unwrap()
    }

    fn port(admin_up: bool, master: Option<&str>) -> PortStatus {
        PortStatus {
            admin_up,
            master: master.map(String::from),
        }
    }

    #[test]
    fn states_follow_the_bridge_port() {
        assert_eq!(link_state(Some(&port(true, Some(BR))), BR), LinkState::Up);
        assert_eq!(link_state(Some(&port(false, Some(BR))), BR), LinkState::Cut);
        assert_eq!(link_state(Some(&port(false, None)), BR), LinkState::Cut);
        assert_eq!(link_state(Some(&port(true, None)), BR), LinkState::Detached);
        assert_eq!(
            link_state(Some(&port(true, Some("otherbr"))), BR),
            LinkState::Detached
        );
        assert_eq!(link_state(None, BR), LinkState::Missing);
        assert_eq!(LinkState::default(), LinkState::Unknown);
        assert_eq!(serde_json::to_string(&LinkState::Cut).unwrap(), "\"cut\"");
        assert_eq!(LinkState::Up.to_string(), "up");
    }

    #[test]
    fn cut_sets_the_port_down_once() {
        let lab = lab();
        let n = &lab.nodes[1];
        let dir = Path::new("/l");
        assert_eq!(
            cut_steps(n, Some(&port(true, Some(BR))), dir).unwrap(),
            [LinkStep::Down]
        );
        assert_eq!(
            cut_steps(n, Some(&port(true, None)), dir).unwrap(),
            [LinkStep::Down]
        );
        assert!(
            cut_steps(n, Some(&port(false, Some(BR))), dir)
                .unwrap()
                .is_empty()
        );
        let err = cut_steps(n, None, dir).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("node-2") && msg.contains(&n.veth_host) && msg.contains("up --dir /l"),
            "{msg}"
        );
    }

    #[test]
    fn restore_reattaches_and_sets_the_port_up() {
        let lab = lab();
        let n = &lab.nodes[0];
        let dir = Path::new("/l");
        assert_eq!(
            restore_steps(n, Some(&port(false, Some(BR))), BR, dir).unwrap(),
            [LinkStep::Up]
        );
        assert_eq!(
            restore_steps(n, Some(&port(false, None)), BR, dir).unwrap(),
            [LinkStep::Attach, LinkStep::Up]
        );
        assert_eq!(
            restore_steps(n, Some(&port(true, None)), BR, dir).unwrap(),
            [LinkStep::Attach]
        );
        assert!(
            restore_steps(n, Some(&port(true, Some(BR))), BR, dir)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            restore_steps(n, None, BR, dir),
            Err(LinkError::Missing { .. })
        ));
    }

    #[test]
    fn messages_name_node_port_and_the_way_back() {
        let mut c = LinkChange {
            command: LinkCommand::Cut,
            dir: "/l".into(),
            node: "node-2".into(),
            address: Ipv4Addr::new(10, 250, 1, 2),
            link: "v2e0badcafev2".into(),
            before: LinkState::Up,
            steps: vec![LinkStep::Down],
            ssh_answers: None,
        };
        let m = c.message();
        assert!(m.starts_with("node-2 cut: its bridge port v2e0badcafev2 is down"));
        assert!(m.contains("10.250.1.2 is unreachable"));
        assert!(m.contains("`v2engine-lab restore node-2 --dir /l`"), "{m}");
        c.steps.clear();
        assert_eq!(
            c.message(),
            "node-2 was already cut (its bridge port v2e0badcafev2 is down)"
        );
        c.command = LinkCommand::Restore;
        assert!(c.message().starts_with("node-2 was not cut"));
        c.steps = vec![LinkStep::Up];
        c.ssh_answers = Some(true);
        assert_eq!(
            c.message(),
            "node-2 restored: its bridge port v2e0badcafev2 is up on the bridge; its sshd at 10.250.1.2 answers"
        );
        c.ssh_answers = Some(false);
        assert!(c.message().contains("does not answer"));
    }

    #[test]
    fn remarks_explain_cuts_and_mismatches() {
        assert_eq!(remark("node-1", LinkState::Up, false), None);
        assert_eq!(remark("node-1", LinkState::Unknown, false), None);
        let cut = remark("node-2", LinkState::Cut, true).unwrap();
        assert!(
            cut.starts_with("node-2: link: cut") && cut.contains("restore node-2"),
            "{cut}"
        );
        for (state, recorded, word) in [
            (LinkState::Up, true, "records a cut"),
            (LinkState::Cut, false, "no cut is recorded"),
            (LinkState::Detached, false, "not on the lab's bridge"),
            (LinkState::Missing, true, "does not exist"),
            (LinkState::Unknown, true, "could not be listed"),
        ] {
            let r = remark("node-3", state, recorded).unwrap();
            assert!(r.starts_with("node-3: link: ") && r.contains(word), "{r}");
        }
    }
}
