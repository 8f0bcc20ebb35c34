//! Errors of the client: transport failures and SPDK's own error answers.
//!
//! SPDK answers a failed call with `{"code": int, "message": str}`. The code is either a JSON-RPC
//! code (-326xx) or a negative errno, and the same kind of failure comes with different codes
//! depending on the module that handled the call (decode failures are -32603 for bdev/lvol/aio,
//! -32700 for raid and -32602 for nvmf; several lvol errors come as -32602/-32603 with the errno
//! text only in the message). [`classify`] therefore looks at the code *and* the message; the
//! original code and message are always kept in [`RpcError`].
//!
//! What v24.09 sends and how it is classified (from fixtures/spdk/error_table.md):
//!
//! | kind | codes and messages |
//! |---|---|
//! | `NotFound` | -2, -19 (aio/lvol/bdev/nvme), -19 "raid bdev X not found" |
//! | `AlreadyExists` | -17 "File exists", -32602 "File exists" (snapshot), -114 (nvme attach), -32603 "Transport type 'TCP' already exists" |
//! | `PermissionDenied` | -1 (second lvstore on a bdev, raid member claimed, call before init), -32603 "Operation not permitted" (delete a snapshot with clones) |
//! | `InvalidParams` | -22, -32602 "Invalid parameters" (nvmf: also unknown bdev/NQN!), -32603/-32700 "spdk_json_decode_object failed" |
//! | `NoSpace` | -32602 "No space left on device" (lvol create/resize) |
//! | `Timeout` | -110 (`bdev_get_bdevs` with `timeout`) |
//! | `MethodNotFound` | -32601 |
//! | `Other` | -32603 `"Unable to create subsystem <nqn>"` (duplicate *or* malformed NQN), -12, -32600 |
//!
//! The executor should treat "already exists" as success only after reading the object back
//! and finding it matches what it wanted.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::version::SpdkVersion;

/// Result of every call of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure spdk_tgt reported, independent of the module-specific code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named object does not exist (`-ENOENT`, `-ENODEV`, "raid bdev X not found").
    NotFound,
    /// The object exists already (`-EEXIST`, `-EALREADY`, "File exists", "already exists").
    AlreadyExists,
    /// The object is in use (`-EBUSY`).
    Busy,
    /// The operation is not allowed in the current state (`-EPERM`, "Operation not permitted"),
    /// e.g. a second lvstore on a bdev, a raid member already claimed, deleting a snapshot
    /// that still has clones.
    PermissionDenied,
    /// The parameters were refused: `-EINVAL`, -32602, and the decode failures (-32603/-32700
    /// "spdk_json_decode_object failed"). Note: nvmf methods report an unknown NQN or bdev as
    /// -32602 "Invalid parameters" too, so for nvmf this kind may also mean "not found".
    InvalidParams,
    /// The method does not exist in this spdk_tgt (-32601).
    MethodNotFound,
    /// Out of space (`-ENOSPC`, "No space left on device" with -32602).
    NoSpace,
    /// spdk_tgt gave up waiting (`-ETIMEDOUT`), e.g. `bdev_get_bdevs` with a `timeout`.
    Timeout,
    /// Anything else, e.g. -32603 `"Unable to create subsystem <nqn>"` (which SPDK returns both
    /// for a duplicate and for a malformed NQN) or `-ENOMEM`.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::NotFound => "not found",
            Self::AlreadyExists => "already exists",
            Self::Busy => "busy",
            Self::PermissionDenied => "not permitted",
            Self::InvalidParams => "invalid parameters",
            Self::MethodNotFound => "method not found",
            Self::NoSpace => "no space",
            Self::Timeout => "timed out",
            Self::Other => "other error",
        };
        f.write_str(s)
    }
}

/// An error answer from spdk_tgt, with the method, the object it named and the raw code and
/// message kept as received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method}{} failed: {message} (code {code}, {kind})", object_suffix(.object))]
pub struct RpcError {
    /// The JSON-RPC method that failed.
    pub method: String,
    /// The main object named in the request (bdev, lvstore, NQN...), if any.
    pub object: Option<String>,
    /// The code as sent by SPDK (JSON-RPC code or negative errno).
    pub code: i64,
    /// The message as sent by SPDK.
    pub message: String,
    /// The classified kind, see [`classify`].
    pub kind: ErrorKind,
}

fn object_suffix(object: &Option<String>) -> String {
    object.as_ref().map(|o| format!(" {o}")).unwrap_or_default()
}

impl RpcError {
    /// Builds an error answer for `method` and classifies it.
    pub fn new(
        method: impl Into<String>,
        object: Option<String>,
        code: i64,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let kind = classify(code, &message);
        Self {
            method: method.into(),
            object,
            code,
            message,
            kind,
        }
    }
}

