//! Provider schemas: what attributes and blocks a provider, resource or data
//! source has, and how that becomes Terraform's `Schema` message and the cty
//! type its values are encoded with.

use std::collections::BTreeMap;

use crate::proto::tfplugin6 as pb;
use crate::types::Type;
use crate::value::Value;

/// Whether an attribute is set by the user, the provider, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeMode {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; null otherwise.
    Optional,
    /// Only the provider sets it.
    Computed,
    /// The configuration may set it; the provider decides it otherwise.
    OptionalComputed,
}

/// What an attribute holds.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeKind {
    /// A value of a cty type.
    Type(Type),
    /// Nested attributes (protocol 6 only): an object, or a collection of objects.
    Nested(NestedAttributes),
}

/// How nested attribute objects are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectNesting {
    /// One object.
    Single,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects.
    Map,
}

/// The objects of a nested attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedAttributes {
    /// How the objects are collected.
    pub nesting: ObjectNesting,
    /// The attributes of each object.
    pub attributes: Vec<Attribute>,
}

impl NestedAttributes {
    /// Nested attributes with the given nesting.
    pub fn new(nesting: ObjectNesting, attributes: Vec<Attribute>) -> NestedAttributes {
        NestedAttributes {
            nesting,
            attributes,
        }
    }

    /// The type of one object.
    pub fn object_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.value_type()))
                .collect(),
        )
    }

    /// The type of the whole attribute value.
    pub fn value_type(&self) -> Type {
        let obj = self.object_type();
        match self.nesting {
            ObjectNesting::Single => obj,
            ObjectNesting::List => Type::list(obj),
            ObjectNesting::Set => Type::set(obj),
            ObjectNesting::Map => Type::map(obj),
        }
    }

    fn to_proto(&self) -> pb::schema::Object {
        use pb::schema::object::NestingMode;
        let nesting = match self.nesting {
            ObjectNesting::Single => NestingMode::Single,
            ObjectNesting::List => NestingMode::List,
            ObjectNesting::Set => NestingMode::Set,
            ObjectNesting::Map => NestingMode::Map,
        };
        #[allow(deprecated)]
        pb::schema::Object {
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            nesting: nesting.into(),
            min_items: 0,
            max_items: 0,
        }
    }
}

/// One attribute of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute's name.
    pub name: String,
    /// Its type, or its nested attributes.
    pub kind: AttributeKind,
    /// Who sets it.
    pub mode: AttributeMode,
    /// Whether Terraform hides it in output.
    pub sensitive: bool,
    /// Markdown documentation.
    pub description: String,
    /// Whether Terraform warns when it is used.
    pub deprecated: bool,
    /// Whether the value is never stored in plan or state (Terraform >= 1.11).
    pub write_only: bool,
}

impl Attribute {
    /// An attribute of a cty type.
    pub fn new(name: impl Into<String>, ty: Type, mode: AttributeMode) -> Attribute {
        Attribute {
            name: name.into(),
            kind: AttributeKind::Type(ty),
            mode,
            sensitive: false,
            description: String::new(),
            deprecated: false,
            write_only: false,
        }
    }

    /// An attribute with nested attributes.
    pub fn nested(
        name: impl Into<String>,
        nested: NestedAttributes,
        mode: AttributeMode,
    ) -> Attribute {
        Attribute {
            kind: AttributeKind::Nested(nested),
            ..Attribute::new(name, Type::Dynamic, mode)
        }
    }

    /// A required attribute.
    pub fn required(name: impl Into<String>, ty: Type) -> Attribute {
        Attribute::new(name, ty, AttributeMode::Required)
    }

    /// An optional attribute.
    pub fn optional(name: impl Into<String>, ty: Type) -> Attribute {
        Attribute::new(name, ty, AttributeMode::Optional)
    }

    /// A computed (provider-set) attribute.
    pub fn computed(name: impl Into<String>, ty: Type) -> Attribute {
        Attribute::new(name, ty, AttributeMode::Computed)
    }

    /// An optional attribute the provider fills in when it is not set.
    pub fn optional_computed(name: impl Into<String>, ty: Type) -> Attribute {
        Attribute::new(name, ty, AttributeMode::OptionalComputed)
    }

