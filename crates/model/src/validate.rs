//! Validation errors that name the attribute and the reason.

use std::fmt;

/// One invalid attribute: `path` is the attribute path as the user wrote it
/// (`hugepage_limit_mib`, `kernel_modules[2]`), `reason` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ValidationError {
    /// Attribute path, e.g. `cpu_mask` or `kernel_modules[1]`.
    pub path: String,
    /// Why the value is refused.
    pub reason: String,
}

impl ValidationError {
    /// A new error for `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Every problem found in one object; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    /// Records a problem.
    pub fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ValidationError::new(path, reason));
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the errors of `other`, each path prefixed with `prefix.`.
    pub fn extend_prefixed(&mut self, prefix: &str, other: ValidationErrors) {
        for e in other.0 {
            self.0.push(ValidationError::new(
                format!("{prefix}.{}", e.path),
                e.reason,
            ));
        }
    }
}

/// A Linux kernel module name as `modprobe` takes it: letters, digits, `_` and `-`,
/// at most 55 characters (the kernel's MODULE_NAME_LEN less the NUL). Anything else
/// could be an option or a path, and is refused.
pub fn check_module_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a kernel module name must not be empty".into());
    }
    if name.len() > 55 {
        return Err(format!(
            "kernel module name {name:?} is longer than 55 characters"
        ));
    }
    if name.starts_with('-') {
        return Err(format!(
            "kernel module name {name:?} must not start with '-'"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "kernel module name {name:?} contains {c:?}; only letters, digits, '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// The smallest engine memory (`hugepage_limit_mib`) accepted, in MiB.
///
/// Measured with real spdk_tgt v24.09 and v26.05 (2 MiB hugepages and `--no-huge`), with
/// the pools the executor sizes to the memory: below 256 MiB spdk_tgt v24.09's fixed memory
/// (about 150 MiB resident with `--no-huge`) leaves no room for I/O buffer pools that can
/// still serve volumes (it failed to start at 224 MiB with `--no-huge`). SPDK's default
/// pools alone need about 840-930 MiB.
pub const MIN_HUGEPAGE_MIB: i64 = 256;

/// Hugepage memory in MiB: a multiple of 2 MiB (the hugepage size), at least
/// [`MIN_HUGEPAGE_MIB`], at most 1 TiB.
pub fn check_hugepage_mib(mib: i64) -> Result<u64, String> {
    if mib <= 0 {
        return Err(format!("must be a positive number of MiB, got {mib}"));
    }
    if mib % 2 != 0 {
        return Err(format!(
            "must be a multiple of 2 MiB (the hugepage size), got {mib}"
        ));
    }
    if mib < MIN_HUGEPAGE_MIB {
        return Err(format!(
            "SPDK needs at least {MIN_HUGEPAGE_MIB} MiB: below that spdk_tgt's fixed memory \
             leaves no room for its I/O buffer pools and it does not start, got {mib}"
        ));
    }
    if mib > 1024 * 1024 {
        return Err(format!("must be at most 1048576 MiB (1 TiB), got {mib}"));
    }
    u64::try_from(mib).map_err(|_| format!("must be a positive number of MiB, got {mib}"))
}

/// Names of nodes, disks, classes and volumes: 1–63 characters of lowercase letters, digits,
/// `-` and `_`, starting with a letter or digit. They become parts of SPDK bdev names and NQNs.
pub fn check_object_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters long"));
    }
    let first = name.chars().next().unwrap_or('-');
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(format!(
            "{name:?} must start with a lowercase letter or a digit"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{name:?} contains {c:?}; only lowercase letters, digits, '-' and '_' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert!(check_module_name("vfio_pci").is_ok());
        assert!(check_module_name("nvme-tcp").is_ok());
        assert!(check_module_name("").is_err());
        assert!(check_module_name("-r").is_err());
        assert!(check_module_name("../../etc/passwd").is_err());
        assert!(check_module_name("a b").is_err());
        assert!(check_module_name("x;reboot").is_err());
        assert!(check_module_name(&"a".repeat(56)).is_err());
    }

    #[test]
    fn hugepage_mib() {
        assert_eq!(check_hugepage_mib(2048), Ok(2048));
        assert_eq!(check_hugepage_mib(256), Ok(256));
        let e = check_hugepage_mib(254).unwrap_err();
        assert!(e.starts_with("SPDK needs at least 256 MiB: "), "{e}");
        assert!(e.ends_with("got 254"), "{e}");
        assert!(check_hugepage_mib(64).is_err());
        assert!(
            check_hugepage_mib(3)
                .unwrap_err()
                .contains("multiple of 2 MiB"),
            "an odd size is refused for that first"
        );
        assert!(check_hugepage_mib(258).is_ok());
        assert!(check_hugepage_mib(0).is_err());
        assert!(check_hugepage_mib(-2).is_err());
        assert!(check_hugepage_mib(3).is_err());
        assert!(check_hugepage_mib(2 * 1024 * 1024).is_err());
    }

    #[test]
    fn object_names() {
        assert!(check_object_name("node-1").is_ok());
        assert!(check_object_name("Node").is_err());
        assert!(check_object_name("-x").is_err());
        assert!(check_object_name("a/b").is_err());
        assert!(check_object_name("").is_err());
    }

    #[test]
    fn errors_display_names_paths() {
        let mut errs = ValidationErrors::default();
        errs.push("cpu_mask", "bad");
        errs.push("kernel_modules[0]", "worse");
        assert_eq!(errs.to_string(), "cpu_mask: bad; kernel_modules[0]: worse");
        assert!(errs.into_result().is_err());
    }
}
