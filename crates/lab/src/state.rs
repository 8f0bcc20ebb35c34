//! `lab.json`: everything a lab made, so that `up` can resume and `down` can undo it.
//!
//! The types are plain data; [`load`] and [`save`] are the only I/O here. `save` writes a
//! temporary file and renames it, so a crash leaves either the old or the new file.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Format version of lab.json.
pub const STATE_VERSION: u32 = 1;

/// Why lab.json could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("cannot read lab state {path}: {source}")]
    Read {
        /// lab.json.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a lab state we understand.
    #[error("lab state {path} is not valid: {source}")]
    Parse {
        /// lab.json.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by an incompatible version.
    #[error(
        "lab state {path} has version {found}; this v2engine-lab reads version {STATE_VERSION}"
    )]
    Version {
        /// lab.json.
        path: PathBuf,
        /// Version in the file.
        found: u32,
    },
    /// Writing failed.
    #[error("cannot write lab state {path}: {source}")]
    Write {
        /// lab.json.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Lab directory (absolute, canonical).
    pub dir: PathBuf,
    /// Short id derived from `dir`; prefix of every namespace and link.
    pub id: String,
    /// The lab's subnet, e.g. `10.250.37.0/24`.
    pub subnet: String,
    /// Third octet of the subnet.
    pub subnet_octet: u8,
    /// The bridge in the root namespace.
    pub bridge: BridgeState,
    /// The executor binary.
    pub executor: PathBuf,
    /// Size of each disk image.
    pub disk_size_mib: u64,
    /// Simulated memory per node.
    pub sim_memory_mib: u64,
    /// spdk_tgt options, stored for the executor.
    #[serde(default)]
    pub spdk: SpdkOptions,
    /// The nodes, in order.
    pub nodes: Vec<NodeState>,
    /// Files the lab generated (front-end configuration).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Remarks about the last `up` (fallbacks taken, steps skipped).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The bridge joining the nodes and the root namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeState {
    /// Link name.
    pub name: String,
    /// Its address (`.254` of the subnet).
    pub address: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
}

/// spdk_tgt binary and arguments for the nodes' engines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpdkOptions {
    /// spdk_tgt (or spdk-sim) binary.
    pub tgt: Option<PathBuf>,
    /// Extra arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// `node-K`.
    pub name: String,
    /// K, 1-based.
    pub index: usize,
    /// Network namespace.
    pub namespace: String,
    /// Root-namespace end of the veth pair, enslaved to the bridge.
    pub veth_host: String,
    /// The node's end of the veth pair, inside its namespace.
    pub iface: String,
    /// The node's address.
    pub address: Ipv4Addr,
    /// Whether the simulated memory is fragmented (enabling the engine needs a reboot).
    pub fragmented: bool,
    /// The node's disks.
    pub disks: Vec<DiskState>,
    /// The running sshd.
    #[serde(default)]
    pub sshd: Option<ProcessRecord>,
    /// The running executor.
    #[serde(default)]
    pub executor: Option<ProcessRecord>,
    /// The node's link is cut (`v2engine-lab cut`): its bridge port (`veth_host`) is down,
    /// so nothing reaches the node until `restore` (or `up`) brings it back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// One disk: a sparse image file, attached to a loop device when one was available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskState {
    /// The image file.
    pub image: PathBuf,
    /// The loop device over it; `None` when none could be attached (the file is the disk).
    pub loop_device: Option<PathBuf>,
}

impl DiskState {
    /// The path the node uses as this disk: the loop device, or the file itself.
    pub fn path(&self) -> &Path {
        self.loop_device.as_deref().unwrap_or(&self.image)
    }
}

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Its pid (and process group).
    pub pid: u32,
    /// Its command line as /proc/PID/cmdline shows it; checked before it is signalled.
    pub argv: Vec<String>,
}

