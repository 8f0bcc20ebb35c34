//! The msgpack encoding of values (Terraform's `DynamicValue.msgpack`).
//!
//! Decoding and encoding are driven by the schema's [`Type`]:
//! - null is msgpack nil, whatever the type;
//! - an unknown is any msgpack extension; code 12 carries refinements, which
//!   are kept; unknowns are written as `fixext1` code 0 (`d4 00 00`) like cty;
//! - numbers are ints, floats, or decimal strings (for values a 64-bit float
//!   cannot hold exactly);
//! - lists, sets and tuples are arrays; maps and objects are maps with
//!   string keys; every attribute of an object type is written (nil when the
//!   value lacks it), since Terraform requires the exact attribute set;
//! - a `dynamic` value is a two-element array: the type's JSON as binary,
//!   then the value encoded with that type.

use std::collections::BTreeMap;

use crate::path::{AttributePath, PathStep};
use crate::types::Type;
use crate::value::{Number, Unknown, Value};

/// msgpack extension code of a refined unknown value.
const REFINED_UNKNOWN_EXT: i8 = 12;

/// Errors from encoding or decoding msgpack values.
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    /// The bytes are not well-formed msgpack.
    #[error("malformed msgpack: {0}")]
    Malformed(String),
    /// The bytes continue after the value.
    #[error("{0} unexpected trailing bytes after the msgpack value")]
    TrailingBytes(usize),
    /// A value does not fit the type the schema gives it.
    #[error("at {path}: {message}")]
    Mismatch {
        /// Where in the value (empty for the root).
        path: PathDisplay,
        /// What was expected and found.
        message: String,
    },
    /// The embedded type of a dynamic value is not a valid type.
    #[error("at {path}: invalid dynamic type: {source}")]
    DynamicType {
        /// Where in the value.
        path: PathDisplay,
        /// Why the type is invalid.
        source: crate::types::TypeError,
    },
}

/// An [`AttributePath`] displayed as `<root>` when empty.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDisplay(pub AttributePath);

impl std::fmt::Display for PathDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_root() {
            f.write_str("<root>")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

fn mismatch(path: &[PathStep], message: impl Into<String>) -> MsgpackError {
    MsgpackError::Mismatch {
        path: PathDisplay(path.iter().cloned().collect()),
        message: message.into(),
    }
}

/// Decodes a msgpack value of type `ty`.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, MsgpackError> {
    let mut rest = bytes;
    let raw =
        rmpv::decode::read_value(&mut rest).map_err(|e| MsgpackError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MsgpackError::TrailingBytes(rest.len()));
    }
    let mut path = Vec::new();
    from_raw(raw, ty, &mut path)
}

fn describe(raw: &rmpv::Value) -> &'static str {
    match raw {
        rmpv::Value::Nil => "nil",
        rmpv::Value::Boolean(_) => "a boolean",
        rmpv::Value::Integer(_) => "an integer",
        rmpv::Value::F32(_) | rmpv::Value::F64(_) => "a float",
        rmpv::Value::String(_) => "a string",
        rmpv::Value::Binary(_) => "binary data",
        rmpv::Value::Array(_) => "an array",
        rmpv::Value::Map(_) => "a map",
        rmpv::Value::Ext(..) => "an extension",
    }
}

fn raw_string(raw: rmpv::Value, path: &[PathStep], what: &str) -> Result<String, MsgpackError> {
    match raw {
        rmpv::Value::String(s) => s
            .into_str()
            .ok_or_else(|| mismatch(path, format!("{what} is not valid UTF-8"))),
        other => Err(mismatch(
            path,
            format!("expected {what}, found {}", describe(&other)),
        )),
    }
}

