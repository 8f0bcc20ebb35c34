//! Executor endpoints as users write them.
//!
//! - `unix:///run/v2engine/executor.sock`: the executor on this machine.
//! - `ssh://[user@]host[:port][/socket]`: through an SSH server on the executor's host,
//!   forwarding to its socket (user `root`, port 22 and [`DEFAULT_EXECUTOR_SOCKET`] by
//!   default). IPv6 hosts go in brackets: `ssh://root@[fd00::1]:22`.
//! - `https://host:port`: the executor's TCP listener with mutual TLS; the port is
//!   required and the host is the name its certificate must carry.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where an executor listens by default.
pub const DEFAULT_EXECUTOR_SOCKET: &str = "/run/v2engine/executor.sock";

/// Why an endpoint string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No `scheme://`.
    #[error(
        "endpoint {0:?} has no scheme; use unix:///path, ssh://user@host[:port][/socket] or https://host:port"
    )]
    NoScheme(String),
    /// A scheme we do not speak.
    #[error("endpoint {endpoint:?}: unsupported scheme {scheme:?}; use unix, ssh or https")]
    Scheme {
        /// The endpoint as given.
        endpoint: String,
        /// Its scheme.
        scheme: String,
    },
    /// Malformed parts.
    #[error("endpoint {endpoint:?}: {reason}")]
    Malformed {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
}

/// An executor endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The executor's Unix socket on this machine: `unix:///run/v2engine/executor.sock`.
    Unix(PathBuf),
    /// An SSH server on the executor's host; the executor socket is reached by
    /// streamlocal forwarding: `ssh://root@10.0.0.1:22/run/v2engine/executor.sock`.
    Ssh {
        /// Login user (default `root`).
        user: String,
        /// Host name or address (IPv6 in brackets in the URL).
        host: String,
        /// Port (default 22).
        port: u16,
        /// Executor socket path on that host (default [`DEFAULT_EXECUTOR_SOCKET`]).
        socket: PathBuf,
    },
    /// The executor's TCP listener, reached with mutual TLS: `https://10.0.0.1:7443`.
    /// The port is required; the host is also the TLS server name.
    Https {
        /// Host name or address (IPv6 in brackets in the URL).
        host: String,
        /// Port.
        port: u16,
    },
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = |reason: &str| EndpointError::Malformed {
            endpoint: s.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| EndpointError::NoScheme(s.to_string()))?;
        match scheme {
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(malformed("a unix endpoint needs an absolute socket path"));
                }
                Ok(Endpoint::Unix(PathBuf::from(rest)))
            }
            "ssh" => {
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) => (u, h),
                    None => ("root", authority),
                };
                if user.is_empty() || user.contains(':') {
                    return Err(malformed(
                        "the user must be a plain name (no password in the URL)",
                    ));
                }
                let (host, port) =
                    split_host_port(hostport, Some(22)).map_err(|r| malformed(&r))?;
                if host.is_empty() {
                    return Err(malformed("the host is empty"));
                }
                let socket = if path.is_empty() || path == "/" {
                    PathBuf::from(DEFAULT_EXECUTOR_SOCKET)
                } else {
                    PathBuf::from(path)
                };
                Ok(Endpoint::Ssh {
                    user: user.to_string(),
                    host,
                    port,
                    socket,
                })
            }
            "https" => {
                let authority = rest.strip_suffix('/').unwrap_or(rest);
                if authority.contains('/') {
                    return Err(malformed(
                        "an https endpoint has no path: https://host:port",
                    ));
                }
                if authority.contains('@') {
                    return Err(malformed(
                        "an https endpoint has no user; the client certificate identifies us",
                    ));
                }
                let (host, port) = split_host_port(authority, None).map_err(|r| malformed(&r))?;
                if host.is_empty() {
                    return Err(malformed("the host is empty"));
                }
                Ok(Endpoint::Https { host, port })
            }
            other => Err(EndpointError::Scheme {
                endpoint: s.to_string(),
                scheme: other.to_string(),
            }),
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets); `default_port` `None` makes the port required.
fn split_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("unclosed '[' in an IPv6 address")?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected {after:?} after the IPv6 address")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => parse_port(p)?,
        None => default_port.ok_or("the port is required (host:port)")?,
    };
    Ok((host.to_string(), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("port {p:?} is not a number from 1 to 65535")),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Ssh {
                user,
                host,
                port,
                socket,
            } => {
                write!(
                    f,
                    "ssh://{user}@{}:{port}{}",
                    bracket(host),
                    socket.display()
                )
            }
            Endpoint::Https { host, port } => write!(f, "https://{}:{port}", bracket(host)),
        }
    }
}

/// `host`, in brackets when it is an IPv6 address.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix() {
        assert_eq!(
            "unix:///run/x.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert!("unix://relative".parse::<Endpoint>().is_err());
    }

    #[test]
    fn parses_ssh_with_defaults() {
        let e: Endpoint = "ssh://10.0.0.1".parse().unwrap();
        assert_eq!(
            e,
            Endpoint::Ssh {
                user: "root".into(),
                host: "10.0.0.1".into(),
                port: 22,
                socket: DEFAULT_EXECUTOR_SOCKET.into()
            }
        );
        let e: Endpoint = "ssh://admin@[::1]:2222/var/run/e.sock".parse().unwrap();
        assert_eq!(
            e,
            Endpoint::Ssh {
                user: "admin".into(),
                host: "::1".into(),
                port: 2222,
                socket: "/var/run/e.sock".into()
            }
        );
        assert_eq!(e.to_string(), "ssh://admin@[::1]:2222/var/run/e.sock");
    }

    #[test]
    fn refuses_bad_endpoints() {
        assert!(matches!(
            "10.0.0.1".parse::<Endpoint>(),
            Err(EndpointError::NoScheme(_))
        ));
        assert!(matches!(
            "http://x".parse::<Endpoint>(),
            Err(EndpointError::Scheme { .. })
        ));
        assert!("ssh://u:pw@h".parse::<Endpoint>().is_err());
        assert!("ssh://h:99999".parse::<Endpoint>().is_err());
        assert!("ssh://h:0".parse::<Endpoint>().is_err());
        assert!("ssh://@h".parse::<Endpoint>().is_err());
    }

    #[test]
    fn parses_https() {
        let e: Endpoint = "https://node-1.example:7443".parse().unwrap();
        assert_eq!(
            e,
            Endpoint::Https {
                host: "node-1.example".into(),
                port: 7443
            }
        );
        assert_eq!(e.to_string(), "https://node-1.example:7443");
        let e: Endpoint = "https://[::1]:7443/".parse().unwrap();
        assert_eq!(
            e,
            Endpoint::Https {
                host: "::1".into(),
                port: 7443
            }
        );
        assert_eq!(e.to_string(), "https://[::1]:7443");
        assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e);
    }

    #[test]
    fn refuses_bad_https_endpoints() {
        for bad in [
            "https://h",
            "https://[::1]",
            "https://h:0",
            "https://h:x",
            "https://:7443",
            "https://h:7443/run/x.sock",
            "https://root@h:7443",
        ] {
            assert!(
                matches!(
                    bad.parse::<Endpoint>(),
                    Err(EndpointError::Malformed { .. })
                ),
                "{bad} was accepted"
            );
        }
        let err = "https://h".parse::<Endpoint>().unwrap_err().to_string();
        assert!(err.contains("port is required"), "{err}");
    }

    #[test]
    fn ipv6_ssh_port_zero_is_refused() {
        assert!("ssh://[::1]:0".parse::<Endpoint>().is_err());
    }
}
