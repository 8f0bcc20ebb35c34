//! Pure planning: the lab's identity, object names, addresses and file paths.
//!
//! Everything a lab makes is named after a short hash of its directory, so two labs (or two
//! tests) on one machine never touch each other's namespaces, links or addresses, and `down`
//! can find what a crashed `up` left behind from the directory alone.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::state::{BridgeState, DiskState, LabState, NodeState, STATE_VERSION, SpdkOptions};

/// Largest number of nodes in one lab (addresses .1 to .250 of its /24).
pub const MAX_NODES: usize = 250;
/// First two octets of every lab subnet: labs live in 10.250.0.0/16.
pub const SUBNET_PREFIX: [u8; 2] = [10, 250];
/// Prefix length of a lab subnet.
pub const SUBNET_PREFIX_LEN: u8 = 24;
/// Host part of the bridge's address in the lab subnet.
pub const BRIDGE_HOST: u8 = 254;
/// Name of the node's end of its veth pair, inside the node's namespace.
pub const NODE_IFACE: &str = "eth0";
/// Port every node's sshd listens on.
pub const SSH_PORT: u16 = 22;
/// Disks per node.
pub const DISKS_PER_NODE: usize = 2;
/// Simulated memory of every node, passed to `sim-init --memory-mib`.
pub const SIM_MEMORY_MIB: u64 = 8192;
/// Default size of each disk image.
pub const DEFAULT_DISK_SIZE_MIB: u64 = 1024;
/// Terraform source address of the provider the lab installs.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/v2engine/v2engine";
/// Version the provider is installed as.
pub const PROVIDER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Longest path a Unix socket can bind (sun_path is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Why a lab cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Node count out of range.
    #[error("--nodes {0}: a lab has 1 to {MAX_NODES} nodes")]
    NodeCount(usize),
    /// Disk size out of range.
    #[error("--disk-size-mib {0}: a disk needs at least 1 MiB")]
    DiskSize(u64),
    /// The lab directory cannot be used in the generated configuration.
    #[error("lab directory {path}: {reason}")]
    BadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A name in `--fragmented-nodes` is not a node of the lab.
    #[error("--fragmented-nodes: {item:?} is not a node of this lab (node-1 to node-{nodes})")]
    UnknownNode {
        /// The offending item.
        item: String,
        /// Node count of the lab.
        nodes: usize,
    },
    /// Every /24 of 10.250.0.0/16 is in use on this machine.
    #[error("lab {id}: no free /24 left in 10.250.0.0/16 on this machine")]
    NoSubnet {
        /// Lab id.
        id: String,
    },
    /// A socket path of the lab is too long for a Unix socket.
    #[error(
        "socket path {path} is {len} bytes long; a Unix socket path has at most {MAX_SOCKET_PATH}"
    )]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The short identity of a lab, derived from its directory: 8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabId(String);

impl LabId {
    /// The id of the lab in `dir` (which should be absolute and canonical).
    pub fn for_dir(dir: &Path) -> Self {
        // FNV-1a, 64 bit, folded to 32: stable across builds and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in dir.as_os_str().as_encoded_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let folded = (h >> 32) ^ (h & 0xffff_ffff);
        Self(format!("{folded:08x}"))
    }

    /// Wraps an id read back from lab.json.
    pub fn from_string(id: String) -> Self {
        Self(id)
    }

    /// The 8 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every namespace of this lab starts with this.
    pub fn namespace_prefix(&self) -> String {
        format!("v2e-{}-", self.0)
    }

    /// Namespace of node `index` (1-based).
    pub fn namespace(&self, index: usize) -> String {
        format!("{}n{index}", self.namespace_prefix())
    }

    /// Every link of this lab in the root namespace starts with this.
    pub fn link_prefix(&self) -> String {
        format!("v2e{}", self.0)
    }

    /// The bridge (13 characters; interface names have at most 15).
    pub fn bridge(&self) -> String {
        format!("{}br", self.link_prefix())
    }

    /// Root-namespace end of node `index`'s veth pair (at most 15 characters up to node 999).
    pub fn veth_host(&self, index: usize) -> String {
        format!("{}v{index}", self.link_prefix())
    }

    /// The third octet this lab tries first for its subnet.
    pub fn preferred_octet(&self) -> u8 {
        let n = u32::from_str_radix(&self.0, 16).unwrap_or(0);
        n.to_be_bytes()[3]
    }
}

/// Name of node `index` (1-based): `node-1`, `node-2`, …
pub fn node_name(index: usize) -> String {
    format!("node-{index}")
}

