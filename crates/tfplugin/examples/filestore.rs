//! `terraform-provider-filestore`: a tiny provider built on `tfplugin`, used
//! by the crate's Terraform acceptance test and as an example of the API.
//!
//! - provider config: `directory` (required, absolute path) where items live;
//! - resource `filestore_item`: `name` (required, forces replacement),
//!   `content` (optional), `labels` (optional map), `annotation` blocks
//!   (list nesting: `key`, optional `value`), `id` (computed, decided at
//!   create), `size` (computed: bytes of content) and `stats` (a computed
//!   nested attribute: `bytes`, `lines`); one JSON file per item;
//! - data source `filestore_item`: looks an item up by `name`.
//!
//! Planning an item without content yields a warning; an invalid name is a
//! validation error pointing at `name`. Import takes the item's name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tfplugin::provider::{
    ApplyRequest, ApplyResponse, ConfigureRequest, ImportRequest, ImportResponse, ImportedResource,
    PlanRequest, PlanResponse, ReadDataRequest, ReadDataResponse, ReadRequest, ReadResponse,
    ValidateRequest,
};
use tfplugin::{
    Attribute, AttributeMode, AttributePath, Block, BlockNesting, Diagnostic, Diagnostics,
    NestedAttributes, NestedBlock, ObjectNesting, Provider, ProviderSchema, Schema, Type, Value,
};

const ITEM: &str = "filestore_item";

fn main() -> ExitCode {
    tfplugin::serve(FileStore::default())
}

/// The provider: the store directory, set by `configure`.
#[derive(Default)]
struct FileStore {
    directory: RwLock<Option<PathBuf>>,
}

/// What an item file holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredItem {
    id: String,
    content: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Vec<StoredAnnotation>,
}

/// One `annotation` block.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAnnotation {
    key: String,
    value: Option<String>,
}

fn item_schema() -> Schema {
    Schema::new(
        0,
        Block::new()
            .description("A named piece of text stored as a file.")
            .attribute(Attribute::required("name", Type::String).description(
                "Item name: lowercase letters, digits, `-` and `_`. Changing it replaces the item.",
            ))
            .attribute(Attribute::optional("content", Type::String).description("The text."))
            .attribute(
                Attribute::computed("id", Type::String)
                    .description("Identifier decided at creation."),
            )
            .attribute(
                Attribute::computed("size", Type::Number)
                    .description("Length of `content` in bytes."),
            )
            .attribute(
                Attribute::optional("labels", Type::map(Type::String))
                    .description("Free-form labels."),
            )
            .attribute(Attribute::nested(
                "stats",
                NestedAttributes::new(
                    ObjectNesting::Single,
                    vec![
                        Attribute::computed("bytes", Type::Number),
                        Attribute::computed("lines", Type::Number),
                    ],
                ),
                AttributeMode::Computed,
            ))
            .block(NestedBlock::new(
                "annotation",
                BlockNesting::List,
                Block::new()
                    .attribute(Attribute::required("key", Type::String))
                    .attribute(Attribute::optional("value", Type::String)),
            )),
    )
}

fn data_schema() -> Schema {
    Schema::new(
        0,
        Block::new()
            .attribute(Attribute::required("name", Type::String))
            .attribute(Attribute::computed("content", Type::String))
            .attribute(Attribute::computed("id", Type::String))
            .attribute(Attribute::computed("size", Type::Number))
            .attribute(Attribute::computed("labels", Type::map(Type::String))),
    )
}

fn validate_name(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    // Unknown or null names are checked later (null cannot happen: required).
    if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            diags.attribute_error(
                AttributePath::attribute("name"),
                "Invalid item name",
                format!("{name:?} is not a valid item name: use 1-64 lowercase letters, digits, '-' or '_'."),
            );
        }
    }
    diags
}

/// `stats` for a content value: unknown while the content is.
fn stats_of(content: &Value) -> Value {
    let text = match content {
        Value::Null => "",
        Value::String(s) => s.as_str(),
        _ => return Value::unknown(),
    };
    Value::object([
        ("bytes", Value::from(text.len() as u64)),
        ("lines", Value::from(text.lines().count() as u64)),
    ])
}

