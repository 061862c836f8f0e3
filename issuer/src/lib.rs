//! The bank side of Pooya: the issuer's HTTP server over its service and
//! one of its stores (docs/architecture.md, "Issuer layers").
//!
//! This crate parses requests, authorises them and maps the service's
//! errors to HTTP statuses in one place ([`ApiError`]); the decisions live
//! in `pooya-issuer-service` (re-exported here), the SQL in
//! `pooya-issuer-sqlite` (the embedded default).
//!
//! Other crates start an issuer in-process:
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

mod demo;
mod error;
mod http;
mod init;
mod kannel;
mod key_setup;
mod openapi;
mod rotate;
mod server;

pub use demo::DemoGateway;
pub use demo::{DemoBank, DemoHarim};
pub use error::ApiError;
pub use init::{InitOptions, init};
pub use key_setup::{KEYS_FILE, KeysFile, PIN_VAR, Pkcs11Setup, open_keys};
pub use openapi::{document as openapi_document, document_json as openapi_json};
pub use pooya_issuer_service::{
    self as service, ApiToken, Channel, Clock, ConnectionLimits, EnrollmentRequest,
    EnrollmentResponse, FileKeyProvider, HashDomain, InboundAnswer, InboundSms, InboundStatus,
    InitOutput, IssuerError, KeyProvider, Language, ManualClock, OtpRequest, OtpRequestAnswer,
    OutboxEntry, Role, RoleTokens, ServiceError, Settings, Sms, SmsSender, SmsSenderKind,
    SmsSettings, SystemClock, UnblockRequest, UnblockResponse, keys, merchants, messages,
};
pub use pooya_issuer_sqlite::{self as sqlite, read_outbox};
pub use rotate::{RotateOptions, rotate_keys};
pub use server::{BackgroundServer, ServerConfig, ServerHandle, serve, spawn_on_thread};
