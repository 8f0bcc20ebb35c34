//! Terraform values: the data inside `DynamicValue`s.
//!
//! A [`Value`] carries no type of its own: the schema gives it one when it is
//! encoded or decoded. The exception is a value of a `dynamic` type, whose
//! concrete type travels on the wire and is kept in [`Value::Dynamic`] so it
//! survives a round trip unchanged.

use std::collections::BTreeMap;

use crate::path::{AttributePath, PathStep};
use crate::types::Type;

/// A number of Terraform's arbitrary-precision number type.
///
/// Integers that fit 64 bits are kept as integers; other values keep the
/// representation they arrived in, so sending a number back produces the
/// same number Terraform sent (Terraform compares planned values with the
/// configuration exactly).
#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// An integer in `i64` range.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A 64-bit float that is not an integer (or is outside `i64` range).
    Float(f64),
    /// A decimal number kept as text, e.g. `"0.1"` or a huge integer.
    Big(String),
}

impl Number {
    /// Builds a number from text such as `"42"`, `"-1.5e3"` or a 40-digit integer.
    ///
    /// Returns `None` if the text is not a decimal number.
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number::Int(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Number::UInt(u));
        }
        if !is_decimal_literal(text) {
            return None;
        }
        Some(Number::Big(text.to_owned()))
    }

    /// The value as `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::UInt(u) => i64::try_from(*u).ok(),
            Number::Float(f) => float_to_i64(*f),
            Number::Big(s) => s.parse::<f64>().ok().and_then(float_to_i64),
        }
    }

    /// The value as `u64`, if it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Number::Int(i) => u64::try_from(*i).ok(),
            Number::UInt(u) => Some(*u),
            Number::Float(_) | Number::Big(_) => self.as_i64().and_then(|i| u64::try_from(i).ok()),
        }
    }

    /// The value as the nearest `f64`.
    pub fn as_f64(&self) -> f64 {
        match self {
            // Precision loss is the documented behaviour of this accessor.
            #[allow(clippy::cast_precision_loss)]
            Number::Int(i) => *i as f64,
            #[allow(clippy::cast_precision_loss)]
            Number::UInt(u) => *u as f64,
            Number::Float(f) => *f,
            Number::Big(s) => s.parse::<f64>().unwrap_or(f64::NAN),
        }
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or above it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        Some(f as i64)
    } else {
        None
    }
}

/// `-?digits(.digits)?([eE][+-]?digits)?`
fn is_decimal_literal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    digits(int) && frac.is_none_or(digits) && exp_ok
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number::Int(i)
    }
}

impl From<i32> for Number {
    fn from(i: i32) -> Self {
        Number::Int(i64::from(i))
    }
}

impl From<u32> for Number {
    fn from(u: u32) -> Self {
        Number::Int(i64::from(u))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Self {
        i64::try_from(u).map_or(Number::UInt(u), Number::Int)
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        float_to_i64(f).map_or(Number::Float(f), Number::Int)
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::UInt(u) => write!(f, "{u}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Big(s) => f.write_str(s),
        }
    }
}

/// What Terraform knows about a value that is not known yet.
///
/// Newer Terraform versions send "refined" unknowns (for example "not null"
/// or "starts with `https://`"). The refinements are kept verbatim so a
/// provider that echoes an unknown from the configuration into its plan
/// returns exactly what Terraform sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unknown {
    refinements: Option<Vec<u8>>,
}

impl Unknown {
    /// An unknown with refinements, given as the msgpack payload of
    /// extension type 12 (a map with integer keys).
    pub fn with_refinements(payload: Vec<u8>) -> Unknown {
        Unknown {
            refinements: Some(payload),
        }
    }

    /// The raw refinement payload, if any.
    pub fn refinements(&self) -> Option<&[u8]> {
        self.refinements.as_deref()
    }

    /// Whether Terraform promised this value will not be null.
    pub fn definitely_not_null(&self) -> bool {
        self.refinement(1).and_then(|v| v.as_bool()) == Some(false)
    }

