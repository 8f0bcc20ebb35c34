//! `/proc/buddyinfo`: free blocks per zone and order, and how many 2 MiB hugepages the
//! kernel could allocate from them right now.
//!
//! A 2 MiB page needs a free block of order 9 (512 × 4 KiB); a block of order k ≥ 9
//! holds 2^(k−9) of them. Only zones hugetlb allocations may use count: DMA32, Normal,
//! HighMem and Movable (ZONE_DMA is kept for devices by the lowmem reserve).

/// The buddy order of one 2 MiB page with 4 KiB base pages.
pub const HUGEPAGE_ORDER: usize = 9;

/// Zones hugetlb pages can come from.
pub const USABLE_ZONES: [&str; 4] = ["DMA32", "Normal", "HighMem", "Movable"];

/// One line of buddyinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFree {
    /// NUMA node.
    pub node: u32,
    /// Zone name, e.g. `Normal`.
    pub zone: String,
    /// Free blocks per order, index = order.
    pub free: Vec<u64>,
}

/// A line that is not `Node N, zone NAME counts...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/proc/buddyinfo line {line}: {reason}")]
pub struct BuddyinfoError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses buddyinfo text. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<ZoneFree>, BuddyinfoError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |reason: &str| BuddyinfoError {
            line: i + 1,
            reason: reason.to_string(),
        };
        if raw.trim().is_empty() {
            continue;
        }
        let mut words = raw.split_whitespace();
        if words.next() != Some("Node") {
            return Err(bad("does not start with \"Node\""));
        }
        let node = words
            .next()
            .and_then(|w| w.strip_suffix(','))
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| bad("no node number"))?;
        if words.next() != Some("zone") {
            return Err(bad("no \"zone\""));
        }
        let zone = words.next().ok_or_else(|| bad("no zone name"))?.to_string();
        let free = words
            .map(|w| w.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("a free-block count is not a number"))?;
        if free.is_empty() {
            return Err(bad("no free-block counts"));
        }
        out.push(ZoneFree { node, zone, free });
    }
    Ok(out)
}

/// 2 MiB pages allocatable now: free blocks of order ≥ 9 in usable zones, in 2 MiB units.
pub fn allocatable_2mib_pages(zones: &[ZoneFree]) -> u64 {
    zones
        .iter()
        .filter(|z| USABLE_ZONES.contains(&z.zone.as_str()))
        .flat_map(|z| z.free.iter().enumerate().skip(HUGEPAGE_ORDER))
        .map(|(order, &count)| {
            let shift = u32::try_from(order - HUGEPAGE_ORDER).unwrap_or(u32::MAX);
            count.saturating_mul(1u64.checked_shl(shift).unwrap_or(u64::MAX))
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let z = parse("Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \n\n")
            .unwrap();
        assert_eq!(z.len(), 1);
        assert_eq!((z[0].node, z[0].zone.as_str()), (0, "DMA"));
        assert_eq!(z[0].free, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]);
    }

    #[test]
    fn refuses_garbage_with_the_line() {
        assert_eq!(parse("Node 0, zone Normal 1 x").unwrap_err().line, 1);
        assert_eq!(parse("Node 0, zone Normal 1\nfoo").unwrap_err().line, 2);
        assert!(parse("Node 0, zone Normal").is_err());
        assert!(parse("Node x, zone Normal 1").is_err());
    }

    #[test]
    fn counts_orders_from_nine_in_usable_zones() {
        let z = parse(
            "Node 0, zone DMA 0 0 0 0 0 0 0 0 0 5 5\n\
             Node 0, zone DMA32 0 0 0 0 0 0 0 0 9 2 1\n\
             Node 1, zone Normal 0 0 0 0 0 0 0 0 0 3 0\n",
        )
        .unwrap();
        // DMA32: 2×1 + 1×2 = 4; Normal: 3; DMA ignored; order 8 never counts.
        assert_eq!(allocatable_2mib_pages(&z), 7);
    }

    #[test]
    fn larger_max_orders_count_double_per_order() {
        let z = parse("Node 0, zone Normal 0 0 0 0 0 0 0 0 0 0 0 0 1").unwrap();
        assert_eq!(allocatable_2mib_pages(&z), 8); // order 12 = 2^3 pages
    }
}
