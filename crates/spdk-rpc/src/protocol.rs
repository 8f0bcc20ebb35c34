//! JSON-RPC 2.0 frames as spdk_tgt speaks them: pure encoding and decoding, no I/O.
//!
//! Requests always carry a numeric id (never a notification: v24.09 answers a notification
//! with a truncated object that corrupts the stream) and are never batched (SPDK rejects
//! arrays). `params`, when present, is always a JSON object: SPDK answers a string `params`
//! with an error whose id is null, which no caller could be matched to.

use serde::Serialize;
use serde_json::{Map, Value};

/// Errors building a request or reading an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `params` was given but is not an object.
    #[error("params of {method} must be a JSON object, got {found}")]
    ParamsNotObject {
        /// The method.
        method: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// The answer is not a JSON object.
    #[error("answer is not a JSON object: {snippet}")]
    NotAnObject {
        /// Start of the answer.
        snippet: String,
    },
    /// The answer has no id we could have sent (missing, null, not an unsigned integer).
    #[error("answer without a numeric id: {snippet}")]
    BadId {
        /// Start of the answer.
        snippet: String,
    },
    /// The answer has neither `result` nor a well-formed `error`.
    #[error("answer {id} has neither result nor a valid error: {snippet}")]
    NoResult {
        /// The answer's id.
        id: u64,
        /// Start of the answer.
        snippet: String,
    },
}

/// Keys naming the main object of a request, in order of preference; used in error messages.
const OBJECT_KEYS: &[&str] = &[
    "name",
    "bdev_name",
    "lvol_name",
    "snapshot_name",
    "clone_name",
    "lvs_name",
    "raid_bdev",
    "nqn",
    "uuid",
    "lvs_uuid",
    "trtype",
];

/// The main object named in `params` (e.g. the bdev or NQN), for error messages.
pub fn object_of(params: Option<&Map<String, Value>>) -> Option<String> {
    let params = params?;
    OBJECT_KEYS
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

#[derive(Serialize)]
struct RequestFrame<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Map<String, Value>>,
}

/// Checks that `params` is absent, null or an object, and returns the object.
pub fn params_object(
    method: &str,
    params: Option<Value>,
) -> Result<Option<Map<String, Value>>, ProtocolError> {
    match params {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(ProtocolError::ParamsNotObject {
            method: method.to_owned(),
            found: json_type(&other),
        }),
    }
}

/// Encodes one request: `{"jsonrpc":"2.0","id":N,"method":M[,"params":{...}]}`.
pub fn encode_request(id: u64, method: &str, params: Option<&Map<String, Value>>) -> Vec<u8> {
    let frame = RequestFrame {
        jsonrpc: "2.0",
        id,
        method,
        params,
    };
    // Serialising strings, integers and a `Map<String, Value>` cannot fail.
    serde_json::to_vec(&frame).unwrap_or_default()
}

/// A decoded answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request it answers.
    pub id: u64,
    /// `Ok(result)` or `Err((code, message))`.
    pub outcome: Result<Value, (i64, String)>,
}

/// Decodes one answer value.
pub fn decode_response(value: Value) -> Result<Response, ProtocolError> {
    let Value::Object(mut map) = value else {
        return Err(ProtocolError::NotAnObject {
            snippet: snippet(&value),
        });
    };
    let Some(id) = map.get("id").and_then(Value::as_u64) else {
        return Err(ProtocolError::BadId {
            snippet: snippet(&Value::Object(map)),
        });
    };
    if let Some(error) = map.get("error") {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str);
        if let (Some(code), Some(message)) = (code, message) {
            return Ok(Response {
                id,
                outcome: Err((code, message.to_owned())),
            });
        }
    } else if let Some(result) = map.remove("result") {
        return Ok(Response {
            id,
            outcome: Ok(result),
        });
    }
    Err(ProtocolError::NoResult {
        id,
        snippet: snippet(&Value::Object(map)),
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn snippet(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_has_numeric_id_and_object_params() {
        let params = params_object("bdev_get_bdevs", Some(json!({"name": "aio0"}))).unwrap();
        let bytes = encode_request(7, "bdev_get_bdevs", params.as_ref());
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": 7, "method": "bdev_get_bdevs", "params": {"name": "aio0"}})
        );
    }

    #[test]
    fn request_without_params_omits_the_key() {
        let bytes = encode_request(1, "spdk_get_version", None);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"method":"spdk_get_version"}"#
        );
    }

    #[test]
    fn non_object_params_are_refused() {
        let err = params_object("bdev_lvol_create", Some(json!(["lvs0", "t", 8]))).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::ParamsNotObject {
                method: "bdev_lvol_create".into(),
                found: "an array"
            }
        );
        assert!(params_object("x", Some(json!("x"))).is_err());
        assert_eq!(params_object("x", Some(Value::Null)).unwrap(), None);
    }

    #[test]
    fn decodes_result_and_error() {
        let ok = decode_response(json!({"jsonrpc":"2.0","id":3,"result":true})).unwrap();
        assert_eq!(
            ok,
            Response {
                id: 3,
                outcome: Ok(json!(true))
            }
        );
        let err = decode_response(
            json!({"jsonrpc":"2.0","id":4,"error":{"code":-19,"message":"No such device"}}),
        )
        .unwrap();
        assert_eq!(err.outcome, Err((-19, "No such device".to_owned())));
        // A null result is still a result.
        let null = decode_response(json!({"id":5,"result":null})).unwrap();
        assert_eq!(null.outcome, Ok(Value::Null));
    }

    #[test]
    fn answers_we_cannot_match_are_errors() {
        let null_id =
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}});
        assert!(matches!(
            decode_response(null_id),
            Err(ProtocolError::BadId { .. })
        ));
        let string_id = json!({"jsonrpc":"2.0","id":"abc","result":1});
        assert!(matches!(
            decode_response(string_id),
            Err(ProtocolError::BadId { .. })
        ));
        assert!(matches!(
            decode_response(json!([1])),
            Err(ProtocolError::NotAnObject { .. })
        ));
        let neither = json!({"id": 2});
        assert!(matches!(
            decode_response(neither),
            Err(ProtocolError::NoResult { id: 2, .. })
        ));
        let bad_error = json!({"id": 2, "error": {"code": "x"}});
        assert!(matches!(
            decode_response(bad_error),
            Err(ProtocolError::NoResult { .. })
        ));
    }

    #[test]
    fn object_prefers_name_keys() {
        let p = json!({"lvs_name": "lvs0", "lvol_name": "t", "size_in_mib": 8});
        assert_eq!(object_of(p.as_object()), Some("t".into()));
        let p = json!({"nqn": "nqn.x", "namespace": {"bdev_name": "b"}});
        assert_eq!(object_of(p.as_object()), Some("nqn.x".into()));
        assert_eq!(object_of(None), None);
    }
}
