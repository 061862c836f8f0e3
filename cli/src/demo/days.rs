//! The days an authenticator app is judged by (issue 13): a phone whose
//! clock is an hour off, and a lost phone.
//!
//! The demo's phone runs on a [`DemoClock`]: the system's wall and boot
//! clocks, with a wall clock the demo can move (as a customer or a wrong
//! time zone does) and a reboot it can simulate (a new boot id, the boot
//! clock starting again), so the scenes run on any machine in seconds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use pooya_core::hooks::{BootTime, Clock, SystemClock};
use pooya_core::protocol::card_request::AppStatus;
use pooya_core::{CoreError, KdfParams, KeyFileKeystore, Phone, TimeSource, Vault, VaultConfig};
use serde_json::json;

use super::{Demo, ISSUER, PASSWORD, PHONE, StepFailed, Story, persian};
use crate::transport::UreqTransport;

/// The system clock with a movable wall clock and a simulated reboot.
#[derive(Debug, Default)]
pub struct DemoClock {
    /// Seconds added to the system's wall clock.
    wall_offset: AtomicI64,
    /// After a simulated reboot: its boot id and the system's boot-clock
    /// reading at that moment (the new boot's zero).
    reboot: Mutex<Option<(String, u64)>>,
}

impl DemoClock {
    /// Moves the wall clock `secs` away from the system's.
    pub fn set_wall_offset(&self, secs: i64) {
        self.wall_offset.store(secs, Ordering::SeqCst);
    }

    /// The phone restarts: a new boot id, the boot clock from zero.
    pub fn reboot(&self) {
        let now = SystemClock.boot_time().map_or(0, |b| b.since_boot_ms);
        if let Ok(mut r) = self.reboot.lock() {
            *r = Some(("demo-reboot".to_owned(), now));
        }
    }
}

impl Clock for DemoClock {
    fn now_unix(&self) -> u64 {
        SystemClock
            .now_unix()
            .saturating_add_signed(self.wall_offset.load(Ordering::SeqCst))
    }

    fn boot_time(&self) -> Option<BootTime> {
        let real = SystemClock.boot_time()?;
        match self.reboot.lock().ok()?.as_ref() {
            None => Some(real),
            Some((id, zero)) => Some(BootTime {
                boot_id: id.clone(),
                since_boot_ms: real.since_boot_ms.saturating_sub(*zero),
            }),
        }
    }
}

/// Unlocks the phone again if the moved wall clock ended its session
/// (the idle timeout is measured on the wall clock too).
fn unlocked(d: &mut Demo) -> Result<&mut Phone, StepFailed> {
    let phone = d.phone()?;
    if !phone.vault().is_unlocked() {
        phone.vault_mut().unlock_with_password(PASSWORD)?;
    }
    Ok(phone)
}

/// A PIN of `card` whose code the bank has not accepted yet in this demo:
/// the bank takes each code once (RFC 6238 §5.2), so when an earlier step
/// used this time step's code, wait for the next step.
pub(super) fn fresh_pin(
    d: &mut Demo,
    s: &mut Story<'_>,
    card: pooya_core::CardId,
    second: bool,
) -> Result<pooya_core::PinView, StepFailed> {
    let make = |d: &mut Demo| -> Result<pooya_core::PinView, StepFailed> {
        let phone = unlocked(d)?;
        Ok(if second {
            phone.second_pin(card, None)?
        } else {
            phone.first_pin(card)?
        })
    };
    let pin = make(d)?;
    if !d.was_accepted(&pin.code) {
        return Ok(pin);
    }
    s.say(format!(
        "(an earlier step used this time step's code: waiting {} s for the next one)",
        pin.seconds_left
    ));
    std::thread::sleep(std::time::Duration::from_secs(pin.seconds_left + 1));
    make(d)
}

