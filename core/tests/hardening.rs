//! Issue 10, item 9: the vault against an attacker holding the phone or a
//! copy of its file. Lockout on the boot clock, password normalisation
//! and rules, data-key rotation on a password change, the biometric key
//! removed with the vault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pooya_core::testing::ManualClock;
use pooya_core::vault::envelope::{OpenError, Place, SecretKey, open};
use pooya_core::{CoreError, Vault, WeakPasswordReason};

fn five_wrong(v: &mut Vault) {
    for n in 1..=5u32 {
        assert_eq!(
            v.unlock_with_password("wrong-pass").unwrap_err(),
            CoreError::WrongPassword {
                attempts_left: 10 - n
            }
        );
    }
}

#[test]
fn moving_the_wall_clock_forward_does_not_shorten_a_lockout() {
    let env = Env::new();
    let mut v = env.create();
    v.lock();
    five_wrong(&mut v);
    // The user sets the phone's clock an hour (then a day) ahead.
    env.clock.set(T0 + 3600);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 30 }
    );
    assert_eq!(v.status().unwrap().lockout_seconds_left, 30);
    env.clock.set(T0 + 86_400);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 30 }
    );
    // Setting it back does not lengthen it either: the boot clock counts.
    env.clock.advance(10);
    env.clock.set(T0 - 3600);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 20 }
    );
    // Reopening the file (the app restarted) keeps the boot-clock record.
    drop(v);
    let mut v = env.open();
    assert_eq!(v.status().unwrap().lockout_seconds_left, 20);
    env.clock.advance(20);
    v.unlock_with_password(PASSWORD).unwrap();
}

#[test]
fn after_a_reboot_the_delay_restarts_from_the_boot() {
    let env = Env::new();
    let mut v = env.create();
    v.lock();
    five_wrong(&mut v);
    // Rebooted, 5 s of uptime, the wall clock far ahead.
    env.clock.reboot("manual-boot-2", 5);
    env.clock.set(T0 + 7200);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 25 }
    );
    // Another wrong password on the new boot is measured on it.
    env.clock.advance(25);
    assert_eq!(
        v.unlock_with_password("wrong-pass").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 4 }
    );
    env.clock.set(T0 + 100_000);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 60 }
    );
}

#[test]
fn a_host_without_a_boot_clock_falls_back_to_the_wall_clock() {
    let env = Env {
        clock: std::sync::Arc::new(ManualClock::without_boot_clock(T0)),
        ..Env::new()
    };
    let mut v = env.create();
    v.lock();
    five_wrong(&mut v);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 30 }
    );
    env.clock.set(T0 + 30);
    v.unlock_with_password(PASSWORD).unwrap();
}