/// The index of a node name, or of a bare number.
pub fn parse_node_ref(s: &str) -> Option<usize> {
    let digits = s.strip_prefix("node-").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The lab's subnet with third octet `octet`, e.g. `10.250.37.0/24`.
pub fn subnet(octet: u8) -> String {
    format!(
        "{}/{SUBNET_PREFIX_LEN}",
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], octet, 0)
    )
}

/// Address of node `index` in the subnet with third octet `octet`.
pub fn node_address(octet: u8, index: usize) -> Ipv4Addr {
    // index is checked against MAX_NODES by plan_lab.
    let host = u8::try_from(index).unwrap_or(0);
    Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], octet, host)
}

/// Address of the bridge in the subnet with third octet `octet`.
pub fn bridge_address(octet: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], octet, BRIDGE_HOST)
}

/// The third octets of 10.250.0.0/16 that `addresses` (in use on the machine) occupy.
pub fn used_octets(addresses: impl IntoIterator<Item = Ipv4Addr>) -> BTreeSet<u8> {
    addresses
        .into_iter()
        .filter(|a| a.octets()[..2] == SUBNET_PREFIX)
        .map(|a| a.octets()[2])
        .collect()
}

/// The first free third octet, probing upwards (wrapping) from `preferred`.
pub fn choose_octet(preferred: u8, used: &BTreeSet<u8>) -> Option<u8> {
    (0..=255u8)
        .map(|i| preferred.wrapping_add(i))
        .find(|o| !used.contains(o))
}

/// Parses `--fragmented-nodes`: comma-separated node names or numbers, `none` or empty for
/// none; absent means the last node.
pub fn parse_fragmented(spec: Option<&str>, nodes: usize) -> Result<BTreeSet<usize>, PlanError> {
    let Some(spec) = spec else {
        return Ok(BTreeSet::from([nodes]));
    };
    let spec = spec.trim();
    if spec.is_empty() || spec == "none" {
        return Ok(BTreeSet::new());
    }
    spec.split(',')
        .map(str::trim)
        .map(|item| match parse_node_ref(item) {
            Some(i) if (1..=nodes).contains(&i) => Ok(i),
            _ => Err(PlanError::UnknownNode {
                item: item.to_string(),
                nodes,
            }),
        })
        .collect()
}

/// Checks that `dir` can appear unquoted in sshd_config, ssh URLs, HCL and shell files:
/// absolute, ASCII letters, digits and `-_./+`.
pub fn check_dir(dir: &Path) -> Result<(), PlanError> {
    let bad = |reason: &str| PlanError::BadDir {
        path: dir.to_path_buf(),
        reason: reason.into(),
    };
    if !dir.is_absolute() {
        return Err(bad("must be an absolute path"));
    }
    let s = dir.to_str().ok_or_else(|| bad("must be valid UTF-8"))?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c))
    {
        return Err(bad(
            "only ASCII letters, digits and '-', '_', '.', '/', '+' are allowed \
             (the path appears in ssh URLs, sshd_config and shell files)",
        ));
    }
    Ok(())
}

/// The Terraform platform of this build, e.g. `linux_amd64`.
pub fn terraform_platform() -> String {
    platform_for(std::env::consts::OS, std::env::consts::ARCH)
}

/// The Terraform platform name for a Rust `os` and `arch`.
pub fn platform_for(os: &str, arch: &str) -> String {
    let arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}_{arch}")
}

/// Where everything of a lab lives inside its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPaths {
    dir: PathBuf,
}

impl LabPaths {
    /// Paths of the lab in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `lab.json`: what the lab made.
    pub fn lab_json(&self) -> PathBuf {
        self.dir.join("lab.json")
    }

