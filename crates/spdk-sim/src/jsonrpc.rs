//! JSON-RPC framing and envelopes exactly as SPDK v24.09's server handles them.
//!
//! * Requests need no delimiter: the byte stream is a sequence of concatenated JSON values,
//!   a partial value is buffered until complete, several may arrive in one read.
//! * Invalid JSON: the connection is closed without an answer.
//! * Envelope errors (wrong `jsonrpc`, missing `method`, object id, batch array) answer
//!   -32600 with `"id":null`; a `params` that is neither object nor array answers -32600 with the id.
//! * Answers are one compact JSON object followed by `\n`.
//! * Notifications (no `id` or `"id":null`) are executed, and answered the way v24.09 does:
//!   the object without its closing `}` and without the newline (an SPDK bug that corrupts the
//!   stream; clients must never send notifications, and this lets their tests notice).

use crate::json::J;
use crate::rpc_error::RpcError;
use serde_json::Value;

/// Upper bound for one buffered request; beyond it the connection is closed.
pub const MAX_BUFFERED: usize = 64 * 1024 * 1024;

/// The result of looking for the next request in the buffered bytes.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A complete JSON value.
    Value(Value),
    /// The buffer holds nothing or only the start of a value.
    NeedMore,
    /// The bytes are not JSON: SPDK closes the connection.
    Invalid,
}

/// Splits a byte stream into JSON values.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet consumed.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete value off the front of the buffer.
    pub fn next_frame(&mut self) -> Frame {
        let start = self
            .buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.buf.len());
        self.buf.drain(..start);
        if self.buf.is_empty() {
            return Frame::NeedMore;
        }
        let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let used = stream.byte_offset();
                self.buf.drain(..used);
                Frame::Value(v)
            }
            Some(Err(e)) if e.is_eof() => Frame::NeedMore,
            Some(Err(_)) => Frame::Invalid,
            None => Frame::NeedMore,
        }
    }
}

/// A request envelope after validation.
#[derive(Debug, PartialEq)]
pub enum Envelope {
    /// A call to dispatch.
    Call {
        /// The id to echo; `None` for a notification.
        id: Option<Value>,
        /// Method name.
        method: String,
        /// `params` (an object or an array) if present.
        params: Option<Value>,
    },
    /// Answer -32600 "Invalid request" with this id (null unless the id was already accepted).
    Invalid {
        /// The id to put in the error answer.
        id: Value,
    },
}

/// Validates a request value the way SPDK's server does.
#[must_use]
pub fn parse_envelope(value: Value) -> Envelope {
    let invalid_null = Envelope::Invalid { id: Value::Null };
    let Value::Object(mut map) = value else {
        return invalid_null;
    };
    if map
        .keys()
        .any(|k| !matches!(k.as_str(), "jsonrpc" | "method" | "params" | "id"))
    {
        return invalid_null;
    }
    match map.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => return invalid_null,
    }
    let method = match map.remove("method") {
        Some(Value::String(m)) => m,
        _ => return invalid_null,
    };
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v),
        Some(_) => return invalid_null,
    };
    let params = match map.remove("params") {
        None => None,
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        Some(_) => {
            return Envelope::Invalid {
                id: id.unwrap_or(Value::Null),
            };
        }
    };
    Envelope::Call { id, method, params }
}

/// Encodes an answer. `id` is `None` for a notification, which gets v24.09's truncated answer.
#[must_use]
pub fn encode_response(id: Option<&Value>, outcome: &Result<J, RpcError>) -> Vec<u8> {
    let id_json = id.map_or(J::Null, J::from_value);
    let body = match outcome {
        Ok(result) => J::obj()
            .with("jsonrpc", "2.0")
            .with("id", id_json)
            .with("result", result.clone()),
        Err(e) => J::obj()
            .with("jsonrpc", "2.0")
            .with("id", id_json)
            .with("error", error_object(e)),
    };
    let mut text = body.to_compact();
    if id.is_none() {
        // v24.09: the closing brace and the newline never make it onto the wire.
        text.pop();
        return text.into_bytes();
    }
    text.push('\n');
    text.into_bytes()
}

/// Encodes the -32600 answer to an invalid envelope (always complete, newline-terminated).
#[must_use]
pub fn encode_invalid(id: &Value) -> Vec<u8> {
    let body = J::obj()
        .with("jsonrpc", "2.0")
        .with("id", J::from_value(id))
        .with("error", error_object(&RpcError::invalid_request()));
    let mut text = body.to_compact();
    text.push('\n');
    text.into_bytes()
}

fn error_object(e: &RpcError) -> J {
    J::obj()
        .with("code", e.code)
        .with("message", e.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frames(input: &str) -> Vec<Frame> {
        let mut s = Splitter::default();
        s.push(input.as_bytes());
        let mut out = Vec::new();
        for _ in 0..10 {
            match s.next_frame() {
                Frame::NeedMore => break,
                f @ Frame::Invalid => {
                    out.push(f);
                    break;
                }
                f => out.push(f),
            }
        }
        out
    }

    #[test]
    fn concatenated_values_without_delimiter() {
        let f = frames(r#"{"id":1}{"id":2}  {"id":3}"#);
        assert_eq!(f.len(), 3);
        assert_eq!(f[2], Frame::Value(json!({"id":3})));
    }

    #[test]
    fn partial_value_waits_for_the_rest() {
        let mut s = Splitter::default();
        s.push(br#"{"jsonrpc":"2.0","method":"spdk_get_version","id":101"#);
        assert_eq!(s.next_frame(), Frame::NeedMore);
        s.push(b"}");
        assert!(matches!(s.next_frame(), Frame::Value(_)));
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn invalid_json_is_detected() {
        assert_eq!(frames(r#"{"id":102,}"#), vec![Frame::Invalid]);
    }

    #[test]
    fn envelope_rules_from_the_transcripts() {
        let call = |v: Value| parse_envelope(v);
        assert!(matches!(
            call(json!({"method":"m","id":103})),
            Envelope::Call { .. }
        ));
        assert_eq!(
            call(json!({"jsonrpc":"1.0","method":"m","id":104})),
            Envelope::Invalid { id: Value::Null }
        );
        assert_eq!(
            call(json!({"jsonrpc":"2.0","id":105})),
            Envelope::Invalid { id: Value::Null }
        );
        assert_eq!(
            call(json!({"method":"m","id":106,"params":"x"})),
            Envelope::Invalid { id: json!(106) }
        );
        assert_eq!(
            call(json!([{"method":"m","id":107}])),
            Envelope::Invalid { id: Value::Null }
        );
        assert_eq!(
            call(json!({"method":"m","id":{"a":1}})),
            Envelope::Invalid { id: Value::Null }
        );
        assert_eq!(
            call(json!({"method":"m","id":1,"extra":1})),
            Envelope::Invalid { id: Value::Null }
        );
        match call(json!({"method":"m","id":null})) {
            Envelope::Call { id, .. } => assert!(id.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_are_compact_lines() {
        let ok = encode_response(Some(&json!(5)), &Ok(J::Bool(true)));
        assert_eq!(ok, b"{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":true}\n");
        let err = encode_response(Some(&json!("x")), &Err(RpcError::method_not_found()));
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}\n"
        );
        let inv = encode_invalid(&Value::Null);
        assert!(inv.ends_with(b"\"message\":\"Invalid request\"}}\n"));
    }

    #[test]
    fn notifications_get_the_truncated_answer_of_v24_09() {
        let n = encode_response(None, &Ok(J::Bool(true)));
        assert_eq!(n, b"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":true");
    }
}