/// Every failure of a call.
///
/// Transport variants name the socket; [`Error::ConnectionLost`] says whether the request had
/// been handed to spdk_tgt (`sent`): when it had, the outcome of a write is unknown and the
/// caller must read the state back before retrying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// spdk_tgt answered with an error.
    #[error(transparent)]
    Rpc(#[from] RpcError),

    /// The socket does not exist (spdk_tgt not running, or not yet listening).
    #[error("spdk_tgt socket {} does not exist (is spdk_tgt running?)", .socket.display())]
    SocketMissing {
        /// The socket path.
        socket: PathBuf,
    },

    /// The socket exists but connecting failed (e.g. refused: a stale socket file).
    #[error("cannot connect to spdk_tgt at {}: {source}", .socket.display())]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The connection closed (or failed) before the answer to `method` arrived.
    #[error(
        "connection to spdk_tgt at {} was lost during {method}: {}",
        .socket.display(),
        lost_detail(*.sent)
    )]
    ConnectionLost {
        /// The socket path.
        socket: PathBuf,
        /// The method whose answer is missing.
        method: String,
        /// Whether the whole request had been written to the socket. `false` means spdk_tgt
        /// cannot have executed it.
        sent: bool,
    },

    /// spdk_tgt sent something that is not a JSON-RPC answer we can match (invalid JSON, a
    /// response without a numeric id...). The connection is dropped; like
    /// [`Error::ConnectionLost`] with `sent: true`, the outcome of `method` is unknown.
    #[error(
        "spdk_tgt at {} sent an invalid response while {method} was pending \
         (its outcome is unknown): {detail}",
        .socket.display()
    )]
    InvalidResponse {
        /// The socket path.
        socket: PathBuf,
        /// The method that was waiting.
        method: String,
        /// What was wrong.
        detail: String,
    },

    /// No answer to `method` within the call's timeout. The request was sent: its outcome is
    /// unknown. A late answer is discarded.
    #[error(
        "spdk_tgt at {} did not answer {method} within {timeout:?} (its outcome is unknown)",
        .socket.display()
    )]
    Timeout {
        /// The socket path.
        socket: PathBuf,
        /// The method.
        method: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// spdk_tgt answered `false`: the operation did not take effect.
    #[error(
        "spdk_tgt at {} answered false to {method}{}: it did not take effect",
        .socket.display(),
        object_suffix(.object)
    )]
    Refused {
        /// The socket path.
        socket: PathBuf,
        /// The method.
        method: String,
        /// The main object named in the request.
        object: Option<String>,
    },

    /// The params for `method` could not be encoded, or are not a JSON object.
    #[error("cannot encode the params of {method}: {detail}")]
    Encode {
        /// The method.
        method: String,
        /// Why.
        detail: String,
    },

    /// The result of `method` did not have the expected shape.
    #[error("cannot decode the result of {method} from spdk_tgt at {}: {source}", .socket.display())]
    Decode {
        /// The socket path.
        socket: PathBuf,
        /// The method.
        method: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A parameter was set that the connected spdk_tgt does not know, and dropping it would
    /// change the meaning of the request. Nothing was sent.
    #[error(transparent)]
    Unsupported(Box<UnsupportedParam>),

    /// [`crate::SpdkClient::wait_ready`] ran out of time.
    #[error("spdk_tgt at {} was not ready within {waited:?}: {last}", .socket.display())]
    NotReady {
        /// The socket path.
        socket: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The last failure seen.
        #[source]
        last: Box<Error>,
    },
}

/// Details of [`Error::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{method} parameter {param} needs SPDK {required} or newer; spdk_tgt at {} is {connected}",
    .socket.display()
)]
pub struct UnsupportedParam {
    /// The socket path.
    pub socket: PathBuf,
    /// The method.
    pub method: String,
    /// The parameter.
    pub param: String,
    /// The first version that accepts it.
    pub required: SpdkVersion,
    /// The version of the connected target.
    pub connected: SpdkVersion,
}

fn lost_detail(sent: bool) -> &'static str {
    if sent {
        "the request was sent, so whether it took effect is unknown; read the state back before retrying"
    } else {
        "the request was not sent, so it did not take effect"
    }
}

impl Error {
    /// The kind of an SPDK error answer; `None` for transport and local errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Rpc(e) => Some(e.kind),
            _ => None,
        }
    }

    /// The SPDK error answer, if this is one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// True for an SPDK answer of kind [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind() == Some(ErrorKind::NotFound)
    }

    /// True for an SPDK answer of kind [`ErrorKind::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        self.kind() == Some(ErrorKind::AlreadyExists)
    }

    /// True when the request may have been executed but no answer was received: the caller
    /// must read the state back before deciding to retry a write.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::ConnectionLost { sent: true, .. }
                | Self::InvalidResponse { .. }
                | Self::Timeout { .. }
        )
    }

    /// True for failures of the connection (as opposed to an answer from spdk_tgt or a local
    /// encoding problem).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::SocketMissing { .. }
                | Self::Connect { .. }
                | Self::ConnectionLost { .. }
                | Self::InvalidResponse { .. }
                | Self::Timeout { .. }
                | Self::NotReady { .. }
        )
    }
}

