//! Harim (هدایت رمز یکبار مصرف), the Central Bank's router between payment
//! gateways and the issuing banks (docs/harim.md).
//!
//! A gateway sends `POST /v1/otp-requests` and `POST /v1/verify` to Harim
//! with its own token; Harim reads only the card number, finds the bank
//! that owns its BIN prefix and forwards the body with that bank's token,
//! passing the bank's answer back unchanged. A card of a BIN no bank owns
//! gets the answer an issuer gives a card it does not know.
//!
//! The decisions are pure and tested as tables and properties:
//! [`routing`] (BIN prefixes), [`breaker`] (the circuit breaker's state
//! machine), [`ratelimit`] (token buckets), [`settings`] (what a settings
//! file may say); the I/O is in [`server`], the HTTP handlers and the
//! forwarding client.
//!
//! ```no_run
//! # fn main() -> Result<(), pooya_harim::HarimError> {
//! let harim = pooya_harim::spawn_on_thread(pooya_harim::HarimConfig::new("/etc/pooya/harim.json"))?;
//! println!("{}", harim.base_url());
//! harim.shutdown()?;
//! # Ok(()) }
//! ```

pub mod breaker;
mod error;
mod forward;
mod http;
mod local;
mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routing;
mod server;
pub mod settings;
mod table;
mod token;

pub use error::HarimError;
pub use server::{
    BackgroundHarim, Clock, EnvReader, HarimConfig, HarimHandle, ReloadReport, SystemClock, serve,
    spawn_on_thread,
};
pub use settings::Settings;

/// Checks a settings file as `serve` would (its secrets read from the
/// process environment and files) and says what it routes.
///
/// # Errors
/// `invalid_settings` naming the field.
pub fn check_settings(settings: &Settings) -> Result<ReloadReport, HarimError> {
    let c = settings.check(&|v| std::env::var(v).ok())?;
    Ok(ReloadReport {
        status: "checked".into(),
        issuers: c.issuers.len(),
        gateways: c.gateways.len(),
        bins: c.routes.len(),
    })
}
