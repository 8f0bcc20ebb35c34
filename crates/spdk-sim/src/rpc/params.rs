//! Strict parameter decoding with each SPDK module's error code.
//!
//! SPDK's `spdk_json_decode_object` rejects unknown keys, wrong types, negative numbers for
//! unsigned fields and missing required keys; what the client then sees depends on the module.

use crate::rpc_error::{INTERNAL_ERROR, INVALID_PARAMS, PARSE_ERROR, RpcError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Which module decodes, i.e. which error a decode failure produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// bdev, lvol, aio, nvme: -32603 "spdk_json_decode_object failed".
    Bdev,
    /// raid: -32700 "spdk_json_decode_object failed".
    Raid,
    /// nvmf and the RPC framework: -32602 "Invalid parameters".
    Nvmf,
}

impl Decoder {
    /// The error a decode failure produces.
    #[must_use]
    pub fn failure(self) -> RpcError {
        match self {
            Decoder::Bdev => RpcError::new(INTERNAL_ERROR, "spdk_json_decode_object failed"),
            Decoder::Raid => RpcError::new(PARSE_ERROR, "spdk_json_decode_object failed"),
            Decoder::Nvmf => RpcError::invalid_parameters(),
        }
    }
}

fn contains_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(contains_null),
        Value::Object(m) => m.values().any(contains_null),
        _ => false,
    }
}

/// Decodes `params` into `T` (a struct with `deny_unknown_fields`). Absent params decode as
/// `{}` (so structs with only optional fields accept them); arrays and nulls are rejected.
///
/// # Errors
/// The module's decode failure.
pub fn decode<T: DeserializeOwned>(params: Option<Value>, decoder: Decoder) -> Result<T, RpcError> {
    let value = match params {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) if !contains_null(&v) => v,
        Some(_) => return Err(decoder.failure()),
    };
    serde_json::from_value(value).map_err(|_| decoder.failure())
}

/// For methods without parameters: any `params` is -32602 "<method> method requires no parameters".
///
/// # Errors
/// As described.
pub fn none(method: &str, params: Option<&Value>) -> Result<(), RpcError> {
    match params {
        None => Ok(()),
        Some(_) => Err(RpcError::new(
            INVALID_PARAMS,
            format!("{method} method requires no parameters"),
        )),
    }
}

/// serde helper: `base_bdevs` may be an array of names or one space-separated string.
pub mod names_or_string {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Joined(String),
    }

    /// Deserializes either shape into a list.
    ///
    /// # Errors
    /// When the value is neither.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Raw::deserialize(d)? {
            Raw::List(v) => v,
            Raw::Joined(s) => s.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

/// serde helper: a UUID given as a string.
pub mod uuid_str {
    use serde::{Deserialize, Deserializer, de::Error};
    use uuid::Uuid;

    /// Deserializes an optional UUID string.
    ///
    /// # Errors
    /// When the string is not a UUID.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
        let s = String::deserialize(d)?;
        Uuid::parse_str(&s).map(Some).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Create {
        #[allow(dead_code)]
        lvol_name: String,
        #[allow(dead_code)]
        size_in_mib: u64,
        #[allow(dead_code)]
        thin_provision: Option<bool>,
    }

    #[test]
    fn strict_like_spdk_json_decode_object() {
        let bad = |p: Value| decode::<Create>(Some(p), Decoder::Bdev).unwrap_err();
        let expected = RpcError::new(-32603, "spdk_json_decode_object failed");
        assert_eq!(bad(json!({"size_in_mib": 8})), expected);
        assert_eq!(bad(json!({"lvol_name": "t", "size_in_mib": "8"})), expected);
        assert_eq!(bad(json!({"lvol_name": "t", "size_in_mib": -8})), expected);
        assert_eq!(
            bad(json!({"lvol_name": "t", "size_in_mib": 8, "bogus": 1})),
            expected
        );
        assert_eq!(bad(json!(["lvs0", "t", 8])), expected);
        assert_eq!(
            bad(json!({"lvol_name": "t", "size_in_mib": 8, "thin_provision": null})),
            expected
        );
        assert_eq!(decode::<Create>(None, Decoder::Bdev).unwrap_err(), expected);
        assert!(
            decode::<Create>(
                Some(json!({"lvol_name": "t", "size_in_mib": 8})),
                Decoder::Bdev
            )
            .is_ok()
        );
    }

    #[test]
    fn module_codes() {
        assert_eq!(Decoder::Raid.failure().code, -32700);
        assert_eq!(
            Decoder::Nvmf.failure(),
            RpcError::new(-32602, "Invalid parameters")
        );
    }

    #[test]
    fn no_params_methods() {
        assert!(none("spdk_get_version", None).is_ok());
        assert_eq!(
            none("spdk_get_version", Some(&json!({"x": 1}))).unwrap_err(),
            RpcError::new(-32602, "spdk_get_version method requires no parameters")
        );
    }

    #[test]
    fn base_bdevs_shapes() {
        #[derive(Deserialize)]
        struct P {
            #[serde(deserialize_with = "names_or_string::deserialize")]
            b: Vec<String>,
        }
        let a: P = serde_json::from_value(json!({"b": ["x", "y"]})).unwrap();
        let s: P = serde_json::from_value(json!({"b": "x y"})).unwrap();
        assert_eq!(a.b, s.b);
    }
}