/// The phone's clock an hour ahead: PINs still right on the boot clock;
/// after a reboot the phone asks to sync, and after the sync they are
/// right again.
pub fn wrong_clock_day(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let real_now = SystemClock.now_unix();
    d.clock.set_wall_offset(3600);
    s.say("The customer's phone clock jumps an hour ahead (as many did when Iran stopped daylight saving and phones kept the old rule).");
    let status = unlocked(d)?.time_status(ISSUER)?;
    let pin = fresh_pin(d, s, card, false)?;
    s.check(
        status.source == TimeSource::BootClock && pin.issuer_time.abs_diff(real_now) <= 5,
        format!(
            "the phone does not believe the wall clock: the bank's time is its last signed time plus the boot clock the user cannot set (wall clock off by {:+} s)",
            status.wall_clock_drift_secs.unwrap_or(0)
        ),
    )?;
    let v = d.verify(&pin.code, "first", 0, None)?;
    s.check(
        v.result == "accepted",
        format!("its first PIN {} at an ATM: {}", pin.code, v.describe()),
    )?;

    d.clock.reboot();
    s.say("The phone restarts: the boot clock starts again, and the wall clock is still an hour ahead.");
    let status = unlocked(d)?.time_status(ISSUER)?;
    s.check(
        status.source == TimeSource::WallClock && status.sync_advised,
        "with no boot-clock anchor the phone falls back on the wall clock and tells the app to sync",
    )?;
    let stale = unlocked(d)?.second_pin(card, None)?;
    let wrong = d.verify(&stale.code, "second", 1_000_000, None)?;
    s.check(
        wrong.result == "rejected",
        format!(
            "a PIN made on the wrong clock before syncing: {} (the app would not show it; it asks to sync first)",
            wrong.describe()
        ),
    )?;
    let synced = unlocked(d)?.sync_time(ISSUER)?;
    s.say(format!(
        "Online again, the phone asks the bank for its signed time (a fresh nonce, the bank's Ed25519 signature): offset {:+} s, anchored on the new boot.",
        synced.time_offset_secs
    ));
    let pin = fresh_pin(d, s, card, true)?;
    let v = d.verify(&pin.code, "second", 1_000_000, None)?;
    s.check(
        synced.boot_anchored && v.result == "accepted",
        format!(
            "its second PIN {} after the sync: {}; the wall clock is still wrong and nothing else was needed",
            pin.code,
            v.describe()
        ),
    )
}

/// The phone is lost: the customer deactivates the app at an ATM; the old
/// phone's PINs are refused, and its next sync shows the card deactivated;
/// a new phone activated with a new code works.
pub fn lost_phone(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    s.say("The customer loses the phone. At an ATM of the bank, with the card and its PIN, they choose \"deactivate the app\".");
    let atm = d.tokens()?.tokens.atm.expose_secret().to_owned();
    let n = d.sms()?.len();
    let (status, answer) = d.post("/v1/cards/deactivate", &atm, &json!({"pan": d.pan}))?;
    s.check(
        status == 200 && answer["status"] == "revoked",
        format!(
            "the bank: {} → {}",
            answer["previous"].as_str().unwrap_or("?"),
            answer["status"].as_str().unwrap_or("?")
        ),
    )?;
    let notice = d.wait_sms(n + 1)?;
    super::show_sms(s, &notice);
    // Whoever has the old phone: it has not heard yet and still makes PINs.
    let pin = unlocked(d)?.first_pin(card)?;
    let v = d.verify(&pin.code, "first", 0, None)?;
    s.check(
        v.result == "rejected",
        format!(
            "a PIN from the lost phone, which does not know yet: {}",
            v.describe()
        ),
    )?;
    let sync = unlocked(d)?.sync(ISSUER)?;
    let seen = sync
        .cards
        .iter()
        .find(|c| c.card_id == card)
        .map(|c| c.status);
    let refused = unlocked(d)?.first_pin(card);
    s.check(
        seen == Some(AppStatus::Revoked) && matches!(refused, Err(CoreError::CardRevoked)),
        "at its next sync the old phone learns, from an answer the bank signed, that the card was deactivated; it shows so and makes no more PINs for it (card_revoked)",
    )?;

    s.say("On a new phone, the customer activates the card again at the ATM.");
    d.enroll("app")?;
    let sms = d.sms()?;
    let last = sms
        .last()
        .ok_or_else(|| StepFailed("no SMS arrived".into()))?;
    let code = pooya_issuer::messages::find_activation_code(&last.body)
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| StepFailed("the SMS carries no activation code".into()))?;
    let path: PathBuf = d.phone_dir.path().join("new-phone.db");
    let vault = Vault::create(
        &path,
        PASSWORD,
        Arc::new(KeyFileKeystore::beside(&path)),
        None,
        Arc::new(SystemClock),
        VaultConfig::with_kdf(KdfParams::FLOOR),
    )?;
    let mut phone = Phone::new(vault, Arc::new(UreqTransport), "new phone")?;
    phone.set_phone_number(PHONE)?;
    let key = d.tokens()?.issuer_public_key.clone();
    let activation_key = d.tokens()?.activation_public_key.clone();
    phone.add_issuer(ISSUER, &d.base_url()?, &key, &activation_key)?;
    let typed = persian(&pooya_protocol::ids::format_activation_code(&code));
    let added = phone.add_card(ISSUER, &typed, None)?;
    let pin = phone.first_pin(added.card.id)?;
    let v = d.verify(&pin.code, "first", 0, None)?;
    s.check(
        v.result == "accepted",
        format!(
            "the new phone's first PIN {}: {}; the old phone's seed stays dead",
            pin.code,
            v.describe()
        ),
    )
}
