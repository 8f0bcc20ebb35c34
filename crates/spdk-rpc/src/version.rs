//! The SPDK version of the connected target, and the parameters that only some versions know.
//!
//! spdk_tgt rejects unknown parameter keys (decode failure), so a request must carry only the
//! keys the connected version understands. Required parameters and the options v24.09 already
//! had are always sent; newer options are listed in [`PARAM_GATES`] with the first version that
//! accepts them and what to do on an older target:
//!
//! | method | param | first version | on an older target |
//! |---|---|---|---|
//! | `bdev_aio_create` | `nowait` | 26.01 | omitted (only an I/O submission hint) |
//! | `bdev_lvol_create_lvstore` | `md_page_size` | 25.05 | refused: it changes the on-disk layout |
//! | `nvmf_create_subsystem` | `enable_nssr` | 25.09 | refused: it changes what hosts may do |
//!
//! The versions are the first release whose own Python client (PyPI `spdk`, 25.5 onwards)
//! sends the key; v24.09 is known from the recorded transcripts not to have any of them. A key
//! may have appeared in a release between, so the table errs late: an omitted key changes
//! nothing, a refused one names the version to upgrade to. A pre-release (`-pre` suffix)
//! counts as older than the release, so a key is never sent to a development build that may
//! not have it yet.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A parsed `spdk_get_version` answer: `{"version":"SPDK v24.09","fields":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpdkVersion {
    /// Year of the release (24 for v24.09).
    pub major: u32,
    /// Month of the release (9 for v24.09).
    pub minor: u32,
    /// Maintenance release (1 for v24.09.1).
    pub patch: u32,
    /// Suffix such as `-pre` for a development build; empty for a release.
    #[serde(default)]
    pub suffix: String,
}

impl SpdkVersion {
    /// A release version without suffix.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
            suffix: String::new(),
        }
    }

    /// True for a development build (non-empty suffix), which sorts before its release.
    pub fn is_prerelease(&self) -> bool {
        !self.suffix.is_empty()
    }

    /// Parses a version string as SPDK prints it: `SPDK v24.09`, `v24.09.1-pre`, `24.9`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix("SPDK").unwrap_or(text).trim_start();
        let text = text.strip_prefix('v').unwrap_or(text);
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (numbers, suffix) = text.split_at(split);
        let mut parts = numbers.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            suffix: suffix.to_owned(),
        })
    }
}

impl Ord for SpdkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            // A release is newer than any pre-release of the same number.
            .then_with(|| other.is_prerelease().cmp(&self.is_prerelease()))
            .then_with(|| self.suffix.cmp(&other.suffix))
    }
}

impl PartialOrd for SpdkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SpdkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{:02}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        f.write_str(&self.suffix)
    }
}

/// The raw `spdk_get_version` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Human-readable version, e.g. `SPDK v24.09`.
    pub version: String,
    /// The same as numbers; absent in very old releases.
    #[serde(default)]
    pub fields: Option<SpdkVersion>,
}

impl VersionInfo {
    /// The numeric version: `fields` when present, else parsed from `version`.
    pub fn parsed(&self) -> Option<SpdkVersion> {
        self.fields
            .clone()
            .or_else(|| SpdkVersion::parse(&self.version))
    }
}

/// What to do with a gated parameter on a target older than its first version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOlder {
    /// Leave the key out: the request means the same without it.
    Omit,
    /// Refuse the call: without the key the request would do something else.
    Refuse,
}

/// One version-gated optional parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamGate {
    /// The method.
    pub method: &'static str,
    /// The parameter key.
    pub param: &'static str,
    /// First version that accepts the key.
    pub since: SpdkVersion,
    /// What to do on an older target.
    pub on_older: OnOlder,
}

/// The version-gated parameters this crate's typed requests can carry (see the module docs).
pub const PARAM_GATES: &[ParamGate] = &[
    ParamGate {
        method: "bdev_aio_create",
        param: "nowait",
        since: SpdkVersion::new(26, 1, 0),
        on_older: OnOlder::Omit,
    },
    ParamGate {
        method: "bdev_lvol_create_lvstore",
        param: "md_page_size",
        since: SpdkVersion::new(25, 5, 0),
        on_older: OnOlder::Refuse,
    },
    ParamGate {
        method: "nvmf_create_subsystem",
        param: "enable_nssr",
        since: SpdkVersion::new(25, 9, 0),
        on_older: OnOlder::Refuse,
    },
];

/// True when `params` of `method` carry a key that [`PARAM_GATES`] lists, so the version of
/// the target must be known before sending.
pub fn needs_version(method: &str, params: &Map<String, Value>) -> bool {
    PARAM_GATES
        .iter()
        .any(|g| g.method == method && params.contains_key(g.param))
}

