//! The restart schedule of a crashing engine (pure): exponential, bounded, forgiven after
//! a stable run.

use std::time::Duration;

/// Exponential backoff: `initial`, doubling per consecutive failure, at most `max`; a run
/// of at least `stable_after` resets the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// A run this long forgets earlier failures.
    pub stable_after: Duration,
}

impl Default for Backoff {
    /// 0.5 s, 1 s, 2 s, ... up to 30 s; a minute of uptime starts over.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before the restart that follows failure number `failures` (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The consecutive-failure count after a process that ran for `ran_for` died, given
    /// `failures` before it.
    pub fn next_failures(&self, failures: u32, ran_for: Duration) -> u32 {
        if ran_for >= self.stable_after {
            1
        } else {
            failures.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_to_thirty() {
        let b = Backoff::default();
        let got: Vec<u128> = (1..=9).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.delay(0), Duration::from_millis(500));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn a_stable_run_forgives_earlier_failures() {
        let b = Backoff::default();
        assert_eq!(b.next_failures(5, Duration::from_secs(1)), 6);
        assert_eq!(b.next_failures(5, Duration::from_secs(60)), 1);
        assert_eq!(b.next_failures(u32::MAX, Duration::ZERO), u32::MAX);
    }
}
