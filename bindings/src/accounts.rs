//! Standard OTP accounts on [`PooyaApp`]: thin wrappers of the core's
//! `Vault` account calls (`pooya_core::vault::accounts`) and the records
//! they return.
//!
//! Only display data and codes cross, except in
//! [`PooyaApp::export_accounts`]: its otpauth URIs carry the accounts'
//! secrets, on purpose (moving the accounts to another authenticator),
//! after the password; bank cards are never in it (docs/security.md,
//! "What export reveals").

use pooya_core::protocol::{OtpAccount, OtpCode};
use zeroize::Zeroizing;

// The records the core derives for the FFI (feature `uniffi`), under the
// names Kotlin and Swift know.
pub use pooya_core::protocol::{HashAlgorithm as OtpAlgorithm, OtpKind as OtpAccountKind};
pub use pooya_core::vault::AccountRecord as AccountInfo;

use crate::PooyaError;
use crate::vault::PooyaApp;

/// A code of a standard account, to show.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccountCode {
    /// The code, ASCII digits, leading zeros kept.
    pub code: String,
    /// TOTP: seconds until the next code (at least 1); `null` for HOTP.
    pub seconds_left: Option<u64>,
    /// TOTP: the first second (phone clock, Unix) after this code's step.
    pub valid_until: Option<u64>,
    /// HOTP: the counter this code used (the next one uses counter + 1).
    pub counter: Option<u64>,
}

impl std::fmt::Debug for AccountCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCode")
            .field("code", &"<redacted>")
            .field("seconds_left", &self.seconds_left)
            .field("counter", &self.counter)
            .finish()
    }
}

impl From<OtpCode> for AccountCode {
    fn from(c: OtpCode) -> Self {
        // `OtpCode` wipes its code on drop; the copy is what the app shows.
        Self {
            code: c.code.as_str().to_owned(),
            seconds_left: c.seconds_left,
            valid_until: c.valid_until,
            counter: c.counter,
        }
    }
}

impl PooyaApp {
    fn stored(&self, accounts: Vec<OtpAccount>) -> Result<Vec<AccountInfo>, PooyaError> {
        self.with_vault(|v| {
            let ids = v.add_accounts(&accounts)?;
            Ok(v.accounts()?
                .into_iter()
                .filter(|a| ids.contains(&a.id))
                .collect())
        })
    }
}

#[uniffi::export]
impl PooyaApp {
    /// Adds the account of an `otpauth://totp/…` or `otpauth://hotp/…`
    /// URI (Google's Key Uri Format, as a QR code holds it).
    ///
    /// # Errors
    /// `InvalidInput { field, reason }` for a URI the strict parser
    /// refuses, `InvalidDigits`, `Locked`.
    pub fn add_account(&self, uri: String) -> Result<AccountInfo, PooyaError> {
        let uri = Zeroizing::new(uri);
        let account = OtpAccount::from_uri(&uri)?;
        self.stored(vec![account])?
            .into_iter()
            .next()
            .ok_or(PooyaError::AccountNotFound)
    }

    /// Adds every account of a Google Authenticator export
    /// (`otpauth-migration://offline?data=…`), all or none.
    ///
    /// # Errors
    /// As [`PooyaApp::add_account`] (`field` is `migration` for the
    /// wrapping).
    pub fn add_accounts_from_export(&self, uri: String) -> Result<Vec<AccountInfo>, PooyaError> {
        let uri = Zeroizing::new(uri);
        let accounts = OtpAccount::from_migration_uri(&uri)?;
        self.stored(accounts)
    }

    /// Every standard account, in the order added.
    ///
    /// # Errors
    /// `Locked`, `VaultCorrupted`.
    pub fn accounts(&self) -> Result<Vec<AccountInfo>, PooyaError> {
        self.with_vault(|v| v.accounts())
    }

    /// The account's code now (the vault's clock). For HOTP the counter
    /// is advanced and saved before the code is returned.
    ///
    /// # Errors
    /// `Locked`, `AccountNotFound`.
    pub fn account_code(&self, account_id: i64) -> Result<AccountCode, PooyaError> {
        Ok(self.with_vault(|v| v.account_code(account_id))?.into())
    }

    /// Renames an account (its account name; the issuer stays).
    ///
    /// # Errors
    /// `Locked`, `AccountNotFound`, `InvalidInput` for a bad name.
    pub fn rename_account(&self, account_id: i64, name: String) -> Result<(), PooyaError> {
        self.with_vault(|v| v.rename_account(account_id, &name))
    }

    /// Removes an account; needs the password again.
    ///
    /// # Errors
    /// `Locked`, `AccountNotFound`, `WrongPassword { attempts_left }`.
    pub fn remove_account(&self, account_id: i64, password: String) -> Result<(), PooyaError> {
        let password = Zeroizing::new(password);
        self.with_vault(|v| v.remove_account(account_id, &password))
    }

