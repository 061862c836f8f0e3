//! Standard OTP accounts in the vault (issue 13, item 5): sealed,
//! listed, renamed, removed, exported after the password, HOTP counters
//! advanced durably, and every field resealed by a password change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use pooya_core::protocol::{OtpAccount, OtpKind};
use pooya_core::testing::{ManualClock, MemoryKeystore};
use pooya_core::{CoreError, KdfParams, Vault, VaultConfig};

const PASSWORD: &str = "correct-horse-2468";
const NOW: u64 = 1_800_000_010;
/// RFC 4226 Appendix D's secret in base32.
const RFC: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

struct Env {
    dir: tempfile::TempDir,
    keystore: Arc<MemoryKeystore>,
    clock: Arc<ManualClock>,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keystore: Arc::new(MemoryKeystore::new()),
            clock: Arc::new(ManualClock::new(NOW)),
        }
    }
    fn config() -> VaultConfig {
        VaultConfig::with_kdf(KdfParams::FLOOR)
    }
    fn create(&self) -> Vault {
        let path = self.dir.path().join("vault.db");
        Vault::create(
            &path,
            PASSWORD,
            self.keystore.clone(),
            None,
            self.clock.clone(),
            Self::config(),
        )
        .unwrap()
    }
    fn reopen(&self) -> Vault {
        let path = self.dir.path().join("vault.db");
        let mut v = Vault::open(
            &path,
            self.keystore.clone(),
            None,
            self.clock.clone(),
            Self::config(),
        )
        .unwrap();
        v.unlock_with_password(PASSWORD).unwrap();
        v
    }
}

#[test]
fn totp_and_hotp_accounts_live_in_the_vault() {
    let env = Env::new();
    let mut v = env.create();
    let totp = OtpAccount::from_uri(&format!(
        "otpauth://totp/GitHub:alice?secret={RFC}&digits=8"
    ))
    .unwrap();
    let hotp = OtpAccount::from_uri(&format!("otpauth://hotp/bob?secret={RFC}&counter=0")).unwrap();
    let t = v.add_account(&totp).unwrap();
    let h = v.add_account(&hotp).unwrap();
    let list = v.accounts().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].issuer, "GitHub");
    assert_eq!(list[0].name, "alice");
    assert_eq!(list[0].added_at, NOW);
    assert_eq!(list[1].kind, OtpKind::Hotp { counter: 0 });

    // TOTP: the code at the vault's clock, with the seconds it has left.
    let c = v.account_code(t).unwrap();
    assert_eq!(*c.code, *totp.code_at(NOW).unwrap().code);
    assert_eq!(c.seconds_left, Some(20));

    // HOTP (RFC 4226 Appendix D): each code advances the stored counter,
    // and the advance survives a reopen.
    assert_eq!(c.counter, None);
    assert_eq!(v.account_code(h).unwrap().code.as_str(), "755224");
    assert_eq!(v.account_code(h).unwrap().code.as_str(), "287082");
    drop(v);
    let mut v = env.reopen();
    assert_eq!(v.accounts().unwrap()[1].kind, OtpKind::Hotp { counter: 2 });
    assert_eq!(v.account_code(h).unwrap().code.as_str(), "359152");

    v.rename_account(t, "alice@work").unwrap();
    assert_eq!(v.accounts().unwrap()[0].name, "alice@work");
    assert!(matches!(
        v.rename_account(t, " ").unwrap_err(),
        CoreError::Protocol(_)
    ));
    assert_eq!(
        v.rename_account(99, "x").unwrap_err(),
        CoreError::AccountNotFound
    );
    assert_eq!(v.account_code(99).unwrap_err().code(), "account_not_found");

    // Export after the password: the accounts as URIs, HOTP at its
    // current counter, nothing else.
    assert_eq!(
        v.export_accounts("wrong-password-1").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    let uris = v.export_accounts(PASSWORD).unwrap();
    assert_eq!(uris.len(), 2);
    let back = OtpAccount::from_uri(&uris[1]).unwrap();
    assert_eq!(back.kind, OtpKind::Hotp { counter: 3 });
    assert_eq!(back.secret, hotp.secret);
    assert_eq!(OtpAccount::from_uri(&uris[0]).unwrap().name, "alice@work");

    // Remove needs the password.
    assert_eq!(
        v.remove_account(t, "wrong-password-1").unwrap_err(),
        CoreError::WrongPassword { attempts_left: 9 }
    );
    v.remove_account(t, PASSWORD).unwrap();
    assert_eq!(v.accounts().unwrap().len(), 1);
    assert_eq!(
        v.remove_account(t, PASSWORD).unwrap_err(),
        CoreError::AccountNotFound
    );

    // Locked: nothing.
    v.lock();
    assert_eq!(v.accounts().unwrap_err(), CoreError::Locked);
    assert_eq!(v.account_code(h).unwrap_err(), CoreError::Locked);
}

#[test]
fn a_google_authenticator_export_is_added_whole_and_survives_a_password_change() {
    let env = Env::new();
    let mut v = env.create();
    let accounts: Vec<OtpAccount> = (0..3)
        .map(|i| OtpAccount::from_uri(&format!("otpauth://totp/Acme:a{i}?secret={RFC}")).unwrap())
        .collect();
    let payload = pooya_core::protocol::otpauth::encode_migration_payload(&accounts).unwrap();
    let mut bad = accounts.clone();
    bad[2].digits = 9;
    // One bad account: none is stored.
    assert!(v.add_accounts(&bad).is_err());
    assert_eq!(v.accounts().unwrap().len(), 0);
    let parsed = pooya_core::protocol::otpauth::decode_migration_payload(&payload).unwrap();
    let ids = v.add_accounts(&parsed).unwrap();
    assert_eq!(ids.len(), 3);
    let before = v.account_code(ids[1]).unwrap();
    v.change_password(PASSWORD, "new-pass-13579").unwrap();
    assert_eq!(*v.account_code(ids[1]).unwrap().code, *before.code);
    assert_eq!(v.accounts().unwrap().len(), 3);
}
