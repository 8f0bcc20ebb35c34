//! Computed attributes of each resource: what the executors observed or predict.
//!
//! These are separate from the specs so that one derive gives Terraform its computed
//! attributes and Ansible its return values.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One node's predicted or observed outcome of the engine setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeOutcome {
    /// Whether the engine is enabled on this node (after its override).
    pub enabled: bool,
    /// 2 MiB hugepages this node should have.
    pub target_pages: i64,
    /// Hugepages it has (observed) or will have after apply (predicted).
    pub expected_pages: i64,
    /// The node needs a reboot to get its hugepages.
    pub reboot_required: bool,
    /// Why, in the executor's words.
    pub reason: String,
    /// disabled, waiting_for_reboot, ready, ...
    pub engine_state: String,
}

/// Computed attributes of `data_engine_setting`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DataEngineSettingStatus {
    /// Resource id: always "cluster".
    pub id: String,
    /// Nodes that need a reboot to get their hugepages, known at plan time.
    pub reboot_required_nodes: Vec<String>,
    /// Per node: target pages and the predicted outcome.
    pub nodes: BTreeMap<String, NodeOutcome>,
    /// Nodes whose stored copy of this record is missing or older than the others' (they
    /// were down or cut off when it was last written); the next apply writes it there.
    pub out_of_sync_nodes: Vec<String>,
}

/// Computed attributes of `node_v2`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeV2Status {
    /// Resource id: the node name.
    pub id: String,
    /// The node needs a reboot (hugepage shortfall), known at plan time.
    pub reboot_required: bool,
    /// Why, e.g. "allocated 3 of 1024 hugepages; the boot configuration will allocate them at next boot".
    pub reboot_reasons: Vec<String>,
    /// 2 MiB hugepages allocated now.
    pub hugepages_allocated: i64,
    /// Kernel modules loaded (of those the engine needs).
    pub modules_loaded: Vec<String>,
    /// disabled, waiting_for_reboot, ready, running, ...
    pub engine_state: String,
    /// spdk_get_version of the running engine, empty when not running.
    pub spdk_version: String,
    /// Nodes whose stored copy of this record is missing or older than the others' (they
    /// were down or cut off when it was last written); the next apply writes it there.
    pub out_of_sync_nodes: Vec<String>,
}

/// Computed attributes of `block_disk`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockDiskStatus {
    /// Resource id: `node/name`.
    pub id: String,
    /// UUID of the lvstore on the disk.
    pub lvstore_uuid: String,
    /// Usable capacity in bytes.
    pub capacity_bytes: i64,
    /// Free bytes (unallocated clusters).
    pub free_bytes: i64,
}

/// Computed attributes of `storage_class`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorageClassStatus {
    /// Resource id: the class name.
    pub id: String,
    /// Nodes whose stored copy of this record is missing or older than the others' (they
    /// were down or cut off when it was last written); the next apply writes it there.
    pub out_of_sync_nodes: Vec<String>,
}

/// Where one replica of a volume lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaStatus {
    /// Node name.
    pub node: String,
    /// Disk name on that node.
    pub disk: String,
    /// healthy; rebuilding (the raid1 is copying onto it); failed (the engine lost it);
    /// unreachable (its node does not answer); stale (left over from a replacement, removed
    /// by the next apply). Unknown in a plan until apply builds it.
    pub state: String,
}

/// Computed attributes of `volume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VolumeStatus {
    /// Resource id: the volume name.
    pub id: String,
    /// Replicas, known at plan time: the placement is shown in the plan.
    pub replicas: Vec<ReplicaStatus>,
    /// healthy, degraded (a replica is failed or unreachable), rebuilding, detached (no
    /// attach node), failed, absent (the engine is gone, e.g. after its node's engine
    /// restarted: the next apply rebuilds it) or unknown (the attach node does not answer).
    pub state: String,
    /// NQN of the frontend subsystem on the attach node.
    pub nqn: String,
    /// Block device on the attach node (frontend = block).
    pub device_path: String,
    /// Nodes whose stored copy of this record is missing or older than the others' (they
    /// were down or cut off when it was last written); the next apply writes it there.
    pub out_of_sync_nodes: Vec<String>,
}
