//! The `{code, message}` error SPDK puts in a JSON-RPC error response, and errno texts.
//!
//! SPDK answers with JSON-RPC codes or negative errno values, and the message is usually
//! `spdk_strerror(errno)`; [`strerror`] gives the glibc texts for the errnos the simulator uses.

use thiserror::Error;

/// JSON-RPC "Parse error" (also used by the raid module for parameter decode failures).
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid request".
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC "Method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "Invalid params".
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC "Internal error" (also bdev/lvol/aio parameter decode failures).
pub const INTERNAL_ERROR: i64 = -32603;

/// errno values used by the simulator (positive, as in `<errno.h>`).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Input/output error.
    pub const EIO: i32 = 5;
    /// Cannot allocate memory.
    pub const ENOMEM: i32 = 12;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// No such device.
    pub const ENODEV: i32 = 19;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// Connection timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// Operation already in progress.
    pub const EALREADY: i32 = 114;
}

/// The glibc `strerror` text of `errno` (positive), as SPDK's `spdk_strerror` prints it.
#[must_use]
pub fn strerror(errno: i32) -> String {
    let text = match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        3 => "No such process",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "No such device or address",
        9 => "Bad file descriptor",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        16 => "Device or resource busy",
        17 => "File exists",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        24 => "Too many open files",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        36 => "File name too long",
        95 => "Operation not supported",
        98 => "Address already in use",
        99 => "Cannot assign requested address",
        104 => "Connection reset by peer",
        110 => "Connection timed out",
        111 => "Connection refused",
        113 => "No route to host",
        114 => "Operation already in progress",
        _ => return format!("Unknown error {errno}"),
    };
    text.to_owned()
}

/// An error answer: `{"code": code, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    /// JSON-RPC code or negative errno.
    pub code: i64,
    /// Human-readable message, exactly as SPDK words it.
    pub message: String,
}

impl RpcError {
    /// An error with an explicit code and message.
    #[must_use]
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `{code: -errno, message: strerror(errno)}`: the most common SPDK shape.
    #[must_use]
    pub fn errno(errno: i32) -> Self {
        Self {
            code: -i64::from(errno),
            message: strerror(errno),
        }
    }

    /// `{code, message: strerror(errno)}`: a JSON-RPC code with the errno text only in the message.
    #[must_use]
    pub fn coded_errno(code: i64, errno: i32) -> Self {
        Self {
            code,
            message: strerror(errno),
        }
    }

    /// -32601 "Method not found".
    #[must_use]
    pub fn method_not_found() -> Self {
        Self::new(METHOD_NOT_FOUND, "Method not found")
    }

    /// -32600 "Invalid request".
    #[must_use]
    pub fn invalid_request() -> Self {
        Self::new(INVALID_REQUEST, "Invalid request")
    }

    /// -32602 "Invalid parameters" (the nvmf modules' generic failure).
    #[must_use]
    pub fn invalid_parameters() -> Self {
        Self::new(INVALID_PARAMS, "Invalid parameters")
    }
}

/// Maps an I/O error to the negative-errno error SPDK would report for it.
#[must_use]
pub fn from_io(err: &std::io::Error) -> RpcError {
    RpcError::errno(err.raw_os_error().unwrap_or(errno::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_errors_match_the_transcripts() {
        assert_eq!(
            RpcError::errno(errno::ENODEV),
            RpcError::new(-19, "No such device")
        );
        assert_eq!(
            RpcError::errno(errno::EEXIST),
            RpcError::new(-17, "File exists")
        );
        assert_eq!(
            RpcError::errno(errno::EPERM),
            RpcError::new(-1, "Operation not permitted")
        );
        assert_eq!(
            RpcError::errno(errno::ENOENT).message,
            "No such file or directory"
        );
        assert_eq!(
            RpcError::errno(errno::ETIMEDOUT).message,
            "Connection timed out"
        );
        assert_eq!(
            RpcError::coded_errno(INVALID_PARAMS, errno::ENOSPC),
            RpcError::new(-32602, "No space left on device")
        );
    }

    #[test]
    fn unknown_errno_has_glibc_shape() {
        assert_eq!(strerror(4242), "Unknown error 4242");
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(from_io(&e).code, -2);
    }
}
