//! How a module reaches the executors: the connection options, as the Terraform
//! provider block has them (`nodes`, `ssh_private_key_file`, `ssh_known_hosts_file`), or
//! the executor on the host the module runs on (`executor_socket`, node-local modules).

use std::collections::BTreeMap;
use std::path::PathBuf;

use client::{DEFAULT_EXECUTOR_SOCKET, Endpoint, TransportOptions};
use serde_json::Value;

use crate::module::Module;
use crate::params::{Checked, ParamsError};

/// Where the module's executors are and how to reach them.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Node name → endpoint.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// SSH (and TLS) settings.
    pub options: TransportOptions,
    /// True when the module talks only to the executor on its own host.
    pub local: bool,
}

fn invalid(option: impl Into<String>, reason: impl Into<String>) -> ParamsError {
    ParamsError::Invalid(vec![(option.into(), reason.into())])
}

/// Expands a leading `~` as Ansible's `path` type does.
pub fn expand_path(p: &str, home: Option<&str>) -> PathBuf {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{h}{rest}"))
        }
        _ => PathBuf::from(p),
    }
}

/// Parses `nodes`: node name → `{endpoint: ...}`. Errors name `nodes.<node>...`.
pub fn parse_nodes(v: &Value) -> Result<BTreeMap<String, Endpoint>, ParamsError> {
    let Value::Object(m) = v else {
        return Err(invalid(
            "nodes",
            "must be a dictionary of node name => {endpoint: ...}",
        ));
    };
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    for (name, node) in m {
        let path = format!("nodes.{name}");
        if let Err(e) = model::validate::check_object_name(name) {
            errors.push((path, e));
            continue;
        }
        let Value::Object(fields) = node else {
            errors.push((path, "must be a dictionary such as {endpoint: ...}".into()));
            continue;
        };
        for k in fields.keys().filter(|k| k.as_str() != "endpoint") {
            errors.push((format!("{path}.{k}"), "unsupported option".into()));
        }
        match fields.get("endpoint") {
            Some(Value::String(s)) => match s.parse::<Endpoint>() {
                Ok(ep) => {
                    out.insert(name.clone(), ep);
                }
                Err(e) => errors.push((format!("{path}.endpoint"), e.to_string())),
            },
            Some(other) => errors.push((
                format!("{path}.endpoint"),
                format!("{other} is not a string"),
            )),
            None => errors.push((
                format!("{path}.endpoint"),
                format!("node {name} needs an endpoint"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ParamsError::Invalid(errors))
    }
}

/// The connection of a module's task. `home` expands `~` in paths.
pub fn from_checked(
    module: Module,
    c: &Checked,
    home: Option<&str>,
) -> Result<Connection, ParamsError> {
    let file = |name: &str| c.str(name).map(|p| expand_path(p, home));
    let options = TransportOptions {
        ssh_private_key_file: file("ssh_private_key_file"),
        ssh_known_hosts_file: file("ssh_known_hosts_file"),
        ..TransportOptions::default()
    };
    let local = module.node_local() && (c.is_given("executor_socket") || !c.is_given("nodes"));
    let endpoints = if local {
        let node = c
            .str("node")
            .ok_or_else(|| invalid("node", "missing required argument"))?;
        let socket = file("executor_socket").unwrap_or_else(|| DEFAULT_EXECUTOR_SOCKET.into());
        if !socket.is_absolute() {
            return Err(invalid(
                "executor_socket",
                format!("{} must be an absolute path", socket.display()),
            ));
        }
        BTreeMap::from([(node.to_string(), Endpoint::Unix(socket))])
    } else {
        if !c.is_given("nodes") {
            return Err(invalid(
                "nodes",
                format!(
                    "missing required argument: {} is stored on every node, so the module must reach all of them",
                    module.name()
                ),
            ));
        }
        let endpoints = parse_nodes(c.get("nodes"))?;
        if let Some(node) = c.str("node").filter(|_| module.node_local())
            && !endpoints.contains_key(node)
        {
            return Err(invalid(
                "node",
                format!(
                    "node {node:?} is not one of the configured nodes ({})",
                    endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        endpoints
    };
    let uses_ssh = endpoints
        .values()
        .any(|e| matches!(e, Endpoint::Ssh { .. }));
    if uses_ssh && options.ssh_known_hosts_file.is_none() {
        return Err(invalid(
            "ssh_known_hosts_file",
            "ssh endpoints need a known_hosts file to verify host keys against",
        ));
    }
    Ok(Connection {
        endpoints,
        options,
        local,
    })
}

/// Checks, on the machine the module runs on, that the files the connection names exist,
/// so that a wrong path fails naming its option rather than deep in a connection attempt.
pub fn check_files(c: &Connection, executor_socket_given: bool) -> Result<(), ParamsError> {
    let mut errors = Vec::new();
    let uses_ssh = c
        .endpoints
        .values()
        .any(|e| matches!(e, Endpoint::Ssh { .. }));
    if uses_ssh {
        for (option, file) in [
            ("ssh_known_hosts_file", &c.options.ssh_known_hosts_file),
            ("ssh_private_key_file", &c.options.ssh_private_key_file),
        ] {
            if let Some(Err(e)) = file.as_ref().map(std::fs::metadata) {
                errors.push((option.to_string(), format!("{}: {e}", file_display(file))));
            }
        }
    }
    if c.local {
        for (node, ep) in &c.endpoints {
            if let Endpoint::Unix(sock) = ep
                && !sock.exists()
            {
                let default = if executor_socket_given {
                    ""
                } else {
                    " (the default when neither nodes nor executor_socket is set)"
                };
                errors.push((
                    "executor_socket".to_string(),
                    format!(
                        "{}{default} does not exist: is v2engine-executor running on node {node}, \
                         and does the task run on that host?",
                        sock.display()
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ParamsError::Invalid(errors))
    }
}

fn file_display(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argspec::module_spec;
    use crate::params::check;
    use serde_json::json;

    fn conn(m: Module, v: Value) -> Result<Connection, ParamsError> {
        let s = module_spec(m).unwrap();
        let Value::Object(p) = v else { panic!() };
        let c = check(&s, &p, false)?;
        from_checked(m, &c, Some("/root"))
    }

    #[test]
    fn nodes_like_the_provider() {
        let c = conn(
            Module::DataEngineSetting,
            json!({
                "nodes": {"node-1": {"endpoint": "ssh://root@10.0.0.1:22/run/x.sock"}},
                "ssh_known_hosts_file": "~/.ssh/known_hosts",
                "ssh_private_key_file": "/k"
            }),
        )
        .unwrap();
        assert!(!c.local);
        assert_eq!(
            c.options.ssh_known_hosts_file,
            Some(PathBuf::from("/root/.ssh/known_hosts"))
        );
        assert!(matches!(c.endpoints["node-1"], Endpoint::Ssh { .. }));
    }

    #[test]
    fn bad_nodes_are_named() {
        let e = conn(
            Module::StorageClass,
            json!({"name": "x", "nodes": {"Node": {"endpoint": "unix:///a"}, "n2": {"endpoint": "tcp://x"}, "n3": {}}}),
        )
        .unwrap_err();
        let mut o = e.options();
        o.sort();
        assert_eq!(o, ["nodes.Node", "nodes.n2.endpoint", "nodes.n3.endpoint"]);
        let e = conn(
            Module::StorageClass,
            json!({"name": "x", "nodes": {"n": {"endpoint": "ssh://h"}}}),
        )
        .unwrap_err();
        assert_eq!(e.options(), ["ssh_known_hosts_file"]);
        let e = conn(Module::StorageClass, json!({"name": "x"})).unwrap_err();
        assert_eq!(e.options(), ["nodes"]);
    }

    #[test]
    fn missing_files_name_their_option() {
        let c = conn(
            Module::StorageClass,
            json!({
                "name": "x",
                "nodes": {"n": {"endpoint": "ssh://root@h"}},
                "ssh_known_hosts_file": "/nonexistent/known_hosts",
                "ssh_private_key_file": "/nonexistent/id"
            }),
        )
        .unwrap();
        let e = check_files(&c, false).unwrap_err();
        assert_eq!(
            e.options(),
            ["ssh_known_hosts_file", "ssh_private_key_file"]
        );
        assert!(e.to_string().contains("/nonexistent/known_hosts"), "{e}");
        let c = conn(
            Module::NodeV2,
            json!({"node": "node-1", "executor_socket": "/nonexistent.sock"}),
        )
        .unwrap();
        let e = check_files(&c, true).unwrap_err().to_string();
        assert!(
            e.starts_with("executor_socket: /nonexistent.sock does not exist"),
            "{e}"
        );
        assert!(e.contains("node node-1"), "{e}");
        let c = conn(
            Module::StorageClass,
            json!({"name": "x", "nodes": {"n": {"endpoint": "unix:///nonexistent"}}}),
        )
        .unwrap();
        assert!(
            check_files(&c, false).is_ok(),
            "remote sockets are the executor's business"
        );
    }

    #[test]
    fn node_local_modules_use_the_local_socket() {
        let c = conn(Module::NodeV2, json!({"node": "node-2"})).unwrap();
        assert!(c.local);
        assert_eq!(
            c.endpoints["node-2"],
            Endpoint::Unix(DEFAULT_EXECUTOR_SOCKET.into())
        );
        let c = conn(
            Module::NodeV2,
            json!({"node": "node-2", "executor_socket": "/s.sock", "nodes": {"node-1": {"endpoint": "unix:///a"}}}),
        )
        .unwrap();
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.endpoints["node-2"], Endpoint::Unix("/s.sock".into()));
        let e = conn(
            Module::NodeV2,
            json!({"node": "node-9", "nodes": {"node-1": {"endpoint": "unix:///a"}}}),
        )
        .unwrap_err();
        assert_eq!(e.options(), ["node"]);
        assert!(e.to_string().contains("node-1"), "{e}");
    }
}
