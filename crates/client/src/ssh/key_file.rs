//! SSH private key files as OpenSSH writes them (OpenSSH format, or PEM for RSA/ECDSA).

use std::path::Path;

use russh::keys::{self, PrivateKey, PublicKey};

use super::SshError;
use crate::known_hosts;

/// Reads an OpenSSH or PEM private key file.
pub(super) async fn load_private_key(path: &Path, addr: &str) -> Result<PrivateKey, SshError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| SshError::KeyFile {
            addr: addr.to_string(),
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    decode_private_key(&text, path, addr)
}

/// Decodes the text of private key file `path`; an encrypted key is
/// [`SshError::KeyEncrypted`].
fn decode_private_key(text: &str, path: &Path, addr: &str) -> Result<PrivateKey, SshError> {
    let key_file = |reason: String| SshError::KeyFile {
        addr: addr.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let encrypted = || SshError::KeyEncrypted {
        addr: addr.to_string(),
        path: path.to_path_buf(),
    };
    if is_legacy_encrypted_pem(text) {
        return Err(encrypted());
    }
    match keys::decode_secret_key(text, None) {
        Ok(k) => Ok(k),
        Err(keys::Error::KeyIsEncrypted) => Err(encrypted()),
        Err(keys::Error::CouldNotReadKey) => Err(key_file(
            "not a private key in OpenSSH or PEM format".to_string(),
        )),
        Err(e) => Err(key_file(e.to_string())),
    }
}

/// True for PEM keys encrypted the pre-OpenSSH-format way (`Proc-Type: 4,ENCRYPTED`,
/// `BEGIN ENCRYPTED PRIVATE KEY`), which the decoder would report less clearly.
fn is_legacy_encrypted_pem(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l == "-----BEGIN ENCRYPTED PRIVATE KEY-----" || l == "Proc-Type: 4,ENCRYPTED"
    })
}

pub(super) fn key_fingerprint(key: &PublicKey) -> String {
    key.to_bytes()
        .map(|b| known_hosts::fingerprint(&b))
        .unwrap_or_else(|_| "(unencodable key)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::Algorithm;

    #[test]
    fn legacy_encrypted_pem_is_recognised() {
        assert!(is_legacy_encrypted_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n"
        ));
        assert!(is_legacy_encrypted_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
        ));
        assert!(!is_legacy_encrypted_pem(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
        ));
    }

    #[test]
    fn private_keys_decode_or_say_why_not() {
        // An Ed25519 key as `ssh-keygen -t ed25519 -N ''` writes it (test-only key).
        const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDhchsc/aiKBJQurZZx0kbGPQrcaId/qAsxYch4cGuc0QAAAIhYGp4XWBqe
FwAAAAtzc2gtZWQyNTUxOQAAACDhchsc/aiKBJQurZZx0kbGPQrcaId/qAsxYch4cGuc0Q
AAAEDh0Y0eZfFRL8n2L8HWDy8Q5uYmHocvUCPH3WXKy57TuuFyGxz9qIoElC6tlnHSRsY9
Ctxoh3+oCzFhyHhwa5zRAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";
        let p = Path::new("/keys/id");
        let key = decode_private_key(KEY, p, "h:22").unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        let e = decode_private_key("hello", p, "h:22").unwrap_err();
        assert!(matches!(e, SshError::KeyFile { .. }), "{e}");
        assert!(e.to_string().contains("/keys/id"), "{e}");
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n";
        assert!(matches!(
            decode_private_key(legacy, p, "h:22"),
            Err(SshError::KeyEncrypted { .. })
        ));
    }
}
