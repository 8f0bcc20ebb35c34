//! Sizes as users write them: bytes (`1073741824`) or Kubernetes-style quantities
//! (`10Gi`, `512Mi`, `1G`).

/// Why a size is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with an optional known suffix.
    #[error("size {0:?} is not a byte count or a quantity such as \"10Gi\" or \"512Mi\"")]
    Syntax(String),
    /// Does not fit in 64 bits.
    #[error("size {0:?} is too large")]
    Overflow(String),
}

const SUFFIXES: &[(&str, u64)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("k", 1_000),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
];

/// Parses a size into bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((t, 1));
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
        return Err(SizeError::Syntax(s.to_string()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::Overflow(s.to_string()))?;
    n.checked_mul(mult)
        .ok_or_else(|| SizeError::Overflow(s.to_string()))
}

/// Formats bytes compactly with the largest exact binary suffix (`10Gi`, `1536Mi`, `1000`).
pub fn format_size(bytes: u64) -> String {
    for (suf, m) in SUFFIXES.iter().take(5).rev() {
        if bytes >= *m && bytes.is_multiple_of(*m) {
            return format!("{}{suf}", bytes / m);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert_eq!(parse_size("10Gi"), Ok(10 << 30));
        assert_eq!(parse_size("512Mi"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1_000_000_000));
        assert_eq!(parse_size(" 4Ki "), Ok(4096));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "Gi", "-1Gi", "1.5Gi", "10 Gi", "10GB", "ten"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_size("99999999Pi"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn formats_round_trip() {
        for b in [1u64 << 30, 1536 << 20, 1000, 4096, 7] {
            assert_eq!(parse_size(&format_size(b)), Ok(b));
        }
        assert_eq!(format_size(10 << 30), "10Gi");
    }
}
