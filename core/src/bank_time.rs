//! The bank's time on the phone (docs/phone.md, "Time that stays right").
//!
//! A signed sync (`/v1/time`, docs/protocol.md "Signed time") records the
//! bank's clock against the device's boot clock, which the user cannot
//! set. Until the device restarts, bank time is the synced time plus the
//! boot clock's progress, so moving the wall clock changes no PIN. After a
//! restart (another boot id), or on a host without a boot clock, it is the
//! wall clock plus the offset measured at the last sync, and the host is
//! told to sync again. Pure: every reading comes in as an argument.

use serde::{Deserialize, Serialize};

use crate::hooks::BootTime;

/// Path of the signed time route.
pub const TIME_PATH: &str = "/v1/time";

/// A sync's reading of the bank's clock against the boot clock, stored in
/// the issuer profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeAnchor {
    /// The bank's time at the sync, Unix seconds.
    pub bank_time: u64,
    /// The boot the reading belongs to.
    pub boot_id: String,
    /// The boot clock at the sync (the midpoint of the request),
    /// milliseconds since boot.
    pub since_boot_ms: u64,
}

/// Where a bank time came from.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The last sync plus the boot clock's progress: the wall clock does
    /// not matter.
    BootClock,
    /// The wall clock plus the last measured offset: the device restarted
    /// since the last sync, the host has no boot clock, or the issuer was
    /// never synced (the offset is then the one measured at activation).
    WallClock,
}

impl TimeSource {
    /// The stable name (`boot_clock`, `wall_clock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BootClock => "boot_clock",
            Self::WallClock => "wall_clock",
        }
    }
}

/// The bank time the phone computes PINs with, and what the host should
/// know about it.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "TimeStatusInfo")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankTime {
    /// The bank's time, Unix seconds.
    #[cfg_attr(feature = "uniffi", uniffi(name = "bank_time"))]
    pub time: u64,
    /// How it was computed.
    pub source: TimeSource,
    /// (wall clock + last offset) − the boot-clock time, seconds, when both
    /// are known: how far the wall clock moved since the sync.
    pub wall_clock_drift_secs: Option<i64>,
    /// The host should sync (when online): the time is the wall clock's
    /// estimate, or the wall clock disagrees with the boot clock by more
    /// than the tolerance.
    pub sync_advised: bool,
}

/// The bank's time at wall clock `wall` and boot reading `boot`, from the
/// issuer's last `offset` (bank − wall, seconds) and `anchor`.
/// `tolerance_secs` is how far the wall clock may disagree with the boot
/// clock before the host is advised to sync (one PIN step).
pub fn bank_time(
    offset: i64,
    anchor: Option<&TimeAnchor>,
    wall: u64,
    boot: Option<&BootTime>,
    tolerance_secs: u64,
) -> BankTime {
    let from_wall = wall.saturating_add_signed(offset);
    let same_boot = match (anchor, boot) {
        (Some(a), Some(b)) if a.boot_id == b.boot_id && b.since_boot_ms >= a.since_boot_ms => {
            Some((a, b))
        }
        _ => None,
    };
    match same_boot {
        Some((a, b)) => {
            let time = a
                .bank_time
                .saturating_add((b.since_boot_ms - a.since_boot_ms) / 1000);
            let drift = i64::try_from(i128::from(from_wall) - i128::from(time)).unwrap_or(i64::MAX);
            BankTime {
                time,
                source: TimeSource::BootClock,
                wall_clock_drift_secs: Some(drift),
                sync_advised: drift.unsigned_abs() > tolerance_secs,
            }
        }
        None => BankTime {
            time: from_wall,
            source: TimeSource::WallClock,
            wall_clock_drift_secs: None,
            sync_advised: true,
        },
    }
}

