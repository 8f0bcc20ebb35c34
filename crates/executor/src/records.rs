//! The record store: revisioned records in `STATE_DIR/records/<kind>/<name>.json`.
//!
//! Incoming records are validated as a whole batch ([`validate_batch`], pure) before the
//! store writes any of them; each file is written with [`crate::fsio::write_atomic`], so a
//! crash leaves every record at its old or its new revision. A record replaces the stored
//! one only when its revision is higher ([`should_store`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use model::record::RecordError;
use model::setting::SETTING_ID;
use model::{DataEngineSetting, NodeV2, Record, RecordKey, RecordKind, ValidationErrors};

use crate::fsio::{self, FsError};

/// A record as it arrives over the API, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    /// Kind name, e.g. `data_engine_setting`.
    pub kind: String,
    /// Name within the kind.
    pub name: String,
    /// Revision (at least 1).
    pub revision: u64,
    /// Tombstone.
    pub deleted: bool,
    /// The spec as JSON; may be empty for a tombstone.
    pub spec_json: String,
}

/// Why records are refused or could not be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A record of the batch is invalid; nothing was stored.
    #[error("record {record}: {reason}")]
    Invalid {
        /// `kind/name` as given.
        record: String,
        /// The attribute and what is wrong with it.
        reason: String,
    },
    /// A record file could not be written or removed.
    #[error("record store: {0}")]
    Fs(#[from] FsError),
    /// The records directory could not be read.
    #[error("cannot read record directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record file could not be read or decoded.
    #[error("cannot load record file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What happened to one record of a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The record's key.
    pub key: RecordKey,
    /// False when the stored revision was already as high.
    pub applied: bool,
    /// The revision stored after the put.
    pub stored_revision: u64,
}

/// True when `incoming` should replace `stored`: only a higher revision does.
pub fn should_store(stored: Option<&Record>, incoming: &Record) -> bool {
    stored.is_none_or(|s| incoming.revision > s.revision)
}

/// Validates one incoming record: kind, name ([`RecordKey::validate`]), revision, and
/// the spec (decoded into the model's struct and validated for the kinds the executor
/// interprets; any JSON object for the others).
pub fn validate_record(r: &IncomingRecord) -> Result<Record, RecordsError> {
    let label = format!("{}/{}", r.kind, r.name);
    let invalid = |reason: String| RecordsError::Invalid {
        record: label.clone(),
        reason,
    };
    let kind = RecordKind::parse(&r.kind).map_err(|e| invalid(format!("kind: {e}")))?;
    let key = RecordKey::new(kind, r.name.clone());
    key.validate().map_err(|e| match e {
        RecordError::BadName { reason, .. } => invalid(format!("name: {reason}")),
        other => invalid(other.to_string()),
    })?;
    if r.revision == 0 {
        return Err(invalid("revision: must be at least 1".into()));
    }
    let spec: serde_json::Value = if r.deleted && r.spec_json.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&r.spec_json)
            .map_err(|e| invalid(format!("spec_json: not valid JSON: {e}")))?
    };
    if !r.deleted {
        check_spec(kind, &r.name, &spec).map_err(invalid)?;
    }
    Ok(Record {
        key,
        revision: r.revision,
        deleted: r.deleted,
        spec,
    })
}

