//! go-plugin's handshake: the magic cookie check, protocol version
//! negotiation, and the line printed to stdout that tells Terraform where to
//! connect.

use base64::Engine;

/// Protocol version of go-plugin itself.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// The Terraform plugin protocol major version this crate serves.
pub const APP_PROTOCOL_VERSION: u32 = 6;

/// Environment variable Terraform sets when it launches a provider.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";

/// The value Terraform sets it to.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Environment variable listing the protocol versions the host speaks.
pub const PROTOCOL_VERSIONS_KEY: &str = "PLUGIN_PROTOCOL_VERSIONS";

/// Environment variable with the host's client certificate (PEM), set when
/// the host wants automatic mutual TLS.
pub const CLIENT_CERT_KEY: &str = "PLUGIN_CLIENT_CERT";

/// Environment variable naming a directory for the plugin's socket.
pub const UNIX_SOCKET_DIR_KEY: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// What go-plugin prints when a plugin binary is run by hand.
pub const NOT_A_PLUGIN_MESSAGE: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// Errors of the handshake.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The magic cookie is missing or wrong: not launched by Terraform.
    #[error(
        "not launched by Terraform (the {MAGIC_COOKIE_KEY} environment variable is missing or wrong)"
    )]
    NotLaunchedByHost,
}

/// Checks the magic cookie value from the environment.
pub fn check_magic_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    if value == Some(MAGIC_COOKIE_VALUE) {
        Ok(())
    } else {
        Err(HandshakeError::NotLaunchedByHost)
    }
}

/// The outcome of protocol negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    /// The version to announce.
    pub version: u32,
    /// Whether the host listed that version (if not, the host will refuse
    /// the plugin with its own message, as with go-plugin).
    pub host_supports_it: bool,
    /// Entries of the host's list that are not numbers.
    pub invalid_entries: Vec<String>,
}

/// Picks the protocol version, given `PLUGIN_PROTOCOL_VERSIONS` (e.g.
/// `"5,6"`) and the versions this plugin serves.
///
/// Like go-plugin: the highest version both sides speak; if there is none
/// (or the host sent no list), the plugin's lowest version, leaving it to the
/// host to report the mismatch.
pub fn negotiate_protocol(host_versions: Option<&str>, served: &[u32]) -> Negotiation {
    let mut invalid_entries = Vec::new();
    let mut host: Vec<u32> = Vec::new();
    for entry in host_versions
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match entry.parse() {
            Ok(v) => host.push(v),
            Err(_) => invalid_entries.push(entry.to_owned()),
        }
    }
    let mut served = served.to_vec();
    served.sort_unstable_by(|a, b| b.cmp(a));
    match served.iter().find(|v| host.contains(v)) {
        Some(&version) => Negotiation {
            version,
            host_supports_it: true,
            invalid_entries,
        },
        None => Negotiation {
            version: served.last().copied().unwrap_or(APP_PROTOCOL_VERSION),
            host_supports_it: host_versions.is_none(),
            invalid_entries,
        },
    }
}

/// The handshake line, with its trailing newline:
/// `CORE|APP|unix|<socket path>|grpc|<server cert>`, where the certificate is
/// the DER of the server certificate in unpadded standard base64 (empty
/// without TLS).
pub fn handshake_line(
    app_version: u32,
    socket_path: &str,
    server_cert_der: Option<&[u8]>,
) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{app_version}|unix|{socket_path}|grpc|{cert}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_cookie() {
        assert_eq!(check_magic_cookie(Some(MAGIC_COOKIE_VALUE)), Ok(()));
        assert_eq!(
            check_magic_cookie(None),
            Err(HandshakeError::NotLaunchedByHost)
        );
        assert_eq!(
            check_magic_cookie(Some("nope")),
            Err(HandshakeError::NotLaunchedByHost)
        );
    }

    #[test]
    fn negotiation_picks_highest_common_version() {
        let n = negotiate_protocol(Some("5,6"), &[6]);
        assert_eq!((n.version, n.host_supports_it), (6, true));
        let n = negotiate_protocol(Some("6,5,7"), &[5, 6]);
        assert_eq!((n.version, n.host_supports_it), (6, true));
        let n = negotiate_protocol(Some("5,x"), &[5, 6]);
        assert_eq!((n.version, n.host_supports_it), (5, true));
        assert_eq!(n.invalid_entries, vec!["x".to_owned()]);
    }

    #[test]
    fn negotiation_without_common_version_falls_back_to_lowest() {
        let n = negotiate_protocol(Some("4,5"), &[6]);
        assert_eq!((n.version, n.host_supports_it), (6, false));
        let n = negotiate_protocol(None, &[6, 7]);
        assert_eq!((n.version, n.host_supports_it), (6, true));
    }

    #[test]
    fn handshake_line_format() {
        assert_eq!(
            handshake_line(6, "/tmp/plugin1/sock", None),
            "1|6|unix|/tmp/plugin1/sock|grpc|\n"
        );
        // 4 bytes -> 6 base64 characters without "==" padding.
        let line = handshake_line(6, "/s", Some(&[0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(line, "1|6|unix|/s|grpc|3q2+7w\n");
        let fields: Vec<&str> = line.trim_end().split('|').collect();
        assert_eq!(fields.len(), 6);
    }
}
