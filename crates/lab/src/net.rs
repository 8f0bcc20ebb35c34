//! Network namespaces, the bridge and veth pairs, through `ip` (JSON output where read).
//!
//! Every `ensure_*` function is idempotent: it creates what is missing and corrects what is
//! there, so `up` can be run again on a half-built lab.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use serde::Deserialize;

use crate::cmd::{self, CmdError};
use crate::link::PortStatus;

const IP: &str = "ip";

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An operation on a namespace failed.
    #[error("namespace {namespace}: {source}")]
    Namespace {
        /// The namespace.
        namespace: String,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// An operation on a link failed.
    #[error("link {link}: {source}")]
    Link {
        /// The link.
        link: String,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// Listing failed.
    #[error("cannot list {what}: {source}")]
    List {
        /// What was listed.
        what: &'static str,
        /// The failed command.
        #[source]
        source: CmdError,
    },
    /// `ip -j` printed something unexpected.
    #[error("cannot parse the list of {what} printed by `ip -j`: {source}")]
    Parse {
        /// What was listed.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A thread could not enter the namespace.
    #[error("cannot enter namespace {namespace} ({path}): {source}")]
    Enter {
        /// The namespace.
        namespace: String,
        /// Its bind mount.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where `ip netns` keeps the bind mounts of named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Deserialize)]
struct NetnsEntry {
    name: String,
}

#[derive(Deserialize)]
struct LinkEntry {
    ifname: String,
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    #[serde(default)]
    family: String,
    #[serde(default)]
    local: Option<String>,
}

fn parse_list<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    text: &str,
) -> Result<Vec<T>, NetError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|source| NetError::Parse { what, source })
}

fn ns_cmd(namespace: &str, args: &[&str]) -> Result<String, NetError> {
    cmd::run(IP, args).map_err(|source| NetError::Namespace {
        namespace: namespace.into(),
        source,
    })
}

fn link_cmd(link: &str, args: &[&str]) -> Result<String, NetError> {
    cmd::run(IP, args).map_err(|source| NetError::Link {
        link: link.into(),
        source,
    })
}

/// Names of every named network namespace (`ip netns list`).
pub fn namespaces() -> Result<Vec<String>, NetError> {
    let out = cmd::run(IP, &["-j", "netns", "list"]).map_err(|source| NetError::List {
        what: "network namespaces",
        source,
    })?;
    Ok(parse_list::<NetnsEntry>("network namespaces", &out)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// Creates `namespace` unless it exists, and brings its loopback up.
pub fn ensure_namespace(namespace: &str) -> Result<(), NetError> {
    if !namespaces()?.iter().any(|n| n == namespace) {
        ns_cmd(namespace, &["netns", "add", namespace])?;
    }
    ns_cmd(namespace, &["-n", namespace, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Deletes `namespace`; a namespace that is already gone is fine.
pub fn delete_namespace(namespace: &str) -> Result<(), NetError> {
    if !namespaces()?.iter().any(|n| n == namespace) {
        return Ok(());
    }
    ns_cmd(namespace, &["netns", "delete", namespace]).map(drop)
}

/// Pids of the processes inside `namespace` (none when it does not exist).
pub fn namespace_pids(namespace: &str) -> Result<Vec<u32>, NetError> {
    if !namespaces()?.iter().any(|n| n == namespace) {
        return Ok(Vec::new());
    }
    let out = ns_cmd(namespace, &["netns", "pids", namespace])?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

fn link_entries(namespace: Option<&str>) -> Result<Vec<LinkEntry>, NetError> {
    let out = match namespace {
        Some(ns) => ns_cmd(ns, &["-n", ns, "-j", "addr", "show"])?,
        None => cmd::run(IP, &["-j", "addr", "show"]).map_err(|source| NetError::List {
            what: "links",
            source,
        })?,
    };
    parse_list("links", &out)
}

/// Names of every link in the root namespace.
pub fn links() -> Result<Vec<String>, NetError> {
    Ok(link_entries(None)?.into_iter().map(|l| l.ifname).collect())
}

/// `(interface, address)` of every IPv4 address in the root namespace.
pub fn root_ipv4_addresses() -> Result<Vec<(String, Ipv4Addr)>, NetError> {
    Ok(ipv4_of(&link_entries(None)?))
}

/// `(interface, address)` of every IPv4 address inside `namespace`.
pub fn namespace_ipv4_addresses(namespace: &str) -> Result<Vec<(String, Ipv4Addr)>, NetError> {
    Ok(ipv4_of(&link_entries(Some(namespace))?))
}

fn ipv4_of(entries: &[LinkEntry]) -> Vec<(String, Ipv4Addr)> {
    entries
        .iter()
        .flat_map(|l| {
            l.addr_info
                .iter()
                .filter(|a| a.family == "inet")
                .filter_map(|a| a.local.as_deref()?.parse().ok())
                .map(|a| (l.ifname.clone(), a))
        })
        .collect()
}

/// Creates the bridge unless it exists, gives it `address/prefix_len` and brings it up.
pub fn ensure_bridge(bridge: &str, address: Ipv4Addr, prefix_len: u8) -> Result<(), NetError> {
    if !links()?.iter().any(|l| l == bridge) {
        link_cmd(bridge, &["link", "add", bridge, "type", "bridge"])?;
    }
    let cidr = format!("{address}/{prefix_len}");
    link_cmd(bridge, &["addr", "replace", &cidr, "dev", bridge])?;
    link_cmd(bridge, &["link", "set", bridge, "up"])?;
    Ok(())
}

/// Makes the veth pair `host` (root namespace, enslaved to `bridge`) ↔ `iface` (in
/// `namespace`), recreating it when one end is missing, and brings both ends up.
pub fn ensure_veth(host: &str, namespace: &str, iface: &str, bridge: &str) -> Result<(), NetError> {
    let host_exists = links()?.iter().any(|l| l == host);
    let peer_exists = link_entries(Some(namespace))?
        .iter()
        .any(|l| l.ifname == iface);
    if host_exists && !peer_exists {
        link_cmd(host, &["link", "delete", host])?;
    }
    if !(host_exists && peer_exists) {
        link_cmd(
            host,
            &[
                "link", "add", host, "type", "veth", "peer", "name", iface, "netns", namespace,
            ],
        )?;
    }
    let entry = link_entries(None)?.into_iter().find(|l| l.ifname == host);
    if entry.as_ref().and_then(|e| e.master.as_deref()) != Some(bridge) {
        link_cmd(host, &["link", "set", host, "master", bridge])?;
    }
    if !entry.is_some_and(|e| e.flags.iter().any(|f| f == "UP")) {
        link_cmd(host, &["link", "set", host, "up"])?;
    }
    Ok(())
}

/// Gives `iface` in `namespace` its address, brings it up and routes everything else via
/// `gateway` (the bridge).
pub fn configure_node_iface(
    namespace: &str,
    iface: &str,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetError> {
    let cidr = format!("{address}/{prefix_len}");
    let gw = gateway.to_string();
    ns_cmd(
        namespace,
        &["-n", namespace, "addr", "replace", &cidr, "dev", iface],
    )?;
    ns_cmd(namespace, &["-n", namespace, "link", "set", iface, "up"])?;
    ns_cmd(
        namespace,
        &[
            "-n", namespace, "route", "replace", "default", "via", &gw, "dev", iface,
        ],
    )?;
    Ok(())
}

/// Every link of the root namespace as a bridge port sees it: up or not, and its master.
pub fn port_statuses() -> Result<BTreeMap<String, PortStatus>, NetError> {
    Ok(link_entries(None)?
        .into_iter()
        .map(|l| {
            let status = PortStatus {
                admin_up: l.flags.iter().any(|f| f == "UP"),
                master: l.master,
            };
            (l.ifname, status)
        })
        .collect())
}

/// The status of `link` in the root namespace; `None` when there is no such link.
pub fn port_status(link: &str) -> Result<Option<PortStatus>, NetError> {
    Ok(port_statuses()?.remove(link))
}

/// Sets `link` (root namespace) administratively up or down.
pub fn set_link_up(link: &str, up: bool) -> Result<(), NetError> {
    let state = if up { "up" } else { "down" };
    link_cmd(link, &["link", "set", link, state]).map(drop)
}

/// Enslaves `link` (root namespace) to `bridge`.
pub fn attach_to_bridge(link: &str, bridge: &str) -> Result<(), NetError> {
    link_cmd(link, &["link", "set", link, "master", bridge]).map(drop)
}

/// Runs `f` on a thread that has entered the network namespace `namespace` (only that thread
/// moves; the process stays where it is). Sockets `f` creates belong to the namespace for
/// their whole life, whichever thread uses them later. A panic in `f` is passed on.
pub fn in_namespace<T, F>(namespace: &str, f: F) -> Result<T, NetError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = Path::new(NETNS_DIR).join(namespace);
    let name = namespace.to_string();
    let enter = move || -> Result<T, NetError> {
        let err = |source: std::io::Error| NetError::Enter {
            namespace: name.clone(),
            path: path.clone(),
            source,
        };
        let ns = std::fs::File::open(&path).map_err(err)?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| err(e.into()))?;
        Ok(f())
    };
    match std::thread::spawn(enter).join() {
        Ok(res) => res,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Deletes `link`; one that is already gone is fine.
pub fn delete_link(link: &str) -> Result<(), NetError> {
    if !links()?.iter().any(|l| l == link) {
        return Ok(());
    }
    match cmd::run(IP, &["link", "delete", link]) {
        Ok(_) => Ok(()),
        // Deleting a namespace removes its veths asynchronously: gone meanwhile is fine.
        Err(e) if e.stderr().contains("Cannot find device") => Ok(()),
        Err(source) => Err(NetError::Link {
            link: link.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_json() {
        let text = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"addr_info":[
            {"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1"}]},
            {"ifindex":5,"ifname":"v2eabcdef01v1","master":"v2eabcdef01br","flags":["UP"],"addr_info":[]}]"#;
        let entries: Vec<LinkEntry> = parse_list("links", text).unwrap();
        assert_eq!(
            ipv4_of(&entries),
            vec![("lo".to_string(), Ipv4Addr::LOCALHOST)]
        );
        assert_eq!(entries[1].master.as_deref(), Some("v2eabcdef01br"));
        let ns: Vec<NetnsEntry> = parse_list("network namespaces", "").unwrap();
        assert!(ns.is_empty());
        let err = parse_list::<NetnsEntry>("network namespaces", "nope")
            .err()
            .unwrap();
        assert!(err.to_string().contains("network namespaces"));
    }

    #[test]
    fn entering_a_missing_namespace_names_it() {
        let err = in_namespace("v2e-no-such-namespace", || ()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("v2e-no-such-namespace") && msg.contains("/run/netns"),
            "{msg}"
        );
    }
}
