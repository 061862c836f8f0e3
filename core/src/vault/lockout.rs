//! The wrong-password lockout: pure policy, no I/O.
//!
//! Default (docs/security.md, "Lockout"): the first 5 wrong passwords cost
//! nothing; after the 5th, 6th, 7th, 8th and 9th consecutive failure the
//! next attempt waits 30 s, 1 min, 5 min, 15 min and 1 h; the 10th wipes
//! the vault. A host may tighten these bounds, never loosen them.

use crate::CoreError;
use crate::hooks::BootTime;

/// When something happened, on both clocks the host offers: the wall
/// clock (which the user can set) and, when the host has one, the boot
/// clock (which the user cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Unix seconds on the wall clock.
    pub unix: u64,
    /// The boot clock, if the host has one.
    pub boot: Option<BootTime>,
}

/// Whole seconds from `last` to `now` as the lockout counts them
/// (docs/security.md, "Lockout clock"):
///
/// - both on the same boot: the boot clock only, so setting the wall
///   clock forward does not shorten a delay;
/// - `last` on an earlier boot: the time since the current boot, a lower
///   bound of the real time since `last` (the delay restarts at the
///   reboot);
/// - no boot reading at either end: the wall clock, a clock that went
///   backwards counting as no time.
pub fn elapsed_secs(last: &Moment, now: &Moment) -> u64 {
    match (&last.boot, &now.boot) {
        (Some(l), Some(n)) if l.boot_id == n.boot_id => {
            n.since_boot_ms.saturating_sub(l.since_boot_ms) / 1000
        }
        (Some(_), Some(n)) => n.since_boot_ms / 1000,
        _ => now.unix.saturating_sub(last.unix),
    }
}

/// Default number of wrong passwords allowed without delay.
pub const DEFAULT_FREE_ATTEMPTS: u32 = 5;
/// Default delays, in seconds, after the 5th..9th consecutive failure.
pub const DEFAULT_DELAYS: [u64; 5] = [30, 60, 5 * 60, 15 * 60, 60 * 60];
/// Default number of consecutive failures that wipes the vault.
pub const DEFAULT_WIPE_AFTER: u32 = 10;

/// How wrong passwords are throttled and when the vault is wiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    free_attempts: u32,
    delays: Vec<u64>,
    wipe_after: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            free_attempts: DEFAULT_FREE_ATTEMPTS,
            delays: DEFAULT_DELAYS.to_vec(),
            wipe_after: DEFAULT_WIPE_AFTER,
        }
    }
}

/// What the policy says about the next password attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The attempt may run.
    Open,
    /// The attempt must wait this many seconds.
    Wait(u64),
    /// The failure count already reached the wipe bound (a wipe was
    /// interrupted): wipe now.
    Wipe,
}

impl LockoutPolicy {
    /// A host's policy: `free_attempts` wrong passwords without delay,
    /// then `delays[i]` seconds after failure `free_attempts + i` (the last
    /// delay repeats), wipe at `wipe_after` failures.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] when any bound is looser than the
    /// default: more free attempts, a later wipe, or a shorter delay after
    /// some failure count than the default imposes.
    pub fn new(free_attempts: u32, delays: Vec<u64>, wipe_after: u32) -> Result<Self, CoreError> {
        if free_attempts == 0 || wipe_after == 0 {
            return Err(CoreError::InvalidConfig("lockout bounds must be positive"));
        }
        if free_attempts > DEFAULT_FREE_ATTEMPTS {
            return Err(CoreError::InvalidConfig(
                "more than 5 free password attempts",
            ));
        }
        if wipe_after > DEFAULT_WIPE_AFTER {
            return Err(CoreError::InvalidConfig(
                "wipe after more than 10 wrong passwords",
            ));
        }
        if wipe_after < free_attempts {
            return Err(CoreError::InvalidConfig(
                "wipe bound below the free attempts",
            ));
        }
        if delays.is_empty() && wipe_after > free_attempts {
            return Err(CoreError::InvalidConfig("no lockout delays"));
        }
        let candidate = Self {
            free_attempts,
            delays,
            wipe_after,
        };
        let default = Self::default();
        for failures in 0..wipe_after {
            if candidate.delay_after(failures) < default.delay_after(failures) {
                return Err(CoreError::InvalidConfig(
                    "a lockout delay shorter than the default",
                ));
            }
        }
        Ok(candidate)
    }

    /// Consecutive failures that wipe the vault.
    pub fn wipe_after(&self) -> u32 {
        self.wipe_after
    }

    /// Wrong passwords allowed without delay.
    pub fn free_attempts(&self) -> u32 {
        self.free_attempts
    }

