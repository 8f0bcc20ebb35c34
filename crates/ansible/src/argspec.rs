//! Argument specs of the modules, generated from the model's resource schemas.
//!
//! Every user-settable attribute of a resource (`model::schema::resources()`) becomes an
//! option with the same name, type, default and allowed values, so a playbook and a
//! Terraform configuration say the same things in the same words. Computed attributes
//! become return values. Every module also has `state` and the connection options that
//! mirror the Terraform provider block (`nodes`, `ssh_private_key_file`,
//! `ssh_known_hosts_file`); `node_v2` and `block_disk` also have `executor_socket`.

use model::schema::{AttrType, Attribute, Mode, ResourceSchema, SchemaError};
use serde_json::Value;

use crate::common_options;
use crate::module::Module;

/// Why an argument spec could not be generated (a model that does not derive).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgSpecError {
    /// The model's schemas did not derive.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The model has no resource of this module's name.
    #[error("the model has no resource {0}")]
    MissingResource(String),
    /// A resource attribute clashes with a module-level option.
    #[error("resource {resource}: attribute {attribute} clashes with a module option")]
    Clash {
        /// Resource name.
        resource: String,
        /// Attribute name.
        attribute: String,
    },
}

/// An Ansible option or return type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    /// `str`.
    Str,
    /// `int`.
    Int,
    /// `bool`.
    Bool,
    /// `path`: a file on the machine the module runs on (`~` is expanded).
    Path,
    /// `list` (see the element type).
    List,
    /// `dict`.
    Dict,
}

impl OptType {
    /// The name Ansible uses (`str`, `int`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Str => "str",
            Self::Int => "int",
            Self::Bool => "bool",
            Self::Path => "path",
            Self::List => "list",
            Self::Dict => "dict",
        }
    }
}

/// Where an option comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptSource {
    /// A resource attribute: part of the object written to the nodes.
    Resource,
    /// `state`.
    State,
    /// How the task may act on the object (`allow_replace`); not part of the object.
    Behaviour,
    /// How the executors are reached (not part of the object).
    Connection,
}

/// One module option.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSpec {
    /// Name (the Terraform attribute's name for resource options).
    pub name: String,
    /// Type.
    pub ty: OptType,
    /// Element type of a list.
    pub elements: Option<OptType>,
    /// Must be given.
    pub required: bool,
    /// Value when not given.
    pub default: Option<Value>,
    /// Allowed values.
    pub choices: Vec<String>,
    /// Description paragraphs.
    pub description: Vec<String>,
    /// Where the option comes from.
    pub source: OptSource,
    /// Changing it replaces the object (Terraform's force-new).
    pub force_new: bool,
    /// Options of a dict with fixed keys.
    pub suboptions: Vec<OptionSpec>,
}

/// One return value.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnSpec {
    /// Key in the result.
    pub name: String,
    /// Type.
    pub ty: OptType,
    /// Element type of a list.
    pub elements: Option<OptType>,
    /// Description paragraphs.
    pub description: Vec<String>,
    /// When it is returned.
    pub returned: String,
    /// Keys of a dict (or of each element of a list of dicts, or of each value of a map).
    pub contains: Vec<ReturnSpec>,
}

/// Ansible's `required_if`: when `option` equals `value`, `requires` must be given.
#[derive(Debug, Clone, PartialEq)]
pub struct RequiredIf {
    /// The option whose value decides.
    pub option: String,
    /// The value that makes the others required.
    pub value: String,
    /// The options then required.
    pub requires: Vec<String>,
}

/// A module's full spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSpec {
    /// The module.
    pub module: Module,
    /// The model resource it manages.
    pub resource: ResourceSchema,
    /// Options: resource attributes, then `state`, then behaviour flags, then connection
    /// options.
    pub options: Vec<OptionSpec>,
    /// Options required only with some value of another (`state: present`).
    pub required_if: Vec<RequiredIf>,
    /// Return values: the resource's computed attributes, then `spec`.
    pub returns: Vec<ReturnSpec>,
}