fn check_spec(kind: RecordKind, name: &str, spec: &serde_json::Value) -> Result<(), String> {
    let errors = |e: ValidationErrors| e.to_string();
    match kind {
        RecordKind::DataEngineSetting => {
            if name != SETTING_ID {
                return Err(format!(
                    "name: the data engine setting is named {SETTING_ID:?}"
                ));
            }
            let s: DataEngineSetting = decode(spec)?;
            s.validate().map_err(errors)
        }
        RecordKind::NodeV2 => {
            let n: NodeV2 = decode(spec)?;
            n.validate().map_err(errors)?;
            if n.node != name {
                return Err(format!(
                    "node: {:?} differs from the record name {name:?}",
                    n.node
                ));
            }
            Ok(())
        }
        RecordKind::BlockDisk => {
            let d: model::BlockDisk = decode(spec)?;
            d.validate().map_err(errors)?;
            if d.id() != name {
                return Err(format!(
                    "node, name: {:?} differs from the record name {name:?}",
                    d.id()
                ));
            }
            Ok(())
        }
        RecordKind::StorageClass | RecordKind::Volume => {
            if spec.is_object() {
                Ok(())
            } else {
                Err("spec_json: must be a JSON object".into())
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(spec: &serde_json::Value) -> Result<T, String> {
    T::deserialize(spec).map_err(|e| format!("spec_json: {e}"))
}

/// Validates a whole batch: every record, and no key twice. The first problem refuses
/// the batch.
pub fn validate_batch(batch: &[IncomingRecord]) -> Result<Vec<Record>, RecordsError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(batch.len());
    for r in batch {
        let rec = validate_record(r)?;
        if !seen.insert(rec.key.clone()) {
            return Err(RecordsError::Invalid {
                record: rec.key.to_string(),
                reason: "appears twice in the batch".into(),
            });
        }
        out.push(rec);
    }
    Ok(out)
}

/// Records on disk plus an in-memory index.
#[derive(Debug)]
pub struct RecordStore {
    dir: PathBuf,
    records: BTreeMap<RecordKey, Record>,
}

impl RecordStore {
    /// Opens (creating if needed) `STATE_DIR/records` and loads every record. Temporary
    /// files of interrupted writes are ignored; files that cannot be decoded are returned
    /// as problems and skipped.
    pub fn open(state_dir: &Path) -> Result<(Self, Vec<RecordsError>), RecordsError> {
        let dir = state_dir.join("records");
        fsio::create_dir_all(&dir, 0o700)?;
        let mut store = Self {
            dir,
            records: BTreeMap::new(),
        };
        let mut problems = Vec::new();
        for kind in RecordKind::ALL {
            let kdir = store.dir.join(kind.as_str());
            let depth = if kind == RecordKind::BlockDisk { 2 } else { 1 };
            let mut files = Vec::new();
            collect_files(&kdir, depth, &mut files)?;
            for path in files {
                match load_file(&path, kind, &kdir) {
                    Ok(rec) => {
                        store.records.insert(rec.key.clone(), rec);
                    }
                    Err(e) => problems.push(e),
                }
            }
        }
        Ok((store, problems))
    }

    /// The stored record for `key`, tombstones included.
    pub fn get(&self, key: &RecordKey) -> Option<&Record> {
        self.records.get(key)
    }

    /// The live (not deleted) record of `kind` named `name`.
    pub fn live(&self, kind: RecordKind, name: &str) -> Option<&Record> {
        self.records
            .get(&RecordKey::new(kind, name))
            .filter(|r| !r.deleted)
    }

    /// Every stored record, of `kind` only when given, in key order.
    pub fn list(&self, kind: Option<RecordKind>) -> Vec<Record> {
        self.records
            .values()
            .filter(|r| kind.is_none_or(|k| r.key.kind == k))
            .cloned()
            .collect()
    }

    /// A copy of the index with `overlay` applied under the same revision rule, for
    /// predictions.
    pub fn overlaid(&self, overlay: &[Record]) -> BTreeMap<RecordKey, Record> {
        let mut m = self.records.clone();
        for r in overlay {
            if should_store(m.get(&r.key), r) {
                m.insert(r.key.clone(), r.clone());
            }
        }
        m
    }

    /// Stores validated records, each only if its revision is higher than the stored one.
    pub fn put(&mut self, batch: Vec<Record>) -> Result<Vec<PutOutcome>, RecordsError> {
        let mut out = Vec::with_capacity(batch.len());
        for rec in batch {
            let stored = self.records.get(&rec.key);
            if !should_store(stored, &rec) {
                if let Some(s) = stored.filter(|s| s.revision == rec.revision && **s != rec) {
                    tracing::warn!(record = %rec.key, revision = s.revision,
                        "a record with the same revision but different content was ignored");
                }
                let stored_revision = stored.map_or(0, |s| s.revision);
                out.push(PutOutcome {
                    key: rec.key,
                    applied: false,
                    stored_revision,
                });
                continue;
            }
            let path = self.path_of(&rec.key);
            let data = serde_json::to_vec_pretty(&rec).map_err(|e| RecordsError::Invalid {
                record: rec.key.to_string(),
                reason: format!("cannot encode: {e}"),
            })?;
            fsio::write_atomic(&path, &data, 0o600)?;
            out.push(PutOutcome {
                key: rec.key.clone(),
                applied: true,
                stored_revision: rec.revision,
            });
            self.records.insert(rec.key.clone(), rec);
        }
        Ok(out)
    }

    /// The file of `key` (names are validated, so they are safe path components).
    pub fn path_of(&self, key: &RecordKey) -> PathBuf {
        self.dir
            .join(key.kind.as_str())
            .join(format!("{}.json", key.name))
    }
}

fn collect_files(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) -> Result<(), RecordsError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RecordsError::ReadDir {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| RecordsError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue; // temporary files of interrupted writes, and anything hidden
        }
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && depth > 1 {
            collect_files(&path, depth - 1, out)?;
        } else if !is_dir && name.ends_with(".json") {
            out.push(path);
        }
    }
    Ok(())
}

fn load_file(path: &Path, kind: RecordKind, kdir: &Path) -> Result<Record, RecordsError> {
    let corrupt = |reason: String| RecordsError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(|e| corrupt(e.to_string()))?;
    let rec: Record = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    rec.key.validate().map_err(|e| corrupt(e.to_string()))?;
    let expected = kdir.join(format!("{}.json", rec.key.name));
    if rec.key.kind != kind || expected != path {
        return Err(corrupt(format!(
            "holds record {} which belongs elsewhere",
            rec.key
        )));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(kind: &str, name: &str, rev: u64, spec: &str) -> IncomingRecord {
        IncomingRecord {
            kind: kind.into(),
            name: name.into(),
            revision: rev,
            deleted: false,
            spec_json: spec.into(),
        }
    }

    fn reason(r: Result<Record, RecordsError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn validates_interpreted_kinds() {
        let ok = validate_record(&inc(
            "data_engine_setting",
            "cluster",
            1,
            r#"{"enabled":true}"#,
        ));
        assert!(ok.unwrap().spec["enabled"].as_bool().unwrap());
        let e = reason(validate_record(&inc(
            "data_engine_setting",
            "cluster",
            1,
            r#"{"hugepage_limit_mib": -2}"#,
        )));
        assert!(
            e.starts_with("record data_engine_setting/cluster: hugepage_limit_mib:"),
            "{e}"
        );
        let e = reason(validate_record(&inc(
            "data_engine_setting",
            "other",
            1,
            "{}",
        )));
        assert!(e.contains("name:"), "{e}");
        let e = reason(validate_record(&inc(
            "node_v2",
            "node-1",
            1,
            r#"{"node":"node-2"}"#,
        )));
        assert!(e.contains("node: \"node-2\" differs"), "{e}");
        let e = reason(validate_record(&inc(
            "node_v2",
            "node-1",
            1,
            r#"{"node":"node-1","cpu_mask":"zz"}"#,
        )));
        assert!(e.contains("cpu_mask:"), "{e}");
        let e = reason(validate_record(&inc(
            "node_v2",
            "node-1",
            1,
            r#"{"node":"node-1","enable":true}"#,
        )));
        assert!(e.contains("spec_json:") && e.contains("enable"), "{e}");
    }

    #[test]
    fn block_disks_are_validated_and_named_node_slash_disk() {
        let ok = r#"{"node":"node-1","name":"d1","path":"/dev/loop3"}"#;
        assert!(validate_record(&inc("block_disk", "node-1/d1", 1, ok)).is_ok());
        let e = reason(validate_record(&inc("block_disk", "node-2/d1", 1, ok)));
        assert!(e.contains("differs from the record name"), "{e}");
        let e = reason(validate_record(&inc(
            "block_disk",
            "node-1/d1",
            1,
            r#"{"node":"node-1","name":"d1","path":"dev/loop3"}"#,
        )));
        assert!(e.starts_with("record block_disk/node-1/d1: path:"), "{e}");
    }

    #[test]
    fn refuses_bad_kinds_names_revisions_and_json() {
        let e = reason(validate_record(&inc("disk", "x", 1, "{}")));
        assert!(e.contains("kind: unknown record kind \"disk\""), "{e}");
        let e = reason(validate_record(&inc("volume", "../x", 1, "{}")));
        assert!(e.starts_with("record volume/../x: name:"), "{e}");
        let e = reason(validate_record(&inc("volume", "v", 0, "{}")));
        assert!(e.contains("revision:"), "{e}");
        let e = reason(validate_record(&inc("volume", "v", 1, "{")));
        assert!(e.contains("spec_json: not valid JSON"), "{e}");
        let e = reason(validate_record(&inc("volume", "v", 1, "[1]")));
        assert!(e.contains("must be a JSON object"), "{e}");
    }

    #[test]
    fn uninterpreted_kinds_are_kept_as_json_and_tombstones_need_no_spec() {
        let r = validate_record(&inc("storage_class", "fast", 3, r#"{"anything": [1]}"#)).unwrap();
        assert_eq!(r.spec["anything"][0], 1);
        let mut t = inc("volume", "v", 4, "");
        t.deleted = true;
        assert_eq!(validate_record(&t).unwrap().spec, serde_json::Value::Null);
    }

    #[test]
    fn a_batch_with_one_bad_record_or_a_duplicate_is_refused() {
        let good = inc("volume", "v", 1, "{}");
        let bad = inc("volume", "w", 1, "nope");
        let e = validate_batch(&[good.clone(), bad])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("record volume/w:"), "{e}");
        let e = validate_batch(&[good.clone(), good])
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn only_higher_revisions_are_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut s, problems) = RecordStore::open(tmp.path()).unwrap();
        assert!(problems.is_empty());
        let v1 = validate_record(&inc("volume", "v", 2, r#"{"size":1}"#)).unwrap();
        let older = validate_record(&inc("volume", "v", 1, r#"{"size":9}"#)).unwrap();
        let v3 = validate_record(&inc("volume", "v", 3, r#"{"size":3}"#)).unwrap();
        let out = s.put(vec![v1.clone()]).unwrap();
        assert!(out[0].applied);
        let out = s.put(vec![v1.clone(), older]).unwrap();
        assert_eq!((out[0].applied, out[0].stored_revision), (false, 2));
        assert_eq!((out[1].applied, out[1].stored_revision), (false, 2));
        let disk = validate_record(&inc(
            "block_disk",
            "n1/d1",
            1,
            r#"{"node":"n1","name":"d1","path":"/dev/loop3"}"#,
        ))
        .unwrap();
        s.put(vec![v3.clone(), disk.clone()]).unwrap();
        let (s2, problems) = RecordStore::open(tmp.path()).unwrap();
        assert!(problems.is_empty());
        assert_eq!(s2.get(&v3.key), Some(&v3));
        assert_eq!(s2.get(&disk.key), Some(&disk));
        assert_eq!(s2.list(Some(RecordKind::Volume)).len(), 1);
        assert_eq!(s2.list(None).len(), 2);
    }

    #[test]
    fn load_skips_temp_files_and_reports_corrupt_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let vdir = tmp.path().join("records/volume");
        fs::create_dir_all(&vdir).unwrap();
        fs::write(vdir.join(".v.json.tmp-1-0"), "{half").unwrap();
        fs::write(vdir.join("broken.json"), "{half").unwrap();
        let (s, problems) = RecordStore::open(tmp.path()).unwrap();
        assert!(s.list(None).is_empty());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("broken.json"));
    }

    #[test]
    fn overlay_follows_the_revision_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut s, _) = RecordStore::open(tmp.path()).unwrap();
        let v2 = validate_record(&inc("volume", "v", 2, r#"{"a":2}"#)).unwrap();
        s.put(vec![v2.clone()]).unwrap();
        let v1 = validate_record(&inc("volume", "v", 1, r#"{"a":1}"#)).unwrap();
        let v5 = validate_record(&inc("volume", "v", 5, r#"{"a":5}"#)).unwrap();
        assert_eq!(s.overlaid(&[v1])[&v2.key], v2);
        assert_eq!(s.overlaid(std::slice::from_ref(&v5))[&v2.key], v5);
        assert_eq!(s.get(&v2.key), Some(&v2), "the store itself is untouched");
    }
}
