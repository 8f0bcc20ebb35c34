//! Which volumes use a node's engine (pure): replica lvols named `<volume>-r-<8 hex>` on
//! its lvstores, and volume records attached to the node. Stopping the engine (disable,
//! or a restart to apply a new cpu mask or memory size) is refused while any does.

use std::collections::BTreeMap;

use model::Volume;

/// The volume a replica lvol belongs to: `vol-1-r-0a1b2c3d` → `vol-1`.
pub fn replica_volume(lvol: &str) -> Option<&str> {
    let (volume, suffix) = lvol.rsplit_once("-r-")?;
    let hex = suffix.len() == 8
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && !volume.is_empty()).then_some(volume)
}

/// One volume using the node, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUse {
    /// The volume.
    pub volume: String,
    /// `replica lvol X on lvstore Y`, `attached to node N`.
    pub evidence: Vec<String>,
}

/// The volumes using `node`: `lvols` are `(lvol, lvstore)` names of its engine, `volumes`
/// the live volume records. Sorted by volume.
pub fn volumes_using(node: &str, lvols: &[(String, String)], volumes: &[Volume]) -> Vec<VolumeUse> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (lvol, lvs) in lvols {
        if let Some(v) = replica_volume(lvol) {
            by.entry(v.to_string())
                .or_default()
                .push(format!("replica lvol {lvol} on lvstore {lvs}"));
        }
    }
    for v in volumes {
        if v.attach_node.as_deref() == Some(node) {
            by.entry(v.name.clone())
                .or_default()
                .push(format!("attached to node {node}"));
        }
    }
    by.into_iter()
        .map(|(volume, evidence)| VolumeUse { volume, evidence })
        .collect()
}

/// The refusal to stop the engine of `node` while `users` use it (`why`: "disable",
/// "restart with the new configuration").
pub fn refusal(node: &str, why: &str, users: &[VolumeUse]) -> String {
    let list: Vec<String> = users
        .iter()
        .map(|u| format!("{} ({})", u.volume, u.evidence.join("; ")))
        .collect();
    format!(
        "node {node}: refusing to stop the engine ({why}) while volumes use it: {}",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names() {
        assert_eq!(replica_volume("vol-1-r-0a1b2c3d"), Some("vol-1"));
        assert_eq!(replica_volume("a-r-b-r-deadbeef"), Some("a-r-b"));
        assert_eq!(
            replica_volume("vol-r-0A1B2C3D"),
            None,
            "lower-case hex only"
        );
        assert_eq!(replica_volume("vol-r-0a1b2c3"), None);
        assert_eq!(replica_volume("-r-0a1b2c3d"), None);
        assert_eq!(replica_volume("scratch"), None);
    }

    #[test]
    fn users_from_lvols_and_records() {
        let vol = |name: &str, node: Option<&str>| Volume {
            name: name.into(),
            size: "1Gi".into(),
            storage_class: "c".into(),
            attach_node: node.map(str::to_string),
            frontend: None,
        };
        let lvols = vec![
            ("v1-r-0a1b2c3d".to_string(), "v2e-lvs-d1".to_string()),
            ("tmp".to_string(), "v2e-lvs-d1".to_string()),
        ];
        let vols = vec![
            vol("v2", Some("node-1")),
            vol("v3", Some("node-2")),
            vol("v1", None),
        ];
        let u = volumes_using("node-1", &lvols, &vols);
        assert_eq!(
            u.iter().map(|u| u.volume.as_str()).collect::<Vec<_>>(),
            ["v1", "v2"]
        );
        assert_eq!(
            refusal("node-1", "disable", &u),
            "node node-1: refusing to stop the engine (disable) while volumes use it: \
             v1 (replica lvol v1-r-0a1b2c3d on lvstore v2e-lvs-d1), v2 (attached to node node-1)"
        );
        assert!(volumes_using("node-1", &[], &[]).is_empty());
    }
}