fn from_raw(raw: rmpv::Value, ty: &Type, path: &mut Vec<PathStep>) -> Result<Value, MsgpackError> {
    match raw {
        rmpv::Value::Nil => return Ok(Value::Null),
        rmpv::Value::Ext(code, payload) => {
            return Ok(Value::Unknown(
                if code == REFINED_UNKNOWN_EXT && !payload.is_empty() {
                    Unknown::with_refinements(payload)
                } else {
                    Unknown::default()
                },
            ));
        }
        _ => {}
    }
    match ty {
        Type::String => raw_string(raw, path, "a string").map(Value::String),
        Type::Bool => match raw {
            rmpv::Value::Boolean(b) => Ok(Value::Bool(b)),
            other => Err(mismatch(
                path,
                format!("expected a boolean, found {}", describe(&other)),
            )),
        },
        Type::Number => decode_number(raw, path).map(Value::Number),
        Type::List(elem) | Type::Set(elem) => {
            let items = expect_array(raw, path)?;
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
            let items = expect_array(raw, path)?;
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
            let entries = expect_map(raw, path)?;
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let key = raw_string(k, path, "a map key")?;
                path.push(PathStep::ElementKeyString(key.clone()));
                let value = from_raw(v, elem, path)?;
                path.pop();
                out.insert(key, value);
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs) => {
            let entries = expect_map(raw, path)?;
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let name = raw_string(k, path, "an attribute name")?;
                let Some(aty) = attrs.get(&name) else {
                    return Err(mismatch(path, format!("unexpected attribute {name:?}")));
                };
                path.push(PathStep::Attribute(name.clone()));
                let value = from_raw(v, aty, path)?;
                path.pop();
                out.insert(name, value);
            }
            for name in attrs.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
        Type::Dynamic => {
            let items = expect_array(raw, path)?;
            let [type_raw, value_raw]: [rmpv::Value; 2] =
                items.try_into().map_err(|items: Vec<_>| {
                    mismatch(
                        path,
                        format!(
                            "expected a [type, value] pair for a dynamic value, found {} elements",
                            items.len()
                        ),
                    )
                })?;
            let type_json = match type_raw {
                rmpv::Value::Binary(b) => b,
                rmpv::Value::String(s) => s.into_bytes(),
                other => {
                    return Err(mismatch(
                        path,
                        format!(
                            "expected the JSON type of a dynamic value, found {}",
                            describe(&other)
                        ),
                    ));
                }
            };
            let concrete =
                Type::from_json_bytes(&type_json).map_err(|source| MsgpackError::DynamicType {
                    path: PathDisplay(path.iter().cloned().collect()),
                    source,
                })?;
            let inner = from_raw(value_raw, &concrete, path)?;
            Ok(match inner {
                Value::Null => Value::Null,
                Value::Unknown(u) => Value::Unknown(u),
                known => Value::Dynamic(concrete, Box::new(known)),
            })
        }
    }
}

fn decode_number(raw: rmpv::Value, path: &[PathStep]) -> Result<Number, MsgpackError> {
    match raw {
        rmpv::Value::Integer(i) => {
            if let Some(v) = i.as_i64() {
                Ok(Number::Int(v))
            } else if let Some(v) = i.as_u64() {
                Ok(Number::UInt(v))
            } else {
                Err(mismatch(path, "integer out of range"))
            }
        }
        rmpv::Value::F32(f) => Ok(Number::from(f64::from(f))),
        rmpv::Value::F64(f) => Ok(Number::from(f)),
        rmpv::Value::String(s) => {
            let text = s
                .into_str()
                .ok_or_else(|| mismatch(path, "number text is not valid UTF-8"))?;
            Number::parse(&text).ok_or_else(|| mismatch(path, format!("{text:?} is not a number")))
        }
        other => Err(mismatch(
            path,
            format!("expected a number, found {}", describe(&other)),
        )),
    }
}

fn expect_array(raw: rmpv::Value, path: &[PathStep]) -> Result<Vec<rmpv::Value>, MsgpackError> {
    match raw {
        rmpv::Value::Array(items) => Ok(items),
        other => Err(mismatch(
            path,
            format!("expected an array, found {}", describe(&other)),
        )),
    }
}

