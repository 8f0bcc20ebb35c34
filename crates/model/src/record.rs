//! Revisioned records: how cluster-scoped objects live on the executors.
//!
//! Every cluster-scoped object (the setting, node overrides, storage classes, volumes) is
//! written to every node and read from all of them. The highest revision wins; a node whose
//! copy is older or missing is drift that the next apply repairs. Deletion writes a
//! tombstone with a higher revision so that a stale node cannot bring the object back.
//! No consensus is needed: Terraform's state lock or the playbook run is the single writer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of record an executor stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// `data_engine_setting` (name `cluster`).
    DataEngineSetting,
    /// `node_v2` (name = node).
    NodeV2,
    /// `block_disk` (name = `node/disk`), stored on its own node only.
    BlockDisk,
    /// `storage_class` (name = class).
    StorageClass,
    /// `volume` (name = volume).
    Volume,
}

/// Why a record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The kind string is not one we know.
    #[error("unknown record kind {0:?}")]
    UnknownKind(String),
    /// The name cannot be used as a file name or object name.
    #[error("record {kind}/{name:?}: {reason}")]
    BadName {
        /// Kind of the record.
        kind: RecordKind,
        /// Offending name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl RecordKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RecordKind; 5] = [
        Self::DataEngineSetting,
        Self::NodeV2,
        Self::BlockDisk,
        Self::StorageClass,
        Self::Volume,
    ];

    /// The snake_case name, also the resource name without the `v2engine_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DataEngineSetting => "data_engine_setting",
            Self::NodeV2 => "node_v2",
            Self::BlockDisk => "block_disk",
            Self::StorageClass => "storage_class",
            Self::Volume => "volume",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Result<Self, RecordError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| RecordError::UnknownKind(s.to_string()))
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a record: kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    /// Kind.
    pub kind: RecordKind,
    /// Name within the kind.
    pub name: String,
}

impl RecordKey {
    /// A key. Names are checked by [`RecordKey::validate`].
    pub fn new(kind: RecordKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }

    /// Names become file names in the executor's state directory: 1–128 characters of
    /// ASCII letters, digits, `-`, `_`, `.` and (block disks only) one `/`; no `..`.
    pub fn validate(&self) -> Result<(), RecordError> {
        let bad = |reason: &str| RecordError::BadName {
            kind: self.kind,
            name: self.name.clone(),
            reason: reason.to_string(),
        };
        let n = &self.name;
        if n.is_empty() || n.len() > 128 {
            return Err(bad("must be 1 to 128 characters long"));
        }
        if n.contains("..") || n.starts_with('.') {
            return Err(bad("must not start with '.' or contain '..'"));
        }
        let slashes = n.matches('/').count();
        let allowed_slashes = usize::from(self.kind == RecordKind::BlockDisk);
        if slashes != allowed_slashes {
            return Err(bad(if allowed_slashes == 1 {
                "block disk records are named node/disk"
            } else {
                "must not contain '/'"
            }));
        }
        if n.chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "-_./".contains(c)))
        {
            return Err(bad(
                "only ASCII letters, digits, '-', '_', '.' and '/' are allowed",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// One revisioned record. `spec` is the resource's spec as JSON; a tombstone has
/// `deleted = true` and keeps the last spec for diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Kind and name.
    #[serde(flatten)]
    pub key: RecordKey,
    /// Monotonic revision; the writer uses one more than the highest it has seen.
    pub revision: u64,
    /// Tombstone.
    #[serde(default)]
    pub deleted: bool,
    /// The spec as JSON.
    pub spec: serde_json::Value,
}

impl Record {
    /// True when `self` should replace `other` under "highest revision wins". Equal
    /// revisions with different content (two writers, which the single-writer rule forbids)
    /// are broken deterministically by content so every reader picks the same one.
    pub fn supersedes(&self, other: &Record) -> bool {
        match self.revision.cmp(&other.revision) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                (self.deleted, self.spec.to_string()) > (other.deleted, other.spec.to_string())
            }
        }
    }
}

/// The result of reading the records of several nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    /// The winning record per key (tombstones included).
    pub records: BTreeMap<RecordKey, Record>,
    /// `(node, key)` pairs where the node's copy is missing or differs from the winner.
    pub drift: Vec<(String, RecordKey)>,
}

impl Merged {
    /// The live (non-deleted) winner for `key`.
    pub fn live(&self, key: &RecordKey) -> Option<&Record> {
        self.records.get(key).filter(|r| !r.deleted)
    }