    /// Sets the markdown description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Attribute {
        self.description = text.into();
        self
    }

    /// Marks the attribute sensitive.
    #[must_use]
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }

    /// Marks the attribute deprecated.
    #[must_use]
    pub fn deprecated(mut self) -> Attribute {
        self.deprecated = true;
        self
    }

    /// Marks the attribute write-only.
    #[must_use]
    pub fn write_only(mut self) -> Attribute {
        self.write_only = true;
        self
    }

    /// Whether the provider may set the value.
    pub fn is_computed(&self) -> bool {
        matches!(
            self.mode,
            AttributeMode::Computed | AttributeMode::OptionalComputed
        )
    }

    /// The type of the attribute's value.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttributeKind::Type(t) => t.clone(),
            AttributeKind::Nested(n) => n.value_type(),
        }
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested_type) = match &self.kind {
            AttributeKind::Type(t) => (t.to_json_bytes(), None),
            AttributeKind::Nested(n) => (Vec::new(), Some(n.to_proto())),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: ty,
            nested_type,
            description: self.description.clone(),
            required: self.mode == AttributeMode::Required,
            optional: matches!(
                self.mode,
                AttributeMode::Optional | AttributeMode::OptionalComputed
            ),
            computed: self.is_computed(),
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown.into(),
            deprecated: self.deprecated,
            write_only: self.write_only,
        }
    }
}

/// How the blocks of one nested block type are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; null when absent.
    Single,
    /// A list of blocks.
    List,
    /// A set of blocks.
    Set,
    /// Labelled blocks, collected in a map by label.
    Map,
    /// Exactly one block; all-null attributes when absent.
    Group,
}

/// A nested block type.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    /// The block type's name.
    pub type_name: String,
    /// The content of each block.
    pub block: Block,
    /// How the blocks are collected.
    pub nesting: BlockNesting,
    /// Minimum number of blocks (list and set nesting; 0 for no minimum).
    pub min_items: i64,
    /// Maximum number of blocks (list and set nesting; 0 for no maximum).
    pub max_items: i64,
}

impl NestedBlock {
    /// A nested block type without item limits.
    pub fn new(type_name: impl Into<String>, nesting: BlockNesting, block: Block) -> NestedBlock {
        NestedBlock {
            type_name: type_name.into(),
            block,
            nesting,
            min_items: 0,
            max_items: 0,
        }
    }

    /// Sets the item limits (0 means no limit).
    #[must_use]
    pub fn items(mut self, min: i64, max: i64) -> NestedBlock {
        self.min_items = min;
        self.max_items = max;
        self
    }

    /// The type of the value holding all blocks of this type.
    pub fn value_type(&self) -> Type {
        let obj = self.block.implied_type();
        match self.nesting {
            BlockNesting::Single | BlockNesting::Group => obj,
            // Like Terraform: blocks containing dynamic attributes may differ
            // in type from each other, so the collection is dynamic.
            BlockNesting::List if obj.has_dynamic() => Type::Dynamic,
            BlockNesting::List => Type::list(obj),
            BlockNesting::Set => Type::set(obj),
            BlockNesting::Map if obj.has_dynamic() => Type::Dynamic,
            BlockNesting::Map => Type::map(obj),
        }
    }

    fn to_proto(&self) -> pb::schema::NestedBlock {
        use pb::schema::nested_block::NestingMode;
        let nesting = match self.nesting {
            BlockNesting::Single => NestingMode::Single,
            BlockNesting::List => NestingMode::List,
            BlockNesting::Set => NestingMode::Set,
            BlockNesting::Map => NestingMode::Map,
            BlockNesting::Group => NestingMode::Group,
        };
        pb::schema::NestedBlock {
            type_name: self.type_name.clone(),
            block: Some(self.block.to_proto(0)),
            nesting: nesting.into(),
            min_items: self.min_items,
            max_items: self.max_items,
        }
    }
}

/// A block: attributes and nested block types.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    /// The block's attributes.
    pub attributes: Vec<Attribute>,
    /// The block's nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Markdown documentation.
    pub description: String,
    /// Whether Terraform warns when the block is used.
    pub deprecated: bool,
}

