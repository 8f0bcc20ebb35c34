//! The JSON encoding of values: stored state (`RawState.json` in
//! `UpgradeResourceState`) and `DynamicValue.json`.
//!
//! JSON cannot express unknowns; `dynamic` values are `{"type": T, "value": V}`.
//! Numbers keep their exact text when a 64-bit integer cannot hold them.
//! Stored state may predate the current schema, so attributes the type does
//! not know are ignored and missing ones become null.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::path::{AttributePath, PathStep};
use crate::types::Type;
use crate::value::{Number, Value};

/// Errors from decoding JSON values.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// A value does not fit the type.
    #[error("at {path}: {message}")]
    Mismatch {
        /// Where in the value.
        path: String,
        /// What was expected and found.
        message: String,
    },
}

fn mismatch(path: &[PathStep], message: impl Into<String>) -> JsonError {
    let path: AttributePath = path.iter().cloned().collect();
    JsonError::Mismatch {
        path: if path.is_root() {
            "<root>".into()
        } else {
            path.to_string()
        },
        message: message.into(),
    }
}

/// Decodes JSON text as a value of type `ty`.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|e| mismatch(&[], format!("not UTF-8: {e}")))?;
    let raw: &RawValue = serde_json::from_str(text)?;
    from_raw(raw, ty, &mut Vec::new())
}

fn parse<'a, T: serde::Deserialize<'a>>(
    raw: &'a RawValue,
    path: &[PathStep],
    what: &str,
) -> Result<T, JsonError> {
    serde_json::from_str(raw.get())
        .map_err(|_| mismatch(path, format!("expected {what}, found {}", raw.get())))
}

fn from_raw(raw: &RawValue, ty: &Type, path: &mut Vec<PathStep>) -> Result<Value, JsonError> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => parse::<String>(raw, path, "a string").map(Value::String),
        Type::Bool => parse::<bool>(raw, path, "a boolean").map(Value::Bool),
        Type::Number => {
            // Terraform writes numbers as JSON numbers; accept numeric strings too.
            let literal = if text.starts_with('"') {
                parse::<String>(raw, path, "a number")?
            } else {
                text.to_owned()
            };
            Number::parse(&literal)
                .map(Value::Number)
                .ok_or_else(|| mismatch(path, format!("expected a number, found {text}")))
        }
        Type::List(elem) | Type::Set(elem) => {
            let items: Vec<&RawValue> = parse(raw, path, "an array")?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(PathStep::ElementKeyInt(
                    i64::try_from(i).unwrap_or(i64::MAX),
                ));
                out.push(from_raw(item, elem, path)?);
                path.pop();
            }
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(out)
            } else {
                Value::Set(out)
            })
        }
        Type::Tuple(elems) => {
            let items: Vec<&RawValue> = parse(raw, path, "an array")?;
            if items.len() != elems.len() {
                return Err(mismatch(
                    path,
                    format!(
                        "expected a tuple of {} elements, found {}",
                        elems.len(),
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, ety)) in items.into_iter().zip(elems).enumerate() {
                path.push(PathStep::ElementKeyInt(
                    i64::try_from(i).unwrap_or(i64::MAX),
                ));
                out.push(from_raw(item, ety, path)?);
                path.pop();
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(elem) => {
            let entries: BTreeMap<String, &RawValue> = parse(raw, path, "an object")?;
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                path.push(PathStep::ElementKeyString(k.clone()));
                let value = from_raw(v, elem, path)?;
                path.pop();
                out.insert(k, value);
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs) => {
            let entries: BTreeMap<String, &RawValue> = parse(raw, path, "an object")?;
            let mut out = BTreeMap::new();
            for (name, aty) in attrs {
                let value = match entries.get(name) {
                    Some(v) => {
                        path.push(PathStep::Attribute(name.clone()));
                        let value = from_raw(v, aty, path)?;
                        path.pop();
                        value
                    }
                    None => Value::Null,
                };
                out.insert(name.clone(), value);
            }
            Ok(Value::Object(out))
        }
        Type::Dynamic => {
            #[derive(serde::Deserialize)]
            struct Wrapped<'a> {
                #[serde(rename = "type")]
                ty: serde_json::Value,
                #[serde(borrow)]
                value: &'a RawValue,
            }
            let wrapped: Wrapped<'_> = parse(raw, path, "a {\"type\", \"value\"} object")?;
            let concrete = Type::from_json(&wrapped.ty)
                .map_err(|e| mismatch(path, format!("invalid dynamic type: {e}")))?;
            Ok(match from_raw(wrapped.value, &concrete, path)? {
                Value::Null => Value::Null,
                known => Value::Dynamic(concrete, Box::new(known)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_type() -> Type {
        Type::object([
            ("id", Type::String),
            ("name", Type::String),
            ("size", Type::Number),
            ("enabled", Type::Bool),
            ("tags", Type::map(Type::String)),
            ("disks", Type::list(Type::object([("path", Type::String)]))),
        ])
    }

    #[test]
    fn state_decodes_with_schema_type() {
        let json = br#"{"id":"a","name":"n","size":12345678901234567890123,"enabled":true,
            "tags":{"k":"v"},"disks":[{"path":"/dev/x"}],"removed_attr":"ignored"}"#;
        let v = decode(json, &item_type()).unwrap();
        assert_eq!(v.get_attr("id").and_then(Value::as_str), Some("a"));
        assert_eq!(
            v.get_attr("size").and_then(Value::as_number),
            Some(&Number::Big("12345678901234567890123".into()))
        );
        assert_eq!(v.get_attr("enabled"), Some(&Value::Bool(true)));
        assert_eq!(
            v.get(&AttributePath::attribute("disks").index(0).attr("path"))
                .and_then(Value::as_str),
            Some("/dev/x")
        );
        assert_eq!(v.get_attr("removed_attr"), None);
    }

    #[test]
    fn missing_attributes_and_nulls() {
        let v = decode(br#"{"id":"a","tags":null}"#, &item_type()).unwrap();
        assert_eq!(v.get_attr("tags"), Some(&Value::Null));
        assert_eq!(v.get_attr("disks"), Some(&Value::Null));
        assert_eq!(decode(b"null", &item_type()).unwrap(), Value::Null);
    }

    #[test]
    fn numbers() {
        assert_eq!(decode(b"42", &Type::Number).unwrap(), Value::from(42_i64));
        assert_eq!(
            decode(b"-1.25", &Type::Number).unwrap(),
            Value::Number(Number::Big("-1.25".into()))
        );
        assert_eq!(
            decode(br#""7""#, &Type::Number).unwrap(),
            Value::from(7_i64)
        );
        assert!(decode(br#""x""#, &Type::Number).is_err());
    }

    #[test]
    fn dynamic_and_tuple() {
        let v = decode(
            br#"{"type":["list","string"],"value":["a"]}"#,
            &Type::Dynamic,
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec![Value::from("a")]))
            )
        );
        let t = Type::Tuple(vec![Type::String, Type::Number]);
        assert_eq!(
            decode(br#"["a",1]"#, &t).unwrap(),
            Value::Tuple(vec![Value::from("a"), Value::from(1_i64)])
        );
        assert!(decode(br#"["a"]"#, &t).is_err());
    }

    #[test]
    fn type_errors_carry_the_path() {
        let err = decode(br#"{"disks":[{"path":5}]}"#, &item_type())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "at disks[0].path: expected a string, found 5");
        assert!(matches!(
            decode(b"{", &item_type()),
            Err(JsonError::Syntax(_))
        ));
    }
}
