//! Pure: the command lines of the processes and one-shot commands of a node. The same
//! vectors are used to start a process and, later, to recognise it in /proc/PID/cmdline.

use std::path::Path;

use crate::plan::NodePaths;
use crate::state::{LabState, NodeState};

/// sshd, by absolute path (sshd re-executes itself and insists on one).
pub const SSHD: &str = "/usr/sbin/sshd";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `sshd -D -f CONFIG -E LOG`: the node's sshd in the foreground.
pub fn sshd(paths: &NodePaths) -> Vec<String> {
    vec![
        SSHD.into(),
        "-D".into(),
        "-f".into(),
        s(&paths.sshd_config()),
        "-E".into(),
        s(&paths.sshd_log()),
    ]
}

/// `sshd -t -f CONFIG`: checks the configuration and keys.
pub fn sshd_test(paths: &NodePaths) -> Vec<String> {
    vec!["-t".into(), "-f".into(), s(&paths.sshd_config())]
}

/// `v2engine-executor serve …` for `node`: its engine is `lab.spdk.tgt` (spdk-sim unless
/// `up --spdk-tgt` chose a real spdk_tgt) on the node's own socket; NVMe-oF exports listen
/// on the node's address.
pub fn executor_serve(lab: &LabState, node: &NodeState, paths: &NodePaths) -> Vec<String> {
    let mut v = vec![
        s(&lab.executor),
        "serve".into(),
        "--node".into(),
        node.name.clone(),
        "--socket".into(),
        s(&paths.executor_socket()),
        "--state-dir".into(),
        s(&paths.state_dir()),
        "--host-root".into(),
        s(&paths.host_root()),
        "--sim-host".into(),
        s(&paths.sim_host()),
    ];
    if let Some(tgt) = &lab.spdk.tgt {
        v.extend(["--spdk-tgt".into(), s(tgt)]);
    }
    v.extend(["--spdk-socket".into(), s(&paths.spdk_socket())]);
    // Replica exports and volume frontends listen on the node's own address.
    v.extend(["--data-address".into(), node.address.to_string()]);
    v.extend(lab.spdk.args.iter().map(|a| format!("--spdk-arg={a}")));
    v
}

/// Arguments of `v2engine-executor sim-init …`: the node's simulated memory, fragmented on
/// the nodes that should need a reboot to get their hugepages.
pub fn executor_sim_init(lab: &LabState, node: &NodeState, paths: &NodePaths) -> Vec<String> {
    let mut v = vec!["sim-init".into(), "--sim-host".into(), s(&paths.sim_host())];
    if node.fragmented {
        v.push("--fragmented".into());
    }
    v.extend(["--memory-mib".into(), lab.sim_memory_mib.to_string()]);
    v
}

/// Arguments of `v2engine-executor sim-reboot …`.
pub fn executor_sim_reboot(paths: &NodePaths) -> Vec<String> {
    vec![
        "sim-reboot".into(),
        "--sim-host".into(),
        s(&paths.sim_host()),
        "--host-root".into(),
        s(&paths.host_root()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{LabPaths, LabRequest, plan_lab};
    use crate::state::SpdkOptions;
    use std::collections::BTreeSet;

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

    #[test]
    fn sshd_runs_in_the_foreground_with_the_node_config() {
        let p = LabPaths::new("/l").node("node-1");
        assert_eq!(
            sshd(&p),
            [
                "/usr/sbin/sshd",
                "-D",
                "-f",
                "/l/nodes/node-1/sshd_config",
                "-E",
                "/l/nodes/node-1/sshd.log"
            ]
        );
        assert_eq!(sshd_test(&p), ["-t", "-f", "/l/nodes/node-1/sshd_config"]);
    }

    #[test]
    fn executor_commands_follow_its_cli() {
        let lab = lab();
        let paths = LabPaths::new("/l");
        let n1 = &lab.nodes[0];
        assert_eq!(
            executor_serve(&lab, n1, &paths.node("node-1")),
            [
                "/bin/v2engine-executor",
                "serve",
                "--node",
                "node-1",
                "--socket",
                "/l/nodes/node-1/run/executor.sock",
                "--state-dir",
                "/l/nodes/node-1/state",
                "--host-root",
                "/l/nodes/node-1/root",
                "--sim-host",
                "/l/nodes/node-1/sim-host.json",
                "--spdk-socket",
                "/l/nodes/node-1/run/spdk.sock",
                "--data-address",
                &n1.address.to_string()
            ]
        );
        let mut real = lab.clone();
        real.spdk = SpdkOptions {
            tgt: Some("/opt/spdk/bin/spdk_tgt".into()),
            args: vec!["--no-huge".into()],
        };
        assert_eq!(
            executor_serve(&real, n1, &paths.node("node-1"))[12..],
            [
                "--spdk-tgt",
                "/opt/spdk/bin/spdk_tgt",
                "--spdk-socket",
                "/l/nodes/node-1/run/spdk.sock",
                "--data-address",
                &n1.address.to_string(),
                "--spdk-arg=--no-huge"
            ]
        );
        assert_eq!(
            executor_sim_init(&lab, n1, &paths.node("node-1")),
            [
                "sim-init",
                "--sim-host",
                "/l/nodes/node-1/sim-host.json",
                "--memory-mib",
                "8192"
            ]
        );
        assert_eq!(
            executor_sim_init(&lab, &lab.nodes[1], &paths.node("node-2")),
            [
                "sim-init",
                "--sim-host",
                "/l/nodes/node-2/sim-host.json",
                "--fragmented",
                "--memory-mib",
                "8192"
            ]
        );
        assert_eq!(
            executor_sim_reboot(&paths.node("node-2")),
            [
                "sim-reboot",
                "--sim-host",
                "/l/nodes/node-2/sim-host.json",
                "--host-root",
                "/l/nodes/node-2/root"
            ]
        );
    }
}