fn size_of(content: &Value) -> Value {
    match content {
        Value::Null => Value::from(0_u64),
        Value::String(s) => Value::from(s.len() as u64),
        _ => Value::unknown(),
    }
}

impl FileStore {
    fn dir(&self) -> Result<PathBuf, Diagnostics> {
        self.directory
            .read()
            .ok()
            .and_then(|d| d.clone())
            .ok_or_else(|| {
                Diagnostic::error("Provider not configured", "the store directory is not set")
                    .into()
            })
    }

    fn item_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.json"))
    }

    fn load(&self, name: &str) -> Result<Option<StoredItem>, Diagnostics> {
        let path = Self::item_path(&self.dir()?, name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Diagnostic::error(
                    "Corrupt item",
                    format!("{} is not an item file: {e}", path.display()),
                )
                .into()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Diagnostic::error(
                "Cannot read item",
                format!("{}: {e}", path.display()),
            )
            .into()),
        }
    }

    fn store(&self, name: &str, item: &StoredItem) -> Result<(), Diagnostics> {
        let path = Self::item_path(&self.dir()?, name);
        let bytes = serde_json::to_vec(item).map_err(|e| {
            Diagnostics::from(Diagnostic::error("Cannot encode item", e.to_string()))
        })?;
        std::fs::write(&path, bytes).map_err(|e| {
            Diagnostic::error("Cannot write item", format!("{}: {e}", path.display())).into()
        })
    }

    /// The resource state of a stored item.
    fn state_of(name: &str, item: &StoredItem) -> Value {
        let content = Value::from(item.content.clone());
        let labels = item.labels.as_ref().map_or(Value::Null, |labels| {
            Value::Map(
                labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            )
        });
        let annotations = item
            .annotations
            .iter()
            .map(|a| {
                Value::object([
                    ("key", Value::from(a.key.as_str())),
                    ("value", Value::from(a.value.clone())),
                ])
            })
            .collect();
        Value::object([
            ("name", Value::from(name)),
            ("id", Value::from(item.id.as_str())),
            ("size", size_of(&content)),
            ("stats", stats_of(&content)),
            ("content", content),
            ("labels", labels),
            ("annotation", Value::List(annotations)),
        ])
    }

    /// The data source state of a stored item.
    fn data_of(name: &str, item: &StoredItem) -> Value {
        let state = Self::state_of(name, item);
        let pick = |attr| (attr, state.get_attr(attr).cloned().unwrap_or(Value::Null));
        Value::object(["name", "id", "size", "content", "labels"].map(pick))
    }

    /// The stored form of a planned state.
    fn item_of(planned: &Value, id: String) -> StoredItem {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        StoredItem {
            id,
            content: planned.get_attr("content").and_then(text),
            labels: planned
                .get_attr("labels")
                .and_then(Value::as_entries)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                }),
            annotations: planned
                .get_attr("annotation")
                .and_then(Value::as_elements)
                .unwrap_or_default()
                .iter()
                .filter_map(|a| {
                    Some(StoredAnnotation {
                        key: a.get_attr("key").and_then(text)?,
                        value: a.get_attr("value").and_then(text),
                    })
                })
                .collect(),
        }
    }
}