impl Block {
    /// An empty block.
    pub fn new() -> Block {
        Block::default()
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, attribute: Attribute) -> Block {
        self.attributes.push(attribute);
        self
    }

    /// Adds a nested block type.
    #[must_use]
    pub fn block(mut self, block: NestedBlock) -> Block {
        self.blocks.push(block);
        self
    }

    /// Sets the markdown description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Block {
        self.description = text.into();
        self
    }

    /// Looks up an attribute by name.
    pub fn get_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The object type of this block's values.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.type_name.clone(), b.value_type());
        }
        Type::Object(attrs)
    }

    /// Returns `value` with every computed attribute that is null replaced by
    /// an unknown, recursively through nested blocks and nested attributes.
    ///
    /// This is what a provider usually plans on create: Terraform's proposed
    /// new state has nulls where the configuration left computed attributes
    /// unset, and the provider promises to fill them in during apply. (On
    /// update Terraform already copies the prior values into the proposal.)
    pub fn unknown_computed_nulls(&self, value: &Value) -> Value {
        let Value::Object(entries) = value else {
            return value.clone();
        };
        let mut out = entries.clone();
        for attr in &self.attributes {
            let current = out.get(&attr.name).cloned().unwrap_or(Value::Null);
            let updated = if current.is_null() && attr.is_computed() {
                Value::unknown()
            } else if let AttributeKind::Nested(nested) = &attr.kind {
                let inner = Block {
                    attributes: nested.attributes.clone(),
                    ..Block::default()
                };
                map_objects(&current, |obj| inner.unknown_computed_nulls(obj))
            } else {
                current
            };
            out.insert(attr.name.clone(), updated);
        }
        for nested in &self.blocks {
            let current = out.get(&nested.type_name).cloned().unwrap_or(Value::Null);
            out.insert(
                nested.type_name.clone(),
                map_objects(&current, |obj| nested.block.unknown_computed_nulls(obj)),
            );
        }
        Value::Object(out)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self.blocks.iter().map(NestedBlock::to_proto).collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown.into(),
            deprecated: self.deprecated,
        }
    }
}

/// Applies `f` to an object, or to each object of a collection of objects.
fn map_objects(value: &Value, f: impl Fn(&Value) -> Value) -> Value {
    match value {
        Value::Object(_) => f(value),
        Value::List(items) => Value::List(items.iter().map(&f).collect()),
        Value::Set(items) => Value::Set(items.iter().map(&f).collect()),
        Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (k.clone(), f(v))).collect()),
        other => other.clone(),
    }
}

/// The schema of a provider configuration, resource type or data source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    /// The schema version, recorded in state; bump it when stored state
    /// needs upgrading (see `UpgradeResourceState`).
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A schema of the given version.
    pub fn new(version: i64, block: Block) -> Schema {
        Schema { version, block }
    }

    /// The type values of this schema are encoded with.
    pub fn value_type(&self) -> Type {
        self.block.implied_type()
    }

    /// Converts to the protocol message.
    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto(self.version)),
        }
    }
}