impl LabState {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node called `name`, mutable.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The position in `nodes` of the node `reference` names: its name (`node-2`) or its
    /// number (`2`).
    pub fn node_position(&self, reference: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == reference)
            .or_else(|| {
                let index = crate::plan::parse_node_ref(reference)?;
                self.nodes.iter().position(|n| n.index == index)
            })
    }

    /// The nodes' names, comma-separated (for messages).
    pub fn node_names(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads lab.json; `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> Result<Option<LabState>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.into(),
                source,
            });
        }
    };
    parse(path, &text).map(Some)
}

/// Parses the text of lab.json read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<LabState, StateError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version = serde_json::from_str(text).map_err(|source| StateError::Parse {
        path: path.into(),
        source,
    })?;
    if v.version != STATE_VERSION {
        return Err(StateError::Version {
            path: path.into(),
            found: v.version,
        });
    }
    serde_json::from_str(text).map_err(|source| StateError::Parse {
        path: path.into(),
        source,
    })
}

/// The text of lab.json.
pub fn to_json(state: &LabState) -> String {
    // Plain data with string keys: serialisation cannot fail.
    let mut s = serde_json::to_string_pretty(state).unwrap_or_default();
    s.push('\n');
    s
}

/// Writes lab.json atomically (temporary file, fsync, rename).
pub fn save(path: &Path, state: &LabState) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(to_json(state).as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DEFAULT_DISK_SIZE_MIB, LabRequest, plan_lab};
    use std::collections::BTreeSet;

    fn sample() -> LabState {
        let mut lab = plan_lab(
            &LabRequest {
                dir: "/var/tmp/lab".into(),
                nodes: 2,
                fragmented: None,
                disk_size_mib: DEFAULT_DISK_SIZE_MIB,
                executor: "/bin/v2engine-executor".into(),
                spdk: SpdkOptions {
                    tgt: Some("/bin/spdk-sim".into()),
                    args: vec!["--no-huge".into()],
                },
            },
            &BTreeSet::new(),
        )
        .unwrap();
        lab.nodes[0].disks[0].loop_device = Some("/dev/loop7".into());
        lab.nodes[0].sshd = Some(ProcessRecord {
            pid: 4242,
            argv: vec!["/usr/sbin/sshd".into(), "-D".into()],
        });
        lab.files.push("/var/tmp/lab/terraformrc".into());
        lab.notes.push("no provider binary".into());
        lab
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.json");
        assert_eq!(load(&path).unwrap(), None);
        let lab = sample();
        save(&path, &lab).unwrap();
        assert_eq!(load(&path).unwrap(), Some(lab));
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn disk_path_prefers_the_loop_device() {
        let lab = sample();
        assert_eq!(lab.nodes[0].disks[0].path(), Path::new("/dev/loop7"));
        assert_eq!(
            lab.nodes[0].disks[1].path(),
            lab.nodes[0].disks[1].image.as_path()
        );
    }

    #[test]
    fn refuses_other_versions_and_garbage_naming_the_file() {
        let p = Path::new("/x/lab.json");
        let mut v: serde_json::Value = serde_json::from_str(&to_json(&sample())).unwrap();
        v["version"] = 99.into();
        let err = parse(p, &v.to_string()).unwrap_err();
        assert!(matches!(err, StateError::Version { found: 99, .. }));
        assert!(err.to_string().contains("/x/lab.json"));
        let err = parse(p, "{\"version\": 1").unwrap_err();
        assert!(matches!(err, StateError::Parse { .. }));
    }

    #[test]
    fn finds_nodes_by_name() {
        let mut lab = sample();
        assert_eq!(lab.node("node-2").map(|n| n.index), Some(2));
        assert!(lab.node("node-9").is_none());
        lab.node_mut("node-1").unwrap().fragmented = true;
        assert!(lab.nodes[0].fragmented);
        assert_eq!(lab.node_position("node-2"), Some(1));
        assert_eq!(lab.node_position("2"), Some(1));
        assert_eq!(lab.node_position("node-3"), None);
        assert_eq!(lab.node_position("0"), None);
        assert_eq!(lab.node_position("nodes-1"), None);
        assert_eq!(lab.node_names(), "node-1, node-2");
    }

    #[test]
    fn a_cut_is_recorded_and_older_files_read_as_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.json");
        let mut lab = sample();
        // Not cut: the field is left out, as lab.json files written before it had it.
        assert!(!to_json(&lab).contains("\"cut\""));
        lab.nodes[1].cut = true;
        save(&path, &lab).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"cut\": true")
        );
        let back = load(&path).unwrap().unwrap();
        assert!(back.nodes[1].cut && !back.nodes[0].cut);
        let mut v: serde_json::Value = serde_json::from_str(&to_json(&lab)).unwrap();
        v["nodes"][1].as_object_mut().unwrap().remove("cut");
        assert!(!parse(&path, &v.to_string()).unwrap().nodes[1].cut);
    }
}
