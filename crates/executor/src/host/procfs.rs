//! Small parsers for `/proc/meminfo` and `/sys/devices/system/cpu/online` (pure).

/// A value of `/proc/meminfo` in bytes (`MemTotal:  8000 kB` → 8192000), or the bare
/// number for count fields such as `HugePages_Total`.
pub fn meminfo_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut words = rest.split_whitespace();
        let n: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") => n.checked_mul(1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// Counts the CPUs of a list such as `0-3,6,8-9`. `None` when malformed.
pub fn count_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        let t = "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\nHugePages_Total:      8\n";
        assert_eq!(meminfo_value(t, "MemTotal"), Some(24_576_000 * 1024));
        assert_eq!(meminfo_value(t, "MemAvailable"), Some(1_024_000));
        assert_eq!(meminfo_value(t, "HugePages_Total"), Some(8));
        assert_eq!(meminfo_value(t, "MemFree"), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }
}
