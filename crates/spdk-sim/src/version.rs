//! The version string the simulator claims, and the `fields` object `spdk_get_version` derives
//! from it.
//!
//! SPDK formats its version as `SPDK v<major>.<minor 2 digits>[.<patch>]<suffix>[ git sha1 <commit>]`,
//! e.g. `SPDK v24.09` (what the recorded v24.09 target answered) or `SPDK v25.01.1-pre git sha1 0123abcd`.

use crate::json::J;
use thiserror::Error;

/// The version the simulator reports by default: exactly what the recorded spdk_tgt answered.
pub const DEFAULT_VERSION: &str = "SPDK v24.09";

/// A version string that does not have SPDK's shape.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    /// The string does not start with `SPDK v`.
    #[error("version string {0:?} does not start with \"SPDK v\"")]
    Prefix(String),
    /// Major or minor is missing or not a number.
    #[error("version string {0:?} has no <major>.<minor> numbers")]
    Numbers(String),
}

/// A parsed SPDK version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdkVersion {
    /// The full string, echoed as `version`.
    pub text: String,
    /// Major version (24 for v24.09).
    pub major: u32,
    /// Minor version (9 for v24.09).
    pub minor: u32,
    /// Patch level (0 unless `.N` follows the minor).
    pub patch: u32,
    /// Suffix such as `-pre` (may be empty).
    pub suffix: String,
    /// Git commit, when the string has ` git sha1 <commit>`.
    pub commit: Option<String>,
}

impl SpdkVersion {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`VersionError`] when the string does not look like an SPDK version string.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let rest = text
            .strip_prefix("SPDK v")
            .ok_or_else(|| VersionError::Prefix(text.to_owned()))?;
        let (numbers, commit) = match rest.split_once(" git sha1 ") {
            Some((n, c)) => (n, Some(c.trim().to_owned())),
            None => (rest.trim_end(), None),
        };
        let digits_end = numbers
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(numbers.len());
        let (num_part, suffix) = numbers.split_at(digits_end);
        let mut parts = num_part.split('.').filter(|p| !p.is_empty());
        let bad = || VersionError::Numbers(text.to_owned());
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let patch = match parts.next() {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 0,
        };
        Ok(Self {
            text: text.to_owned(),
            major,
            minor,
            patch,
            suffix: suffix.to_owned(),
            commit,
        })
    }

    /// The `spdk_get_version` result object.
    #[must_use]
    pub fn to_json(&self) -> J {
        let fields = J::obj()
            .with("major", self.major)
            .with("minor", self.minor)
            .with("patch", self.patch)
            .with("suffix", self.suffix.as_str())
            .with_opt("commit", self.commit.as_deref());
        J::obj()
            .with("version", self.text.as_str())
            .with("fields", fields)
    }

    /// True from v26.05 on: the first release measured to answer some errors differently
    /// (tests/differential.rs; releases between v24.09 and v26.05 were not measured, so they
    /// answer as v24.09).
    #[must_use]
    pub fn answers_as_v26_05(&self) -> bool {
        (self.major, self.minor) >= (26, 5)
    }

    /// The firmware revision an NVMe-oF controller of this target reports (`24.09`).
    #[must_use]
    pub fn firmware_revision(&self) -> String {
        format!("{}.{:02}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_answers_like_the_recorded_target() {
        let v = SpdkVersion::parse(DEFAULT_VERSION).unwrap();
        assert_eq!(
            v.to_json().to_compact(),
            r#"{"version":"SPDK v24.09","fields":{"major":24,"minor":9,"patch":0,"suffix":""}}"#
        );
        assert_eq!(v.firmware_revision(), "24.09");
    }

    #[test]
    fn patch_suffix_and_commit() {
        let v = SpdkVersion::parse("SPDK v25.01.1-pre git sha1 0123abcd").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (25, 1, 1));
        assert_eq!(v.suffix, "-pre");
        assert_eq!(v.commit.as_deref(), Some("0123abcd"));
    }

    #[test]
    fn v26_05_behaviour_from_v26_05_on() {
        let v = |s: &str| SpdkVersion::parse(s).unwrap().answers_as_v26_05();
        assert!(!v("SPDK v24.09") && !v("SPDK v26.01"));
        assert!(v("SPDK v26.05") && v("SPDK v26.09-pre") && v("SPDK v27.01"));
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(matches!(
            SpdkVersion::parse("v24.09"),
            Err(VersionError::Prefix(_))
        ));
        assert!(matches!(
            SpdkVersion::parse("SPDK vX"),
            Err(VersionError::Numbers(_))
        ));
        assert!(matches!(
            SpdkVersion::parse("SPDK v24"),
            Err(VersionError::Numbers(_))
        ));
    }
}
