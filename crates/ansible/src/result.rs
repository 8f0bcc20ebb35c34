//! The module protocol's output: one JSON object on stdout, as `AnsibleModule.exit_json`
//! and `fail_json` write it (`changed`, `failed`, `msg`, `diff`, `warnings`,
//! `invocation`, and the module's return values).

use serde_json::{Map, Value};

/// `--diff` output: the object before and after the task.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// What the nodes store now (`{}` when absent).
    pub before: Value,
    /// What they store after the task (`{}` when absent).
    pub after: Value,
    /// Names the before side.
    pub before_header: String,
    /// Names the after side.
    pub after_header: String,
}

/// A module's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModuleResult {
    /// Something changed (or, in check mode, would change).
    pub changed: bool,
    /// The task failed.
    pub failed: bool,
    /// A one-line summary, or the error.
    pub msg: String,
    /// Before and after, when ansible-core asked for a diff.
    pub diff: Option<Diff>,
    /// Warnings ansible-core shows after the task (a node needing a reboot).
    pub warnings: Vec<String>,
    /// Return values, by name.
    pub values: Map<String, Value>,
    /// The options as the module saw them (`invocation.module_args`).
    pub module_args: Option<Value>,
}

impl ModuleResult {
    /// A failure with `msg`, changing nothing.
    pub fn fail(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: msg.into(),
            ..Self::default()
        }
    }

    /// The process exit code: 1 on failure, as `fail_json`.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed)
    }

    /// The JSON ansible-core reads.
    pub fn to_json(&self) -> Value {
        let mut m = self.values.clone();
        m.insert("changed".into(), Value::Bool(self.changed));
        if self.failed {
            m.insert("failed".into(), Value::Bool(true));
        }
        m.insert("msg".into(), Value::String(self.msg.clone()));
        if let Some(d) = &self.diff {
            m.insert(
                "diff".into(),
                serde_json::json!({
                    "before": d.before,
                    "after": d.after,
                    "before_header": d.before_header,
                    "after_header": d.after_header,
                }),
            );
        }
        if !self.warnings.is_empty() {
            m.insert(
                "warnings".into(),
                Value::Array(self.warnings.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(a) = &self.module_args {
            m.insert("invocation".into(), serde_json::json!({ "module_args": a }));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failure_is_fail_json() {
        let r = ModuleResult::fail("nodes: missing required argument");
        assert_eq!(r.exit_code(), 1);
        assert_eq!(
            r.to_json(),
            json!({"changed": false, "failed": true, "msg": "nodes: missing required argument"})
        );
    }

    #[test]
    fn success_carries_values_diff_and_warnings() {
        let mut r = ModuleResult {
            changed: true,
            msg: "created".into(),
            warnings: vec!["node-3 will need a reboot".into()],
            diff: Some(Diff {
                before: json!({}),
                after: json!({"name": "x"}),
                before_header: "b".into(),
                after_header: "a".into(),
            }),
            ..Default::default()
        };
        r.values.insert("id".into(), json!("x"));
        let j = r.to_json();
        assert_eq!(r.exit_code(), 0);
        assert_eq!(j["changed"], json!(true));
        assert_eq!(j["id"], json!("x"));
        assert_eq!(j["diff"]["after"], json!({"name": "x"}));
        assert_eq!(j["warnings"], json!(["node-3 will need a reboot"]));
        assert!(j.get("failed").is_none());
    }
}