    /// `lab.lock`: held by the command changing the lab.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lab.lock")
    }

    /// Directory of the client key, authorized_keys and known_hosts.
    pub fn ssh_dir(&self) -> PathBuf {
        self.dir.join("ssh")
    }

    /// The lab's client private key, authorised for root on every node.
    pub fn client_key(&self) -> PathBuf {
        self.ssh_dir().join("id_ed25519")
    }

    /// The public half of [`LabPaths::client_key`].
    pub fn client_key_pub(&self) -> PathBuf {
        self.ssh_dir().join("id_ed25519.pub")
    }

    /// The authorized_keys file every node's sshd reads.
    pub fn authorized_keys(&self) -> PathBuf {
        self.ssh_dir().join("authorized_keys")
    }

    /// known_hosts with every node's address and host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.ssh_dir().join("known_hosts")
    }

    /// Directory of the disk images.
    pub fn disks_dir(&self) -> PathBuf {
        self.dir.join("disks")
    }

    /// Image file of disk `disk` (1-based) of `node`.
    pub fn disk_image(&self, node: &str, disk: usize) -> PathBuf {
        self.disks_dir().join(format!("{node}-disk-{disk}.img"))
    }

    /// Directory of all node directories.
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }

    /// Paths of one node.
    pub fn node(&self, node: &str) -> NodePaths {
        NodePaths {
            dir: self.nodes_dir().join(node),
        }
    }

    /// The filesystem mirror Terraform installs the provider from.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    /// Where the provider binary is installed in the mirror, for `platform` (e.g. `linux_amd64`).
    pub fn provider_binary(&self, platform: &str) -> PathBuf {
        self.plugins_dir()
            .join(PROVIDER_SOURCE)
            .join(PROVIDER_VERSION)
            .join(platform)
            .join(format!("terraform-provider-v2engine_v{PROVIDER_VERSION}"))
    }

    /// `terraform.tfvars.json`.
    pub fn tfvars(&self) -> PathBuf {
        self.dir.join("terraform.tfvars.json")
    }

    /// `terraformrc`: Terraform CLI configuration (use with `TF_CLI_CONFIG_FILE`).
    pub fn terraformrc(&self) -> PathBuf {
        self.dir.join("terraformrc")
    }

    /// `inventory.yml`: Ansible inventory.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }

    /// `lab.env`: shell exports.
    pub fn lab_env(&self) -> PathBuf {
        self.dir.join("lab.env")
    }
}

/// Where everything of one node lives: `DIR/nodes/node-K/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    dir: PathBuf,
}

impl NodePaths {
    /// The node directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's sshd configuration.
    pub fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    /// The node's ed25519 host key.
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    /// The public half of the host key.
    pub fn host_key_pub(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key.pub")
    }

    /// sshd's log (`sshd -E`).
    pub fn sshd_log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// sshd's stdout and stderr.
    pub fn sshd_output(&self) -> PathBuf {
        self.dir.join("sshd.out")
    }

    /// The executor's stdout and stderr.
    pub fn executor_log(&self) -> PathBuf {
        self.dir.join("executor.log")
    }

    /// Runtime directory: sockets and pid files.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// sshd's PidFile.
    pub fn sshd_pid(&self) -> PathBuf {
        self.run_dir().join("sshd.pid")
    }

    /// The executor's socket.
    pub fn executor_socket(&self) -> PathBuf {
        self.run_dir().join("executor.sock")
    }

    /// The node's engine (spdk-sim or spdk_tgt) RPC socket.
    pub fn spdk_socket(&self) -> PathBuf {
        self.run_dir().join("spdk.sock")
    }

    /// The executor's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The executor's host root (its view of /etc, /sys, …).
    pub fn host_root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The simulated host's memory model.
    pub fn sim_host(&self) -> PathBuf {
        self.dir.join("sim-host.json")
    }
}

/// What `up` is asked to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabRequest {
    /// Lab directory, absolute and canonical.
    pub dir: PathBuf,
    /// Number of nodes.
    pub nodes: usize,
    /// `--fragmented-nodes` as given (absent: the last node).
    pub fragmented: Option<String>,
    /// Size of each disk image.
    pub disk_size_mib: u64,
    /// The executor binary.
    pub executor: PathBuf,
    /// spdk_tgt binary and arguments, stored for the executor.
    pub spdk: SpdkOptions,
}

