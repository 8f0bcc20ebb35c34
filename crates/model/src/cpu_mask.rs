//! SPDK's reactor core mask, as passed to `spdk_tgt -m`.

use std::fmt;

/// Why a core mask is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuMaskError {
    /// Not of the form `0x` followed by hex digits.
    #[error("cpu mask {0:?} is not a hexadecimal mask such as \"0x1\" or \"0x3\"")]
    Syntax(String),
    /// Selects no core.
    #[error("cpu mask {0:?} selects no CPU core")]
    Empty(String),
    /// Wider than the 1024 cores we accept.
    #[error("cpu mask {0:?} is wider than 1024 cores")]
    TooWide(String),
}

/// A validated core mask: the set of core ids it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMask {
    cores: Vec<u32>,
}

impl CpuMask {
    /// Parses `0x…` (hex, case-insensitive). SPDK also takes core lists (`[0,1]`); v2engine
    /// keeps to the hex form Longhorn uses so that masks compare by value.
    pub fn parse(s: &str) -> Result<Self, CpuMaskError> {
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .ok_or_else(|| CpuMaskError::Syntax(s.to_string()))?;
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(CpuMaskError::Syntax(s.to_string()));
        }
        let digits = hex.trim_start_matches('0');
        if digits.len() > 256 {
            return Err(CpuMaskError::TooWide(s.to_string()));
        }
        let mut cores = Vec::new();
        for (i, c) in digits.chars().rev().enumerate() {
            let nibble = c
                .to_digit(16)
                .ok_or_else(|| CpuMaskError::Syntax(s.to_string()))?;
            for bit in 0..4u32 {
                if nibble & (1 << bit) != 0 {
                    let idx = u32::try_from(i).map_err(|_| CpuMaskError::TooWide(s.to_string()))?;
                    cores.push(idx * 4 + bit);
                }
            }
        }
        if cores.is_empty() {
            return Err(CpuMaskError::Empty(s.to_string()));
        }
        Ok(Self { cores })
    }

    /// Core ids selected, ascending.
    pub fn cores(&self) -> &[u32] {
        &self.cores
    }

    /// Highest core id selected.
    pub fn highest_core(&self) -> u32 {
        self.cores.last().copied().unwrap_or(0)
    }
}

impl fmt::Display for CpuMask {
    /// Canonical lowercase form, e.g. `0x3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let top = self.highest_core() / 4;
        let mut out = String::from("0x");
        for nib in (0..=top).rev() {
            let mut v = 0u32;
            for bit in 0..4 {
                if self.cores.contains(&(nib * 4 + bit)) {
                    v |= 1 << bit;
                }
            }
            out.push(char::from_digit(v, 16).unwrap_or('0'));
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_masks() {
        assert_eq!(CpuMask::parse("0x1").unwrap().cores(), &[0]);
        assert_eq!(CpuMask::parse("0x3").unwrap().cores(), &[0, 1]);
        assert_eq!(CpuMask::parse("0XA").unwrap().cores(), &[1, 3]);
        assert_eq!(CpuMask::parse("0x100").unwrap().cores(), &[8]);
        assert_eq!(CpuMask::parse("0x0003").unwrap().to_string(), "0x3");
        assert_eq!(CpuMask::parse("0x100").unwrap().to_string(), "0x100");
    }

    #[test]
    fn refuses_bad_masks() {
        assert!(matches!(CpuMask::parse("1"), Err(CpuMaskError::Syntax(_))));
        assert!(matches!(CpuMask::parse("0x"), Err(CpuMaskError::Syntax(_))));
        assert!(matches!(
            CpuMask::parse("0xg"),
            Err(CpuMaskError::Syntax(_))
        ));
        assert!(matches!(
            CpuMask::parse("[0,1]"),
            Err(CpuMaskError::Syntax(_))
        ));
        assert!(matches!(CpuMask::parse("0x0"), Err(CpuMaskError::Empty(_))));
        let wide = format!("0x1{}", "0".repeat(300));
        assert!(matches!(
            CpuMask::parse(&wide),
            Err(CpuMaskError::TooWide(_))
        ));
    }
}
