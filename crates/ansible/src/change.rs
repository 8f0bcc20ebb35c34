//! What a task does, decided from what the nodes store and what the task asks, and how
//! the outcome is reported to ansible-core. Pure: no I/O.

use serde_json::{Map, Value};

use crate::module::Module;
use crate::result::{Diff, ModuleResult};

/// What a task does to the stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing: the nodes store what the task asks (or it is absent and asked absent).
    Nothing,
    /// Create the object.
    Create,
    /// Update it (also: repair nodes whose copy is missing or old).
    Update,
    /// Remove it.
    Delete,
    /// Delete it and create it anew (a volume given another storage class, when allowed).
    Replace,
}

impl Action {
    /// Whether the action changes anything.
    pub fn changes(self) -> bool {
        self != Action::Nothing
    }

    fn verb(self, check_mode: bool) -> &'static str {
        match (self, check_mode) {
            (Action::Nothing, _) => "unchanged",
            (Action::Create, false) => "created",
            (Action::Create, true) => "would be created",
            (Action::Update, false) => "updated",
            (Action::Update, true) => "would be updated",
            (Action::Delete, false) => "removed",
            (Action::Delete, true) => "would be removed",
            (Action::Replace, false) => "replaced",
            (Action::Replace, true) => "would be replaced",
        }
    }
}

/// Decides the action, as the Terraform provider plans: an object whose stored spec
/// equals the desired one and that every node has is unchanged. `desired` is `None` for
/// `state: absent`.
pub fn decide<T: PartialEq>(before: Option<&T>, desired: Option<&T>, drifted: bool) -> Action {
    match (before, desired) {
        (None, None) => Action::Nothing,
        (Some(_), None) => Action::Delete,
        (None, Some(_)) => Action::Create,
        (Some(b), Some(d)) if b == d && !drifted => Action::Nothing,
        (Some(_), Some(_)) => Action::Update,
    }
}

/// A task's outcome, ready to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The module.
    pub module: Module,
    /// The object's id (`cluster`, the node, `node/name`, the name).
    pub id: String,
    /// What was (or, in check mode, would be) done.
    pub action: Action,
    /// The stored spec before the task, as JSON.
    pub before: Option<Value>,
    /// The stored spec after the task, as JSON.
    pub after: Option<Value>,
    /// The status struct (observed, or predicted in check mode) as a JSON object.
    pub status: Value,
    /// Observed attributes shown next to the stored spec in the diff only (a volume's
    /// `replicas`): before the task, and after it (predicted in check mode). An object's
    /// keys are added to the `before` / `after` side when that side is not empty.
    pub diff_extra: Option<(Value, Value)>,
    /// Warnings (`summary: detail`).
    pub warnings: Vec<String>,
}

impl Report {
    /// The module result: `changed` from the action, the diff when asked, the status's
    /// fields and `spec` as return values.
    pub fn into_result(self, check_mode: bool, diff: bool) -> ModuleResult {
        let mut values = match self.status {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let after = self
            .after
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()));
        values.insert("spec".into(), after.clone());
        let what = format!("{} {}", self.module, self.id);
        let (extra_before, extra_after) = self.diff_extra.unwrap_or((Value::Null, Value::Null));
        let before = with_extra(
            self.before.unwrap_or_else(|| Value::Object(Map::new())),
            extra_before,
        );
        let after_diff = with_extra(after.clone(), extra_after);
        ModuleResult {
            changed: self.action.changes(),
            failed: false,
            msg: format!("{what} {}", self.action.verb(check_mode)),
            diff: diff.then(|| Diff {
                before,
                after: after_diff,
                before_header: format!("{what} (stored on the nodes)"),
                after_header: format!(
                    "{what} ({})",
                    if check_mode {
                        "predicted"
                    } else {
                        "after the task"
                    }
                ),
            }),
            warnings: self.warnings,
            values,
            module_args: None,
        }
    }
}

/// `side` with `extra`'s keys added, unless `side` is empty (an absent object shows as
/// `{}`).
fn with_extra(side: Value, extra: Value) -> Value {
    match (side, extra) {
        (Value::Object(mut m), Value::Object(x)) if !m.is_empty() => {
            m.extend(x);
            Value::Object(m)
        }
        (side, _) => side,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decisions_follow_terraform_plans() {
        assert_eq!(decide::<i32>(None, None, false), Action::Nothing);
        assert_eq!(decide(None, Some(&1), false), Action::Create);
        assert_eq!(decide(Some(&1), Some(&1), false), Action::Nothing);
        assert_eq!(decide(Some(&1), Some(&1), true), Action::Update);
        assert_eq!(decide(Some(&1), Some(&2), false), Action::Update);
        assert_eq!(decide(Some(&1), None, false), Action::Delete);
    }

    fn report(action: Action) -> Report {
        Report {
            module: Module::StorageClass,
            id: "replicated".into(),
            action,
            before: None,
            after: Some(json!({"name": "replicated"})),
            status: json!({"id": "replicated"}),
            warnings: vec![],
            diff_extra: None,
        }
    }

    #[test]
    fn results_are_honest() {
        let r = report(Action::Create).into_result(true, true);
        assert!(r.changed);
        assert_eq!(r.msg, "storage_class replicated would be created");
        let d = r.diff.unwrap();
        assert_eq!(d.before, json!({}));
        assert_eq!(d.after, json!({"name": "replicated"}));
        assert_eq!(r.values["id"], json!("replicated"));
        assert_eq!(r.values["spec"], json!({"name": "replicated"}));
        let r = report(Action::Nothing).into_result(false, false);
        assert!(!r.changed && r.diff.is_none());
        assert_eq!(r.msg, "storage_class replicated unchanged");
    }

    #[test]
    fn diffs_can_show_observed_attributes_next_to_the_spec() {
        let r = Report {
            module: Module::Volume,
            id: "v1".into(),
            action: Action::Replace,
            before: Some(json!({"name": "v1", "storage_class": "a"})),
            after: Some(json!({"name": "v1", "storage_class": "b"})),
            status: json!({"id": "v1"}),
            warnings: vec![],
            diff_extra: Some((json!({"replicas": ["old"]}), json!({"replicas": ["new"]}))),
        };
        let r = r.into_result(true, true);
        assert_eq!(r.msg, "volume v1 would be replaced");
        let d = r.diff.unwrap();
        assert_eq!(d.before["replicas"], json!(["old"]));
        assert_eq!(d.after["replicas"], json!(["new"]));
        // `spec` is the stored object only.
        assert!(r.values["spec"].get("replicas").is_none());
        let gone = Report {
            module: Module::Volume,
            id: "v1".into(),
            action: Action::Delete,
            before: Some(json!({"name": "v1"})),
            after: None,
            status: json!({"id": "v1"}),
            warnings: vec![],
            diff_extra: Some((json!({"replicas": ["old"]}), json!({"replicas": []}))),
        };
        let d = gone.into_result(false, true).diff.unwrap();
        assert_eq!(d.after, json!({}));
        assert_eq!(d.before["replicas"], json!(["old"]));
    }
}