    /// The highest revision seen for any key, the base for the next write.
    pub fn max_revision(&self) -> u64 {
        self.records.values().map(|r| r.revision).max().unwrap_or(0)
    }
}

/// Merges the records read from each node. `scope` says which kinds are cluster-scoped
/// (expected on every node); block disks live on their own node only and never drift
/// elsewhere.
pub fn merge<'a>(per_node: impl IntoIterator<Item = (&'a str, &'a [Record])>) -> Merged {
    let per_node: Vec<(&str, &[Record])> = per_node.into_iter().collect();
    let mut winners: BTreeMap<RecordKey, Record> = BTreeMap::new();
    for (_, recs) in &per_node {
        for r in *recs {
            match winners.get(&r.key) {
                Some(w) if !r.supersedes(w) => {}
                _ => {
                    winners.insert(r.key.clone(), r.clone());
                }
            }
        }
    }
    let mut drift = Vec::new();
    for (node, recs) in &per_node {
        for (key, w) in &winners {
            if key.kind == RecordKind::BlockDisk {
                continue;
            }
            let mine = recs.iter().find(|r| &r.key == key);
            if mine != Some(w) {
                drift.push(((*node).to_string(), key.clone()));
            }
        }
    }
    Merged {
        records: winners,
        drift,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(kind: RecordKind, name: &str, rev: u64, spec: serde_json::Value) -> Record {
        Record {
            key: RecordKey::new(kind, name),
            revision: rev,
            deleted: false,
            spec,
        }
    }

    #[test]
    fn highest_revision_wins_and_laggards_drift() {
        let a = [rec(
            RecordKind::DataEngineSetting,
            "cluster",
            3,
            json!({"enabled": true}),
        )];
        let b = [rec(
            RecordKind::DataEngineSetting,
            "cluster",
            2,
            json!({"enabled": false}),
        )];
        let c: Vec<Record> = vec![];
        let m = merge([("node-1", &a[..]), ("node-2", &b[..]), ("node-3", &c[..])]);
        let key = RecordKey::new(RecordKind::DataEngineSetting, "cluster");
        assert_eq!(m.live(&key).unwrap().revision, 3);
        assert_eq!(m.max_revision(), 3);
        assert_eq!(
            m.drift,
            vec![
                ("node-2".to_string(), key.clone()),
                ("node-3".to_string(), key)
            ]
        );
    }

    #[test]
    fn tombstones_hide_and_win() {
        let mut t = rec(RecordKind::StorageClass, "fast", 5, json!({}));
        t.deleted = true;
        let a = [t];
        let b = [rec(RecordKind::StorageClass, "fast", 4, json!({}))];
        let m = merge([("a", &a[..]), ("b", &b[..])]);
        let key = RecordKey::new(RecordKind::StorageClass, "fast");
        assert!(m.live(&key).is_none());
        assert!(m.records[&key].deleted);
    }

    #[test]
    fn equal_revisions_break_ties_the_same_way_everywhere() {
        let x = rec(RecordKind::Volume, "v", 1, json!({"size": 1}));
        let y = rec(RecordKind::Volume, "v", 1, json!({"size": 2}));
        assert!(x.supersedes(&y) != y.supersedes(&x));
        let m1 = merge([
            ("a", std::slice::from_ref(&x)),
            ("b", std::slice::from_ref(&y)),
        ]);
        let m2 = merge([
            ("b", std::slice::from_ref(&y)),
            ("a", std::slice::from_ref(&x)),
        ]);
        assert_eq!(m1.records, m2.records);
    }

    #[test]
    fn names_are_checked() {
        assert!(
            RecordKey::new(RecordKind::NodeV2, "node-1")
                .validate()
                .is_ok()
        );
        assert!(
            RecordKey::new(RecordKind::BlockDisk, "node-1/disk-a")
                .validate()
                .is_ok()
        );
        assert!(
            RecordKey::new(RecordKind::BlockDisk, "disk-a")
                .validate()
                .is_err()
        );
        assert!(
            RecordKey::new(RecordKind::NodeV2, "../etc")
                .validate()
                .is_err()
        );
        assert!(
            RecordKey::new(RecordKind::NodeV2, "a/b")
                .validate()
                .is_err()
        );
        assert!(RecordKey::new(RecordKind::NodeV2, "").validate().is_err());
        assert!(
            RecordKey::new(RecordKind::Volume, "v 1")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(RecordKind::parse("disk").is_err());
    }
}