/// The offset and anchor of a sync: the issuer answered `server_time`
/// between two readings of both clocks; the midpoints halve the error a
/// slow network makes. No anchor when the boot clock is missing or the
/// device restarted during the request.
pub fn measure(
    server_time: u64,
    wall_before: u64,
    wall_after: u64,
    boot_before: Option<&BootTime>,
    boot_after: Option<&BootTime>,
) -> (i64, Option<TimeAnchor>) {
    let wall_mid = wall_before + wall_after.saturating_sub(wall_before) / 2;
    let offset = i64::try_from(i128::from(server_time) - i128::from(wall_mid)).unwrap_or(
        if server_time > wall_mid {
            i64::MAX
        } else {
            i64::MIN
        },
    );
    let anchor = match (boot_before, boot_after) {
        (Some(a), Some(b)) if a.boot_id == b.boot_id && b.since_boot_ms >= a.since_boot_ms => {
            Some(TimeAnchor {
                bank_time: server_time,
                boot_id: a.boot_id.clone(),
                since_boot_ms: a.since_boot_ms + (b.since_boot_ms - a.since_boot_ms) / 2,
            })
        }
        _ => None,
    };
    (offset, anchor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn boot(id: &str, ms: u64) -> BootTime {
        BootTime {
            boot_id: id.to_owned(),
            since_boot_ms: ms,
        }
    }

    const T: u64 = 1_700_000_000;

    #[test]
    fn bank_time_cases() {
        let anchor = TimeAnchor {
            bank_time: T,
            boot_id: "a".into(),
            since_boot_ms: 50_000,
        };
        // (offset, anchor, wall, boot) -> (time, source, drift, advised)
        type Case<'a> = (
            i64,
            Option<&'a TimeAnchor>,
            u64,
            Option<BootTime>,
            u64,
            TimeSource,
            Option<i64>,
            bool,
        );
        let cases: &[Case<'_>] = &[
            // Same boot, wall clock right: boot clock, no drift.
            (
                5,
                Some(&anchor),
                T - 5 + 100,
                Some(boot("a", 150_000)),
                T + 100,
                TimeSource::BootClock,
                Some(0),
                false,
            ),
            // Same boot, wall clock moved an hour ahead: the PIN time does not move.
            (
                5,
                Some(&anchor),
                T - 5 + 100 + 3600,
                Some(boot("a", 150_000)),
                T + 100,
                TimeSource::BootClock,
                Some(3600),
                true,
            ),
            // ... or set back a day.
            (
                5,
                Some(&anchor),
                T - 5 + 100 - 86_400,
                Some(boot("a", 150_999)),
                T + 100,
                TimeSource::BootClock,
                Some(-86_400),
                true,
            ),
            // Within the tolerance: no advice.
            (
                5,
                Some(&anchor),
                T - 5 + 130,
                Some(boot("a", 150_000)),
                T + 100,
                TimeSource::BootClock,
                Some(30),
                false,
            ),
            (
                5,
                Some(&anchor),
                T - 5 + 131,
                Some(boot("a", 150_000)),
                T + 100,
                TimeSource::BootClock,
                Some(31),
                true,
            ),
            // Rebooted: wall clock + offset, sync advised.
            (
                5,
                Some(&anchor),
                T + 3600,
                Some(boot("b", 1_000)),
                T + 3605,
                TimeSource::WallClock,
                None,
                true,
            ),
            // A boot clock that went backwards in the same boot is not trusted.
            (
                5,
                Some(&anchor),
                T,
                Some(boot("a", 10)),
                T + 5,
                TimeSource::WallClock,
                None,
                true,
            ),
            // No boot clock, never synced.
            (-7, None, T, None, T - 7, TimeSource::WallClock, None, true),
            (
                -7,
                Some(&anchor),
                T,
                None,
                T - 7,
                TimeSource::WallClock,
                None,
                true,
            ),
            // Saturation at the ends.
            (-100, None, 10, None, 0, TimeSource::WallClock, None, true),
        ];
        for (i, (offset, anchor, wall, boot, time, source, drift, advised)) in
            cases.iter().enumerate()
        {
            let got = bank_time(*offset, *anchor, *wall, boot.as_ref(), 30);
            assert_eq!(
                got,
                BankTime {
                    time: *time,
                    source: *source,
                    wall_clock_drift_secs: *drift,
                    sync_advised: *advised
                },
                "case {i}"
            );
        }
    }

    #[test]
    fn measuring_takes_midpoints() {
        let (offset, anchor) = measure(
            T,
            T - 3600,
            T - 3598,
            Some(&boot("a", 1_000)),
            Some(&boot("a", 3_000)),
        );
        assert_eq!(offset, 3599);
        assert_eq!(
            anchor.unwrap(),
            TimeAnchor {
                bank_time: T,
                boot_id: "a".into(),
                since_boot_ms: 2_000
            }
        );
        // Restarted during the request, or no boot clock: no anchor.
        assert_eq!(
            measure(T, T, T, Some(&boot("a", 1)), Some(&boot("b", 2))).1,
            None
        );
        assert_eq!(measure(T, T, T, None, None), (0, None));
        assert_eq!(measure(0, u64::MAX, u64::MAX, None, None).0, i64::MIN);
    }
}