    /// Seconds the next attempt must wait after `failures` consecutive
    /// failures, counted from the last failure.
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures < self.free_attempts {
            return 0;
        }
        let i = (failures - self.free_attempts) as usize;
        self.delays
            .get(i)
            .or(self.delays.last())
            .copied()
            .unwrap_or(0)
    }

    /// The gate for the next attempt at `now`, after `failures`
    /// consecutive failures, the last at `last_failure_at`, on the wall
    /// clock only. A clock that went backwards counts as no time elapsed.
    pub fn gate(&self, failures: u32, last_failure_at: u64, now: u64) -> Gate {
        self.gate_after(failures, now.saturating_sub(last_failure_at))
    }

    /// The gate for the next attempt at `now` after `failures` consecutive
    /// failures, the last at `last`, time counted by [`elapsed_secs`].
    pub fn gate_at(&self, failures: u32, last: &Moment, now: &Moment) -> Gate {
        self.gate_after(failures, elapsed_secs(last, now))
    }

    fn gate_after(&self, failures: u32, elapsed: u64) -> Gate {
        if failures >= self.wipe_after {
            return Gate::Wipe;
        }
        let delay = self.delay_after(failures);
        if elapsed < delay {
            Gate::Wait(delay - elapsed)
        } else {
            Gate::Open
        }
    }

    /// Wrong passwords left before the wipe after `failures`.
    pub fn attempts_left(&self, failures: u32) -> u32 {
        self.wipe_after.saturating_sub(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule() {
        let p = LockoutPolicy::default();
        let t = 1_000_000;
        for f in 0..5 {
            assert_eq!(p.gate(f, t, t), Gate::Open, "{f}");
        }
        let table = [(5, 30), (6, 60), (7, 300), (8, 900), (9, 3600)];
        for (f, d) in table {
            assert_eq!(p.gate(f, t, t), Gate::Wait(d), "{f}");
            assert_eq!(p.gate(f, t, t + d - 1), Gate::Wait(1));
            assert_eq!(p.gate(f, t, t + d), Gate::Open);
        }
        assert_eq!(p.gate(10, t, t + 1_000_000), Gate::Wipe);
        assert_eq!(p.attempts_left(4), 6);
    }

    #[test]
    fn clock_going_back_does_not_shorten() {
        let p = LockoutPolicy::default();
        assert_eq!(p.gate(5, 1000, 10), Gate::Wait(30));
    }

    fn at(unix: u64, boot: Option<(&str, u64)>) -> Moment {
        Moment {
            unix,
            boot: boot.map(|(id, ms)| BootTime {
                boot_id: id.into(),
                since_boot_ms: ms,
            }),
        }
    }

    #[test]
    fn elapsed_time_table() {
        let t = 1_800_000_000;
        let cases = [
            // Same boot: the boot clock, whatever the wall clock says.
            (
                at(t, Some(("a", 5_000))),
                at(t + 3600, Some(("a", 15_999))),
                10,
            ),
            (
                at(t, Some(("a", 5_000))),
                at(t - 3600, Some(("a", 35_000))),
                30,
            ),
            (at(t, Some(("a", 5_000))), at(t, Some(("a", 1_000))), 0),
            // Rebooted: time since this boot.
            (
                at(t, Some(("a", 900_000))),
                at(t + 7200, Some(("b", 12_500))),
                12,
            ),
            // No boot clock at one end: the wall clock.
            (at(t, None), at(t + 40, Some(("a", 1_000))), 40),
            (at(t, Some(("a", 0))), at(t + 40, None), 40),
            (at(t, None), at(t - 40, None), 0),
        ];
        for (last, now, want) in cases {
            assert_eq!(elapsed_secs(&last, &now), want, "{last:?} {now:?}");
        }
        let p = LockoutPolicy::default();
        // The wall clock an hour ahead does not open a 30 s delay.
        assert_eq!(
            p.gate_at(
                5,
                &at(t, Some(("a", 0))),
                &at(t + 3600, Some(("a", 10_000)))
            ),
            Gate::Wait(20)
        );
    }

    #[test]
    fn hosts_may_only_tighten() {
        assert!(LockoutPolicy::new(3, vec![60, 120, 600, 900, 3600, 3600], 8).is_ok());
        assert!(LockoutPolicy::new(5, DEFAULT_DELAYS.to_vec(), 10).is_ok());
        // Looser in each dimension.
        assert!(LockoutPolicy::new(6, DEFAULT_DELAYS.to_vec(), 10).is_err());
        assert!(LockoutPolicy::new(5, DEFAULT_DELAYS.to_vec(), 11).is_err());
        assert!(LockoutPolicy::new(5, vec![30, 60, 299, 900, 3600], 10).is_err());
        // Fewer free attempts but a delay shorter than the default at 5+.
        assert!(LockoutPolicy::new(3, vec![30, 30, 30], 10).is_err());
        // Fewer free attempts, long delays repeated: fine.
        assert!(LockoutPolicy::new(3, vec![3600], 10).is_ok());
        assert!(LockoutPolicy::new(0, vec![30], 10).is_err());
        assert!(LockoutPolicy::new(5, vec![], 10).is_err());
        assert_eq!(
            LockoutPolicy::new(6, vec![], 10).unwrap_err().code(),
            "invalid_config"
        );
    }
}
