//! `pooya oath`: OATH diagnostics like `oathtool`, on the protocol crate.
//! Each command prints the code alone on one line.

use clap::{Args, Subcommand};
use pooya_protocol::{
    HashAlgorithm, OcraInput, OcraSuite, ProtocolError, SecretBytes, hotp, ocra, totp,
};
use zeroize::Zeroizing;

/// `pooya oath …` subcommands.
#[derive(Debug, Subcommand)]
pub enum OathCommand {
    /// HOTP (RFC 4226).
    Hotp(HotpArgs),
    /// TOTP (RFC 6238).
    Totp(TotpArgs),
    /// OCRA (RFC 6287).
    Ocra(OcraArgs),
}

/// Arguments of `pooya oath hotp`.
#[derive(Debug, Args)]
pub struct HotpArgs {
    /// The secret, hex.
    #[arg(long, value_name = "HEX")]
    key: String,
    /// The counter.
    #[arg(long, value_name = "N")]
    counter: u64,
    /// Digits of the code.
    #[arg(long, default_value_t = 6, value_name = "D")]
    digits: u32,
    /// HMAC hash: sha1, sha256 or sha512.
    #[arg(long, default_value = "sha1", value_name = "ALG")]
    algorithm: String,
}

/// Arguments of `pooya oath totp`.
#[derive(Debug, Args)]
pub struct TotpArgs {
    /// The secret, hex (at least 16 bytes).
    #[arg(long, value_name = "HEX")]
    key: String,
    /// Unix time in seconds.
    #[arg(long, value_name = "UNIX")]
    time: u64,
    /// Time step in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    step: u64,
    /// Digits of the code (6–8).
    #[arg(long, default_value_t = 6, value_name = "D")]
    digits: u32,
    /// HMAC hash: sha1, sha256 or sha512.
    #[arg(long, default_value = "sha1", value_name = "ALG")]
    algorithm: String,
}

/// Arguments of `pooya oath ocra`.
#[derive(Debug, Args)]
pub struct OcraArgs {
    /// The OCRA suite, e.g. `OCRA-1:HOTP-SHA1-6:QN08`.
    #[arg(long, value_name = "SUITE")]
    suite: String,
    /// The secret, hex.
    #[arg(long, value_name = "HEX")]
    key: String,
    /// The counter `C`.
    #[arg(long, value_name = "N")]
    counter: Option<u64>,
    /// The question `Q`, in the suite's format.
    #[arg(long, value_name = "Q")]
    question: Option<String>,
    /// The PIN, hashed with the suite's `P` function.
    #[arg(long, value_name = "PIN", conflicts_with = "pin_hash")]
    pin: Option<String>,
    /// The PIN hash, hex.
    #[arg(long, value_name = "HEX")]
    pin_hash: Option<String>,
    /// Session information `S`, hex.
    #[arg(long, value_name = "HEX")]
    session: Option<String>,
    /// Unix time; `T` is derived from the suite's step.
    #[arg(long, value_name = "UNIX", conflicts_with = "timestep")]
    time: Option<u64>,
    /// The time step counter `T`, hex (as the RFC vectors give it).
    #[arg(long, value_name = "HEX")]
    timestep: Option<String>,
}

/// Runs an oath command and returns the code.
///
/// # Errors
/// A [`ProtocolError`] for any bad input.
pub fn run(cmd: &OathCommand) -> Result<String, ProtocolError> {
    match cmd {
        OathCommand::Hotp(a) => {
            let key = SecretBytes::from_hex(&a.key)?;
            hotp(
                key.expose_secret(),
                a.counter,
                a.digits,
                HashAlgorithm::parse(&a.algorithm)?,
            )
        }
        OathCommand::Totp(a) => {
            let key = SecretBytes::from_hex(&a.key)?;
            totp(
                key.expose_secret(),
                a.time,
                a.step,
                a.digits,
                HashAlgorithm::parse(&a.algorithm)?,
            )
        }
        OathCommand::Ocra(a) => run_ocra(a),
    }
}

fn run_ocra(a: &OcraArgs) -> Result<String, ProtocolError> {
    let suite = OcraSuite::parse(&a.suite)?;
    let key = SecretBytes::from_hex(&a.key)?;
    let question = a
        .question
        .as_deref()
        .ok_or_else(|| ProtocolError::OcraInput("--question is required".into()))?;
    let pin_hash: Option<Zeroizing<Vec<u8>>> = match (&a.pin, &a.pin_hash) {
        (Some(pin), _) => Some(Zeroizing::new(suite.hash_pin(pin)?)),
        (None, Some(h)) => Some(Zeroizing::new(
            hex::decode(h).map_err(|_| ProtocolError::InvalidHex("pin-hash"))?,
        )),
        (None, None) => None,
    };
    let session = a
        .session
        .as_deref()
        .map(hex::decode)
        .transpose()
        .map_err(|_| ProtocolError::InvalidHex("session"))?;
    let timestep = match (a.time, &a.timestep) {
        (Some(t), _) => {
            let step = suite
                .time_step()
                .ok_or_else(|| ProtocolError::OcraInput("suite takes no time".into()))?;
            Some(t / step)
        }
        (None, Some(hex)) => Some(
            u64::from_str_radix(hex.trim_start_matches("0x"), 16)
                .map_err(|_| ProtocolError::InvalidHex("timestep"))?,
        ),
        (None, None) => None,
    };
    let input = OcraInput {
        counter: a.counter,
        question,
        password_hash: pin_hash.as_ref().map(|h| h.as_slice()),
        session: session.as_deref(),
        timestep,
    };
    ocra(&suite, key.expose_secret(), &input)
}