/// Maps an SPDK error code and message to an [`ErrorKind`].
///
/// A negative errno code (> -1000) is authoritative. JSON-RPC codes (-326xx), which several
/// modules use with the errno text in the message, are refined by the message; what remains
/// falls back to the code's generic meaning.
pub fn classify(code: i64, message: &str) -> ErrorKind {
    if code == -32601 {
        return ErrorKind::MethodNotFound;
    }
    if let Some(kind) = errno_kind(code) {
        return kind;
    }
    if let Some(kind) = message_kind(message) {
        return kind;
    }
    match code {
        -32602 | -32700 => ErrorKind::InvalidParams,
        _ => ErrorKind::Other,
    }
}

/// Linux errno values that SPDK returns negated.
fn errno_kind(code: i64) -> Option<ErrorKind> {
    let kind = match code {
        -1 | -13 => ErrorKind::PermissionDenied, // EPERM, EACCES
        -2 | -6 | -19 => ErrorKind::NotFound,    // ENOENT, ENXIO, ENODEV
        -16 => ErrorKind::Busy,                  // EBUSY
        -17 | -114 => ErrorKind::AlreadyExists,  // EEXIST, EALREADY
        -22 => ErrorKind::InvalidParams,         // EINVAL
        -28 => ErrorKind::NoSpace,               // ENOSPC
        -110 => ErrorKind::Timeout,              // ETIMEDOUT
        _ => return None,
    };
    Some(kind)
}

/// Kinds recognised from message text (strerror texts and SPDK's own phrases).
fn message_kind(message: &str) -> Option<ErrorKind> {
    const TABLE: &[(&str, ErrorKind)] = &[
        ("no such device", ErrorKind::NotFound),
        ("no such file or directory", ErrorKind::NotFound),
        ("not found", ErrorKind::NotFound),
        ("does not exist", ErrorKind::NotFound),
        ("file exists", ErrorKind::AlreadyExists),
        ("already exists", ErrorKind::AlreadyExists),
        ("operation already in progress", ErrorKind::AlreadyExists),
        ("no space left on device", ErrorKind::NoSpace),
        ("operation not permitted", ErrorKind::PermissionDenied),
        ("permission denied", ErrorKind::PermissionDenied),
        ("device or resource busy", ErrorKind::Busy),
        ("timed out", ErrorKind::Timeout),
        ("spdk_json_decode_object failed", ErrorKind::InvalidParams),
        ("invalid argument", ErrorKind::InvalidParams),
        ("invalid parameters", ErrorKind::InvalidParams),
        ("requires no parameters", ErrorKind::InvalidParams),
    ];
    let lower = message.to_ascii_lowercase();
    TABLE
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_code_wins_over_message() {
        // -19 with a message that names no errno text.
        assert_eq!(
            classify(-19, "Failed to remove base bdev from raid bdev"),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(
                -1,
                "Failed to create RAID bdev raidX: Operation not permitted"
            ),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn json_rpc_codes_are_refined_by_message() {
        assert_eq!(
            classify(-32602, "No space left on device"),
            ErrorKind::NoSpace
        );
        assert_eq!(classify(-32602, "File exists"), ErrorKind::AlreadyExists);
        assert_eq!(
            classify(-32603, "Operation not permitted"),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            classify(-32603, "Transport type 'TCP' already exists"),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            classify(-32603, "spdk_json_decode_object failed"),
            ErrorKind::InvalidParams
        );
        assert_eq!(
            classify(-32700, "spdk_json_decode_object failed"),
            ErrorKind::InvalidParams
        );
    }

    #[test]
    fn generic_codes_fall_back() {
        assert_eq!(classify(-32602, "something new"), ErrorKind::InvalidParams);
        assert_eq!(
            classify(-32603, "Unable to create subsystem x"),
            ErrorKind::Other
        );
        assert_eq!(classify(-12, "Cannot allocate memory"), ErrorKind::Other);
        assert_eq!(
            classify(-32601, "Method not found"),
            ErrorKind::MethodNotFound
        );
        assert_eq!(classify(-16, "whatever"), ErrorKind::Busy);
    }

    #[test]
    fn display_names_method_object_code_and_message() {
        let e = RpcError::new(
            "bdev_lvol_delete",
            Some("lvs0/x".into()),
            -19,
            "No such device",
        );
        assert_eq!(
            e.to_string(),
            "bdev_lvol_delete lvs0/x failed: No such device (code -19, not found)"
        );
    }

    #[test]
    fn outcome_unknown_only_when_sent() {
        let lost = |sent| Error::ConnectionLost {
            socket: "/s".into(),
            method: "m".into(),
            sent,
        };
        assert!(lost(true).outcome_unknown());
        assert!(!lost(false).outcome_unknown());
        assert!(lost(true).to_string().contains("unknown"));
        assert!(lost(false).to_string().contains("not sent"));
    }
}
