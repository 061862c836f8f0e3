//! Enrollment at the ATM (`POST /v1/enrollments`, docs/issuer.md,
//! "Enrollment"): card and card PIN prove the customer; the bank sends an
//! activation code for the app, or enables the SMS version.

use pooya_protocol::{Pan, normalize_phone};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Field, ServiceError};
use crate::keys::HashDomain;
use crate::outbox::Notice;
use crate::service::{Issuer, PURPOSE_PAN};
use crate::store::{Channel, Enrollment, NewActivationCode};

/// `POST /v1/enrollments` body. Its `Debug` hides the card number, which
/// is wiped on drop.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Deserialize, Serialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// The card number (16 digits, Luhn).
    pub pan: String,
    /// The customer's mobile number.
    pub phone: String,
    /// `app` or `sms`.
    #[zeroize(skip)]
    pub channel: Channel,
}

impl std::fmt::Debug for EnrollmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentRequest")
            .field("pan", &"<redacted>")
            .field("phone", &self.phone)
            .field("channel", &self.channel)
            .finish()
    }
}

/// `POST /v1/enrollments` answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentResponse {
    /// The issuer's card id.
    pub card_id: String,
    /// The channel enrolled.
    pub channel: Channel,
    /// The masked card number.
    pub masked_pan: String,
    /// When the activation code expires (Unix seconds; `app` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_expires_at: Option<u64>,
    /// With two-channel codes (`activation_code_split`): the code's first
    /// part, for the ATM to show on screen or receipt; the SMS carries the
    /// rest. A secret until spent: `Debug` hides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code_atm_part: Option<String>,
}

impl std::fmt::Debug for EnrollmentResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentResponse")
            .field("card_id", &self.card_id)
            .field("channel", &self.channel)
            .field("masked_pan", &self.masked_pan)
            .field("activation_expires_at", &self.activation_expires_at)
            .field(
                "activation_code_atm_part",
                &self.activation_code_atm_part.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Issuer {
    fn new_card_id(&self) -> Result<String, ServiceError> {
        Ok(format!("crd_{}", hex::encode(self.random_bytes::<10>()?)))
    }

    /// A uniformly random activation code: `digits - 1` random digits and
    /// a Luhn check digit.
    fn new_activation_code(&self) -> Result<Zeroizing<String>, ServiceError> {
        let n = self.settings.activation_code_digits - 1;
        let mut code = Zeroizing::new(String::with_capacity(n + 1));
        while code.len() < n {
            let bytes = Zeroizing::new(self.random_bytes::<32>()?);
            // Rejection sampling: 250 = 25 × 10 keeps the digits uniform.
            for b in bytes.iter().filter(|b| **b < 250) {
                if code.len() == n {
                    break;
                }
                code.push(char::from(b'0' + b % 10));
            }
        }
        let check = pooya_protocol::ids::luhn_check_digit(&code);
        code.push(check);
        Ok(code)
    }

    /// The keyed hash an activation code is stored and found by, bound to
    /// the phone it was sent to.
    pub(crate) fn code_hash(&self, phone: &str, code: &str) -> Result<[u8; 32], ServiceError> {
        let mut data = Zeroizing::new(Vec::with_capacity(phone.len() + 1 + code.len()));
        data.extend_from_slice(phone.as_bytes());
        data.push(0);
        data.extend_from_slice(code.as_bytes());
        Ok(self.keys.keyed_hash(HashDomain::ActivationCode, &data)?)
    }

    /// `POST /v1/enrollments`: the card and its messages are committed in
    /// one transaction; the SMS goes out from the outbox.
    ///
    /// # Errors
    /// `invalid_pan`, `invalid_phone`, or a storage failure.
    pub async fn enroll(&self, req: EnrollmentRequest) -> Result<EnrollmentResponse, ServiceError> {
        let pan = Pan::parse(&req.pan).map_err(|e| ServiceError::protocol(Field::Pan, &e))?;
        let phone =
            normalize_phone(&req.phone).map_err(|e| ServiceError::protocol(Field::Phone, &e))?;
        let now = self.now();
        let pan_hash = self
            .keys
            .keyed_hash(HashDomain::Pan, pan.expose_secret().as_bytes())?;
        let new_card_id = self.new_card_id()?;
        let pan_sealed = self.keys.seal(
            PURPOSE_PAN,
            new_card_id.as_bytes(),
            pan.expose_secret().as_bytes(),
        )?;
        let channel = req.channel;
        let ttl = self.settings.activation_ttl_secs;
        let code = match channel {
            Channel::App => Some(self.new_activation_code()?),
            Channel::Sms => None,
        };
        // Two-channel codes: the ATM shows the head, the SMS carries the
        // tail (with the check digit).
        let atm_digits = match (&code, self.settings.activation_code_split) {
            (Some(_), true) => self.settings.activation_atm_digits,
            _ => 0,
        };
        let (notice, new_code) = match &code {
            Some(code) => (
                Notice::ActivationCode {
                    code: if atm_digits > 0 {
                        code[atm_digits..].to_owned()
                    } else {
                        pooya_protocol::ids::format_activation_code(code)
                    },
                    minutes: ttl.div_ceil(60),
                    last4: pan.last4().to_owned(),
                    split: atm_digits > 0,
                },
                Some(NewActivationCode {
                    hash: self.code_hash(&phone, code)?,
                    expires_at: i64::try_from(now + ttl).unwrap_or(i64::MAX),
                }),
            ),
            None => (
                Notice::SmsChannelEnabled {
                    last4: pan.last4().to_owned(),
                    short_code: self.settings.sms_short_code.clone(),
                },
                None,
            ),
        };
        let enrolled = self
            .store
            .enroll(Enrollment {
                pan_hash,
                new_card_id,
                pan_sealed,
                last4: pan.last4().to_owned(),
                phone: phone.clone(),
                code: new_code,
                message: notice.to(&phone, self.keys.as_ref())?,
                phone_changed: Notice::PhoneChanged {
                    last4: pan.last4().to_owned(),
                },
                now: i64::try_from(now).unwrap_or(i64::MAX),
            })
            .await?;
        self.wake_outbox();
        self.metrics
            .enrollments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            card_id = %enrolled.card_id,
            channel = ?channel,
            moved = enrolled.moved_from_another_phone,
            "enrolled"
        );
        Ok(EnrollmentResponse {
            card_id: enrolled.card_id,
            channel,
            masked_pan: pan.masked(),
            activation_expires_at: code.as_ref().map(|_| now + ttl),
            activation_code_atm_part: code
                .as_ref()
                .filter(|_| atm_digits > 0)
                .map(|c| c[..atm_digits].to_owned()),
        })
    }
}
