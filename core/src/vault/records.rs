//! What the vault stores: cards, issuer profiles, and the vault's status
//! and configuration.

use core::fmt;

use pooya_protocol::card_request::AppStatus;
use pooya_protocol::{CardKeys, CardSeed, Pan, Policies};
use serde::{Deserialize, Serialize};

use super::kdf::KdfParams;
use super::lockout::LockoutPolicy;
use crate::CoreError;

/// A card's local id in the vault.
pub type CardId = i64;

/// The idle time after which an unlocked vault locks itself, in seconds
/// (PSD2 RTS Art. 4(3)(d): at most 5 minutes of inactivity).
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 5 * 60;

/// Longest label, issuer name, bank name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest issuer card id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest issuer base URL, in bytes.
pub const MAX_URL_LEN: usize = 512;

/// A card as shown to the customer: display data and policy, never the
/// seed. `Debug` leaves out the personal fields.
#[derive(Clone, PartialEq, Eq)]
pub struct CardRecord {
    /// Local id.
    pub id: CardId,
    /// Name of the issuer profile the card belongs to.
    pub issuer: String,
    /// The issuer's id for this card (sent in verification requests).
    pub issuer_card_id: String,
    /// The customer's label.
    pub label: String,
    /// The card number as shown (`6104 33•• •••• 1234`).
    pub masked_pan: String,
    /// The last four digits.
    pub last4: String,
    /// The bank's name.
    pub bank_name: String,
    /// PIN policies and cap ladder from the issuer.
    pub policies: Policies,
    /// The current cap for second PINs, in Rials (a tier of the ladder).
    pub cap: u64,
    /// When the card was added (Unix seconds).
    pub added_at: u64,
    /// The card's app state as the bank last signed it
    /// ([`AppStatus::Active`] before the first sync).
    pub app_status: AppStatus,
    /// The bank time of that answer (Unix seconds); `None` before the
    /// first sync.
    pub status_checked_at: Option<u64>,
}

impl fmt::Debug for CardRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardRecord")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("cap", &self.cap)
            .field("added_at", &self.added_at)
            .field("app_status", &self.app_status)
            .finish_non_exhaustive()
    }
}

/// A card to add. The seed is wiped when this is dropped.
#[derive(Clone)]
pub struct NewCard {
    /// Name of the issuer profile.
    pub issuer: String,
    /// The issuer's id for this card.
    pub issuer_card_id: String,
    /// The customer's label.
    pub label: String,
    /// The card number as shown.
    pub masked_pan: String,
    /// The last four digits.
    pub last4: String,
    /// The bank's name.
    pub bank_name: String,
    /// PIN policies and cap ladder.
    pub policies: Policies,
    /// The initial cap, a tier of the ladder.
    pub cap: u64,
    /// The card's seed from activation.
    pub seed: CardSeed,
}

impl NewCard {
    /// A card from its number: the masked form, last four and bank name
    /// come from `pan` (the number itself is not stored).
    #[allow(clippy::too_many_arguments)]
    pub fn from_pan(
        issuer: &str,
        issuer_card_id: &str,
        label: &str,
        pan: &Pan,
        policies: Policies,
        cap: u64,
        seed: CardSeed,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            issuer_card_id: issuer_card_id.to_owned(),
            label: label.to_owned(),
            masked_pan: pan.masked(),
            last4: pan.last4().to_owned(),
            bank_name: pan.bank().map_or("", |b| b.name_fa).to_owned(),
            policies,
            cap,
            seed,
        }
    }
}

impl fmt::Debug for NewCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCard")
            .field("issuer", &self.issuer)
            .field("cap", &self.cap)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// What PIN generation needs for one card. Only handed out while the
/// vault is unlocked; the keys are wiped when this is dropped.
#[derive(Clone)]
pub struct CardSecret {
    /// Local id.
    pub id: CardId,
    /// Name of the issuer profile.
    pub issuer: String,
    /// The card's seed.
    pub seed: CardSeed,
    /// The per-kind keys derived from the seed.
    pub keys: CardKeys,
    /// PIN policies and cap ladder.
    pub policies: Policies,
    /// The current cap (a tier of the ladder).
    pub cap: u64,
}

