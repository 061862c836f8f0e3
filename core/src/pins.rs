//! Offline PIN generation for a stored card: first, cap-bound second and
//! transaction-bound second PINs at an issuer-corrected time, and the cap
//! rules (docs/phone.md, "PINs" and "Caps").
//!
//! Pure: every function takes the time (already corrected by the issuer's
//! offset) as an argument; [`crate::Phone`] reads the clock.

use core::fmt;

use pooya_protocol::{
    CapLadder, Language, PaymentRequest, PaymentView, PinKind, Policies, Transaction, TxType,
};
use zeroize::Zeroize;

use crate::CoreError;
use crate::vault::{CardId, CardSecret};

/// A generated PIN with its validity window. Times are in the issuer's
/// clock (the phone's clock plus the issuer's offset measured at
/// activation). The code is wiped when this is dropped and left out of
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PinView {
    /// The card.
    pub card_id: CardId,
    /// Which PIN.
    pub kind: PinKind,
    /// The code, ASCII digits, leading zeros kept.
    pub code: String,
    /// The policy's time step, in seconds.
    pub step_secs: u64,
    /// First second of the code's time step (issuer time, Unix seconds).
    pub valid_from: u64,
    /// First second after the code's time step (issuer time).
    pub valid_until: u64,
    /// Seconds left until `valid_until` at `issuer_time`. The issuer also
    /// accepts codes up to its window of steps late (docs/protocol.md).
    pub seconds_left: u64,
    /// The issuer-corrected time the code was made at.
    pub issuer_time: u64,
    /// The cap tier a second PIN is bound to.
    pub cap: Option<u64>,
    /// The cap the caller asked for (second PINs with a requested cap).
    pub requested_cap: Option<u64>,
    /// The exact amount of a transaction-bound PIN.
    pub amount: Option<u64>,
    /// The payee of a transaction-bound PIN (trimmed).
    pub payee: Option<String>,
    /// The transaction type of a transaction-bound PIN.
    pub tx_type: Option<TxType>,
}

impl PinView {
    /// Whether a requested cap was lowered to fit the card's cap or
    /// rounded down to a tier.
    pub fn cap_adjusted(&self) -> bool {
        matches!((self.requested_cap, self.cap), (Some(r), Some(c)) if r != c)
    }
}

impl Drop for PinView {
    fn drop(&mut self) {
        self.code.zeroize();
    }
}

impl fmt::Debug for PinView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinView")
            .field("card_id", &self.card_id)
            .field("kind", &self.kind)
            .field("code", &"<redacted>")
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("seconds_left", &self.seconds_left)
            .field("cap", &self.cap)
            .field("amount", &self.amount)
            .field("tx_type", &self.tx_type)
            .finish_non_exhaustive()
    }
}

/// The outcome of a cap change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapChange {
    /// The card.
    pub card_id: CardId,
    /// The cap before.
    pub previous: u64,
    /// The amount asked for.
    pub requested: u64,
    /// The cap now (the largest tier not above `requested`).
    pub cap: u64,
}

impl CapChange {
    /// Whether `requested` fell between tiers and was rounded down.
    pub fn rounded_down(&self) -> bool {
        self.cap != self.requested
    }
}

/// The default cap of a newly added card: the smallest tier of its
/// ladder, so a new card exposes the least until the customer raises it
/// (which needs the password).
pub fn default_cap(ladder: &CapLadder) -> u64 {
    ladder.tiers().first().copied().unwrap_or(0)
}

/// The tier a requested cap becomes: the largest tier not above it.
///
/// # Errors
/// [`CoreError::CapBelowLowestTier`] when it is below every tier.
pub fn tier_for(ladder: &CapLadder, requested: u64) -> Result<u64, CoreError> {
    ladder
        .round_down(requested)
        .ok_or(CoreError::CapBelowLowestTier {
            lowest_tier: default_cap(ladder),
        })
}

