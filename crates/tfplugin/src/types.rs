//! cty types, as they appear in schemas and on the wire.
//!
//! Terraform describes a type as compact JSON: a string for primitives
//! (`"string"`, `"number"`, `"bool"`, `"dynamic"`) or a two-element array
//! giving a kind and its argument (`["list","string"]`,
//! `["object",{"a":"number"}]`, `["tuple",["string","bool"]]`). Object types
//! may carry a third element listing optional attributes; it only matters for
//! type conversion inside Terraform and is accepted and ignored here.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Errors from parsing a type's JSON form.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    /// The bytes are not JSON at all.
    #[error("type description is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON does not describe a type.
    #[error("invalid type description {found}: {reason}")]
    Invalid {
        /// The offending JSON fragment.
        found: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A cty type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// A Unicode string.
    String,
    /// An arbitrary-precision number.
    Number,
    /// A boolean.
    Bool,
    /// An ordered sequence of elements of one type.
    List(Box<Type>),
    /// An unordered collection of distinct elements of one type.
    Set(Box<Type>),
    /// String-keyed elements of one type.
    Map(Box<Type>),
    /// Named attributes, each with its own type.
    Object(BTreeMap<String, Type>),
    /// A fixed sequence of elements, each with its own type.
    Tuple(Vec<Type>),
    /// The "any type" placeholder: the concrete type travels with the value.
    Dynamic,
}

impl Type {
    /// `list(elem)`.
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    /// `set(elem)`.
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }

    /// `map(elem)`.
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }

    /// `object({...})` from `(name, type)` pairs.
    pub fn object<I, S>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// Whether this type is, or contains, [`Type::Dynamic`].
    pub fn has_dynamic(&self) -> bool {
        match self {
            Type::Dynamic => true,
            Type::String | Type::Number | Type::Bool => false,
            Type::List(e) | Type::Set(e) | Type::Map(e) => e.has_dynamic(),
            Type::Object(attrs) => attrs.values().any(Type::has_dynamic),
            Type::Tuple(elems) => elems.iter().any(Type::has_dynamic),
        }
    }

    /// The compact JSON form Terraform uses (`"string"`, `["list","number"]`, ...).
    pub fn to_json(&self) -> Json {
        match self {
            Type::String => Json::from("string"),
            Type::Number => Json::from("number"),
            Type::Bool => Json::from("bool"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(e) => Json::Array(vec!["list".into(), e.to_json()]),
            Type::Set(e) => Json::Array(vec!["set".into(), e.to_json()]),
            Type::Map(e) => Json::Array(vec!["map".into(), e.to_json()]),
            Type::Object(attrs) => {
                let obj = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect::<serde_json::Map<_, _>>();
                Json::Array(vec!["object".into(), Json::Object(obj)])
            }
            Type::Tuple(elems) => Json::Array(vec![
                "tuple".into(),
                Json::Array(elems.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The JSON form as bytes, as used in `Schema.Attribute.type`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses the JSON form from bytes.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, TypeError> {
        let json: Json = serde_json::from_slice(bytes)?;
        Type::from_json(&json)
    }

    /// Parses the JSON form.
    pub fn from_json(json: &Json) -> Result<Type, TypeError> {
        let invalid = |reason| TypeError::Invalid {
            found: json.to_string(),
            reason,
        };
        match json {
            Json::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(invalid("unknown primitive type")),
            },
            Json::Array(parts) => {
                let (kind, arg) = match parts.as_slice() {
                    [Json::String(kind), arg] => (kind.as_str(), arg),
                    [Json::String(kind), arg, _optional] if kind == "object" => {
                        (kind.as_str(), arg)
                    }
                    _ => return Err(invalid("expected [kind, argument]")),
                };
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    "object" => {
                        let Json::Object(attrs) = arg else {
                            return Err(invalid("object attributes must be a JSON object"));
                        };
                        let mut out = BTreeMap::new();
                        for (name, t) in attrs {
                            out.insert(name.clone(), Type::from_json(t)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let Json::Array(elems) = arg else {
                            return Err(invalid("tuple elements must be a JSON array"));
                        };
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(invalid("unknown type kind")),
                }
            }
            _ => Err(invalid("expected a string or an array")),
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_of_nested_types() {
        let t = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::map(Type::set(Type::Number))),
            ("c", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
        ]);
        let bytes = t.to_json_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"["object",{"a":["list","string"],"b":["map",["set","number"]],"c":["tuple",["bool","dynamic"]]}]"#
        );
        assert_eq!(Type::from_json_bytes(&bytes).unwrap(), t);
    }

    #[test]
    fn object_with_optional_attribute_list_is_accepted() {
        let t = Type::from_json_bytes(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(t, Type::object([("a", Type::String)]));
    }

    #[test]
    fn invalid_types_are_rejected() {
        for bad in [
            &br#""strang""#[..],
            br#"["list"]"#,
            br#"["frob","string"]"#,
            b"42",
            b"{",
        ] {
            assert!(
                Type::from_json_bytes(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn has_dynamic_looks_inside() {
        assert!(!Type::list(Type::String).has_dynamic());
        assert!(Type::object([("x", Type::map(Type::Dynamic))]).has_dynamic());
    }
}
