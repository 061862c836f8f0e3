//! The bank side of Pooya without I/O (docs/architecture.md, "Issuer
//! layers"): the issuer's decisions as pure functions ([`rules`]), its
//! operations (enrollment, activation, verification, one-time codes,
//! merchants) over the [`Store`] trait, and the durable SMS outbox
//! ([`outbox`]). No HTTP and no database driver: `pooya-issuer` serves
//! these operations over HTTP, `pooya-issuer-sqlite` and
//! `pooya-issuer-postgres` implement the store, and
//! `pooya-issuer-conformance` holds every store to the same behaviour.

mod activate;
pub mod card_life;
pub mod clock;
mod enroll;
mod error;
pub mod gateway;
pub mod keys;
pub mod merchants;
pub mod messages;
pub mod metrics;
pub mod one_time;
pub mod outbox;
pub mod roles;
pub mod rotate;
pub mod rules;
mod service;
pub mod settings;
pub mod store;
mod time;
mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use enroll::{EnrollmentRequest, EnrollmentResponse};
pub use error::{Field, HsmError, IssuerError, PayeeAt, ServiceError};
pub use keys::{CardKey, FileKeyProvider, HashDomain, KeyProvider, MacRequest, ProviderKind};
pub use one_time::{InboundAnswer, InboundSms, InboundStatus, OtpRequest, OtpRequestAnswer};
pub use outbox::{DeliveryHandle, OutboxEntry, Sms, SmsSender};
pub use roles::Role;
pub use service::{
    ApiToken, Delivery, InitOutput, Issuer, RoleTokens, ensure_activation_key, initialize,
    is_initialized,
};
pub use settings::{ConnectionLimits, Language, Settings, SmsSenderKind, SmsSettings};
pub use store::{CardStatus, Channel, DeliveryReport, StatusCause, Store};
pub use verify::{UnblockRequest, UnblockResponse};
