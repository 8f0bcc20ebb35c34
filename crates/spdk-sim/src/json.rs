//! An ordered JSON output tree.
//!
//! SPDK writes its answers with a streaming JSON writer: keys come out in the order the C code
//! writes them, and `bdev_raid_get_bdevs` even writes the key `uuid` twice in one object.
//! `serde_json::Value` can do neither (its map is sorted and unique), so every answer the
//! simulator sends is built as a [`J`] tree, which keeps insertion order and allows duplicates.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One JSON value with ordered (and possibly repeated) object keys.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A non-integer number (only seen as an echoed request id such as `1.5`).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<J>),
    /// An object: keys in insertion order, duplicates allowed.
    Obj(Vec<(String, J)>),
}

impl J {
    /// An empty object, to be filled with [`J::with`].
    #[must_use]
    pub fn obj() -> Self {
        J::Obj(Vec::new())
    }

    /// Appends `key: value` to an object (no effect on other variants) and returns it.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<J>) -> Self {
        if let J::Obj(fields) = &mut self {
            fields.push((key.to_owned(), value.into()));
        }
        self
    }

    /// Appends `key: value` only when `value` is `Some`.
    #[must_use]
    pub fn with_opt(self, key: &str, value: Option<impl Into<J>>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// Compact serialisation, as SPDK sends it.
    #[must_use]
    pub fn to_compact(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("null"))
    }

    /// Converts a `serde_json::Value` (e.g. a request id) into an output value.
    #[must_use]
    pub fn from_value(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => J::Null,
            serde_json::Value::Bool(b) => J::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    J::UInt(u)
                } else if let Some(i) = n.as_i64() {
                    J::Int(i)
                } else {
                    J::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => J::Str(s.clone()),
            serde_json::Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            serde_json::Value::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_value(v)))
                    .collect(),
            ),
        }
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Int(i) => s.serialize_i64(*i),
            J::UInt(u) => s.serialize_u64(*u),
            J::Str(v) => s.serialize_str(v),
            J::Float(f) => s.serialize_f64(*f),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl From<bool> for J {
    fn from(v: bool) -> Self {
        J::Bool(v)
    }
}
impl From<u64> for J {
    fn from(v: u64) -> Self {
        J::UInt(v)
    }
}
impl From<u32> for J {
    fn from(v: u32) -> Self {
        J::UInt(u64::from(v))
    }
}
impl From<i64> for J {
    fn from(v: i64) -> Self {
        J::Int(v)
    }
}
impl From<i32> for J {
    fn from(v: i32) -> Self {
        J::Int(i64::from(v))
    }
}
impl From<&str> for J {
    fn from(v: &str) -> Self {
        J::Str(v.to_owned())
    }
}
impl From<String> for J {
    fn from(v: String) -> Self {
        J::Str(v)
    }
}
impl From<&String> for J {
    fn from(v: &String) -> Self {
        J::Str(v.clone())
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> Self {
        J::Arr(v)
    }
}
impl From<Vec<String>> for J {
    fn from(v: Vec<String>) -> Self {
        J::Arr(v.into_iter().map(J::Str).collect())
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> Self {
        v.map_or(J::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates() {
        let j = J::obj()
            .with("name", "r")
            .with("uuid", "u")
            .with("uuid", "u")
            .with("a", 1u64);
        assert_eq!(
            j.to_compact(),
            r#"{"name":"r","uuid":"u","uuid":"u","a":1}"#
        );
    }

    #[test]
    fn echoes_ids_of_every_kind() {
        for raw in ["1", "-3", "1.5", "\"abc\"", "null"] {
            let v: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(J::from_value(&v).to_compact(), raw);
        }
    }

    #[test]
    fn optional_fields() {
        let j = J::obj()
            .with_opt("a", None::<u64>)
            .with_opt("b", Some(true))
            .with("c", None::<String>);
        assert_eq!(j.to_compact(), r#"{"b":true,"c":null}"#);
    }
}