impl fmt::Debug for CardSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardSecret")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("seed", &self.seed)
            .field("keys", &self.keys)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// An issuer (bank) profile, stored sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerProfile {
    /// Unique name (the key for lookups).
    pub name: String,
    /// Base URL of the issuer's API (`https://…`; `http://` only for
    /// loopback addresses).
    pub base_url: String,
    /// The issuer's pinned Ed25519 public key.
    pub public_key: [u8; 32],
    /// The issuer's pinned activation (HPKE, P-256) key, SEC1 uncompressed
    /// (65 bytes); `None` in a profile stored before activation v2, which
    /// cannot activate cards until the issuer is added again.
    #[serde(default)]
    pub activation_key: Option<Vec<u8>>,
    /// Issuer time minus phone time, in seconds, measured at activation
    /// or at the last signed time sync.
    pub time_offset_secs: i64,
    /// The last signed time sync's reading against the boot clock
    /// (docs/phone.md, "Time that stays right"); `None` before the first
    /// or when the host has no boot clock.
    #[serde(default)]
    pub time_anchor: Option<crate::bank_time::TimeAnchor>,
}

/// The vault's state as the lock screen needs it. Reading it needs no
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultStatus {
    /// Whether the vault is locked (including by idle time).
    pub locked: bool,
    /// Whether the vault was wiped after too many wrong passwords.
    pub wiped: bool,
    /// Consecutive wrong passwords.
    pub failed_attempts: u32,
    /// Wrong passwords left before the wipe.
    pub attempts_left: u32,
    /// Seconds before the next password attempt is allowed (0: now).
    pub lockout_seconds_left: u64,
    /// Whether biometric unlock is enabled.
    pub biometric_enabled: bool,
    /// Number of cards.
    pub card_count: u32,
    /// Whether the phone number is set.
    pub phone_set: bool,
}

/// The host's settings. Each may only be tightened from the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    kdf: KdfParams,
    lockout: LockoutPolicy,
    idle_timeout_secs: u64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            kdf: KdfParams::DEFAULT,
            lockout: LockoutPolicy::default(),
            idle_timeout_secs: MAX_IDLE_TIMEOUT_SECS,
        }
    }
}

impl VaultConfig {
    /// Settings with these KDF parameters (for new vaults and password
    /// changes; existing slots keep the parameters stored in them),
    /// lockout policy and idle timeout.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] for an idle timeout of 0 or longer
    /// than 5 minutes.
    pub fn new(
        kdf: KdfParams,
        lockout: LockoutPolicy,
        idle_timeout_secs: u64,
    ) -> Result<Self, CoreError> {
        if idle_timeout_secs == 0 || idle_timeout_secs > MAX_IDLE_TIMEOUT_SECS {
            return Err(CoreError::InvalidConfig(
                "idle timeout must be 1 to 300 seconds",
            ));
        }
        Ok(Self {
            kdf,
            lockout,
            idle_timeout_secs,
        })
    }

    /// The default settings with other KDF parameters.
    pub fn with_kdf(kdf: KdfParams) -> Self {
        Self {
            kdf,
            ..Self::default()
        }
    }

    /// KDF parameters for new password slots.
    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    /// The lockout policy.
    pub fn lockout(&self) -> &LockoutPolicy {
        &self.lockout
    }

    /// Idle seconds before the vault locks itself.
    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_secs
    }
}

fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<(), CoreError> {
    if !allow_empty && value.trim().is_empty() {
        return Err(CoreError::InvalidField {
            field,
            reason: "empty",
        });
    }
    if value.chars().count() > max_chars {
        return Err(CoreError::InvalidField {
            field,
            reason: "too long",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::InvalidField {
            field,
            reason: "control character",
        });
    }
    Ok(())
}

/// Checks a card label.
///
/// # Errors
/// [`CoreError::InvalidField`] (`label`).
pub fn check_label(label: &str) -> Result<(), CoreError> {
    check_text("label", label, MAX_NAME_CHARS, false)
}

impl NewCard {
    /// Checks every field and that the cap is a tier of the ladder.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`], [`CoreError::Protocol`] for bad
    /// policies, [`CoreError::InvalidCap`].
    pub fn validate(&self) -> Result<(), CoreError> {
        check_text("issuer", &self.issuer, MAX_NAME_CHARS, false)?;
        check_text("issuer_card_id", &self.issuer_card_id, MAX_ID_CHARS, false)?;
        check_label(&self.label)?;
        check_text("masked_pan", &self.masked_pan, 32, false)?;
        check_text("bank_name", &self.bank_name, MAX_NAME_CHARS, true)?;
        if self.last4.len() != 4 || !self.last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreError::InvalidField {
                field: "last4",
                reason: "must be 4 digits",
            });
        }
        self.policies.validate()?;
        if !self.policies.cap_ladder.contains(self.cap) {
            return Err(CoreError::InvalidCap);
        }
        Ok(())
    }
}

impl IssuerProfile {
    /// Checks the name and URL.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] (`name` or `base_url`).
    pub fn validate(&self) -> Result<(), CoreError> {
        check_text("name", &self.name, MAX_NAME_CHARS, false)?;
        check_text("base_url", &self.base_url, MAX_URL_LEN, false)?;
        check_issuer_url(&self.base_url)
    }
}

/// An issuer's base URL must be `https://`, or `http://` to a loopback host
/// only (127.0.0.1, `localhost`, `[::1]`: tests and the demo), with no user
/// name or password, query or fragment. Parsed as a URL (WHATWG URL
/// Standard, through the `url` crate), so `http://localhost:1@evil/` is
/// seen for what it is: a request to `evil` carrying user info.
fn check_issuer_url(text: &str) -> Result<(), CoreError> {
    let bad = |reason| {
        Err(CoreError::InvalidField {
            field: "base_url",
            reason,
        })
    };
    if text.chars().any(char::is_whitespace) {
        return bad("must not contain spaces");
    }
    let Ok(url) = url::Url::parse(text) else {
        return bad("not a URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry a user name or password");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad("must not have a query or fragment");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => return bad("must name a host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => bad("must be https:// (http:// only for loopback)"),
    }
}

#[cfg(test)]
mod url_tests {
    use super::check_issuer_url;

    #[test]
    fn issuer_urls() {
        for ok in [
            "https://bank.example",
            "https://bank.example:8443/api",
            "http://127.0.0.1:39655",
            "http://localhost:8080/",
            "http://[::1]:9000",
        ] {
            assert!(check_issuer_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://bank.example",
            "http://localhost:1@127.0.0.2:8099",
            "http://localhost@evil.example/",
            "https://user:pw@bank.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "ftp://bank.example",
            "https://bank.example/?x=1",
            "https://bank .example",
            "bank.example",
            "",
        ] {
            assert!(check_issuer_url(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(url: &str) -> IssuerProfile {
        IssuerProfile {
            name: "mellat".into(),
            base_url: url.into(),
            public_key: [1; 32],
            activation_key: None,
            time_offset_secs: 0,
            time_anchor: None,
        }
    }

    #[test]
    fn issuer_urls() {
        for ok in [
            "https://bank.example",
            "http://127.0.0.1:8080",
            "http://localhost/api",
        ] {
            assert!(issuer(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "http://bank.example",
            "ftp://x",
            "",
            "http://127.0.0.1.evil.com",
            "https://a b",
        ] {
            assert!(issuer(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn config_bounds() {
        assert!(VaultConfig::new(KdfParams::FLOOR, LockoutPolicy::default(), 300).is_ok());
        assert!(VaultConfig::new(KdfParams::FLOOR, LockoutPolicy::default(), 301).is_err());
        assert!(VaultConfig::new(KdfParams::FLOOR, LockoutPolicy::default(), 0).is_err());
    }
}
