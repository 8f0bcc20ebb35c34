//! OpenSSH `known_hosts` files: parsing and host key lookup, without I/O.
//!
//! A line is `[marker] patterns keytype base64-key [comment]`:
//!
//! - `patterns` is a comma-separated list of host names with `*` / `?` wildcards and `!`
//!   negation (`web-*,!web-9`), or one hashed name `|1|base64(salt)|base64(hmac-sha1)`
//!   as `HashKnownHosts yes` writes them;
//! - a host on a port other than 22 is written `[host]:port`;
//! - the marker `@revoked` marks a key that must never be accepted; `@cert-authority` lines
//!   (host certificates) are not used by v2engine and are ignored.
//!
//! Lookup never trusts on first use: a host that is not listed is [`HostKeyStatus::Unknown`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::{digest, hmac};

/// The name a host is recorded under: `host` on port 22, `[host]:port` otherwise, in
/// lower case as `ssh` looks it up (hashed entries hash the lower-case name).
pub fn host_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The OpenSSH fingerprint of a public key blob: `SHA256:` and unpadded base64.
pub fn fingerprint(key_blob: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, key_blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref()))
}

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// A trusted key.
    Plain,
    /// `@revoked`: never accept this key.
    Revoked,
    /// `@cert-authority`: a CA for host certificates (not used).
    CertAuthority,
}

/// The host part of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns.
    Patterns(Vec<String>),
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                hmac::verify(&key, name.as_bytes(), hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let name = name.to_ascii_lowercase();
                let mut matched = false;
                for p in patterns {
                    match p.strip_prefix('!') {
                        Some(neg) if glob(&neg.to_ascii_lowercase(), &name) => return false,
                        Some(_) => {}
                        None => matched |= glob(&p.to_ascii_lowercase(), &name),
                    }
                }
                matched
            }
        }
    }
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    invalid_lines: Vec<usize>,
}

/// The verdict on a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is recorded for this host (1-based line number).
    Trusted {
        /// Where.
        line: usize,
    },
    /// The key is marked `@revoked` for this host.
    Revoked {
        /// Where.
        line: usize,
    },
    /// The host is recorded with a different key of the same type: a possible
    /// man-in-the-middle, or a reinstalled host.
    Changed {
        /// Lines that record the host's key(s) of that type.
        lines: Vec<usize>,
    },
    /// The host is not recorded with a key of this type.
    Unknown {
        /// Key types recorded for the host, if any (`ssh-rsa` on line 3, ...).
        other_types: Vec<(usize, String)>,
    },
}

impl KnownHosts {
    /// Parses a known_hosts file. Lines that cannot be read are skipped, as OpenSSH does,
    /// and remembered in [`KnownHosts::invalid_lines`].
    pub fn parse(text: &str) -> Self {
        let mut out = KnownHosts::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(line, trimmed) {
                Some(e) => out.entries.push(e),
                None => out.invalid_lines.push(line),
            }
        }
        out
    }

    /// 1-based numbers of the lines that were skipped as unreadable.
    pub fn invalid_lines(&self) -> &[usize] {
        &self.invalid_lines
    }

    /// Key types recorded (not revoked) for `name` (see [`host_name`]), in file order,
    /// without duplicates.
    pub fn key_types_for(&self, name: &str) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for e in self.plain_entries_for(name) {
            if !types.contains(&e.key_type) {
                types.push(e.key_type.clone());
            }
        }
        types
    }

    /// Checks the key `key_blob` (SSH wire encoding, which starts with its type) of type
    /// `key_type` offered by the host recorded as `name` (see [`host_name`]).
    pub fn check(&self, name: &str, key_type: &str, key_blob: &[u8]) -> HostKeyStatus {
        let matching = || self.entries.iter().filter(|e| e.hosts.matches(name));
        if let Some(e) = matching().find(|e| e.marker == Marker::Revoked && e.key == key_blob) {
            return HostKeyStatus::Revoked { line: e.line };
        }
        if let Some(e) = self
            .plain_entries_for(name)
            .find(|e| e.key_type == key_type && e.key == key_blob)
        {
            return HostKeyStatus::Trusted { line: e.line };
        }
        let same_type: Vec<usize> = self
            .plain_entries_for(name)
            .filter(|e| e.key_type == key_type)
            .map(|e| e.line)
            .collect();
        if !same_type.is_empty() {
            return HostKeyStatus::Changed { lines: same_type };
        }
        HostKeyStatus::Unknown {
            other_types: self
                .plain_entries_for(name)
                .map(|e| (e.line, e.key_type.clone()))
                .collect(),
        }
    }

    fn plain_entries_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.marker == Marker::Plain && e.hosts.matches(name))
    }
}