impl ModuleSpec {
    /// The option called `name`.
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }

    /// Names of the resource options (the attributes written to the nodes).
    pub fn resource_options(&self) -> impl Iterator<Item = &OptionSpec> {
        self.options
            .iter()
            .filter(|o| o.source == OptSource::Resource)
    }
}

/// The specs of all five modules.
pub fn all() -> Result<Vec<ModuleSpec>, ArgSpecError> {
    let resources = model::schema::resources()?;
    Module::ALL
        .iter()
        .map(|m| {
            let r = resources
                .iter()
                .find(|r| r.name == m.name())
                .ok_or_else(|| ArgSpecError::MissingResource(m.name().to_string()))?;
            from_resource(*m, r)
        })
        .collect()
}

/// The spec of one module.
pub fn module_spec(m: Module) -> Result<ModuleSpec, ArgSpecError> {
    let resources = model::schema::resources()?;
    let r = resources
        .iter()
        .find(|r| r.name == m.name())
        .ok_or_else(|| ArgSpecError::MissingResource(m.name().to_string()))?;
    from_resource(m, r)
}

/// Builds a module's spec from its resource schema.
pub fn from_resource(m: Module, r: &ResourceSchema) -> Result<ModuleSpec, ArgSpecError> {
    let mut options: Vec<OptionSpec> = r
        .attributes
        .iter()
        .filter(|a| a.mode != Mode::Computed)
        .map(|a| {
            resource_option(
                a,
                m.identity().contains(&a.name.as_str()),
                force_new_note(m),
            )
        })
        .collect();
    let mut required_if = Vec::new();
    if m.absent_by_identity() {
        // `state: absent` names the object only: its other required options are required
        // only to create or update it.
        let mut requires = Vec::new();
        for o in options
            .iter_mut()
            .filter(|o| o.required && !m.identity().contains(&o.name.as_str()))
        {
            o.required = false;
            o.description
                .push("Required with O(state=present); not used with O(state=absent).".into());
            requires.push(o.name.clone());
        }
        if !requires.is_empty() {
            required_if.push(RequiredIf {
                option: "state".into(),
                value: "present".into(),
                requires,
            });
        }
    }
    let extra = std::iter::once(common_options::state(m))
        .chain(common_options::behaviour(m))
        .chain(common_options::connection(m));
    for o in extra {
        if let Some(a) = options.iter().find(|a| a.name == o.name) {
            return Err(ArgSpecError::Clash {
                resource: r.name.clone(),
                attribute: a.name.clone(),
            });
        }
        options.push(o);
    }
    let mut returns: Vec<ReturnSpec> = r
        .attributes
        .iter()
        .filter(|a| a.mode == Mode::Computed)
        .map(|a| return_spec(a, "success"))
        .collect();
    returns.push(ReturnSpec {
        name: "spec".into(),
        ty: OptType::Dict,
        elements: None,
        description: vec![
            "The object as stored on the nodes after the task (predicted in check mode), \
             with every default filled in: the resource options above, by name. \
             Empty when C(state=absent)."
                .into(),
        ],
        returned: "success".into(),
        contains: Vec::new(),
    });
    Ok(ModuleSpec {
        module: m,
        resource: r.clone(),
        options,
        required_if,
        returns,
    })
}

/// Ansible type (and element type) of a model type.
pub fn opt_type(t: &AttrType) -> (OptType, Option<OptType>) {
    match t {
        AttrType::String => (OptType::Str, None),
        AttrType::Int => (OptType::Int, None),
        AttrType::Bool => (OptType::Bool, None),
        AttrType::List { element } => (OptType::List, Some(opt_type(element).0)),
        AttrType::Map { .. } | AttrType::Object { .. } => (OptType::Dict, None),
    }
}

/// Terraform's words in the model's descriptions, and what a playbook user calls them.
const VOCABULARY: &[(&str, &str)] = &[
    ("known at plan time", "known in check mode"),
    ("shown in the plan", "shown in check mode"),
    ("The plan shows", "Check mode shows"),
    ("the plan shows", "check mode shows"),
    (
        "Unknown in a plan until apply builds it.",
        "`planned` in check mode until the task builds it.",
    ),
    ("the next apply", "the next run"),
    ("the provider's `nodes`", "the module's `nodes`"),
    ("Also the resource id.", "Also the object's id."),
    ("also the resource id.", "also the object's id."),
    ("Resource id:", "Object id:"),
];