fn name_of(value: &Value) -> Result<String, Diagnostics> {
    value
        .get_attr("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Diagnostic::error("Missing name", "the item has no known name").into())
}

impl Provider for FileStore {
    fn schema(&self) -> ProviderSchema {
        ProviderSchema {
            provider: Schema::new(
                0,
                Block::new().attribute(
                    Attribute::required("directory", Type::String)
                        .description("Absolute path of the store."),
                ),
            ),
            resources: [(ITEM.to_owned(), item_schema())].into(),
            data_sources: [(ITEM.to_owned(), data_schema())].into(),
        }
    }

    async fn validate_provider_config(&self, config: Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        if let Some(dir) = config.get_attr("directory").and_then(Value::as_str)
            && !Path::new(dir).is_absolute()
        {
            diags.attribute_error(
                AttributePath::attribute("directory"),
                "Relative store directory",
                format!("{dir:?} must be an absolute path"),
            );
        }
        diags
    }

    async fn configure(&self, request: ConfigureRequest) -> Diagnostics {
        let mut diags = Diagnostics::new();
        match request.config.get_attr("directory").and_then(Value::as_str) {
            Some(dir) => {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    diags.attribute_error(
                        AttributePath::attribute("directory"),
                        "Cannot create the store directory",
                        format!("{dir}: {e}"),
                    );
                } else if let Ok(mut slot) = self.directory.write() {
                    *slot = Some(PathBuf::from(dir));
                }
            }
            None => diags.error(
                "Store directory unknown",
                "`directory` must be known when configuring",
            ),
        }
        diags
    }

    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics {
        validate_name(&request.config)
    }

    async fn validate_data_source_config(&self, request: ValidateRequest) -> Diagnostics {
        validate_name(&request.config)
    }

    async fn read_resource(&self, request: ReadRequest) -> Result<ReadResponse, Diagnostics> {
        let name = name_of(&request.current_state)?;
        let new_state = match self.load(&name)? {
            Some(item) => Self::state_of(&name, &item),
            None => Value::Null,
        };
        Ok(ReadResponse {
            new_state,
            private: request.private,
            diagnostics: Diagnostics::new(),
        })
    }

    async fn plan_resource_change(
        &self,
        request: PlanRequest,
    ) -> Result<PlanResponse, Diagnostics> {
        if request.is_destroy() {
            return Ok(PlanResponse::new(Value::Null));
        }
        let mut planned = request.proposed_new_state.clone();
        let content = planned.get_attr("content").cloned().unwrap_or(Value::Null);
        planned.set_attr("size", size_of(&content));
        planned.set_attr("stats", stats_of(&content));
        let mut response = PlanResponse::new(planned);
        if request.is_create() {
            response.planned_state.set_attr("id", Value::unknown());
        }
        response.requires_replace = request.changed_paths(&[AttributePath::attribute("name")]);
        // Warn when an item is about to become empty (not on every plan).
        let was_empty = request
            .prior_state
            .get_attr("content")
            .is_none_or(Value::is_null);
        if content.is_null() && (request.is_create() || !was_empty) {
            response.diagnostics.push(
                Diagnostic::warning("Item has no content", "the item will be stored empty")
                    .with_attribute(AttributePath::attribute("content")),
            );
        }
        Ok(response)
    }

    async fn apply_resource_change(
        &self,
        request: ApplyRequest,
    ) -> Result<ApplyResponse, Diagnostics> {
        if request.is_destroy() {
            let name = name_of(&request.prior_state)?;
            let path = Self::item_path(&self.dir()?, &name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Diagnostic::error(
                        "Cannot delete item",
                        format!("{}: {e}", path.display()),
                    )
                    .into());
                }
            }
            return Ok(ApplyResponse {
                new_state: Value::Null,
                private: Vec::new(),
                diagnostics: Diagnostics::new(),
            });
        }
        let name = name_of(&request.planned_state)?;
        let id = match request.prior_state.get_attr("id").and_then(Value::as_str) {
            Some(id) if !request.is_create() => id.to_owned(),
            _ => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                format!("{name}-{nanos:x}")
            }
        };
        let item = Self::item_of(&request.planned_state, id);
        self.store(&name, &item)?;
        Ok(ApplyResponse {
            new_state: Self::state_of(&name, &item),
            private: request.planned_private,
            diagnostics: Diagnostics::new(),
        })
    }

    async fn import_resource_state(
        &self,
        request: ImportRequest,
    ) -> Result<ImportResponse, Diagnostics> {
        let item = self.load(&request.id)?.ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Cannot import non-existent item",
                format!("there is no item named {:?} in the store", request.id),
            ))
        })?;
        Ok(ImportResponse {
            imported: vec![ImportedResource {
                type_name: request.type_name,
                state: Self::state_of(&request.id, &item),
                private: Vec::new(),
            }],
            diagnostics: Diagnostics::new(),
        })
    }

    async fn read_data_source(
        &self,
        request: ReadDataRequest,
    ) -> Result<ReadDataResponse, Diagnostics> {
        let name = name_of(&request.config)?;
        let item = self.load(&name)?.ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::error(
                    "Item not found",
                    format!("there is no item named {name:?} in the store"),
                )
                .with_attribute(AttributePath::attribute("name")),
            )
        })?;
        Ok(ReadDataResponse {
            state: Self::data_of(&name, &item),
            diagnostics: Diagnostics::new(),
        })
    }
}