fn view(
    card: &CardSecret,
    kind: PinKind,
    pin: pooya_protocol::Pin,
    time: u64,
    policies: &Policies,
) -> PinView {
    PinView {
        card_id: card.id,
        kind,
        step_secs: policies.policy(kind).step,
        valid_from: pin.valid_from,
        valid_until: pin.valid_until,
        seconds_left: pin.seconds_left(time),
        issuer_time: time,
        cap: pin.cap,
        requested_cap: None,
        amount: None,
        payee: None,
        tx_type: None,
        code: pin.code.clone(),
    }
}

/// The first dynamic PIN (ATM, POS) at issuer time `time`.
///
/// # Errors
/// [`CoreError::Protocol`] for stored policies the protocol refuses.
pub fn first_pin(card: &CardSecret, time: u64) -> Result<PinView, CoreError> {
    let pin = pooya_protocol::first_pin(&card.keys, &card.policies, time)?;
    Ok(view(card, PinKind::First, pin, time, &card.policies))
}

/// The second dynamic PIN bound to a cap: `requested` (or, when `None`,
/// the card's cap) limited to the card's cap, then rounded down to a
/// tier, at issuer time `time`.
///
/// # Errors
/// [`CoreError::CapBelowLowestTier`]; [`CoreError::Protocol`].
pub fn second_pin(
    card: &CardSecret,
    requested: Option<u64>,
    time: u64,
) -> Result<PinView, CoreError> {
    let ladder = &card.policies.cap_ladder;
    let cap = match requested {
        None => card.cap,
        Some(r) => tier_for(ladder, r.min(card.cap))?,
    };
    let pin = pooya_protocol::second_pin(&card.keys, &card.policies, cap, time)?;
    let mut v = view(card, PinKind::Second, pin, time, &card.policies);
    v.requested_cap = requested;
    Ok(v)
}

/// The second dynamic PIN bound to exactly the type, amount and payee of
/// `tx` (Central Bank of Iran rule of 1399/10/08; PSD2 RTS Art. 5 dynamic
/// linking) at issuer time `time`. The amount may not exceed the card's
/// cap: a customer who set a cap expects no dynamic PIN to authorise more
/// without the password.
///
/// # Errors
/// [`CoreError::AmountAboveCap`]; [`CoreError::Protocol`] for a zero
/// amount or a bad payee (docs/protocol.md, "PIN kinds").
pub fn transaction_pin(
    card: &CardSecret,
    tx: &Transaction<'_>,
    time: u64,
) -> Result<PinView, CoreError> {
    let payee = pooya_protocol::pin::normalize_payee(tx.payee)?;
    if tx.amount > card.cap {
        return Err(CoreError::AmountAboveCap { cap: card.cap });
    }
    let tx = Transaction::new(tx.tx_type, tx.amount, payee);
    let pin = pooya_protocol::transaction_pin(&card.keys, &card.policies, &tx, time)?;
    let mut v = view(card, PinKind::Transaction, pin, time, &card.policies);
    v.amount = Some(tx.amount);
    v.payee = Some(payee.to_owned());
    v.tx_type = Some(tx.tx_type);
    Ok(v)
}

/// What the app shows for a scanned payment request URI at issuer time
/// `time`, in `lang` (docs/phone.md, "Payment QR codes"): the strict
/// parse of `pooya-protocol`, then its expiry.
///
/// # Errors
/// [`CoreError::InvalidPaymentRequest`] with the parser's code,
/// [`CoreError::PaymentRequestExpired`].
pub fn payment_view(uri: &str, lang: Language, time: u64) -> Result<PaymentView, CoreError> {
    Ok(PaymentRequest::parse(uri)?.display(lang, time)?)
}

