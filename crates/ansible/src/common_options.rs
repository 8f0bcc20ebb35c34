//! The options every module has besides its resource's attributes: `state`, and how the
//! executors are reached — the Terraform provider block's `nodes`,
//! `ssh_private_key_file`, `ssh_known_hosts_file` and `over_provisioning_percent`, plus
//! `executor_socket` for the node-local modules.

use serde_json::Value;

use crate::argspec::{OptSource, OptType, OptionSpec};
use crate::module::Module;

/// The default executor socket, for `executor_socket`'s description.
pub const DEFAULT_SOCKET: &str = client::DEFAULT_EXECUTOR_SOCKET;

/// `state`: present or absent, with what absent means for this module.
pub fn state(m: Module) -> OptionSpec {
    let absent = match m {
        Module::DataEngineSetting => {
            "C(absent) removes the cluster setting: every node falls back to the defaults \
             (engine disabled) unless its C(node_v2) opts it in."
        }
        Module::NodeV2 => {
            "C(absent) removes the node's override: the node follows the cluster setting again."
        }
        Module::BlockDisk => {
            "C(absent) removes the disk from the engine; refused while replicas live on it."
        }
        Module::StorageClass => "C(absent) removes the class; refused while volumes use it.",
        Module::Volume => {
            "C(absent) deletes the volume and tears down its replicas, exports and raid."
        }
    };
    OptionSpec {
        name: "state".into(),
        ty: OptType::Str,
        elements: None,
        required: false,
        default: Some(Value::from("present")),
        choices: vec!["present".into(), "absent".into()],
        description: vec![
            "C(present) creates the object or updates it to match the options.".into(),
            absent.into(),
        ],
        source: OptSource::State,
        force_new: false,
        suboptions: Vec::new(),
    }
}

/// The flag that lets a `volume` task replace the volume.
pub const ALLOW_REPLACE: &str = "allow_replace";

/// Flags that say what a task may do to the object beyond updating it in place. Only
/// `volume` has one: `allow_replace`, because replacing a volume destroys its data.
pub fn behaviour(m: Module) -> Vec<OptionSpec> {
    match m {
        Module::Volume => vec![OptionSpec {
            name: ALLOW_REPLACE.into(),
            ty: OptType::Bool,
            elements: None,
            required: false,
            default: Some(Value::Bool(false)),
            choices: Vec::new(),
            description: vec![
                "Allows the task to replace the volume when O(storage_class) differs from the \
                 class the nodes store it with: the volume is deleted — its replicas and \
                 every byte on them — and an empty one is created on the new class (what \
                 Terraform's replacement of C(v2engine_volume) does)."
                    .into(),
                "Without it such a task fails naming O(storage_class) and changes nothing: \
                 nothing in this module destroys data unless asked by this flag or by \
                 O(state=absent). In check mode the replacement is only predicted."
                    .into(),
                "Not part of the volume: it is not stored, and has no effect when the class \
                 is unchanged."
                    .into(),
            ],
            source: OptSource::Behaviour,
            force_new: false,
            suboptions: Vec::new(),
        }],
        _ => Vec::new(),
    }
}

/// The options that say how to reach the executors, as the provider block has them, and
/// `executor_socket` for node-local modules.
pub fn connection(m: Module) -> Vec<OptionSpec> {
    let path = |name: &str, description: Vec<String>| OptionSpec {
        name: name.into(),
        ty: OptType::Path,
        elements: None,
        required: false,
        default: None,
        choices: Vec::new(),
        description,
        source: OptSource::Connection,
        force_new: false,
        suboptions: Vec::new(),
    };
    let mut nodes_description = vec![
        "The hosts: node name => C({endpoint: ...}), as the Terraform provider's C(nodes). \
         Endpoints are C(ssh://user@host[:port][/executor-socket]) (default socket \
         C(/run/v2engine/executor.sock)), C(unix:///path) for an executor on the machine the \
         module runs on, or C(https://host:port)."
            .to_string(),
        "Usually set once for every module with C(module_defaults) and the action group \
         C(group/v2engine.storage.all), from the inventory's C(v2engine_nodes)."
            .to_string(),
    ];
    if m.node_local() {
        nodes_description.push(
            "When omitted, the module talks to the executor on the host it runs on (see \
             O(executor_socket)), and that host is the node named by O(node)."
                .into(),
        );
    } else {
        nodes_description.push(
            "Required: this object is stored on every node, so the module must reach all of them."
                .into(),
        );
    }
    let mut out = vec![
        OptionSpec {
            name: "nodes".into(),
            ty: OptType::Dict,
            elements: None,
            required: !m.node_local(),
            default: None,
            choices: Vec::new(),
            description: nodes_description,
            source: OptSource::Connection,
            force_new: false,
            suboptions: Vec::new(),
        },
        path(
            "ssh_private_key_file",
            vec![
                "Private key for ssh endpoints; without it the ssh-agent at C(SSH_AUTH_SOCK) is used."
                    .into(),
            ],
        ),
        path(
            "ssh_known_hosts_file",
            vec![
                "known_hosts file that host keys of ssh endpoints are verified against \
                 (required for ssh endpoints: an unknown host is refused, never trusted on first use)."
                    .into(),
            ],
        ),
    ];
    out.push(OptionSpec {
        name: "over_provisioning_percent".into(),
        ty: OptType::Int,
        elements: None,
        required: false,
        default: Some(Value::from(100)),
        choices: Vec::new(),
        description: vec![
            "Thin provisioning limit used by volume placement, 1 to 10000, as the Terraform \
             provider's."
                .into(),
        ],
        source: OptSource::Connection,
        force_new: false,
        suboptions: Vec::new(),
    });
    if m.node_local() {
        out.push(path(
            "executor_socket",
            vec![
                format!(
                    "The executor's Unix socket on the host the module runs on. When set, the \
                     module talks to that executor only (O(nodes) is not used) and that host is \
                     the node named by O(node). When neither this nor O(nodes) is set, \
                     C({DEFAULT_SOCKET}) is used."
                ),
                "Run the module on the node itself for this (no C(delegate_to)); the task \
                 needs root to reach the socket."
                    .into(),
            ],
        ));
    }
    out
}