fn parse_line(line: usize, text: &str) -> Option<Entry> {
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::Plain,
    };
    if marker != Marker::Plain {
        first = fields.next()?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next()?.to_string();
    let key = STANDARD.decode(fields.next()?).ok()?;
    // The blob starts with its own type name; a line whose two disagree is corrupt.
    if blob_type(&key)? != key_type.as_bytes() {
        return None;
    }
    Some(Entry {
        line,
        marker,
        hosts,
        key_type,
        key,
    })
}

fn parse_hosts(field: &str) -> Option<Hosts> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let salt = STANDARD.decode(salt).ok()?;
        let hash = STANDARD.decode(hash).ok()?;
        if salt.len() != 20 || hash.len() != 20 {
            return None;
        }
        return Some(Hosts::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return None;
    }
    let patterns: Vec<String> = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    (!patterns.is_empty()).then_some(Hosts::Patterns(patterns))
}

/// The type name at the start of an SSH public key blob (`u32` length, then the name).
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    blob.get(4..4usize.checked_add(len)?)
}

/// Glob matching with `*` (any run) and `?` (any one character), as OpenSSH's
/// `match_pattern`.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake key blob of `ty` with payload `body`, as the wire encoding would lay it out.
    fn blob(ty: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (ty.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(ty.as_bytes());
        b.extend_from_slice(&(body.len() as u32).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    fn line(hosts: &str, ty: &str, body: &[u8]) -> String {
        format!("{hosts} {ty} {} comment", STANDARD.encode(blob(ty, body)))
    }

    fn hashed(name: &str, salt: &[u8; 20]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let tag = hmac::sign(&key, name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(tag.as_ref())
        )
    }

    const ED: &str = "ssh-ed25519";

    #[test]
    fn host_names_carry_the_port_unless_22() {
        assert_eq!(host_name("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(host_name("10.0.0.1", 2222), "[10.0.0.1]:2222");
        assert_eq!(host_name("::1", 2222), "[::1]:2222");
        assert_eq!(host_name("Node-1.Example", 22), "node-1.example");
    }

    #[test]
    fn plain_entries_trust_their_key_only() {
        let kh = KnownHosts::parse(&format!(
            "# comment\n\n{}\n{}\n",
            line("node-1,10.0.0.1", ED, b"key-a"),
            line("node-2", ED, b"key-b"),
        ));
        assert_eq!(
            kh.check("10.0.0.1", ED, &blob(ED, b"key-a")),
            HostKeyStatus::Trusted { line: 3 }
        );
        assert_eq!(
            kh.check("NODE-1", ED, &blob(ED, b"key-a")),
            HostKeyStatus::Trusted { line: 3 }
        );
        assert_eq!(
            kh.check("node-1", ED, &blob(ED, b"key-b")),
            HostKeyStatus::Changed { lines: vec![3] }
        );
        assert_eq!(
            kh.check("node-3", ED, &blob(ED, b"key-a")),
            HostKeyStatus::Unknown {
                other_types: vec![]
            }
        );
    }

    #[test]
    fn ports_other_than_22_use_the_bracket_form() {
        let kh = KnownHosts::parse(&line("[127.0.0.1]:2222", ED, b"k"));
        let k = blob(ED, b"k");
        assert_eq!(
            kh.check(&host_name("127.0.0.1", 2222), ED, &k),
            HostKeyStatus::Trusted { line: 1 }
        );
        assert!(matches!(
            kh.check(&host_name("127.0.0.1", 22), ED, &k),
            HostKeyStatus::Unknown { .. }
        ));
        assert!(matches!(
            kh.check(&host_name("127.0.0.1", 2223), ED, &k),
            HostKeyStatus::Unknown { .. }
        ));
    }

    #[test]
    fn hashed_entries_match_by_hmac() {
        let salt = [7u8; 20];
        let kh = KnownHosts::parse(&format!(
            "{}\n{}\n",
            line(&hashed("[10.0.0.1]:2222", &salt), ED, b"k1"),
            line(&hashed("node-9", &[1u8; 20]), ED, b"k9"),
        ));
        assert_eq!(
            kh.check("[10.0.0.1]:2222", ED, &blob(ED, b"k1")),
            HostKeyStatus::Trusted { line: 1 }
        );
        assert_eq!(
            kh.check("node-9", ED, &blob(ED, b"other")),
            HostKeyStatus::Changed { lines: vec![2] }
        );
        assert!(matches!(
            kh.check("10.0.0.1", ED, &blob(ED, b"k1")),
            HostKeyStatus::Unknown { .. }
        ));
        assert_eq!(
            kh.check(&host_name("NODE-9", 22), ED, &blob(ED, b"k9")),
            HostKeyStatus::Trusted { line: 2 }
        );
    }

    #[test]
    fn openssh_hashed_line_is_read() {
        // Written by `ssh-keygen -H` for "[127.0.0.1]:2222".
        const LINE: &str = "|1|zKOnyjHEMVgMBG22lDVX3GXI01k=|7ONjNiBDWMd+p+xoProJHzltz1A= \
            ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBRF9m0IYGoFxxMR5wUICY2OH4AUBPMMXTTfU2kpCxZI";
        let kh = KnownHosts::parse(LINE);
        let key = STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIBRF9m0IYGoFxxMR5wUICY2OH4AUBPMMXTTfU2kpCxZI")
            .unwrap();
        assert_eq!(
            kh.check("[127.0.0.1]:2222", ED, &key),
            HostKeyStatus::Trusted { line: 1 }
        );
        assert!(matches!(
            kh.check("127.0.0.1", ED, &key),
            HostKeyStatus::Unknown { .. }
        ));
        assert_eq!(kh.key_types_for("[127.0.0.1]:2222"), vec![ED.to_string()]);
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = KnownHosts::parse(&line("node-*,!node-9,10.0.0.?", ED, b"k"));
        let k = blob(ED, b"k");
        assert!(matches!(
            kh.check("node-1", ED, &k),
            HostKeyStatus::Trusted { .. }
        ));
        assert!(matches!(
            kh.check("10.0.0.7", ED, &k),
            HostKeyStatus::Trusted { .. }
        ));
        assert!(matches!(
            kh.check("node-9", ED, &k),
            HostKeyStatus::Unknown { .. }
        ));
        assert!(matches!(
            kh.check("10.0.0.17", ED, &k),
            HostKeyStatus::Unknown { .. }
        ));
    }

    #[test]
    fn revoked_keys_are_refused_even_if_also_listed() {
        let kh = KnownHosts::parse(&format!(
            "{}\n@revoked {}\n",
            line("node-1", ED, b"k"),
            line("*", ED, b"k"),
        ));
        assert_eq!(
            kh.check("node-1", ED, &blob(ED, b"k")),
            HostKeyStatus::Revoked { line: 2 }
        );
    }

    #[test]
    fn other_key_types_are_reported_not_trusted() {
        let rsa = "ssh-rsa";
        let kh = KnownHosts::parse(&line("node-1", rsa, b"r"));
        assert_eq!(
            kh.check("node-1", ED, &blob(ED, b"k")),
            HostKeyStatus::Unknown {
                other_types: vec![(1, rsa.to_string())]
            }
        );
        assert_eq!(kh.key_types_for("node-1"), vec![rsa.to_string()]);
    }

    #[test]
    fn cert_authority_lines_do_not_trust_keys() {
        let kh = KnownHosts::parse(&format!("@cert-authority {}", line("*", ED, b"ca")));
        assert!(matches!(
            kh.check("node-1", ED, &blob(ED, b"ca")),
            HostKeyStatus::Unknown { .. }
        ));
        assert!(kh.invalid_lines().is_empty());
    }

    #[test]
    fn unreadable_lines_are_skipped_and_counted() {
        let good = line("node-1", ED, b"k");
        let mismatched_type = format!("node-1 ssh-rsa {}", STANDARD.encode(blob(ED, b"k")));
        let text = [
            "node-1",
            "node-1 ssh-ed25519",
            "node-1 ssh-ed25519 !!!notbase64",
            &mismatched_type,
            "|1|short|bad ssh-ed25519 AAAA",
            "@bogus node-1 ssh-ed25519 AAAA",
            &good,
        ]
        .join("\n");
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.invalid_lines(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            kh.check("node-1", ED, &blob(ED, b"k")),
            HostKeyStatus::Trusted { line: 7 }
        );
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a*c", "ac"));
        assert!(!glob("a*c", "acb"));
        assert!(glob("?b*", "abzz"));
        assert!(!glob("?", ""));
        assert!(glob("*.example.com", "x.example.com"));
        assert!(!glob("*.example.com", "example.com"));
    }

    #[test]
    fn fingerprints_are_openssh_style() {
        // `ssh-keygen -lf` of the key in `openssh_hashed_line_is_read`.
        let key = STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIBRF9m0IYGoFxxMR5wUICY2OH4AUBPMMXTTfU2kpCxZI")
            .unwrap();
        assert_eq!(
            fingerprint(&key),
            "SHA256:mdX2YBKexrR2wTVmTJoJa5KCH1A0SML3mnf4q9BWcYU"
        );
    }
}