/// The transaction-bound PIN for exactly a scanned payment request (its
/// type, amount and payee id) at issuer time `time`, after the checks of
/// [`payment_view`] and [`transaction_pin`].
///
/// # Errors
/// As [`payment_view`] and [`transaction_pin`].
pub fn payment_pin(card: &CardSecret, uri: &str, time: u64) -> Result<PinView, CoreError> {
    let request = PaymentRequest::parse(uri)?;
    request.check(time)?;
    transaction_pin(card, &request.transaction(), time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pooya_protocol::{CardSeed, Claim, Outcome, verify};

    const T: u64 = 1_763_700_000;

    fn card(cap: u64) -> CardSecret {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let seed = CardSeed::from_bytes(bytes);
        CardSecret {
            id: 3,
            issuer: "bank".into(),
            keys: seed.derive_keys(),
            seed,
            policies: Policies::default(),
            cap,
        }
    }

    #[test]
    fn doc_vectors() {
        // docs/protocol.md, "Worked vectors".
        let c = card(20_000_000);
        let p = first_pin(&c, T).unwrap();
        assert_eq!(p.code, "180016");
        assert_eq!(
            (p.valid_from, p.valid_until, p.seconds_left),
            (T, T + 60, 60)
        );
        assert_eq!(second_pin(&c, None, T).unwrap().code, "53525714");
        assert_eq!(second_pin(&c, Some(5_000_000), T).unwrap().code, "09973725");
        for (t, code) in [
            (TxType::Purchase, "41770379"),
            (TxType::Transfer, "80978418"),
            (TxType::Bill, "03625338"),
        ] {
            let tx = transaction_pin(&c, &Transaction::new(t, 1_250_000, " IR-SHOP-42 "), T + 59)
                .unwrap();
            assert_eq!(tx.code, code, "{t:?}");
            assert_eq!(tx.seconds_left, 1);
            assert_eq!(tx.payee.as_deref(), Some("IR-SHOP-42"));
            assert_eq!(tx.tx_type, Some(t));
        }
    }

    #[test]
    fn second_pin_cap_is_min_then_rounded_down() {
        let c = card(100_000_000);
        // (requested, expected tier)
        for (req, want) in [
            (None, 100_000_000),
            (Some(2_000_000_000), 100_000_000),
            (Some(100_000_000), 100_000_000),
            (Some(99_999_999), 50_000_000),
            (Some(30_000_000), 20_000_000),
            (Some(5_000_000), 5_000_000),
        ] {
            let p = second_pin(&c, req, T).unwrap();
            assert_eq!(p.cap, Some(want), "{req:?}");
            assert_eq!(p.cap_adjusted(), req.is_some_and(|r| r != want));
            let out = verify(
                &c.keys,
                &c.policies,
                Claim::Second { amount: want },
                &p.code,
                T,
                0,
            )
            .unwrap();
            assert!(matches!(out, Outcome::Accepted(_)));
            let above = verify(
                &c.keys,
                &c.policies,
                Claim::Second { amount: want + 1 },
                &p.code,
                T,
                0,
            )
            .unwrap();
            assert!(matches!(above, Outcome::Rejected { .. }), "{req:?}");
        }
        assert_eq!(
            second_pin(&c, Some(4_999_999), T).err(),
            Some(CoreError::CapBelowLowestTier {
                lowest_tier: 5_000_000
            })
        );
    }

    #[test]
    fn transaction_pin_stays_under_the_cap() {
        let c = card(5_000_000);
        let tx = |amount, payee| Transaction::new(TxType::Transfer, amount, payee);
        assert!(transaction_pin(&c, &tx(5_000_000, "IR-SHOP-42"), T).is_ok());
        assert_eq!(
            transaction_pin(&c, &tx(5_000_001, "IR-SHOP-42"), T).err(),
            Some(CoreError::AmountAboveCap { cap: 5_000_000 })
        );
        assert_eq!(
            transaction_pin(&c, &tx(0, "IR-SHOP-42"), T).map_err(|e| e.code()),
            Err("invalid_input")
        );
        assert_eq!(
            transaction_pin(&c, &tx(10, " "), T).map_err(|e| e.code()),
            Err("invalid_input")
        );
    }

    /// The payment page's URI: 1,250,000 Rials to IR-SHOP-42 (Shop),
    /// a transfer, expiring at `T + 300`.
    const URI: &str =
        "pooya:pay?amount=1250000&payee=IR-SHOP-42&name=Shop&type=transfer&expires=1763700300";

    #[test]
    fn a_payment_request_shows_what_it_pays_and_its_pin_binds_exactly_it() {
        let c = card(20_000_000);
        let fa = payment_view(URI, Language::Fa, T).unwrap();
        assert_eq!(fa.amount_fa, "۱٬۲۵۰٬۰۰۰");
        assert_eq!(fa.amount_latin, "1,250,000");
        assert_eq!(fa.payee, "IR-SHOP-42");
        assert_eq!(fa.payee_name, "Shop");
        assert_eq!(fa.tx_type, TxType::Transfer);
        assert_eq!(fa.tx_type_name, "کارت به کارت");
        assert_eq!((fa.seconds_left, fa.time_left.as_str()), (300, "۵:۰۰"));
        let en = payment_view(URI, Language::En, T + 1).unwrap();
        assert_eq!((en.seconds_left, en.time_left.as_str()), (299, "4:59"));

        let pin = payment_pin(&c, URI, T + 59).unwrap();
        // The same code as the transfer vector of docs/protocol.md.
        assert_eq!(pin.code, "80978418");
        assert_eq!(pin.kind, PinKind::Transaction);
        assert_eq!(
            (pin.amount, pin.payee.as_deref(), pin.tx_type),
            (Some(1_250_000), Some("IR-SHOP-42"), Some(TxType::Transfer))
        );
        let claim = |t, amount, payee| Claim::Transaction(Transaction::new(t, amount, payee));
        let v = |claim| verify(&c.keys, &c.policies, claim, &pin.code, T, 0).unwrap();
        assert!(matches!(
            v(claim(TxType::Transfer, 1_250_000, "IR-SHOP-42")),
            Outcome::Accepted(_)
        ));
        assert!(matches!(
            v(claim(TxType::Purchase, 1_250_000, "IR-SHOP-42")),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(
            v(claim(TxType::Transfer, 1_250_001, "IR-SHOP-42")),
            Outcome::Rejected { .. }
        ));
    }

    #[test]
    fn payment_requests_refused_with_their_codes() {
        let c = card(20_000_000);
        assert_eq!(
            payment_pin(&c, URI, T + 300).err(),
            Some(CoreError::PaymentRequestExpired {
                expires_at: 1_763_700_300
            })
        );
        assert_eq!(
            payment_view(URI, Language::Fa, T + 301).map_err(|e| e.code()),
            Err("payment_request_expired")
        );
        for (uri, reason) in [
            ("https://shop.example/pay", "not_payment_uri"),
            (
                &URI.replace("amount=1250000", "amount=01250000"),
                "invalid_amount",
            ),
            (&URI.replace("&type=transfer", ""), "missing_parameter"),
            (&URI.replace("type=transfer", "type=gift"), "invalid_type"),
            (&format!("{URI}&note=x"), "unknown_parameter"),
        ] {
            assert_eq!(
                payment_pin(&c, uri, T).err(),
                Some(CoreError::InvalidPaymentRequest { reason }),
                "{uri}"
            );
        }
        // Above the card's cap: the request is shown, the PIN refused.
        let big = URI.replace("amount=1250000", "amount=20000001");
        assert!(payment_view(&big, Language::En, T).is_ok());
        assert_eq!(
            payment_pin(&c, &big, T).err(),
            Some(CoreError::AmountAboveCap { cap: 20_000_000 })
        );
    }

    #[test]
    fn caps_round_down() {
        let ladder = CapLadder::default();
        assert_eq!(default_cap(&ladder), 5_000_000);
        assert_eq!(tier_for(&ladder, 30_000_000).unwrap(), 20_000_000);
        assert_eq!(tier_for(&ladder, u64::MAX).unwrap(), 2_000_000_000);
        assert!(tier_for(&ladder, 1).is_err());
    }

    #[test]
    fn debug_hides_the_code() {
        let p = first_pin(&card(5_000_000), T).unwrap();
        assert!(!format!("{p:?}").contains(&p.code));
    }
}
