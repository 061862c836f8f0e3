//! The vault's behaviour through its public API: slots, lockout, session,
//! re-authentication, biometrics, storage and what reaches the disk.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::*;
use pooya_core::hooks::BiometricError;
use pooya_core::protocol::second_pin;
use pooya_core::testing::MemoryKeystore;
use pooya_core::{
    CoreError, IssuerProfile, KdfParams, LockoutPolicy, Vault, VaultConfig, WeakPasswordReason,
};

fn issuer(name: &str) -> IssuerProfile {
    IssuerProfile {
        name: name.into(),
        base_url: "https://dynpin.bank.example/api".into(),
        public_key: [0x42; 32],
        activation_key: Some(vec![4; 65]),
        time_offset_secs: -3,
        time_anchor: None,
    }
}

#[test]
fn create_open_unlock_lock() {
    let env = Env::new();
    let mut v = env.create();
    assert!(v.is_unlocked());
    let id = v.add_card(&new_card(1)).unwrap();
    v.lock();
    assert!(!v.is_unlocked());
    assert_eq!(v.cards().unwrap_err(), CoreError::Locked);
    assert_eq!(v.card_secret(id).unwrap_err(), CoreError::Locked);
    drop(v);

    let mut v = env.open();
    let st = v.status().unwrap();
    assert!(st.locked && !st.wiped && !st.biometric_enabled);
    assert_eq!(
        (st.card_count, st.failed_attempts, st.attempts_left),
        (1, 0, 10)
    );
    v.unlock_with_password(PASSWORD).unwrap();
    let cards = v.cards().unwrap();
    assert_eq!(cards.len(), 1);
    let c = &cards[0];
    assert_eq!(c.label, label(1));
    assert_eq!(c.last4, pan(1).last4());
    assert_eq!(c.masked_pan, pan(1).masked());
    assert_eq!(c.issuer_card_id, "card-0001");
    assert_eq!(c.added_at, T0);
    assert!(!c.bank_name.is_empty());
    assert_eq!(v.card_secret(id).unwrap().seed, seed(1));
}

#[test]
fn create_and_open_refuse_the_wrong_state() {
    let env = Env::new();
    assert_eq!(env.open_at(&env.path()).unwrap_err(), CoreError::NoVault);
    drop(env.create());
    let again = Vault::create(
        &env.path(),
        PASSWORD,
        env.keystore.clone(),
        None,
        env.clock.clone(),
        Env::config(),
    );
    assert_eq!(again.unwrap_err(), CoreError::VaultExists);
    // An empty file is not a vault.
    let empty = env.dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(env.open_at(&empty).unwrap_err(), CoreError::NoVault);
    // Garbage is corruption.
    let junk = env.dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x55; 8192]).unwrap();
    assert_eq!(env.open_at(&junk).unwrap_err(), CoreError::VaultCorrupted);
}

#[cfg(unix)]
#[test]
fn vault_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let mut v = env.create();
    v.add_card(&new_card(1)).unwrap();
    for suffix in ["", "-wal"] {
        let p = format!("{}{suffix}", env.path().display());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{p} is {mode:o}");
    }
}

#[test]
fn weak_passwords_and_params_are_refused() {
    let env = Env::new();
    for (pw, why) in [
        ("12345", WeakPasswordReason::TooShort),
        ("123456", WeakPasswordReason::Sequence),
        ("111111", WeakPasswordReason::AllSame),
    ] {
        let r = Vault::create(
            &env.path(),
            pw,
            env.keystore.clone(),
            None,
            env.clock.clone(),
            Env::config(),
        );
        assert_eq!(r.unwrap_err(), CoreError::WeakPassword(why));
    }
    assert_eq!(
        KdfParams::new(8 * 1024, 3, 1).unwrap_err().code(),
        "weak_kdf_params"
    );
    // A weak new password costs no attempt.
    let mut v = env.create();
    assert_eq!(
        v.change_password(PASSWORD, "654321").unwrap_err(),
        CoreError::WeakPassword(WeakPasswordReason::Sequence)
    );
    assert_eq!(v.status().unwrap().failed_attempts, 0);
}

