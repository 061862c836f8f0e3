//! The bank side of Pooya: enrollment at the ATM, activation, verification of
//! dynamic PINs, the SMS channel and Harim requests.
//!
//! A library and the `pooya-issuer` binary. Other crates start an issuer
//! in-process:
//!
//! ```no_run
//! # fn main() -> Result<(), pooya_issuer::IssuerError> {
//! let dir = std::path::Path::new("/tmp/issuer-data");
//! let out = pooya_issuer::init(dir, &pooya_issuer::InitOptions::default())?;
//! let server = pooya_issuer::spawn_on_thread(pooya_issuer::ServerConfig::new(dir))?;
//! println!("{} {}", server.base_url(), out.tokens.atm.expose_secret());
//! let sms = pooya_issuer::read_outbox(dir, Some("09121234567"))?;
//! server.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! docs/issuer.md describes the HTTP API; docs/security.md ("Issuer") the
//! keys and the threat model.

mod auth;
mod clock;
pub mod db;
mod demo;
mod error;
mod http;
mod init;
pub mod keys;
pub mod merchants;
pub mod messages;
mod metrics;
pub mod otp;
mod server;
mod service;
mod settings;
pub mod sms;
mod writer;

pub use auth::Role;
pub use clock::{Clock, ManualClock, SystemClock};
pub use demo::DemoGateway;
pub use error::{ApiError, IssuerError};
pub use init::{ApiToken, InitOptions, InitOutput, RoleTokens, init};
pub use keys::{FileKeyProvider, HashDomain, KeyProvider};
pub use otp::{InboundAnswer, InboundSms, InboundStatus, OtpRequest, OtpRequestAnswer};
pub use server::{BackgroundServer, ServerConfig, ServerHandle, serve, spawn_on_thread};
pub use service::{
    Channel, EnrollmentRequest, EnrollmentResponse, UnblockRequest, UnblockResponse,
};
pub use settings::{ConnectionLimits, Language, Settings};
pub use sms::{OutboxEntry, Sms, SmsSender, read_outbox};
