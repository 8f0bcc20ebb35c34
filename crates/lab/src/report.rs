//! Pure: what `status` reports per node, and its human table.

use serde::{Deserialize, Serialize};

use crate::link::{self, LinkState};

/// The status of one node as `status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// `node-K`.
    pub name: String,
    /// The node's address.
    pub address: String,
    /// Its network namespace.
    pub namespace: String,
    /// Its link as the root namespace shows it: `up`, or `cut` (`v2engine-lab cut`; also
    /// `detached`, `missing`, `unknown`).
    #[serde(default)]
    pub link: LinkState,
    /// lab.json records the node as cut.
    #[serde(default)]
    pub link_cut_recorded: bool,
    /// sshd answers with an SSH banner on port 22.
    pub ssh_up: bool,
    /// The executor answers on its socket.
    pub executor_up: bool,
    /// Why the executor did not answer.
    pub executor_error: Option<String>,
    /// The executor's engine_state.
    pub engine_state: Option<String>,
    /// Whether the node needs a reboot.
    pub reboot_required: Option<bool>,
    /// Why.
    pub reboot_reasons: Vec<String>,
    /// 2 MiB pages allocated.
    pub hugepages_allocated: Option<u64>,
    /// 2 MiB pages wanted.
    pub hugepages_target: Option<u64>,
    /// The node's last reconcile error.
    pub last_error: Option<String>,
    /// The node's disks (loop devices or image files).
    pub disks: Vec<String>,
}

fn yes_no(b: bool) -> &'static str {
    if b { "up" } else { "down" }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The human table: one row per node, then reboot reasons and errors below it.
pub fn table(reports: &[NodeReport]) -> String {
    let header = [
        "NODE",
        "ADDRESS",
        "LINK",
        "SSH",
        "EXECUTOR",
        "ENGINE",
        "REBOOT",
        "HUGEPAGES",
        "DISKS",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.address.clone(),
                r.link.to_string(),
                yes_no(r.ssh_up).into(),
                yes_no(r.executor_up).into(),
                opt(r.engine_state.as_deref()),
                opt(r.reboot_required.map(|b| if b { "required" } else { "no" })),
                match (r.hugepages_allocated, r.hugepages_target) {
                    (Some(a), Some(t)) => format!("{a}/{t}"),
                    _ => "-".into(),
                },
                r.disks.join(","),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let mut l = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = line(&header.map(String::from));
    for row in &rows {
        out.push_str(&line(row));
    }
    for r in reports {
        if let Some(remark) = link::remark(&r.name, r.link, r.link_cut_recorded) {
            out.push_str(&remark);
            out.push('\n');
        }
        for reason in &r.reboot_reasons {
            out.push_str(&format!("{}: reboot required: {reason}\n", r.name));
        }
        if let Some(e) = &r.last_error {
            out.push_str(&format!("{}: last error: {e}\n", r.name));
        }
        if let Some(e) = &r.executor_error {
            out.push_str(&format!("{}: executor: {e}\n", r.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_node_and_reasons_below() {
        let ready = NodeReport {
            name: "node-1".into(),
            address: "10.250.1.1".into(),
            link: LinkState::Up,
            ssh_up: true,
            executor_up: true,
            engine_state: Some("ready".into()),
            reboot_required: Some(false),
            hugepages_allocated: Some(16),
            hugepages_target: Some(16),
            disks: vec!["/dev/loop0".into(), "/dev/loop1".into()],
            ..Default::default()
        };
        let waiting = NodeReport {
            name: "node-2".into(),
            address: "10.250.1.2".into(),
            link: LinkState::Up,
            ssh_up: true,
            executor_up: true,
            engine_state: Some("waiting_for_reboot".into()),
            reboot_required: Some(true),
            reboot_reasons: vec!["allocated 3 of 16 hugepages".into()],
            hugepages_allocated: Some(3),
            hugepages_target: Some(16),
            ..Default::default()
        };
        let down = NodeReport {
            name: "node-3".into(),
            address: "10.250.1.3".into(),
            link: LinkState::Up,
            executor_error: Some("connection refused".into()),
            ..Default::default()
        };
        let t = table(&[ready, waiting, down]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NODE"));
        assert!(
            lines[1].starts_with("node-1")
                && lines[1].contains("ready")
                && lines[1].contains("16/16")
        );
        assert!(lines[1].contains("/dev/loop0,/dev/loop1"));
        assert!(lines[2].contains("waiting_for_reboot") && lines[2].contains("required"));
        assert!(lines[3].contains("down") && lines[3].contains(" -"));
        assert_eq!(
            lines[4],
            "node-2: reboot required: allocated 3 of 16 hugepages"
        );
        assert_eq!(lines[5], "node-3: executor: connection refused");
        assert!(lines[1..4].iter().all(|l| l.contains(" up ")));
        // Columns line up.
        let col = lines[0].find("ADDRESS").unwrap();
        assert!(
            lines[1..4]
                .iter()
                .all(|l| l[col..].starts_with("10.250.1."))
        );
    }

    #[test]
    fn a_cut_node_shows_cut_with_the_way_back() {
        let cut = NodeReport {
            name: "node-2".into(),
            address: "10.250.1.2".into(),
            link: LinkState::Cut,
            link_cut_recorded: true,
            executor_up: true,
            ..Default::default()
        };
        let t = table(std::slice::from_ref(&cut));
        let lines: Vec<&str> = t.lines().collect();
        let col = lines[0].find("LINK").unwrap();
        assert!(lines[1][col..].starts_with("cut "), "{t}");
        assert!(
            lines[2].starts_with("node-2: link: cut") && lines[2].contains("restore node-2"),
            "{t}"
        );
        let json = serde_json::to_value(&cut).unwrap();
        assert_eq!(json["link"], "cut");
        assert_eq!(json["link_cut_recorded"], true);
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, cut);
    }
}