#[test]
fn lockout_schedule_then_wipe() {
    let env = Env::new();
    let mut v = env.create();
    v.add_card(&new_card(1)).unwrap();
    v.set_phone("09121234567").unwrap();
    v.enable_biometrics(PASSWORD).unwrap();
    v.lock();
    for n in 1..=5u32 {
        assert_eq!(
            v.unlock_with_password("wrong-pass").unwrap_err(),
            CoreError::WrongPassword {
                attempts_left: 10 - n
            }
        );
    }
    // Delays after the 5th..9th failure.
    for (n, delay) in [(6u32, 30u64), (7, 60), (8, 300), (9, 900)] {
        assert_eq!(
            v.unlock_with_password(PASSWORD).unwrap_err(),
            CoreError::LockedOut {
                seconds_left: delay
            }
        );
        assert_eq!(v.status().unwrap().lockout_seconds_left, delay);
        env.clock.advance(delay - 1);
        assert_eq!(
            v.unlock_with_password(PASSWORD).unwrap_err(),
            CoreError::LockedOut { seconds_left: 1 }
        );
        env.clock.advance(1);
        assert_eq!(
            v.unlock_with_password("wrong-pass").unwrap_err(),
            CoreError::WrongPassword {
                attempts_left: 10 - n
            }
        );
    }
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 3600 }
    );
    env.clock.advance(3600);
    // The 10th wrong password wipes.
    assert_eq!(
        v.unlock_with_password("wrong-pass").unwrap_err(),
        CoreError::Wiped
    );
    let st = v.status().unwrap();
    assert!(st.wiped && st.locked && !st.biometric_enabled);
    assert!(!env.gate.is_enrolled(), "the platform key goes too");
    assert_eq!(
        (st.card_count, st.phone_set, st.attempts_left),
        (0, false, 0)
    );
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::Wiped
    );
    assert_eq!(v.unlock_with_biometrics().unwrap_err(), CoreError::Wiped);
    drop(v);
    // Still wiped after reopening; the host destroys it and starts over.
    let mut v = env.open();
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::Wiped
    );
    drop(v);
    Vault::destroy(&env.path()).unwrap();
    let mut v = env.create();
    assert!(v.cards().unwrap().is_empty());
}

#[test]
fn success_resets_the_counter() {
    let env = Env::new();
    let mut v = env.create();
    v.lock();
    for _ in 0..4 {
        v.unlock_with_password("wrong-pass").unwrap_err();
    }
    assert_eq!(v.status().unwrap().failed_attempts, 4);
    v.unlock_with_password(PASSWORD).unwrap();
    let st = v.status().unwrap();
    assert_eq!((st.failed_attempts, st.attempts_left), (0, 10));
    // Persian digits are the same password as ASCII ones.
    v.change_password(PASSWORD, "۴۸۱۵۱۶۲۳").unwrap();
    v.lock();
    v.unlock_with_password("48151623").unwrap();
}

#[test]
fn host_may_tighten_the_lockout() {
    let env = Env::new();
    let policy = LockoutPolicy::new(3, vec![60, 120, 300, 900, 3600], 6).unwrap();
    let config = VaultConfig::new(KdfParams::FLOOR, policy, 60).unwrap();
    let mut v = Vault::create(
        &env.path(),
        PASSWORD,
        env.keystore.clone(),
        None,
        env.clock.clone(),
        config,
    )
    .unwrap();
    v.lock();
    for n in 1..=3 {
        assert_eq!(
            v.unlock_with_password("wrong-pass").unwrap_err(),
            CoreError::WrongPassword {
                attempts_left: 6 - n
            }
        );
    }
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err(),
        CoreError::LockedOut { seconds_left: 60 }
    );
    assert!(LockoutPolicy::new(7, vec![30], 10).is_err());
}