/// Removes (or refuses) the keys `version` does not know. On refusal returns the gate that
/// refused; `params` may then already have lost omitted keys and must not be sent.
pub fn apply_gates(
    method: &str,
    params: &mut Map<String, Value>,
    version: &SpdkVersion,
) -> Result<(), &'static ParamGate> {
    for gate in PARAM_GATES.iter().filter(|g| g.method == method) {
        if !params.contains_key(gate.param) || *version >= gate.since {
            continue;
        }
        match gate.on_older {
            OnOlder::Omit => {
                params.remove(gate.param);
            }
            OnOlder::Refuse => return Err(gate),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn parses_spdk_version_strings() {
        assert_eq!(
            SpdkVersion::parse("SPDK v24.09"),
            Some(SpdkVersion::new(24, 9, 0))
        );
        let pre = SpdkVersion::parse("SPDK v25.01.1-pre").unwrap();
        assert_eq!((pre.major, pre.minor, pre.patch), (25, 1, 1));
        assert_eq!(pre.suffix, "-pre");
        assert_eq!(SpdkVersion::parse("24.9"), Some(SpdkVersion::new(24, 9, 0)));
        assert_eq!(SpdkVersion::parse("nonsense"), None);
        assert_eq!(SpdkVersion::parse("v1.2.3.4"), None);
    }

    #[test]
    fn parses_the_recorded_answer() {
        let info: VersionInfo = serde_json::from_value(json!({
            "version": "SPDK v24.09",
            "fields": {"major": 24, "minor": 9, "patch": 0, "suffix": ""}
        }))
        .unwrap();
        assert_eq!(info.parsed(), Some(SpdkVersion::new(24, 9, 0)));
        let no_fields: VersionInfo =
            serde_json::from_value(json!({"version": "SPDK v23.01.1"})).unwrap();
        assert_eq!(no_fields.parsed(), Some(SpdkVersion::new(23, 1, 1)));
    }

    #[test]
    fn prerelease_sorts_before_release() {
        let pre = SpdkVersion::parse("v26.01-pre").unwrap();
        assert!(pre < SpdkVersion::new(26, 1, 0));
        assert!(pre > SpdkVersion::new(25, 9, 0));
        assert!(SpdkVersion::new(24, 9, 1) > SpdkVersion::new(24, 9, 0));
        assert_eq!(SpdkVersion::new(24, 9, 0).to_string(), "v24.09");
        assert_eq!(pre.to_string(), "v26.01-pre");
    }

    #[test]
    fn nowait_is_omitted_before_26_01_and_kept_after() {
        let base = json!({"name": "aio0", "filename": "/dev/loop0", "nowait": true});
        let mut old = obj(base.clone());
        assert!(needs_version("bdev_aio_create", &old));
        apply_gates("bdev_aio_create", &mut old, &SpdkVersion::new(24, 9, 0)).unwrap();
        assert!(!old.contains_key("nowait"));
        assert_eq!(old.len(), 2);

        let mut pre = obj(base.clone());
        apply_gates(
            "bdev_aio_create",
            &mut pre,
            &SpdkVersion::parse("v26.01-pre").unwrap(),
        )
        .unwrap();
        assert!(!pre.contains_key("nowait"));

        let mut new = obj(base);
        apply_gates("bdev_aio_create", &mut new, &SpdkVersion::new(26, 1, 0)).unwrap();
        assert_eq!(new.get("nowait"), Some(&json!(true)));
    }

    #[test]
    fn layout_changing_param_is_refused_on_old_target() {
        let mut p = obj(json!({"bdev_name": "aio0", "lvs_name": "l", "md_page_size": 4096}));
        let gate = apply_gates(
            "bdev_lvol_create_lvstore",
            &mut p,
            &SpdkVersion::new(24, 9, 0),
        )
        .unwrap_err();
        assert_eq!(gate.param, "md_page_size");
        let mut p = obj(json!({"bdev_name": "aio0", "lvs_name": "l", "md_page_size": 4096}));
        apply_gates(
            "bdev_lvol_create_lvstore",
            &mut p,
            &SpdkVersion::new(25, 5, 0),
        )
        .unwrap();
        assert!(p.contains_key("md_page_size"));
    }

    #[test]
    fn ungated_params_need_no_version() {
        let p = obj(json!({"name": "aio0", "filename": "/dev/loop0", "block_size": 512}));
        assert!(!needs_version("bdev_aio_create", &p));
        // The same key on another method is not gated.
        let p = obj(json!({"nowait": true}));
        assert!(!needs_version("bdev_get_bdevs", &p));
    }
}