fn expect_map(
    raw: rmpv::Value,
    path: &[PathStep],
) -> Result<Vec<(rmpv::Value, rmpv::Value)>, MsgpackError> {
    match raw {
        rmpv::Value::Map(entries) => Ok(entries),
        other => Err(mismatch(
            path,
            format!("expected a map, found {}", describe(&other)),
        )),
    }
}

/// Encodes `value` as a msgpack value of type `ty`.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, MsgpackError> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    write_value(&mut out, value, ty, &mut path)?;
    Ok(out)
}

/// Writes to a `Vec`, which cannot fail; the error type of `rmp` is generic.
fn io<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, MsgpackError> {
    r.map_err(|e| MsgpackError::Malformed(e.to_string()))
}

fn len_u32(len: usize, path: &[PathStep]) -> Result<u32, MsgpackError> {
    u32::try_from(len).map_err(|_| mismatch(path, "collection too large for msgpack"))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Unknown(_) => "unknown",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
        Value::Tuple(_) => "a tuple",
        Value::Dynamic(..) => "a dynamic value",
    }
}

fn write_value(
    out: &mut Vec<u8>,
    value: &Value,
    ty: &Type,
    path: &mut Vec<PathStep>,
) -> Result<(), MsgpackError> {
    match value {
        Value::Null => return io(rmp::encode::write_nil(out)),
        Value::Unknown(u) => {
            return match u.refinements() {
                Some(payload) => {
                    io(rmp::encode::write_ext_meta(
                        out,
                        len_u32(payload.len(), path)?,
                        REFINED_UNKNOWN_EXT,
                    ))?;
                    out.extend_from_slice(payload);
                    Ok(())
                }
                None => {
                    out.extend_from_slice(&[0xd4, 0x00, 0x00]);
                    Ok(())
                }
            };
        }
        Value::Dynamic(concrete, inner) if *ty != Type::Dynamic => {
            if concrete != ty {
                return Err(mismatch(
                    path,
                    format!("expected a value of type {ty}, found one of type {concrete}"),
                ));
            }
            return write_value(out, inner, ty, path);
        }
        _ => {}
    }
    let wrong = |path: &[PathStep]| {
        mismatch(
            path,
            format!("expected a value of type {ty}, found {}", kind_of(value)),
        )
    };
    match (ty, value) {
        (Type::String, Value::String(s)) => io(rmp::encode::write_str(out, s)),
        (Type::Bool, Value::Bool(b)) => io(rmp::encode::write_bool(out, *b)),
        (Type::Number, Value::Number(n)) => match n {
            Number::Int(i) => io(rmp::encode::write_sint(out, *i)).map(drop),
            Number::UInt(u) => io(rmp::encode::write_uint(out, *u)).map(drop),
            Number::Float(f) => io(rmp::encode::write_f64(out, *f)),
            Number::Big(s) => io(rmp::encode::write_str(out, s)),
        },
        (Type::List(elem), Value::List(items)) | (Type::Set(elem), Value::Set(items)) => {
            io(rmp::encode::write_array_len(
                out,
                len_u32(items.len(), path)?,
            ))?;
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::ElementKeyInt(
                    i64::try_from(i).unwrap_or(i64::MAX),
                ));
                write_value(out, item, elem, path)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Tuple(elems), Value::Tuple(items)) => {
            if elems.len() != items.len() {
                return Err(mismatch(
                    path,
                    format!(
                        "expected a tuple of {} elements, found {}",
                        elems.len(),
                        items.len()
                    ),
                ));
            }
            io(rmp::encode::write_array_len(
                out,
                len_u32(items.len(), path)?,
            ))?;
            for (i, (item, ety)) in items.iter().zip(elems).enumerate() {
                path.push(PathStep::ElementKeyInt(
                    i64::try_from(i).unwrap_or(i64::MAX),
                ));
                write_value(out, item, ety, path)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Map(elem), Value::Map(entries)) => {
            io(rmp::encode::write_map_len(
                out,
                len_u32(entries.len(), path)?,
            ))?;
            for (k, v) in entries {
                io(rmp::encode::write_str(out, k))?;
                path.push(PathStep::ElementKeyString(k.clone()));
                write_value(out, v, elem, path)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Object(attrs), Value::Object(entries)) => {
            if let Some(extra) = entries.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(mismatch(
                    path,
                    format!("attribute {extra:?} is not in the schema"),
                ));
            }
            io(rmp::encode::write_map_len(out, len_u32(attrs.len(), path)?))?;
            for (name, aty) in attrs {
                io(rmp::encode::write_str(out, name))?;
                path.push(PathStep::Attribute(name.clone()));
                write_value(out, entries.get(name).unwrap_or(&Value::Null), aty, path)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Dynamic, known) => {
            let (concrete, inner) = match known {
                Value::Dynamic(t, inner) => (t.clone(), inner.as_ref()),
                other => (infer_type(other), other),
            };
            io(rmp::encode::write_array_len(out, 2))?;
            let json = concrete.to_json_bytes();
            io(rmp::encode::write_bin(out, &json))?;
            write_value(out, inner, &concrete, path)
        }
        _ => Err(wrong(path)),
    }
}

/// A best guess at the type of a value that has none recorded (used when a
/// plain value is written to a `dynamic` attribute). Empty collections and
/// nulls carry no element type and become `dynamic`.
pub fn infer_type(value: &Value) -> Type {
    fn unify<'a>(items: impl Iterator<Item = &'a Value>) -> Type {
        items
            .map(infer_type)
            .find(|t| *t != Type::Dynamic)
            .unwrap_or(Type::Dynamic)
    }
    match value {
        Value::Null | Value::Unknown(_) => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(items) => Type::list(unify(items.iter())),
        Value::Set(items) => Type::set(unify(items.iter())),
        Value::Map(entries) => Type::map(unify(entries.values())),
        Value::Object(entries) => Type::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), infer_type(v)))
                .collect(),
        ),
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect()),
        Value::Dynamic(t, _) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn round_trip(bytes: &[u8], ty: &Type, expected: &Value) {
        let decoded = decode(bytes, ty).unwrap();
        assert_eq!(&decoded, expected);
        assert_eq!(hex(&encode(&decoded, ty).unwrap()), hex(bytes));
    }

    #[test]
    fn primitives() {
        round_trip(
            &[0xa3, b'a', b'b', b'c'],
            &Type::String,
            &Value::from("abc"),
        );
        round_trip(&[0xc3], &Type::Bool, &Value::Bool(true));
        round_trip(&[0xc2], &Type::Bool, &Value::Bool(false));
        round_trip(&[0x05], &Type::Number, &Value::from(5_i64));
        round_trip(&[0xff], &Type::Number, &Value::from(-1_i64));
        // int 16: 0xcd for uint16 (positive), 0xd1 for int16 (negative)
        round_trip(&[0xcd, 0x01, 0x2c], &Type::Number, &Value::from(300_i64));
        round_trip(&[0xd1, 0xfe, 0xd4], &Type::Number, &Value::from(-300_i64));
        round_trip(
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &Type::Number,
            &Value::from(u64::MAX),
        );
        // float64 1.5
        round_trip(
            &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
            &Type::Number,
            &Value::Number(Number::Float(1.5)),
        );
        round_trip(&[0xc0], &Type::String, &Value::Null);
    }

    #[test]
    fn big_numbers_travel_as_decimal_strings() {
        let text = "123456789012345678901234567890.5";
        // 32 bytes: too long for a fixstr, so str8 (0xd9, length).
        let mut bytes = vec![0xd9, u8::try_from(text.len()).unwrap()];
        bytes.extend_from_slice(text.as_bytes());
        round_trip(
            &bytes,
            &Type::Number,
            &Value::Number(Number::Big(text.into())),
        );
        // A decimal string that fits an integer decodes as an integer.
        assert_eq!(
            decode(&[0xa2, b'4', b'2'], &Type::Number).unwrap(),
            Value::from(42_i64)
        );
        // A float with an integral value is an integer.
        assert_eq!(
            decode(&[0xcb, 0x40, 0x45, 0, 0, 0, 0, 0, 0], &Type::Number).unwrap(),
            Value::from(42_i64)
        );
        assert!(decode(&[0xa1, b'x'], &Type::Number).is_err());
    }

    #[test]
    fn unknowns_plain_and_refined() {
        round_trip(&[0xd4, 0x00, 0x00], &Type::String, &Value::unknown());
        // Any other extension code is an unknown too.
        assert_eq!(
            decode(&[0xd4, 0x05, 0x00], &Type::Bool).unwrap(),
            Value::unknown()
        );
        // Refined: ext8 of 3 bytes, code 12, payload {1: false} (definitely not null).
        let refined = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2];
        // fixext2 (0xd5) with a 2-byte payload {}: a refinement map may be empty-ish; still unknown.
        assert!(
            decode(&[0xd5, 0x0c, 0x80, 0xc0], &Type::String)
                .unwrap()
                .is_unknown()
        );
        let v = decode(&refined, &Type::String).unwrap();
        let Value::Unknown(u) = &v else {
            panic!("{v:?}")
        };
        assert!(u.definitely_not_null());
        assert_eq!(hex(&encode(&v, &Type::String).unwrap()), hex(&refined));
        // Refined with a string prefix: ext8 len 7, {1: false, 2: "ab"}.
        let bytes = [0xc7, 0x07, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b'];
        let v = decode(&bytes, &Type::String).unwrap();
        let Value::Unknown(u) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(u.string_prefix().as_deref(), Some("ab"));
        assert_eq!(hex(&encode(&v, &Type::String).unwrap()), hex(&bytes));
    }

    #[test]
    fn objects_sorted_with_nulls_for_missing_attributes() {
        let ty = Type::object([
            ("name", Type::String),
            ("id", Type::String),
            ("size", Type::Number),
        ]);
        // {"id": unknown, "name": "a", "size": nil}
        let bytes = [
            0x83, 0xa2, b'i', b'd', 0xd4, 0x00, 0x00, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'a',
            0xa4, b's', b'i', b'z', b'e', 0xc0,
        ];
        let expected = Value::object([
            ("id", Value::unknown()),
            ("name", Value::from("a")),
            ("size", Value::Null),
        ]);
        round_trip(&bytes, &ty, &expected);
        // Encoding fills in an attribute the value lacks.
        let partial = Value::object([("id", Value::unknown()), ("name", Value::from("a"))]);
        assert_eq!(hex(&encode(&partial, &ty).unwrap()), hex(&bytes));
        // Decoding in a different order gives the same value.
        let reordered = [
            0x83, 0xa4, b's', b'i', b'z', b'e', 0xc0, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'a',
            0xa2, b'i', b'd', 0xd4, 0x00, 0x00,
        ];
        assert_eq!(decode(&reordered, &ty).unwrap(), expected);
    }

    #[test]
    fn nested_collections() {
        // object({tags: map(string), disks: list(object({path: string})), ids: set(number)})
        let ty = Type::object([
            ("tags", Type::map(Type::String)),
            ("disks", Type::list(Type::object([("path", Type::String)]))),
            ("ids", Type::set(Type::Number)),
        ]);
        let bytes = [
            0x83, // 3 attributes, sorted: disks, ids, tags
            0xa5, b'd', b'i', b's', b'k', b's', 0x92, // list of 2
            0x81, 0xa4, b'p', b'a', b't', b'h', 0xa2, b'/', b'a', // {path: "/a"}
            0x81, 0xa4, b'p', b'a', b't', b'h', 0xd4, 0x00, 0x00, // {path: unknown}
            0xa3, b'i', b'd', b's', 0x92, 0x01, 0x02, // set {1, 2}
            0xa4, b't', b'a', b'g', b's', 0x81, 0xa1, b'k', 0xa1, b'v', // {k: "v"}
        ];
        let expected = Value::object([
            (
                "disks",
                Value::List(vec![
                    Value::object([("path", Value::from("/a"))]),
                    Value::object([("path", Value::unknown())]),
                ]),
            ),
            (
                "ids",
                Value::Set(vec![Value::from(1_i64), Value::from(2_i64)]),
            ),
            (
                "tags",
                Value::Map([("k".to_owned(), Value::from("v"))].into()),
            ),
        ]);
        round_trip(&bytes, &ty, &expected);
        // A whole collection can be unknown or null.
        let unknown_list = Value::object([
            ("disks", Value::unknown()),
            ("ids", Value::Null),
            ("tags", Value::Map(BTreeMap::new())),
        ]);
        let bytes = encode(&unknown_list, &ty).unwrap();
        assert_eq!(decode(&bytes, &ty).unwrap(), unknown_list);
    }

    #[test]
    fn tuples() {
        let ty = Type::Tuple(vec![Type::String, Type::Bool]);
        round_trip(
            &[0x92, 0xa1, b'x', 0xc3],
            &ty,
            &Value::Tuple(vec![Value::from("x"), Value::Bool(true)]),
        );
        assert!(decode(&[0x91, 0xa1, b'x'], &ty).is_err());
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        // ["string" as bin, "hi"]
        let bytes = [
            0x92, 0xc4, 0x08, b'"', b's', b't', b'r', b'i', b'n', b'g', b'"', 0xa2, b'h', b'i',
        ];
        round_trip(
            &bytes,
            &Type::Dynamic,
            &Value::Dynamic(Type::String, Box::new(Value::from("hi"))),
        );
        // An empty list keeps its element type through a round trip.
        let list_json = br#"["list","number"]"#;
        let mut bytes = vec![0x92, 0xc4, u8::try_from(list_json.len()).unwrap()];
        bytes.extend_from_slice(list_json);
        bytes.push(0x90);
        round_trip(
            &bytes,
            &Type::Dynamic,
            &Value::Dynamic(Type::list(Type::Number), Box::new(Value::List(vec![]))),
        );
        // A null or unknown dynamic is plain nil / ext.
        round_trip(&[0xc0], &Type::Dynamic, &Value::Null);
        round_trip(&[0xd4, 0x00, 0x00], &Type::Dynamic, &Value::unknown());
        // A plain value written to a dynamic attribute gets an inferred type.
        let bytes = encode(&Value::Bool(true), &Type::Dynamic).unwrap();
        assert_eq!(
            hex(&bytes),
            hex(&[0x92, 0xc4, 0x06, b'"', b'b', b'o', b'o', b'l', b'"', 0xc3])
        );
        // The type may also arrive as a msgpack string.
        let as_str = [0x92, 0xa6, b'"', b'b', b'o', b'o', b'l', b'"', 0xc2];
        assert_eq!(
            decode(&as_str, &Type::Dynamic).unwrap(),
            Value::Dynamic(Type::Bool, Box::new(Value::Bool(false)))
        );
    }

    #[test]
    fn mismatches_report_the_path() {
        let ty = Type::object([("disks", Type::list(Type::object([("size", Type::Number)])))]);
        let v = Value::object([(
            "disks",
            Value::List(vec![Value::object([("size", Value::from("big"))])]),
        )]);
        let err = encode(&v, &ty).unwrap_err().to_string();
        assert_eq!(
            err,
            "at disks[0].size: expected a value of type \"number\", found a string"
        );

        let bytes = [0x81, 0xa1, b'x', 0xc0];
        let err = decode(&bytes, &ty).unwrap_err().to_string();
        assert!(err.contains("unexpected attribute \"x\""), "{err}");

        let extra = Value::object([("nope", Value::Null)]);
        assert!(encode(&extra, &ty).is_err());
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(
            decode(&[0x92, 0x01], &Type::list(Type::Number)),
            Err(MsgpackError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[0x01, 0x02], &Type::Number),
            Err(MsgpackError::TrailingBytes(1))
        ));
        assert!(decode(&[], &Type::Number).is_err());
    }
}