/// A model description for Ansible: Terraform's vocabulary replaced, Markdown code spans
/// as `C()` markup.
pub fn describe(s: &str) -> String {
    let mut out = s.to_string();
    for (terraform, ansible) in VOCABULARY {
        out = out.replace(terraform, ansible);
    }
    ansible_markup(&out)
}

/// Turns Markdown code spans into Ansible's `C()` markup.
pub fn ansible_markup(s: &str) -> String {
    let mut out = String::new();
    let mut parts = s.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, p) in rest.iter().enumerate() {
        // An odd number of backticks leaves the last one unmatched: keep it literal.
        if i % 2 == 0 && i + 1 < rest.len() {
            out.push_str(&format!("C({p})"));
        } else if i % 2 == 0 {
            out.push('`');
            out.push_str(p);
        } else {
            out.push_str(p);
        }
    }
    out
}

/// What a change of a force-new attribute (other than the identity) does in a playbook.
fn force_new_note(m: Module) -> &'static str {
    match m {
        Module::Volume => {
            "Immutable: a different class replaces the volume (deletes it with its data, \
             then creates it anew on the new class), which is refused, changing nothing, \
             unless O(allow_replace=true)."
        }
        _ => {
            "Immutable, as Terraform's force-new: a change replaces the object, which is \
             refused while other objects use it."
        }
    }
}

fn resource_option(a: &Attribute, identity: bool, force_new: &str) -> OptionSpec {
    let (ty, elements) = opt_type(&a.ty);
    let mut description = vec![describe(&a.description)];
    if a.mode == Mode::Optional {
        description.push("Unset (null) when omitted.".into());
    }
    if identity {
        description.push(
            "Identifies the object: another value is another object. (Terraform replaces the \
             resource when it changes; a playbook leaves the old object until a task removes \
             it with O(state=absent).)"
                .into(),
        );
    } else if a.force_new {
        description.push(force_new.into());
    }
    let suboptions = match &a.ty {
        AttrType::Object { attributes } => attributes
            .iter()
            .map(|x| resource_option(x, false, force_new))
            .collect(),
        _ => Vec::new(),
    };
    OptionSpec {
        name: a.name.clone(),
        ty,
        elements,
        required: a.mode == Mode::Required,
        default: a.default.clone(),
        choices: a.allowed.clone(),
        description,
        source: OptSource::Resource,
        force_new: a.force_new,
        suboptions,
    }
}