#[test]
fn attempt_is_counted_before_the_kdf_runs() {
    // A correct password leaves the counter at 0, so the only way another
    // connection can see 1 is the durable write before the KDF.
    let env = Env::new();
    let config = VaultConfig::with_kdf(KdfParams::new(64 * 1024, 3, 1).unwrap());
    let v = Vault::create(
        &env.path(),
        PASSWORD,
        env.keystore.clone(),
        None,
        env.clock.clone(),
        config.clone(),
    )
    .unwrap();
    drop(v);
    let mut v = Vault::open(
        &env.path(),
        env.keystore.clone(),
        None,
        env.clock.clone(),
        config,
    )
    .unwrap();
    let watcher = env.open();
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU32::new(0));
    let t = {
        let (done, seen) = (done.clone(), seen.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let f = watcher.status().unwrap().failed_attempts;
                seen.fetch_max(f, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    v.unlock_with_password(PASSWORD).unwrap();
    done.store(true, Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(v.status().unwrap().failed_attempts, 0);
}

#[test]
fn idle_auto_lock_after_five_minutes() {
    let env = Env::new();
    let mut v = env.create();
    let id = v.add_card(&new_card(1)).unwrap();
    env.clock.advance(299);
    assert!(v.is_unlocked());
    v.card(id).unwrap(); // activity
    env.clock.advance(299);
    v.card_secret(id).unwrap();
    env.clock.advance(299);
    assert!(!v.lock_if_idle());
    env.clock.advance(1);
    assert!(v.lock_if_idle());
    assert!(!v.is_unlocked());
    assert!(v.status().unwrap().locked);
    assert_eq!(v.card_secret(id).unwrap_err(), CoreError::Locked);
    // Locked for good: time going back does not revive the session.
    env.clock.set(T0);
    assert_eq!(v.cards().unwrap_err(), CoreError::Locked);
    v.unlock_with_password(PASSWORD).unwrap();
    v.card_secret(id).unwrap();
}

#[test]
fn reauthentication_for_sensitive_changes() {
    let env = Env::new();
    let mut v = env.create();
    let a = v.add_card(&new_card(1)).unwrap();
    let b = v.add_card(&new_card(2)).unwrap();
    let tiers = v.card(a).unwrap().policies.cap_ladder.tiers().to_vec();

    // Raising a cap needs the password; lowering does not.
    assert_eq!(
        v.set_cap(a, tiers[2], None).unwrap_err(),
        CoreError::PasswordRequired
    );
    assert_eq!(
        v.set_cap(a, tiers[2], Some("wrong-pass")).unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    v.set_cap(a, tiers[2], Some(PASSWORD)).unwrap();
    assert_eq!(v.card(a).unwrap().cap, tiers[2]);
    assert_eq!(v.card_secret(a).unwrap().cap, tiers[2]);
    v.set_cap(a, tiers[1], None).unwrap();
    assert_eq!(v.card_secret(a).unwrap().cap, tiers[1]);
    assert_eq!(
        v.set_cap(a, tiers[1] + 1, Some(PASSWORD)).unwrap_err(),
        CoreError::InvalidCap
    );

    // Removing a card needs the password.
    assert_eq!(
        v.remove_card(b, "wrong-pass").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    v.remove_card(b, PASSWORD).unwrap();
    assert_eq!(v.card(b).unwrap_err(), CoreError::CardNotFound);
    assert_eq!(v.card_secret(b).unwrap_err(), CoreError::CardNotFound);

    // Changing the password needs the old one; cards survive.
    assert_eq!(
        v.change_password("wrong-pass", "new-pass-77").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    v.change_password(PASSWORD, "new-pass-77").unwrap();
    v.lock();
    assert!(matches!(
        v.unlock_with_password(PASSWORD),
        Err(CoreError::WrongPassword { .. })
    ));
    v.unlock_with_password("new-pass-77").unwrap();
    assert_eq!(v.card_secret(a).unwrap().seed, seed(1));

    // None of these work locked.
    v.lock();
    assert_eq!(
        v.remove_card(a, "new-pass-77").unwrap_err(),
        CoreError::Locked
    );
    assert_eq!(
        v.change_password("new-pass-77", "other-pass-1")
            .unwrap_err(),
        CoreError::Locked
    );
}

#[test]
fn biometric_slot() {
    let env = Env::new();
    let mut v = env.create();
    let id = v.add_card(&new_card(1)).unwrap();
    assert_eq!(
        v.unlock_with_biometrics().unwrap_err(),
        CoreError::BiometricNotEnabled
    );
    assert!(matches!(
        v.enable_biometrics("wrong-pass"),
        Err(CoreError::WrongPassword { .. })
    ));
    v.enable_biometrics(PASSWORD).unwrap();
    assert!(v.status().unwrap().biometric_enabled);
    v.lock();
    v.unlock_with_biometrics().unwrap();
    assert_eq!(v.card_secret(id).unwrap().seed, seed(1));
    assert_eq!(env.gate.prompts(), 1);

    // Cancel and platform lockout keep the slot.
    v.lock();
    env.gate.fail_next(BiometricError::Cancelled);
    assert_eq!(
        v.unlock_with_biometrics().unwrap_err(),
        CoreError::BiometricCancelled
    );
    env.gate.fail_next(BiometricError::Lockout);
    assert_eq!(
        v.unlock_with_biometrics().unwrap_err(),
        CoreError::BiometricLockout
    );
    assert!(v.status().unwrap().biometric_enabled);

    // Enrollment changed: the slot goes, the password still works.
    env.gate.invalidate();
    assert_eq!(
        v.unlock_with_biometrics().unwrap_err(),
        CoreError::BiometricInvalidated
    );
    assert!(!v.status().unwrap().biometric_enabled);
    assert_eq!(
        v.unlock_with_biometrics().unwrap_err(),
        CoreError::BiometricNotEnabled
    );
    v.unlock_with_password(PASSWORD).unwrap();

    // Enable again, then disable.
    v.enable_biometrics(PASSWORD).unwrap();
    // Locked, nobody may turn it off.
    v.lock();
    assert_eq!(v.disable_biometrics().unwrap_err(), CoreError::Locked);
    assert!(env.gate.is_enrolled());
    v.unlock_with_password(PASSWORD).unwrap();
    v.disable_biometrics().unwrap();
    assert!(!env.gate.is_enrolled());
    assert!(!v.status().unwrap().biometric_enabled);

    // Biometric failures never touch the password counter.
    assert_eq!(v.status().unwrap().failed_attempts, 0);
}

#[test]
fn no_biometric_hook() {
    let env = Env::new();
    let mut v = Vault::create(
        &env.path(),
        PASSWORD,
        env.keystore.clone(),
        None,
        env.clock.clone(),
        Env::config(),
    )
    .unwrap();
    assert_eq!(
        v.enable_biometrics(PASSWORD).unwrap_err(),
        CoreError::BiometricUnavailable
    );
}

#[test]
fn the_device_key_binds_the_password_slot() {
    let env = Env::new();
    drop(env.create());
    // The file copied to another device: its keystore cannot unwrap the
    // device secret, and no attempt is counted.
    let mut elsewhere = Vault::open(
        &env.path(),
        Arc::new(MemoryKeystore::new()),
        None,
        env.clock.clone(),
        Env::config(),
    )
    .unwrap();
    assert_eq!(
        elsewhere.unlock_with_password(PASSWORD).unwrap_err().code(),
        "keystore"
    );
    // A broken keystore costs no attempt either.
    let mut v = env.open();
    env.keystore.set_failing(true);
    assert_eq!(
        v.unlock_with_password(PASSWORD).unwrap_err().code(),
        "keystore"
    );
    env.keystore.set_failing(false);
    assert_eq!(v.status().unwrap().failed_attempts, 0);
    v.unlock_with_password(PASSWORD).unwrap();
}

#[test]
fn phone_and_issuers() {
    let env = Env::new();
    let mut v = env.create();
    assert_eq!(v.phone().unwrap(), None);
    assert!(matches!(v.set_phone("12345"), Err(CoreError::Protocol(_))));
    assert_eq!(v.set_phone("0912 123 4567").unwrap(), "+989121234567");
    assert_eq!(
        v.set_phone("09351112233").unwrap_err(),
        CoreError::PhoneAlreadySet
    );
    assert_eq!(v.phone().unwrap().as_deref(), Some("+989121234567"));
    assert!(v.status().unwrap().phone_set);

    v.add_issuer(&issuer("mellat")).unwrap();
    v.add_issuer(&issuer("melli")).unwrap();
    assert_eq!(
        v.add_issuer(&issuer("mellat")).unwrap_err(),
        CoreError::IssuerExists
    );
    let mut bad = issuer("x");
    bad.base_url = "http://bank.example".into();
    assert_eq!(v.add_issuer(&bad).unwrap_err().code(), "invalid_field");
    assert_eq!(v.issuer("mellat").unwrap(), issuer("mellat"));
    assert_eq!(v.issuer("nope").unwrap_err(), CoreError::IssuerNotFound);
    let mut upd = issuer("mellat");
    upd.time_offset_secs = 12;
    v.update_issuer(&upd).unwrap();
    v.lock();
    v.unlock_with_password(PASSWORD).unwrap();
    let all = v.issuers().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].time_offset_secs, 12);
    assert_eq!(all[1].name, "melli");
    assert_eq!(
        v.update_issuer(&issuer("nope")).unwrap_err(),
        CoreError::IssuerNotFound
    );
}

#[test]
fn card_operations() {
    let env = Env::new();
    let mut v = env.create();
    let mut bad = new_card(1);
    bad.cap = 1;
    assert_eq!(v.add_card(&bad).unwrap_err(), CoreError::InvalidCap);
    let mut bad = new_card(1);
    bad.label = "  ".into();
    assert_eq!(v.add_card(&bad).unwrap_err().code(), "invalid_field");

    let ids: Vec<_> = (0..5).map(|i| v.add_card(&new_card(i)).unwrap()).collect();
    v.rename_card(ids[2], "کارت حقوق").unwrap();
    assert_eq!(v.card(ids[2]).unwrap().label, "کارت حقوق");
    assert_eq!(
        v.rename_card(999, "x").unwrap_err(),
        CoreError::CardNotFound
    );
    let list = v.cards().unwrap();
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    // The seed and a PIN from it, as issue 5 will use them.
    let s = v.card_secret(ids[3]).unwrap();
    assert_eq!(s.seed, seed(3));
    let pin = second_pin(&s.keys, &s.policies, s.cap, T0).unwrap();
    let direct = second_pin(&seed(3).derive_keys(), &s.policies, s.cap, T0).unwrap();
    assert_eq!(pin.code, direct.code);
    // Debug output never shows secrets or personal fields.
    let dbg = format!("{s:?} {:?}", list[0]);
    assert!(!dbg.contains("Salary") && !dbg.contains("6104"), "{dbg}");
}

#[test]
fn ciphertexts_are_bound_to_their_place() {
    let env = Env::new();
    let mut v = env.create();
    let a = v.add_card(&new_card(1)).unwrap();
    let b = v.add_card(&new_card(2)).unwrap();
    drop(v);
    let raw = rusqlite::Connection::open(env.path()).unwrap();
    // Card a's seed copied into card b's row.
    raw.execute(
        "UPDATE cards SET seed = (SELECT seed FROM cards WHERE id = ?1) WHERE id = ?2",
        [a, b],
    )
    .unwrap();
    // Card a's label moved into its cap field.
    raw.execute("UPDATE cards SET cap = label WHERE id = ?1", [a])
        .unwrap();
    drop(raw);
    let mut v = env.open();
    v.unlock_with_password(PASSWORD).unwrap();
    assert_eq!(v.card_secret(b).unwrap_err(), CoreError::VaultCorrupted);
    assert_eq!(v.card(a).unwrap_err(), CoreError::VaultCorrupted);
    assert_eq!(v.cards().unwrap_err(), CoreError::VaultCorrupted);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn nothing_personal_reaches_the_disk_in_clear() {
    let env = Env::new();
    let mut v = env.create();
    v.set_phone("09121234567").unwrap();
    v.add_issuer(&issuer("mellat")).unwrap();
    for i in 0..20 {
        v.add_card(&new_card(i)).unwrap();
    }
    let id = v.add_card(&new_card(20)).unwrap();
    v.rename_card(id, "کارت مخفی").unwrap();
    let wal_path = format!("{}-wal", env.path().display());
    let db = std::fs::read(env.path()).unwrap();
    let wal = std::fs::read(&wal_path).unwrap();
    assert!(wal.len() > 4096, "the test must look at a live WAL");
    for file in [&db, &wal] {
        for i in 0..=20 {
            let s = seed(i);
            assert!(!contains(file, &s.expose_secret()[..]));
            assert!(!contains(file, &s.expose_secret()[..8]));
            let p = pan(i);
            assert!(!contains(file, p.expose_secret().as_bytes()));
            assert!(!contains(file, p.masked().as_bytes()));
            assert!(!contains(file, &p.expose_secret().as_bytes()[..8]));
            assert!(!contains(file, label(i).as_bytes()));
            assert!(!contains(file, format!("card-{i:04}").as_bytes()));
        }
        for text in [
            "610433",
            "Salary",
            "9121234567",
            "dynpin.bank",
            "mellat",
            "کارت مخفی",
            "policies",
            PASSWORD,
        ] {
            assert!(!contains(file, text.as_bytes()), "{text}");
        }
        assert!(!contains(file, &[0x42; 32]), "issuer key");
    }
}

#[test]
fn derived_card_keys_and_data_key_are_dropped_on_lock() {
    // After lock, nothing is served from the cache.
    let env = Env::new();
    let mut v = env.create();
    let id = v.add_card(&new_card(1)).unwrap();
    v.card_secret(id).unwrap();
    v.lock();
    assert_eq!(v.card_secret(id).unwrap_err(), CoreError::Locked);
    assert!(!format!("{v:?}").contains("key:"));
}

#[test]
fn vault_and_hooks_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Vault>();
    send::<pooya_core::Hooks>();
}

/// Wrong passwords tried in parallel from separate connections (separate
/// processes or app instances on one file) each count: the read, the gate
/// and the increment happen in one write transaction before the KDF, so no
/// two attempts share a count and parallel guessing cannot get past the
/// wipe.
#[test]
fn parallel_wrong_passwords_each_count() {
    let env = Env::new();
    drop(env.create());
    let vaults: Vec<Vault> = (0..8).map(|_| env.open()).collect();
    let results: Vec<Result<(), CoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = vaults
            .into_iter()
            .map(|mut v| s.spawn(move || v.unlock_with_password("not-the-password")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(CoreError::WrongPassword { .. })))
        .count();
    // After 5 failures the gate makes the rest wait (the clock stands
    // still), so exactly 5 guesses reach the KDF and all 5 are counted.
    assert_eq!(checked, 5, "{results:?}");
    assert!(results.iter().all(|r| matches!(
        r,
        Err(CoreError::WrongPassword { .. } | CoreError::LockedOut { .. })
    )));
    assert_eq!(env.open().status().unwrap().failed_attempts, 5);
}