    /// Every standard account as an `otpauth://` URI, after the password
    /// again. The URIs contain the secrets; bank cards are never exported.
    ///
    /// # Errors
    /// `Locked`, `WrongPassword { attempts_left }`.
    pub fn export_accounts(&self, password: String) -> Result<Vec<String>, PooyaError> {
        let password = Zeroizing::new(password);
        Ok(self
            .with_vault(|v| v.export_accounts(&password))?
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use super::*;
    use crate::hooks::{Clock, DeviceKeystore, HostError, HttpResponse, Transport};
    use crate::vault::VaultSettings;

    struct XorKeystore;

    impl DeviceKeystore for XorKeystore {
        fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, HostError> {
            Ok(plaintext.iter().map(|b| b ^ 0x3C).collect())
        }
        fn open(&self, sealed: Vec<u8>) -> Result<Vec<u8>, HostError> {
            Ok(sealed.iter().map(|b| b ^ 0x3C).collect())
        }
    }

    struct NoNetwork;

    #[async_trait::async_trait]
    impl Transport for NoNetwork {
        async fn post_json(
            &self,
            _: String,
            _: Vec<u8>,
            _: u64,
        ) -> Result<HttpResponse, HostError> {
            Err(HostError::Failed {
                details: "offline".into(),
            })
        }
    }

    /// RFC 6238 Appendix B's time 1111111109.
    struct FixedClock;

    impl Clock for FixedClock {
        fn now_unix(&self) -> u64 {
            1_111_111_109
        }
        fn boot_time(&self) -> Option<crate::hooks::BootTime> {
            None
        }
    }

    const PASSWORD: &str = "pooya-Test-42";

    fn app(dir: &std::path::Path) -> Arc<PooyaApp> {
        let floor = pooya_core::KdfParams::FLOOR;
        let app = PooyaApp::new(
            dir.join("vault.db").display().to_string(),
            "test phone".into(),
            Arc::new(XorKeystore),
            Arc::new(NoNetwork),
            None,
            Some(Arc::new(FixedClock)),
            Some(VaultSettings {
                kdf_memory_kib: floor.memory_kib(),
                kdf_iterations: floor.iterations(),
                kdf_parallelism: floor.parallelism(),
                idle_timeout_secs: 60,
            }),
        )
        .unwrap();
        app.create_vault(PASSWORD.into()).unwrap();
        app
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pooya-ffi-accounts-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// RFC 6238 Appendix B's SHA-1 secret, "12345678901234567890".
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn accounts_through_the_object() {
        let dir = tempdir();
        let app = app(&dir);
        let totp = app
            .add_account(format!(
                "otpauth://totp/RFC:alice?secret={RFC_SECRET}&digits=8&issuer=RFC"
            ))
            .unwrap();
        assert_eq!(totp.kind, OtpAccountKind::Totp { period: 30 });
        assert_eq!(totp.algorithm, OtpAlgorithm::Sha1);
        assert_eq!(totp.issuer, "RFC");
        // RFC 6238 Appendix B: 07081804 at 1111111109 (SHA-1).
        let c = app.account_code(totp.id).unwrap();
        assert_eq!(c.code, "07081804");
        assert_eq!(c.seconds_left, Some(1_111_111_110 - 1_111_111_109));
        assert!(!format!("{c:?}").contains("07081804"));

        // HOTP, RFC 4226 Appendix D: counter 1 → 287082.
        let hotp = app
            .add_account(format!("otpauth://hotp/bob?secret={RFC_SECRET}&counter=1"))
            .unwrap();
        let h = app.account_code(hotp.id).unwrap();
        assert_eq!((h.code.as_str(), h.counter), ("287082", Some(1)));
        assert_eq!(
            app.accounts().unwrap()[1].kind,
            OtpAccountKind::Hotp { counter: 2 }
        );

        // Errors keep their stable codes.
        let bad = app
            .add_account("otpauth://totp/x?secret=1".into())
            .unwrap_err();
        assert_eq!(bad.code(), "invalid_input");
        let bad = app
            .add_accounts_from_export("otpauth-migration://offline?data=%%".into())
            .unwrap_err();
        assert_eq!(bad.code(), "invalid_input");
        assert_eq!(
            app.account_code(99).unwrap_err().code(),
            "account_not_found"
        );
        assert_eq!(
            app.remove_account(hotp.id, "wrong password".into())
                .unwrap_err()
                .code(),
            "wrong_password"
        );

        app.rename_account(hotp.id, "bob@work".into()).unwrap();
        assert_eq!(app.accounts().unwrap()[1].name, "bob@work");
        let uris = app.export_accounts(PASSWORD.into()).unwrap();
        assert_eq!(uris.len(), 2);
        assert_eq!(
            OtpAccount::from_uri(&uris[1]).unwrap().kind,
            OtpAccountKind::Hotp { counter: 2 }
        );
        app.remove_account(hotp.id, PASSWORD.into()).unwrap();
        assert_eq!(app.accounts().unwrap().len(), 1);
        assert_eq!(
            app.rename_account(hotp.id, "x".into()).unwrap_err().code(),
            "account_not_found"
        );

        // A whole export, all added in one go.
        let again = app.add_accounts_from_export(export_of(&uris)).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(app.accounts().unwrap().len(), 3);
        app.lock();
        assert_eq!(app.accounts().unwrap_err().code(), "locked");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An `otpauth-migration` URI of the accounts of `uris`.
    fn export_of(uris: &[String]) -> String {
        let accounts: Vec<OtpAccount> = uris
            .iter()
            .map(|u| OtpAccount::from_uri(u).unwrap())
            .collect();
        let payload = pooya_core::protocol::otpauth::encode_migration_payload(&accounts).unwrap();
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(payload);
        format!(
            "otpauth-migration://offline?data={}",
            data.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        )
    }
}