    /// The prefix Terraform promised a string value will start with.
    pub fn string_prefix(&self) -> Option<String> {
        self.refinement(2)
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    fn refinement(&self, key: i64) -> Option<rmpv::Value> {
        let mut raw = self.refinements.as_deref()?;
        let rmpv::Value::Map(entries) = rmpv::decode::read_value(&mut raw).ok()? else {
            return None;
        };
        entries
            .into_iter()
            .find(|(k, _)| k.as_i64() == Some(key))
            .map(|(_, v)| v)
    }
}

/// A Terraform value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The null value (of whatever type the schema says).
    Null,
    /// A value that will only be known after apply.
    Unknown(Unknown),
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A set (element order carries no meaning).
    Set(Vec<Value>),
    /// A map.
    Map(BTreeMap<String, Value>),
    /// An object (a block, or a value of an object type).
    Object(BTreeMap<String, Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A known value of a `dynamic`-typed attribute, with its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A wholly unknown value (no refinements).
    pub fn unknown() -> Value {
        Value::Unknown(Unknown::default())
    }

    /// An object from `(name, value)` pairs.
    pub fn object<I, S>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A number value.
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// The value inside [`Value::Dynamic`] wrappers.
    pub fn unwrap_dynamic(&self) -> &Value {
        match self {
            Value::Dynamic(_, inner) => inner.unwrap_dynamic(),
            other => other,
        }
    }

    /// Whether this is the null value.
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// Whether this value itself is unknown (not whether it contains unknowns).
    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown(_))
    }

    /// Whether neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, inner) => inner.is_wholly_known(),
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as `i64`, if it is a known integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as `u64`, if it is a known non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// The elements of a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a known map or object.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An attribute of a known object.
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(m) => m.get(name),
            _ => None,
        }
    }

    /// Replaces (or adds) an attribute of an object; returns `false` (and
    /// changes nothing) if this is not a known object.
    pub fn set_attr(&mut self, name: &str, value: Value) -> bool {
        match self {
            Value::Object(m) => {
                m.insert(name.to_owned(), value);
                true
            }
            Value::Dynamic(_, inner) => inner.set_attr(name, value),
            _ => false,
        }
    }

    /// The value at `path`, or `None` if the path leads nowhere (through a
    /// null, an unknown, a missing key or an index out of range).
    pub fn get(&self, path: &AttributePath) -> Option<&Value> {
        let mut current = self;
        for step in path.steps() {
            current = current.step(step)?;
        }
        Some(current)
    }

    fn step(&self, step: &PathStep) -> Option<&Value> {
        match (self.unwrap_dynamic(), step) {
            (Value::Object(m), PathStep::Attribute(name)) => m.get(name),
            (Value::Map(m), PathStep::ElementKeyString(key)) => m.get(key),
            (Value::List(v) | Value::Tuple(v), PathStep::ElementKeyInt(i)) => {
                usize::try_from(*i).ok().and_then(|i| v.get(i))
            }
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Number(i.into())
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        Value::Number(u.into())
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Number(f.into())
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_parse_keeps_integers_exact_and_decimals_as_text() {
        assert_eq!(Number::parse("42"), Some(Number::Int(42)));
        assert_eq!(Number::parse("-7"), Some(Number::Int(-7)));
        assert_eq!(
            Number::parse("18446744073709551615"),
            Some(Number::UInt(u64::MAX))
        );
        assert_eq!(
            Number::parse("123456789012345678901234567890"),
            Some(Number::Big("123456789012345678901234567890".into()))
        );
        assert_eq!(Number::parse("0.1"), Some(Number::Big("0.1".into())));
        assert_eq!(
            Number::parse("-1.5e+3"),
            Some(Number::Big("-1.5e+3".into()))
        );
        for bad in ["", "abc", "1.", ".5", "1e", "--1", "1.2.3", "0x10"] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn number_accessors() {
        assert_eq!(Number::from(5.0).as_i64(), Some(5));
        assert_eq!(Number::from(5.0), Number::Int(5));
        assert_eq!(Number::from(2.5).as_i64(), None);
        assert_eq!(Number::from(u64::MAX).as_i64(), None);
        assert_eq!(Number::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Number::Int(-1).as_u64(), None);
        assert_eq!(Number::Big("1e3".into()).as_i64(), Some(1000));
        assert!((Number::Big("0.25".into()).as_f64() - 0.25).abs() < f64::EPSILON);
        assert_eq!(Number::Float(1e300).as_i64(), None);
    }

    #[test]
    fn get_by_path_walks_objects_maps_and_lists() {
        let v = Value::object([
            (
                "disks",
                Value::List(vec![Value::object([(
                    "tags",
                    Value::Map([("zone".to_owned(), Value::from("a"))].into()),
                )])]),
            ),
            ("name", Value::from("n1")),
        ]);
        let p = AttributePath::root()
            .attr("disks")
            .index(0)
            .attr("tags")
            .key("zone");
        assert_eq!(v.get(&p).and_then(Value::as_str), Some("a"));
        assert_eq!(
            v.get(&AttributePath::root().attr("name")),
            Some(&Value::from("n1"))
        );
        assert_eq!(v.get(&AttributePath::root().attr("disks").index(1)), None);
        assert_eq!(v.get(&AttributePath::root().attr("name").index(0)), None);
        assert_eq!(v.get(&AttributePath::root()), Some(&v));
    }

    #[test]
    fn known_checks_are_deep() {
        let v = Value::object([("a", Value::List(vec![Value::from(1_i64), Value::unknown()]))]);
        assert!(!v.is_unknown());
        assert!(!v.is_wholly_known());
        assert!(Value::object([("a", Value::Null)]).is_wholly_known());
    }

    #[test]
    fn dynamic_wrapper_is_transparent_to_accessors() {
        let v = Value::Dynamic(Type::String, Box::new(Value::from("x")));
        assert_eq!(v.as_str(), Some("x"));
        assert!(!v.is_null());
    }

    #[test]
    fn set_attr_only_on_objects() {
        let mut v = Value::object([("a", Value::Null)]);
        assert!(v.set_attr("a", Value::from(true)));
        assert_eq!(v.get_attr("a"), Some(&Value::Bool(true)));
        assert!(!Value::Null.set_attr("a", Value::Null));
    }

    #[test]
    fn refinement_accessors_read_the_payload() {
        // {1: false, 2: "ab"}
        let payload = vec![0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b'];
        let u = Unknown::with_refinements(payload);
        assert!(u.definitely_not_null());
        assert_eq!(u.string_prefix().as_deref(), Some("ab"));
        assert!(!Unknown::default().definitely_not_null());
    }
}