#[test]
fn arabic_and_persian_keyboards_open_the_same_vault() {
    let env = Env::new();
    // Set with the Arabic ي and ك and a decomposed hamza (و + U+0654).
    let set = "كتاب علي \u{0648}\u{0654} 42";
    let typed = "کتاب علی \u{0624} ۴۲";
    let mut v = Vault::create(
        &env.path(),
        set,
        env.keystore.clone(),
        None,
        env.clock.clone(),
        Env::config(),
    )
    .unwrap();
    v.lock();
    v.unlock_with_password(typed).unwrap();
    v.lock();
    v.unlock_with_password(set).unwrap();
    // A different letter is still a wrong password.
    v.lock();
    assert_eq!(
        v.unlock_with_password("کتاب علا ؤ 42").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
}

#[test]
fn short_digit_and_common_passwords_are_refused() {
    let env = Env::new();
    for (pw, why) in [
        ("137924", WeakPasswordReason::TooFewDigits),
        ("۱۳۷۹۲۴۸", WeakPasswordReason::TooFewDigits),
        ("12341234", WeakPasswordReason::Common),
        ("Password123", WeakPasswordReason::Common),
        ("حشسسصخقی", WeakPasswordReason::Common),
    ] {
        let r = Vault::create(
            &env.path(),
            pw,
            env.keystore.clone(),
            None,
            env.clock.clone(),
            Env::config(),
        );
        let e = r.unwrap_err();
        assert_eq!(e, CoreError::WeakPassword(why), "{pw}");
        assert_eq!(e.code(), "weak_password");
    }
    assert_eq!(WeakPasswordReason::TooFewDigits.code(), "too_few_digits");
    assert_eq!(WeakPasswordReason::Common.code(), "common");
    let mut v = env.create();
    assert_eq!(
        v.change_password(PASSWORD, "qwerty123").unwrap_err(),
        CoreError::WeakPassword(WeakPasswordReason::Common)
    );
    v.change_password(PASSWORD, "13792485").unwrap();
}

/// The data key, recovered the way the biometric slot holds it: the test
/// gate opens the slot's blob (the gate is the test's own; a real one
/// needs a fingerprint).
fn data_key_via_biometric_slot(env: &Env, file: &std::path::Path) -> SecretKey {
    use pooya_core::hooks::BiometricGate;
    let c = rusqlite::Connection::open(file).unwrap();
    let blob: Vec<u8> = c
        .query_row("SELECT host_blob FROM key_slots WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    SecretKey::from_slice(&env.gate.open(&blob).unwrap()).unwrap()
}

fn sealed_seed(file: &std::path::Path, id: i64) -> Vec<u8> {
    let c = rusqlite::Connection::open(file).unwrap();
    c.query_row("SELECT seed FROM cards WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn sealed_fields(file: &std::path::Path) -> Vec<(String, i64, String, Vec<u8>)> {
    let c = rusqlite::Connection::open(file).unwrap();
    let mut out = Vec::new();
    let canary: Vec<u8> = c
        .query_row("SELECT canary FROM vault_state", [], |r| r.get(0))
        .unwrap();
    out.push(("vault_state".into(), 1, "canary".into(), canary));
    let phone: Vec<u8> = c
        .query_row("SELECT phone FROM profile", [], |r| r.get(0))
        .unwrap();
    out.push(("profile".into(), 1, "phone".into(), phone));
    let mut s = c.prepare("SELECT id, profile FROM issuers").unwrap();
    for row in s
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .unwrap()
    {
        let (id, b) = row.unwrap();
        out.push(("issuers".into(), id, "profile".into(), b));
    }
    let mut s = c
        .prepare("SELECT id, info, label, cap, seed FROM cards")
        .unwrap();
    let rows: Vec<(i64, [Vec<u8>; 4])> = s
        .query_map([], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, fields) in rows {
        for (name, b) in ["info", "label", "cap", "seed"].into_iter().zip(fields) {
            out.push(("cards".into(), id, name.into(), b));
        }
    }
    out
}

#[test]
fn a_password_change_rotates_the_data_key() {
    let env = Env::new();
    let mut v = env.create();
    let a = v.add_card(&new_card(1)).unwrap();
    v.set_phone("09121234567").unwrap();
    v.add_issuer(&pooya_core::IssuerProfile {
        name: "mellat".into(),
        base_url: "https://dynpin.bank.example/api".into(),
        public_key: [0x42; 32],
        activation_key: Some(vec![4; 65]),
        time_offset_secs: 0,
        time_anchor: None,
    })
    .unwrap();
    v.enable_biometrics(PASSWORD).unwrap();
    // The attacker's copy of the file, taken before the change.
    let copy = env.dir.path().join("copy.db");
    let c = rusqlite::Connection::open(env.path()).unwrap();
    c.execute("VACUUM INTO ?1", [copy.display().to_string()])
        .unwrap();
    drop(c);
    let old_key = data_key_via_biometric_slot(&env, &env.path());

    v.change_password(PASSWORD, "new-pass-2468").unwrap();
    // Data added after the change.
    let b = v.add_card(&new_card(2)).unwrap();
    assert!(!v.status().unwrap().biometric_enabled);
    assert!(!env.gate.is_enrolled(), "the old biometric key is removed");

    // Not one sealed field of the new file opens with the old data key.
    let fields = sealed_fields(&env.path());
    assert_eq!(fields.len(), 2 + 1 + 8);
    for (table, row, field, blob) in &fields {
        assert_eq!(
            open(&old_key, Place::new(table, *row, field), blob).unwrap_err(),
            OpenError::Authentication,
            "{table}.{field} row {row}"
        );
    }
    // The old key still opens the old copy's fields (it is the old data).
    let old_fields = sealed_fields(&copy);
    for (table, row, field, blob) in &old_fields {
        open(&old_key, Place::new(table, *row, field), blob).unwrap();
    }
    // The old copy and the old password: the old data only, not card b.
    let mut old = env.open_at(&copy).unwrap();
    old.unlock_with_password(PASSWORD).unwrap();
    assert_eq!(
        old.cards()
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![a]
    );
    assert_eq!(
        old.unlock_with_password("new-pass-2468").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    // The new key (seen through a re-enabled biometric slot) opens the
    // new file and not the copy.
    v.enable_biometrics("new-pass-2468").unwrap();
    let new_key = data_key_via_biometric_slot(&env, &env.path());
    assert!(!new_key.ct_eq(&old_key));
    let seed_b = sealed_seed(&env.path(), b);
    open(&new_key, Place::new("cards", b, "seed"), &seed_b).unwrap();
    assert_eq!(
        open(
            &new_key,
            Place::new("cards", a, "seed"),
            &sealed_seed(&copy, a)
        )
        .unwrap_err(),
        OpenError::Authentication
    );
    // Everything still reads through the vault, after a reopen too.
    drop(v);
    let mut v = env.open();
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    v.unlock_with_password("new-pass-2468").unwrap();
    assert_eq!(v.cards().unwrap().len(), 2);
    assert_eq!(v.phone().unwrap().as_deref(), Some("+989121234567"));
    assert_eq!(v.issuers().unwrap().len(), 1);
    assert_eq!(
        v.card_secret(a).unwrap().seed.expose_secret(),
        common::seed(1).expose_secret()
    );
    v.lock();
    v.unlock_with_biometrics().unwrap();
}

#[test]
fn a_version_1_file_keeps_its_failure_count_through_the_upgrade() {
    let env = Env {
        clock: std::sync::Arc::new(ManualClock::without_boot_clock(T0)),
        ..Env::new()
    };
    let mut v = env.create();
    v.lock();
    five_wrong(&mut v);
    drop(v);
    // Back to schema version 1, as a build before issue 10 left the file.
    let c = rusqlite::Connection::open(env.path()).unwrap();
    c.execute_batch(
        "ALTER TABLE vault_state DROP COLUMN last_failure_boot_ms;
         ALTER TABLE vault_state DROP COLUMN last_failure_boot_id;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    // This build, on a host with a boot clock, 10 s later.
    let clock = std::sync::Arc::new(ManualClock::new(T0 + 10));
    let mut v = Vault::open(
        &env.path(),
        env.keystore.clone(),
        None,
        clock.clone(),
        Env::config(),
    )
    .unwrap();
    let st = v.status().unwrap();
    assert_eq!((st.failed_attempts, st.lockout_seconds_left), (5, 20));
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 20 }
    );
    // The next failure is recorded on the boot clock.
    clock.advance(20);
    assert_eq!(
        v.unlock_with_password("wrong-pass").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 4 }
    );
    clock.set(T0 + 86_400);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 60 }
    );
    v.integrity_check().unwrap();
}
