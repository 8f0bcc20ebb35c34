//! `down`: removes every process, namespace, link and loop device of a lab, also after a
//! crash (lab.json partial or gone, processes dead, namespaces left behind).
//!
//! What is removed is found three ways, so nothing depends on lab.json alone: the recorded
//! pids (signalled only while /proc/PID/cmdline still matches), every namespace and link
//! carrying the lab's unique prefix (derived from the directory), and every loop device
//! whose backing file lies under the lab directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::argv;
use crate::loopdev;
use crate::net;
use crate::plan::{LabId, LabPaths};
use crate::proc;
use crate::state::{self, LabState};

/// How long processes get between SIGTERM and SIGKILL during `down`.
const GRACE: Duration = Duration::from_secs(10);

/// What `down` could not remove; every step is tried even when an earlier one failed.
#[derive(Debug, thiserror::Error)]
#[error("down of the lab in {dir} left things behind:\n  {}", failures.join("\n  "))]
pub struct TeardownError {
    /// The lab directory.
    pub dir: PathBuf,
    /// One line per failure, naming the object.
    pub failures: Vec<String>,
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownReport {
    /// Processes stopped.
    pub stopped: Vec<u32>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Links deleted.
    pub links: Vec<String>,
    /// Loop devices detached.
    pub loop_devices: Vec<PathBuf>,
    /// Whether the lab's files were removed too.
    pub purged: bool,
    /// Remarks (e.g. an unreadable lab.json).
    pub notes: Vec<String>,
}

/// Removes the lab in `dir` (absolute). With `purge`, its files too; otherwise lab.json is
/// kept with pids and loop devices cleared, so `up` can rebuild the same lab.
pub fn down(dir: &Path, purge: bool) -> Result<DownReport, TeardownError> {
    let paths = LabPaths::new(dir);
    let mut report = DownReport::default();
    let mut failures = Vec::new();
    let mut lab = match state::load(&paths.lab_json()) {
        Ok(l) => l,
        Err(e) => {
            report
                .notes
                .push(format!("{e}; cleaning up by name instead"));
            None
        }
    };
    let id = lab
        .as_ref()
        .map_or_else(|| LabId::for_dir(dir), |l| LabId::from_string(l.id.clone()));

    stop_processes(lab.as_ref(), &paths, &id, &mut report, &mut failures);
    delete_namespaces(lab.as_ref(), &id, &mut report, &mut failures);
    delete_links(lab.as_ref(), &id, &mut report, &mut failures);
    detach_loop_devices(dir, &mut report, &mut failures);

    if purge {
        purge_files(&paths, &mut failures);
        report.purged = true;
    } else if let Some(lab) = lab.as_mut() {
        for n in &mut lab.nodes {
            n.sshd = None;
            n.executor = None;
            // The links went with the namespaces: nothing is cut any more.
            n.cut = false;
            for d in &mut n.disks {
                d.loop_device = None;
            }
        }
        if let Err(e) = state::save(&paths.lab_json(), lab) {
            failures.push(e.to_string());
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(TeardownError {
            dir: dir.to_path_buf(),
            failures,
        })
    }
}

fn lab_namespaces(lab: Option<&LabState>, id: &LabId) -> Result<Vec<String>, net::NetError> {
    let prefix = id.namespace_prefix();
    let recorded: Vec<&str> = lab
        .map(|l| l.nodes.iter().map(|n| n.namespace.as_str()).collect())
        .unwrap_or_default();
    Ok(net::namespaces()?
        .into_iter()
        .filter(|n| n.starts_with(&prefix) || recorded.contains(&n.as_str()))
        .collect())
}

fn stop_processes(
    lab: Option<&LabState>,
    paths: &LabPaths,
    id: &LabId,
    report: &mut DownReport,
    failures: &mut Vec<String>,
) {
    let mut pids: Vec<u32> = Vec::new();
    // Recorded processes, only while they still run what we started.
    for n in lab.map(|l| l.nodes.as_slice()).unwrap_or_default() {
        for rec in [&n.executor, &n.sshd].into_iter().flatten() {
            if proc::runs(rec.pid, &rec.argv) {
                pids.push(rec.pid);
            }
        }
    }
    // sshd pid files of every node directory (covers a lab.json written before the pids).
    if let Ok(entries) = std::fs::read_dir(paths.nodes_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let np = paths.node(&name);
            if let Some(pid) = proc::read_pid_file(&np.sshd_pid())
                && proc::runs(pid, &argv::sshd(&np))
            {
                pids.push(pid);
            }
        }
    }
    // Everything inside the lab's namespaces is the lab's.
    match lab_namespaces(lab, id) {
        Ok(nss) => {
            for ns in nss {
                match net::namespace_pids(&ns) {
                    Ok(p) => pids.extend(p),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        Err(e) => failures.push(e.to_string()),
    }
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|p| *p != std::process::id());
    match proc::terminate_all(&pids, GRACE) {
        Ok(()) => report.stopped = pids,
        Err(e) => failures.push(e.to_string()),
    }
}

fn delete_namespaces(
    lab: Option<&LabState>,
    id: &LabId,
    report: &mut DownReport,
    failures: &mut Vec<String>,
) {
    match lab_namespaces(lab, id) {
        Ok(nss) => {
            for ns in nss {
                match net::delete_namespace(&ns) {
                    Ok(()) => report.namespaces.push(ns),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        Err(e) => failures.push(e.to_string()),
    }
}

fn delete_links(
    lab: Option<&LabState>,
    id: &LabId,
    report: &mut DownReport,
    failures: &mut Vec<String>,
) {
    let prefix = id.link_prefix();
    let mut recorded: Vec<&str> = Vec::new();
    if let Some(l) = lab {
        recorded.push(l.bridge.name.as_str());
        recorded.extend(l.nodes.iter().map(|n| n.veth_host.as_str()));
    }
    match net::links() {
        Ok(links) => {
            // Veths first (deleting a namespace already took most), then the bridge.
            let mut mine: Vec<String> = links
                .into_iter()
                .filter(|l| l.starts_with(&prefix) || recorded.contains(&l.as_str()))
                .collect();
            mine.sort_by_key(|l| l.ends_with("br"));
            for link in mine {
                match net::delete_link(&link) {
                    Ok(()) => report.links.push(link),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        Err(e) => failures.push(e.to_string()),
    }
}

fn detach_loop_devices(dir: &Path, report: &mut DownReport, failures: &mut Vec<String>) {
    let devices = match loopdev::list() {
        Ok(d) => d,
        Err(e) => return failures.push(e.to_string()),
    };
    for d in loopdev::under_dir(&devices, dir) {
        match loopdev::detach(&d.device) {
            Ok(()) => report.loop_devices.push(d.device.clone()),
            Err(e) => failures.push(e.to_string()),
        }
    }
}

fn purge_files(paths: &LabPaths, failures: &mut Vec<String>) {
    let dirs = [
        paths.nodes_dir(),
        paths.disks_dir(),
        paths.ssh_dir(),
        paths.plugins_dir(),
    ];
    for d in dirs {
        match std::fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failures.push(format!("cannot remove {}: {e}", d.display())),
        }
    }
    let files = [
        paths.tfvars(),
        paths.terraformrc(),
        paths.inventory(),
        paths.lab_env(),
        paths.lab_json().with_extension("json.tmp"),
        paths.lab_json(),
        paths.lock_file(),
    ];
    for f in files {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failures.push(format!("cannot remove {}: {e}", f.display())),
        }
    }
    // The directory itself only when nothing else is in it.
    let _ = std::fs::remove_dir(paths.dir());
}
