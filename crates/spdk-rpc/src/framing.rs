//! Splits the byte stream from spdk_tgt into JSON values.
//!
//! spdk_tgt writes each answer as one compact object followed by `\n`, but nothing here relies
//! on the newline: answers may arrive split across reads or several in one read, with or
//! without whitespace between them. The decoder scans bytes once (tracking nesting and strings)
//! to find where a top-level object or array ends, and only then parses that slice, so a large
//! answer arriving in many reads costs linear time.

use serde_json::Value;

/// Upper bound for one JSON value from the target; beyond it the stream is considered corrupt.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// Why the stream cannot be decoded any further. After an error the decoder must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Something other than an object or array at the top level.
    #[error("expected a JSON object, found byte 0x{byte:02x} at offset {offset}")]
    UnexpectedByte {
        /// The byte.
        byte: u8,
        /// Its offset within the current value.
        offset: usize,
    },
    /// A closing bracket that does not match.
    #[error("unbalanced JSON brackets at offset {offset}")]
    Unbalanced {
        /// Offset within the current value.
        offset: usize,
    },
    /// The delimited value is not valid JSON.
    #[error("invalid JSON: {0}")]
    Invalid(String),
    /// A value larger than the configured limit.
    #[error("JSON value larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Incremental decoder: [`Decoder::push`] bytes as they arrive, then take values with
/// [`Decoder::next_value`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for the current value.
    scanned: usize,
    /// Nesting depth of the current value (0 = not inside a value yet).
    depth: usize,
    /// Expected closing brackets of the current value, innermost last.
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    max_value_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_VALUE_BYTES)
    }
}

impl Decoder {
    /// A decoder refusing values larger than `max_value_bytes`.
    pub fn new(max_value_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            depth: 0,
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            max_value_bytes,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a value (whitespace included).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete value, `Ok(None)` when more bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<Value>, FramingError> {
        if self.depth == 0 {
            // Skip whitespace between values.
            let start = self
                .buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.buf.len());
            self.buf.drain(..start);
            self.scanned = 0;
        }
        while self.scanned < self.buf.len() {
            let offset = self.scanned;
            let byte = self.buf[offset];
            self.scanned += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'{' | b'[' => {
                    self.depth += 1;
                    self.stack.push(if byte == b'{' { b'}' } else { b']' });
                }
                b'}' | b']' => {
                    if self.stack.pop() != Some(byte) {
                        return Err(FramingError::Unbalanced { offset });
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return self.finish_value().map(Some);
                    }
                }
                b'"' if self.depth > 0 => self.in_string = true,
                _ if self.depth == 0 => {
                    return Err(FramingError::UnexpectedByte { byte, offset });
                }
                _ => {}
            }
        }
        if self.buf.len() > self.max_value_bytes {
            return Err(FramingError::TooLarge {
                limit: self.max_value_bytes,
            });
        }
        Ok(None)
    }

    fn finish_value(&mut self) -> Result<Value, FramingError> {
        let end = self.scanned;
        let parsed = serde_json::from_slice(&self.buf[..end])
            .map_err(|e| FramingError::Invalid(e.to_string()));
        self.buf.drain(..end);
        self.scanned = 0;
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn drain(decoder: &mut Decoder) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = decoder.next_value().unwrap() {
            out.push(v);
        }
        out
    }

    const TWO: &str = concat!(
        r#"{"jsonrpc":"2.0","id":1,"result":{"s":"a}\"]{b","n":[1,{"x":[]}]}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-19,"message":"No such device"}}"#,
        "\n"
    );

    #[test]
    fn decodes_values_split_at_every_byte() {
        let bytes = TWO.as_bytes();
        for split in 0..=bytes.len() {
            let mut d = Decoder::default();
            d.push(&bytes[..split]);
            let mut got = drain(&mut d);
            d.push(&bytes[split..]);
            got.extend(drain(&mut d));
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0]["result"]["s"], json!("a}\"]{b"));
            assert_eq!(got[1]["error"]["code"], json!(-19));
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn decodes_byte_by_byte() {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in TWO.as_bytes() {
            d.push(std::slice::from_ref(b));
            got.extend(drain(&mut d));
        }
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn decodes_concatenated_values_without_newlines() {
        let mut d = Decoder::default();
        d.push(br#"{"id":1}{"id":2} [3] {"id":4}"#);
        let ids: Vec<Value> = drain(&mut d).into_iter().collect();
        assert_eq!(
            ids,
            vec![
                json!({"id":1}),
                json!({"id":2}),
                json!([3]),
                json!({"id":4})
            ]
        );
    }

    #[test]
    fn keeps_duplicate_keys_tolerantly() {
        let mut d = Decoder::default();
        d.push(br#"{"uuid":"a","uuid":"a","name":"r"}"#);
        let v = d.next_value().unwrap().unwrap();
        assert_eq!(v["uuid"], json!("a"));
    }

    #[test]
    fn rejects_top_level_scalars() {
        let mut d = Decoder::default();
        d.push(b"  42");
        assert_eq!(
            d.next_value(),
            Err(FramingError::UnexpectedByte {
                byte: b'4',
                offset: 0
            })
        );
    }

    #[test]
    fn rejects_mismatched_brackets() {
        let mut d = Decoder::default();
        d.push(b"{\"a\":[1}");
        assert!(matches!(
            d.next_value(),
            Err(FramingError::Unbalanced { .. })
        ));
    }

    #[test]
    fn rejects_invalid_json_inside_balanced_brackets() {
        let mut d = Decoder::default();
        d.push(b"{\"a\":1,}");
        assert!(matches!(d.next_value(), Err(FramingError::Invalid(_))));
    }

    #[test]
    fn truncated_notification_answer_then_next_answer_is_not_accepted_as_valid() {
        // v24.09 answers a notification without its final brace; the next answer follows.
        let mut d = Decoder::default();
        d.push(br#"{"jsonrpc":"2.0","id":null,"result":{"version":"SPDK v24.09"}"#);
        d.push(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":true}\n");
        // Still inside the unterminated object: nothing complete.
        assert_eq!(d.next_value(), Ok(None));
        d.push(b"}");
        assert!(matches!(d.next_value(), Err(FramingError::Invalid(_))));
    }

    #[test]
    fn refuses_values_over_the_limit() {
        let mut d = Decoder::new(16);
        d.push(b"{\"a\":\"0123456789abcdef\"");
        assert_eq!(d.next_value(), Err(FramingError::TooLarge { limit: 16 }));
    }
}
