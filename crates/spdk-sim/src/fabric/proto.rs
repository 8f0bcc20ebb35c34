//! The simulator's own stand-in for NVMe/TCP: newline-delimited JSON messages.
//!
//! The host connects to a listener, sends [`ToTarget::Connect`], and gets either
//! [`ToHost::Connected`] (controller id and the subsystem's namespaces) or
//! [`ToHost::Rejected`]. The connection then stays open; the target pushes
//! [`ToHost::Namespaces`] when the namespace list or sizes change, and closes it when the
//! subsystem, listener or host permission goes away. Either side notices the other's death by
//! EOF (or by TCP keep-alive when a link is cut silently).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Host to target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToTarget {
    /// Fabrics CONNECT.
    Connect {
        /// Subsystem NQN.
        subnqn: String,
        /// Host NQN.
        hostnqn: String,
        /// Host id (a UUID string).
        hostid: String,
    },
}

/// A namespace as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsInfo {
    /// Namespace id.
    pub nsid: u32,
    /// Namespace UUID (the exported bdev's UUID unless overridden).
    pub uuid: Uuid,
    /// Block size.
    pub block_size: u32,
    /// Size in blocks.
    pub num_blocks: u64,
}

/// Target to host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToHost {
    /// CONNECT accepted.
    Connected {
        /// Controller id.
        cntlid: u16,
        /// Subsystem serial number.
        serial_number: String,
        /// Subsystem model number.
        model_number: String,
        /// Firmware revision (the target's SPDK version, `24.09`).
        firmware_revision: String,
        /// Namespaces.
        namespaces: Vec<NsInfo>,
    },
    /// CONNECT refused (unknown subsystem, not listening there, host not allowed).
    Rejected {
        /// Why, for logs.
        reason: String,
    },
    /// The namespace list changed.
    Namespaces {
        /// Current namespaces.
        namespaces: Vec<NsInfo>,
    },
}

/// Encodes a message as one line.
#[must_use]
pub fn line<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec(msg).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_roundtrip_as_lines() {
        let m = ToHost::Connected {
            cntlid: 1,
            serial_number: "S".into(),
            model_number: "M".into(),
            firmware_revision: "24.09".into(),
            namespaces: vec![NsInfo {
                nsid: 1,
                uuid: Uuid::nil(),
                block_size: 512,
                num_blocks: 8,
            }],
        };
        let bytes = line(&m);
        assert_eq!(bytes.last(), Some(&b'\n'));
        let back: ToHost = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
        let c: ToTarget =
            serde_json::from_str(r#"{"op":"connect","subnqn":"a","hostnqn":"b","hostid":"c"}"#)
                .unwrap();
        assert!(matches!(c, ToTarget::Connect { .. }));
        assert!(serde_json::from_str::<ToTarget>(r#"{"op":"connect","subnqn":"a"}"#).is_err());
    }
}