/// Everything a provider declares: its own configuration, its resource
/// types and its data sources (keyed by full type name, e.g. `v2engine_volume`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderSchema {
    /// The `provider` block.
    pub provider: Schema,
    /// Managed resource types.
    pub resources: BTreeMap<String, Schema>,
    /// Data sources.
    pub data_sources: BTreeMap<String, Schema>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Block {
        Block::new()
            .attribute(Attribute::required("name", Type::String).description("The **name**."))
            .attribute(Attribute::computed("id", Type::String))
            .attribute(Attribute::optional("secret", Type::String).sensitive())
            .attribute(Attribute::nested(
                "replicas",
                NestedAttributes::new(
                    ObjectNesting::List,
                    vec![
                        Attribute::required("node", Type::String),
                        Attribute::computed("state", Type::String),
                    ],
                ),
                AttributeMode::Optional,
            ))
            .block(
                NestedBlock::new(
                    "disk",
                    BlockNesting::Set,
                    Block::new()
                        .attribute(Attribute::required("path", Type::String))
                        .attribute(Attribute::optional_computed("size", Type::Number)),
                )
                .items(1, 4),
            )
            .block(NestedBlock::new(
                "timeouts",
                BlockNesting::Single,
                Block::new().attribute(Attribute::optional("create", Type::String)),
            ))
    }

    #[test]
    fn implied_type_covers_attributes_and_blocks() {
        let expected = Type::object([
            ("name", Type::String),
            ("id", Type::String),
            ("secret", Type::String),
            (
                "replicas",
                Type::list(Type::object([
                    ("node", Type::String),
                    ("state", Type::String),
                ])),
            ),
            (
                "disk",
                Type::set(Type::object([
                    ("path", Type::String),
                    ("size", Type::Number),
                ])),
            ),
            ("timeouts", Type::object([("create", Type::String)])),
        ]);
        assert_eq!(sample().implied_type(), expected);
    }

    #[test]
    fn list_blocks_with_dynamic_content_are_dynamic() {
        let b = NestedBlock::new(
            "x",
            BlockNesting::List,
            Block::new().attribute(Attribute::optional("v", Type::Dynamic)),
        );
        assert_eq!(b.value_type(), Type::Dynamic);
    }

    #[test]
    fn proto_conversion_sets_flags() {
        let proto = Schema::new(3, sample()).to_proto();
        assert_eq!(proto.version, 3);
        let block = proto.block.unwrap();
        assert_eq!(block.version, 3);
        let name = &block.attributes[0];
        assert_eq!(name.name, "name");
        assert_eq!(name.r#type, br#""string""#.to_vec());
        assert!(name.required && !name.optional && !name.computed);
        assert_eq!(name.description_kind, i32::from(pb::StringKind::Markdown));
        let id = &block.attributes[1];
        assert!(id.computed && !id.optional && !id.required);
        assert!(block.attributes[2].sensitive);
        let replicas = &block.attributes[3];
        assert!(replicas.r#type.is_empty());
        let nested = replicas.nested_type.as_ref().unwrap();
        assert_eq!(
            nested.nesting,
            i32::from(pb::schema::object::NestingMode::List)
        );
        assert_eq!(nested.attributes.len(), 2);
        let disk = &block.block_types[0];
        assert_eq!(
            disk.nesting,
            i32::from(pb::schema::nested_block::NestingMode::Set)
        );
        assert_eq!((disk.min_items, disk.max_items), (1, 4));
        let size = &disk.block.as_ref().unwrap().attributes[1];
        assert!(size.optional && size.computed);
    }

    #[test]
    fn unknown_computed_nulls_recurses() {
        let block = sample();
        let proposed = Value::object([
            ("name", Value::from("a")),
            ("id", Value::Null),
            ("secret", Value::Null),
            (
                "replicas",
                Value::List(vec![Value::object([
                    ("node", Value::from("n1")),
                    ("state", Value::Null),
                ])]),
            ),
            (
                "disk",
                Value::Set(vec![Value::object([
                    ("path", Value::from("/x")),
                    ("size", Value::Null),
                ])]),
            ),
            ("timeouts", Value::Null),
        ]);
        let planned = block.unknown_computed_nulls(&proposed);
        assert!(planned.get_attr("id").unwrap().is_unknown());
        assert!(planned.get_attr("secret").unwrap().is_null());
        assert_eq!(planned.get_attr("name"), Some(&Value::from("a")));
        let replica = &planned.get_attr("replicas").unwrap().as_elements().unwrap()[0];
        assert!(replica.get_attr("state").unwrap().is_unknown());
        let disk = &planned.get_attr("disk").unwrap().as_elements().unwrap()[0];
        assert!(disk.get_attr("size").unwrap().is_unknown());
        assert!(planned.get_attr("timeouts").unwrap().is_null());
        // Known computed values are kept.
        let mut with_id = proposed.clone();
        with_id.set_attr("id", Value::from("x"));
        assert_eq!(
            block.unknown_computed_nulls(&with_id).get_attr("id"),
            Some(&Value::from("x"))
        );
    }
}
