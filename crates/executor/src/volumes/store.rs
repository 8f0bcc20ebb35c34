//! What this node was asked to keep (file I/O): each replica's and engine's spec, with the
//! port chosen for its subsystem, under `STATE_DIR/volumes/{replicas,engines}/<name>.json`
//! (atomic writes). The port choice itself is pure ([`choose_port`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::names;
use super::spec::{EngineSpec, ReplicaSpec};
use crate::fsio::{self, FsError};

/// A store file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing or removing failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file does not decode.
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The volume state of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// The store under `state_dir/volumes`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("volumes"),
        }
    }

    fn path(&self, kind: &str, name: &str) -> PathBuf {
        self.dir.join(kind).join(format!("{name}.json"))
    }

    fn load<T: DeserializeOwned>(&self, kind: &str) -> Result<BTreeMap<String, T>, StoreError> {
        let dir = self.dir.join(kind);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(StoreError::Read { path: dir, source }),
        };
        let mut out = BTreeMap::new();
        for e in entries {
            let e = e.map_err(|source| StoreError::Read {
                path: dir.clone(),
                source,
            })?;
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            if fsio::is_temp_name(&file) {
                continue;
            }
            let path = e.path();
            let text = fsio::read_optional(&path)
                .map_err(|source| StoreError::Read {
                    path: path.clone(),
                    source,
                })?
                .unwrap_or_default();
            let v: T = serde_json::from_str(&text).map_err(|e| StoreError::Decode {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            out.insert(name.to_string(), v);
        }
        Ok(out)
    }

    fn put<T: Serialize>(&self, kind: &str, name: &str, v: &T) -> Result<(), StoreError> {
        let path = self.path(kind, name);
        let data = serde_json::to_vec_pretty(v).map_err(|e| StoreError::Decode {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        fsio::create_dir_all(&self.dir.join(kind), 0o700)?;
        Ok(fsio::write_atomic(&path, &data, 0o600)?)
    }

    /// Replicas by name.
    pub fn replicas(&self) -> Result<BTreeMap<String, ReplicaSpec>, StoreError> {
        self.load("replicas")
    }

    /// Engines by volume.
    pub fn engines(&self) -> Result<BTreeMap<String, EngineSpec>, StoreError> {
        self.load("engines")
    }

    /// Keeps a replica's spec.
    pub fn put_replica(&self, spec: &ReplicaSpec) -> Result<(), StoreError> {
        self.put("replicas", &spec.replica, spec)
    }

    /// Keeps an engine's spec.
    pub fn put_engine(&self, spec: &EngineSpec) -> Result<(), StoreError> {
        self.put("engines", &spec.volume, spec)
    }

    /// Forgets a replica.
    pub fn remove_replica(&self, replica: &str) -> Result<(), StoreError> {
        fsio::remove_durable(&self.path("replicas", replica))?;
        Ok(())
    }

    /// Forgets an engine.
    pub fn remove_engine(&self, volume: &str) -> Result<(), StoreError> {
        fsio::remove_durable(&self.path("engines", volume))?;
        Ok(())
    }

    /// Ports held by subsystems of the store, by subsystem NQN.
    pub fn ports(&self) -> Result<BTreeMap<String, u16>, StoreError> {
        let mut out = BTreeMap::new();
        for (name, r) in self.replicas()? {
            if let Some(l) = r.export {
                out.insert(names::replica_nqn(&name), l.port);
            }
        }
        for (volume, e) in self.engines()? {
            out.insert(names::volume_nqn(&volume), e.frontend.port);
        }
        Ok(out)
    }
}

/// The port of subsystem `nqn`: the one kept for it, else the one it listens on now (when
/// in the range and free), else the first free port of the range from a place that
/// depends only on the NQN (so the same subsystem gets the same port on every node and
/// after a loss of the state directory, as long as the range allows). `taken`: ports
/// held by other subsystems. `None` when the range is full.
pub fn choose_port(
    nqn: &str,
    range: &RangeInclusive<u16>,
    kept: Option<u16>,
    listening: Option<u16>,
    taken: &BTreeSet<u16>,
) -> Option<u16> {
    if let Some(p) = kept {
        return Some(p);
    }
    if let Some(p) = listening.filter(|p| range.contains(p) && !taken.contains(p)) {
        return Some(p);
    }
    let (lo, hi) = (u64::from(*range.start()), u64::from(*range.end()));
    if hi < lo {
        return None;
    }
    let len = hi - lo + 1;
    let start = names::fnv1a(nqn.as_bytes()) % len;
    (0..len)
        .map(|i| lo + (start + i) % len)
        .filter_map(|p| u16::try_from(p).ok())
        .find(|p| !taken.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::spec::Listen;

    #[test]
    fn ports_are_deterministic_kept_and_never_shared() {
        let range = 4420..=4429;
        let none = BTreeSet::new();
        let a = choose_port("nqn.a", &range, None, None, &none).unwrap();
        assert!(range.contains(&a));
        assert_eq!(choose_port("nqn.a", &range, None, None, &none), Some(a));
        let taken = BTreeSet::from([a]);
        let b = choose_port("nqn.a", &range, None, None, &taken).unwrap();
        assert_ne!(a, b);
        assert_eq!(choose_port("nqn.a", &range, Some(9), None, &taken), Some(9));
        assert_eq!(
            choose_port("nqn.a", &range, None, Some(4425), &none),
            Some(4425)
        );
        assert_ne!(
            choose_port("nqn.a", &range, None, Some(4425), &BTreeSet::from([4425])),
            Some(4425)
        );
        let full: BTreeSet<u16> = range.clone().collect();
        assert_eq!(choose_port("nqn.a", &range, None, None, &full), None);
    }

    #[test]
    fn specs_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let s = VolumeStore::new(dir.path());
        assert!(s.replicas().unwrap().is_empty());
        let r = ReplicaSpec {
            replica: "v1-r-00000001".into(),
            disk: "d1".into(),
            size_mib: 64,
            thin: true,
            export: Some(Listen {
                address: "127.0.0.1".into(),
                port: 4421,
                hosts: vec!["nqn.h".into()],
            }),
        };
        s.put_replica(&r).unwrap();
        assert_eq!(s.replicas().unwrap()["v1-r-00000001"], r);
        assert_eq!(
            s.ports().unwrap(),
            BTreeMap::from([("nqn.2026-11.io.v2engine:v1-r-00000001".to_string(), 4421)])
        );
        s.remove_replica("v1-r-00000001").unwrap();
        s.remove_replica("v1-r-00000001").unwrap();
        assert!(s.replicas().unwrap().is_empty());
    }
}