/// Plans a new lab: names, addresses and paths, nothing running yet. `used` holds the third
/// octets of 10.250.0.0/16 already in use on the machine.
pub fn plan_lab(req: &LabRequest, used: &BTreeSet<u8>) -> Result<LabState, PlanError> {
    if req.nodes == 0 || req.nodes > MAX_NODES {
        return Err(PlanError::NodeCount(req.nodes));
    }
    if req.disk_size_mib == 0 {
        return Err(PlanError::DiskSize(req.disk_size_mib));
    }
    check_dir(&req.dir)?;
    let fragmented = parse_fragmented(req.fragmented.as_deref(), req.nodes)?;
    let id = LabId::for_dir(&req.dir);
    let octet = choose_octet(id.preferred_octet(), used).ok_or_else(|| PlanError::NoSubnet {
        id: id.as_str().to_string(),
    })?;
    let paths = LabPaths::new(&req.dir);
    let nodes = (1..=req.nodes)
        .map(|index| {
            let name = node_name(index);
            let socket = paths.node(&name).executor_socket();
            let len = socket.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(PlanError::SocketPathTooLong { path: socket, len });
            }
            Ok(NodeState {
                index,
                namespace: id.namespace(index),
                veth_host: id.veth_host(index),
                iface: NODE_IFACE.to_string(),
                address: node_address(octet, index),
                fragmented: fragmented.contains(&index),
                disks: (1..=DISKS_PER_NODE)
                    .map(|d| DiskState {
                        image: paths.disk_image(&name, d),
                        loop_device: None,
                    })
                    .collect(),
                sshd: None,
                executor: None,
                cut: false,
                name,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LabState {
        version: STATE_VERSION,
        dir: req.dir.clone(),
        id: id.as_str().to_string(),
        subnet: subnet(octet),
        subnet_octet: octet,
        bridge: BridgeState {
            name: id.bridge(),
            address: bridge_address(octet),
            prefix_len: SUBNET_PREFIX_LEN,
        },
        executor: req.executor.clone(),
        disk_size_mib: req.disk_size_mib,
        sim_memory_mib: SIM_MEMORY_MIB,
        spdk: req.spdk.clone(),
        nodes,
        files: Vec::new(),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &str, nodes: usize) -> LabRequest {
        LabRequest {
            dir: dir.into(),
            nodes,
            fragmented: None,
            disk_size_mib: DEFAULT_DISK_SIZE_MIB,
            executor: "/opt/v2engine-executor".into(),
            spdk: SpdkOptions::default(),
        }
    }

    #[test]
    fn ids_are_stable_short_and_differ_per_dir() {
        let a = LabId::for_dir(Path::new("/tmp/lab-a"));
        let b = LabId::for_dir(Path::new("/tmp/lab-b"));
        assert_eq!(a, LabId::for_dir(Path::new("/tmp/lab-a")));
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 8);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn names_share_the_lab_prefix_and_fit_interface_limits() {
        let id = LabId::from_string("0badcafe".into());
        assert_eq!(id.namespace(3), "v2e-0badcafe-n3");
        assert!(id.namespace(3).starts_with(&id.namespace_prefix()));
        assert_eq!(id.bridge(), "v2e0badcafebr");
        assert_eq!(id.veth_host(12), "v2e0badcafev12");
        assert!(id.bridge().starts_with(&id.link_prefix()));
        assert!(id.veth_host(MAX_NODES).len() <= 15);
        assert!(id.bridge().len() <= 15);
    }

    #[test]
    fn node_refs_parse_names_and_numbers() {
        assert_eq!(parse_node_ref("node-3"), Some(3));
        assert_eq!(parse_node_ref("12"), Some(12));
        assert_eq!(parse_node_ref("node-"), None);
        assert_eq!(parse_node_ref("node-03"), None);
        assert_eq!(parse_node_ref("nodeX"), None);
        assert_eq!(parse_node_ref("-1"), None);
    }

    #[test]
    fn fragmented_defaults_to_the_last_node() {
        assert_eq!(parse_fragmented(None, 3).unwrap(), BTreeSet::from([3]));
        assert_eq!(parse_fragmented(Some("none"), 3).unwrap(), BTreeSet::new());
        assert_eq!(parse_fragmented(Some(""), 3).unwrap(), BTreeSet::new());
        assert_eq!(
            parse_fragmented(Some("node-1, 2"), 3).unwrap(),
            BTreeSet::from([1, 2])
        );
        let err = parse_fragmented(Some("node-4"), 3).unwrap_err();
        assert_eq!(
            err,
            PlanError::UnknownNode {
                item: "node-4".into(),
                nodes: 3
            }
        );
        assert!(err.to_string().contains("node-4"));
    }

    #[test]
    fn subnet_probing_skips_used_octets_and_wraps() {
        assert_eq!(choose_octet(7, &BTreeSet::new()), Some(7));
        assert_eq!(choose_octet(7, &BTreeSet::from([7, 8])), Some(9));
        assert_eq!(choose_octet(255, &BTreeSet::from([255])), Some(0));
        let all: BTreeSet<u8> = (0..=255).collect();
        assert_eq!(choose_octet(3, &all), None);
    }

    #[test]
    fn used_octets_only_count_the_lab_range() {
        let used = used_octets([
            Ipv4Addr::new(10, 250, 4, 254),
            Ipv4Addr::new(10, 251, 5, 1),
            Ipv4Addr::new(192, 168, 1, 1),
        ]);
        assert_eq!(used, BTreeSet::from([4]));
    }

    #[test]
    fn addresses_put_nodes_low_and_the_bridge_at_254() {
        assert_eq!(node_address(37, 1), Ipv4Addr::new(10, 250, 37, 1));
        assert_eq!(node_address(37, 250), Ipv4Addr::new(10, 250, 37, 250));
        assert_eq!(bridge_address(37), Ipv4Addr::new(10, 250, 37, 254));
        assert_eq!(subnet(37), "10.250.37.0/24");
    }

    #[test]
    fn plan_builds_every_node() {
        let dir = "/var/tmp/lab1";
        let id = LabId::for_dir(Path::new(dir));
        let lab = plan_lab(&request(dir, 3), &BTreeSet::new()).unwrap();
        assert_eq!(lab.id, id.as_str());
        assert_eq!(lab.subnet_octet, id.preferred_octet());
        assert_eq!(lab.bridge.name, id.bridge());
        assert_eq!(lab.bridge.address, bridge_address(lab.subnet_octet));
        let names: Vec<_> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2", "node-3"]);
        let frag: Vec<_> = lab.nodes.iter().map(|n| n.fragmented).collect();
        assert_eq!(frag, [false, false, true]);
        let n2 = &lab.nodes[1];
        assert_eq!(n2.namespace, id.namespace(2));
        assert_eq!(n2.address, node_address(lab.subnet_octet, 2));
        assert_eq!(
            n2.disks.iter().map(|d| d.image.clone()).collect::<Vec<_>>(),
            [
                PathBuf::from("/var/tmp/lab1/disks/node-2-disk-1.img"),
                PathBuf::from("/var/tmp/lab1/disks/node-2-disk-2.img")
            ]
        );
        assert!(n2.disks.iter().all(|d| d.loop_device.is_none()));
    }

    #[test]
    fn plan_avoids_a_subnet_in_use() {
        let dir = "/var/tmp/lab1";
        let preferred = LabId::for_dir(Path::new(dir)).preferred_octet();
        let lab = plan_lab(&request(dir, 1), &BTreeSet::from([preferred])).unwrap();
        assert_eq!(lab.subnet_octet, preferred.wrapping_add(1));
    }

    #[test]
    fn plan_refuses_bad_requests() {
        assert_eq!(
            plan_lab(&request("/x", 0), &BTreeSet::new()),
            Err(PlanError::NodeCount(0))
        );
        assert_eq!(
            plan_lab(&request("/x", 251), &BTreeSet::new()),
            Err(PlanError::NodeCount(251))
        );
        let mut r = request("/x", 1);
        r.disk_size_mib = 0;
        assert_eq!(plan_lab(&r, &BTreeSet::new()), Err(PlanError::DiskSize(0)));
        let err = plan_lab(&request("/tmp/my lab", 1), &BTreeSet::new()).unwrap_err();
        assert!(err.to_string().contains("/tmp/my lab"), "{err}");
        assert!(plan_lab(&request("relative", 1), &BTreeSet::new()).is_err());
        let long = format!("/{}", "d".repeat(100));
        assert!(matches!(
            plan_lab(&request(&long, 1), &BTreeSet::new()),
            Err(PlanError::SocketPathTooLong { .. })
        ));
    }

    #[test]
    fn paths_follow_the_layout() {
        let p = LabPaths::new("/l");
        let n = p.node("node-2");
        assert_eq!(
            n.executor_socket(),
            PathBuf::from("/l/nodes/node-2/run/executor.sock")
        );
        assert_eq!(n.state_dir(), PathBuf::from("/l/nodes/node-2/state"));
        assert_eq!(n.host_root(), PathBuf::from("/l/nodes/node-2/root"));
        assert_eq!(n.sim_host(), PathBuf::from("/l/nodes/node-2/sim-host.json"));
        assert_eq!(
            p.provider_binary("linux_amd64"),
            PathBuf::from(format!(
                "/l/plugins/registry.terraform.io/v2engine/v2engine/{PROVIDER_VERSION}/linux_amd64/\
                 terraform-provider-v2engine_v{PROVIDER_VERSION}"
            ))
        );
    }

    #[test]
    fn platforms_use_terraform_names() {
        assert_eq!(platform_for("linux", "x86_64"), "linux_amd64");
        assert_eq!(platform_for("linux", "aarch64"), "linux_arm64");
    }
}