fn return_spec(a: &Attribute, returned: &str) -> ReturnSpec {
    let (ty, elements) = opt_type(&a.ty);
    let mut description = vec![describe(&a.description)];
    let contains = match &a.ty {
        AttrType::Object { attributes } => attributes
            .iter()
            .map(|x| return_spec(x, "always"))
            .collect(),
        AttrType::List { element } | AttrType::Map { element } => match element.as_ref() {
            AttrType::Object { attributes } => {
                if matches!(a.ty, AttrType::Map { .. }) {
                    description.push("Keyed by node name; each value has these keys.".into());
                }
                attributes
                    .iter()
                    .map(|x| return_spec(x, "always"))
                    .collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    ReturnSpec {
        name: a.name.clone(),
        ty,
        elements: match (&a.ty, elements) {
            (AttrType::List { element }, Some(e)) => match element.as_ref() {
                AttrType::Object { .. } => Some(OptType::Dict),
                _ => Some(e),
            },
            _ => None,
        },
        description,
        returned: returned.to_string(),
        contains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(m: Module) -> ModuleSpec {
        module_spec(m).unwrap()
    }

    #[test]
    fn options_mirror_terraform_attributes() {
        for m in Module::ALL {
            let s = spec(m);
            let attrs: Vec<&str> = s
                .resource
                .attributes
                .iter()
                .filter(|a| a.mode != Mode::Computed)
                .map(|a| a.name.as_str())
                .collect();
            let opts: Vec<&str> = s.resource_options().map(|o| o.name.as_str()).collect();
            assert_eq!(attrs, opts, "{m}");
        }
    }

    #[test]
    fn defaults_choices_and_required_follow_the_model() {
        let s = spec(Module::StorageClass);
        let r = s.option("number_of_replicas").unwrap();
        assert_eq!((r.ty, r.required), (OptType::Int, false));
        assert_eq!(r.default, Some(Value::from(3)));
        assert!(s.option("name").unwrap().required);
        assert_eq!(
            s.option("data_locality").unwrap().choices,
            ["disabled", "best-effort", "strict-local"]
        );
        let d = spec(Module::DataEngineSetting);
        let k = d.option("kernel_modules").unwrap();
        assert_eq!((k.ty, k.elements), (OptType::List, Some(OptType::Str)));
        assert_eq!(
            k.default,
            Some(serde_json::json!([
                "vfio_pci",
                "uio_pci_generic",
                "nvme_tcp"
            ]))
        );
        let n = spec(Module::NodeV2);
        let e = n.option("enabled").unwrap();
        assert_eq!(
            (e.ty, e.default.clone(), e.required),
            (OptType::Bool, None, false)
        );
    }

    #[test]
    fn connection_options_per_scope() {
        let d = spec(Module::DataEngineSetting);
        assert!(d.option("nodes").unwrap().required);
        assert!(d.option("executor_socket").is_none());
        let n = spec(Module::NodeV2);
        assert!(!n.option("nodes").unwrap().required);
        assert_eq!(n.option("executor_socket").unwrap().ty, OptType::Path);
        for m in Module::ALL {
            let s = spec(m);
            let st = s.option("state").unwrap();
            assert_eq!(st.choices, ["present", "absent"]);
            assert!(s.option("ssh_known_hosts_file").is_some());
        }
    }

    #[test]
    fn computed_attributes_are_returned() {
        let n = spec(Module::NodeV2);
        let names: Vec<&str> = n.returns.iter().map(|r| r.name.as_str()).collect();
        for want in [
            "reboot_required",
            "reboot_reasons",
            "engine_state",
            "id",
            "spec",
        ] {
            assert!(names.contains(&want), "{want} not in {names:?}");
        }
        let v = spec(Module::Volume);
        let r = v.returns.iter().find(|r| r.name == "replicas").unwrap();
        assert_eq!((r.ty, r.elements), (OptType::List, Some(OptType::Dict)));
        assert_eq!(r.contains.len(), 3);
        let d = spec(Module::DataEngineSetting);
        let nodes = d.returns.iter().find(|r| r.name == "nodes").unwrap();
        assert!(nodes.contains.iter().any(|c| c.name == "reboot_required"));
    }

    #[test]
    fn descriptions_speak_ansible() {
        for m in Module::ALL {
            let s = spec(m);
            let texts = s
                .options
                .iter()
                .flat_map(|o| o.description.iter())
                .chain(s.returns.iter().flat_map(|r| r.description.iter()));
            for t in texts {
                for word in [
                    "plan time",
                    "provider's `nodes`",
                    "resource id",
                    "`",
                    "in a plan",
                    "next apply",
                ] {
                    assert!(!t.contains(word), "{m}: {t:?} says {word:?}");
                }
            }
        }
        let n = spec(Module::NodeV2);
        assert!(n.option("node").unwrap().description[1].starts_with("Identifies the object"));
        let c = spec(Module::StorageClass);
        let r = c.option("number_of_replicas").unwrap();
        assert!(r.description[1].starts_with("Immutable"));
    }

    #[test]
    fn markdown_code_becomes_ansible_markup() {
        assert_eq!(ansible_markup("a `b` c `d`"), "a C(b) c C(d)");
        assert_eq!(ansible_markup("odd `one"), "odd `one");
        assert_eq!(ansible_markup("plain"), "plain");
    }
}
