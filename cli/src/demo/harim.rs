//! The demo's payment network (issue 14): a second bank and Harim, the
//! Central Bank's router between payment gateways and the banks
//! (docs/harim.md).
//!
//! The first bank (Bank Mellat's BIN 610433) is started by the demo's
//! first step. [`harim_starts`] adds a second bank, with its own keys and
//! data (Bank Melli's BIN 603799), and a Harim in this process that routes
//! each card number to its bank by BIN. From then on every gateway request
//! of the demo (`/v1/verify`, `/v1/otp-requests`) goes to Harim with the
//! gateway's Harim token, never to a bank: the gateway no longer needs to
//! know which bank issued a card. [`second_bank_card`] puts a card of the
//! second bank into the same phone vault; [`a_bank_is_down`] stops the
//! second bank and shows the other bank's cards still served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pooya_core::CardId;
use pooya_issuer::{BackgroundServer, InitOptions, InitOutput, ServerConfig};
use pooya_protocol::{TxType, ids};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{Demo, PAYEE, PHONE, StepFailed, Story, json_answer, persian, random_pan_with};
use crate::output::rials;

/// The second bank's BIN (Bank Melli).
pub const OTHER_BIN: &str = "603799";
/// The second bank's name in the phone.
const OTHER_ISSUER: &str = "melli";
/// How long Harim waits for a bank: short, so the demo's "a bank is down"
/// step is quick (a real Harim's default is 2 s).
const BANK_TIMEOUT_MS: u64 = 1500;

/// The network beyond the first bank: the second bank and Harim.
pub struct Network {
    dir: tempfile::TempDir,
    other_dir: tempfile::TempDir,
    other_init: Option<InitOutput>,
    other: Option<BackgroundServer>,
    harim: Option<pooya_harim::BackgroundHarim>,
    /// The payment gateway's Harim token (drawn at random per run).
    gateway_token: Zeroizing<String>,
    /// The second bank's test card.
    pub other_pan: String,
    /// The second bank's card in the phone.
    pub other_card: Option<CardId>,
}

impl Network {
    /// Temporary directories; nothing runs yet.
    ///
    /// # Errors
    /// When a directory cannot be made or no randomness is available.
    pub fn new() -> Result<Self, StepFailed> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("pooya-demo-harim-")
                .tempdir()?,
            other_dir: tempfile::Builder::new()
                .prefix("pooya-demo-bank2-")
                .tempdir()?,
            other_init: None,
            other: None,
            harim: None,
            gateway_token: Zeroizing::new(random_token()?),
            other_pan: random_pan_with(OTHER_BIN)?,
            other_card: None,
        })
    }

    /// Harim's base URL.
    ///
    /// # Errors
    /// Before Harim started.
    pub fn harim_url(&self) -> Result<String, StepFailed> {
        self.harim
            .as_ref()
            .map(pooya_harim::BackgroundHarim::base_url)
            .ok_or_else(|| StepFailed("Harim is not running".into()))
    }

    fn other_init(&self) -> Result<&InitOutput, StepFailed> {
        self.other_init
            .as_ref()
            .ok_or_else(|| StepFailed("the second bank is not initialised".into()))
    }

    fn other_url(&self) -> Result<String, StepFailed> {
        self.other
            .as_ref()
            .map(BackgroundServer::base_url)
            .ok_or_else(|| StepFailed("the second bank is not running".into()))
    }

    /// The SMS the customer got from the second bank, oldest first.
    fn other_sms(&self) -> Result<Vec<pooya_issuer::OutboxEntry>, StepFailed> {
        Ok(pooya_issuer::read_outbox(
            self.other_dir.path(),
            Some(PHONE),
        )?)
    }

    /// Stops Harim and the second bank.
    ///
    /// # Errors
    /// When a server does not stop cleanly.
    pub fn stop(&mut self) -> Result<(), StepFailed> {
        if let Some(h) = self.harim.take() {
            h.shutdown()?;
        }
        if let Some(s) = self.other.take() {
            s.shutdown()?;
        }
        Ok(())
    }
}

fn random_token() -> Result<String, StepFailed> {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| StepFailed("random generator failed".into()))?;
    Ok(hex::encode(bytes))
}

impl Demo {
    /// POSTs JSON to Harim as the payment gateway; returns status and body.
    ///
    /// # Errors
    /// When no HTTP answer arrives or it is not JSON.
    pub fn post_harim(&self, path: &str, body: &Value) -> Result<(u16, Value), StepFailed> {
        let url = format!("{}{path}", self.net.harim_url()?);
        let resp = self
            .http
            .post(&url)
            .header(
                "Authorization",
                format!("Bearer {}", self.net.gateway_token.as_str()),
            )
            .send_json(body)?;
        json_answer(resp)
    }
}

/// Starts the second bank and Harim in front of both banks.
pub fn harim_starts(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let first_gateway = d.tokens()?.tokens.gateway.expose_secret().to_owned();
    let first_url = d.base_url()?;
    let init = pooya_issuer::init(d.net.other_dir.path(), &InitOptions::default())?;
    let mut cfg = ServerConfig::new(d.net.other_dir.path());
    "Bank Melli".clone_into(&mut cfg.settings.bank_name);
    let other = pooya_issuer::spawn_on_thread(cfg)?;
    s.say(format!(
        "A second bank (BIN {OTHER_BIN}) starts at {} with its own keys and data.",
        other.base_url()
    ));
    let other_gateway = init.tokens.gateway.expose_secret().to_owned();
    let other_url = other.base_url();
    d.net.other_init = Some(init);
    d.net.other = Some(other);

    // Harim's settings name no secret: each token is read from the
    // environment Harim is given (here an in-memory map).
    let settings = json!({
        "listen": "127.0.0.1:0",
        "admin_token": {"env": "HARIM_ADMIN"},
        "gateways": [{"name": "demo-gateway", "token": {"env": "HARIM_GATEWAY"}}],
        "issuers": [
            {"name": "mellat", "base_url": first_url, "bins": ["610433"],
             "token": {"env": "HARIM_MELLAT"}, "timeout_ms": BANK_TIMEOUT_MS,
             "breaker": {"failures": 3, "cool_down_ms": 2000}},
            {"name": OTHER_ISSUER, "base_url": other_url, "bins": [OTHER_BIN],
             "token": {"env": "HARIM_MELLI"}, "timeout_ms": BANK_TIMEOUT_MS,
             "breaker": {"failures": 3, "cool_down_ms": 2000}},
        ],
    });
    let path = d.net.dir.path().join("harim.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&settings)?)?;
    let env: HashMap<&'static str, Zeroizing<String>> = [
        ("HARIM_ADMIN", Zeroizing::new(random_token()?)),
        ("HARIM_GATEWAY", d.net.gateway_token.clone()),
        ("HARIM_MELLAT", Zeroizing::new(first_gateway)),
        ("HARIM_MELLI", Zeroizing::new(other_gateway)),
    ]
    .into();
    let mut config = pooya_harim::HarimConfig::new(&path);
    config.env = Arc::new(move |k| env.get(k).map(|v| v.as_str().to_owned()));
    let harim = pooya_harim::spawn_on_thread(config)?;
    s.say(format!(
        "Harim, the Central Bank's router, starts at {}: cards 610433… go to the first bank, {OTHER_BIN}… to the second, each with Harim's own token at that bank.",
        harim.base_url()
    ));
    d.net.harim = Some(harim);
    // The payment gateway knows Harim only: an unknown card's answer from
    // Harim proves the route is up.
    let (status, answer) = d.post_harim(
        "/v1/verify",
        &json!({"pan": random_pan_with("589210")?, "code": "123456", "amount": 0, "kind": "first"}),
    )?;
    s.check(
        status == 200 && answer["result"] == "rejected",
        format!(
            "from now on the payment gateway sends every PIN to Harim, never to a bank; a card no bank owns is answered as a bank answers a card it does not know ({})",
            answer["reason"].as_str().unwrap_or("?")
        ),
    )
}

/// The second bank's card, activated into the same phone vault, paid for
/// through Harim.
pub fn second_bank_card(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let pan = d.net.other_pan.clone();
    let masked = ids::Pan::parse(&pan)?.masked();
    let atm = d.net.other_init()?.tokens.atm.expose_secret().to_owned();
    s.say(format!(
        "The customer also has a card of the second bank, {masked}, and activates it at that bank's ATM for the same phone {PHONE}."
    ));
    let url = format!("{}/v1/enrollments", d.net.other_url()?);
    let resp = d
        .http
        .post(&url)
        .header("Authorization", format!("Bearer {atm}"))
        .send_json(json!({"pan": pan, "phone": PHONE, "channel": "app"}))?;
    let (status, body) = json_answer(resp)?;
    if status != 201 {
        return Err(StepFailed(format!(
            "the second bank's enrollment answered HTTP {status}: {body}"
        )));
    }
    let sms = d.net.other_sms()?;
    let last = sms
        .last()
        .ok_or_else(|| StepFailed("no SMS arrived from the second bank".into()))?;
    super::show_sms(s, last);
    let code = pooya_issuer::messages::find_activation_code(&last.body)
        .map(Zeroizing::new)
        .ok_or_else(|| StepFailed("the SMS carries no activation code".into()))?;
    let key = d.net.other_init()?.issuer_public_key.clone();
    let activation_key = d.net.other_init()?.activation_public_key.clone();
    let other_url = d.net.other_url()?;
    let phone = d.phone()?;
    phone.add_issuer(OTHER_ISSUER, &other_url, &key, &activation_key)?;
    let typed = persian(&ids::format_activation_code(&code));
    let added = phone.add_card(OTHER_ISSUER, &typed, None)?;
    let cards = phone.cards()?;
    s.check(
        cards.len() == 2 && added.card.masked_pan == masked,
        format!(
            "one app, two banks: the same vault now holds {} cards ({})",
            cards.len(),
            cards
                .iter()
                .map(|c| format!("{} {}", c.bank_name_en, c.masked_pan))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )?;
    d.net.other_card = Some(added.card.id);
    let pin = d.phone()?.second_pin(added.card.id, None)?;
    s.say(format!(
        "The phone shows the second bank's second PIN {} (cap {} Rials).",
        pin.code,
        rials(pin.cap.unwrap_or(0))
    ));
    let v = d.verify_card(&pan, &pin.code, "second", 1_000_000, None)?;
    s.check(
        v.result == "accepted",
        format!(
            "the gateway sends it to Harim, which routes it to the second bank by its BIN: {}",
            v.describe()
        ),
    )?;
    // The first bank never saw it: the same code at the first bank's card
    // is someone else's code.
    let first = d.verify_card(&d.pan.clone(), &pin.code, "second", 1_000_000, None)?;
    s.check(
        first.result == "rejected",
        format!(
            "the same code for the first bank's card: {} (each bank's seeds are its own)",
            first.describe()
        ),
    )
}

/// The second bank stops: its cards get `issuer_unavailable` from Harim
/// within the timeout; the first bank's cards are served as before.
pub fn a_bank_is_down(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let other = d
        .net
        .other
        .take()
        .ok_or_else(|| StepFailed("the second bank is not running".into()))?;
    other.shutdown()?;
    s.say("The second bank's server goes down.");
    let other_card = d
        .net
        .other_card
        .ok_or_else(|| StepFailed("no second-bank card".into()))?;
    let pin = d.phone()?.first_pin(other_card)?;
    let started = Instant::now();
    let (status, answer) = d.post_harim(
        "/v1/verify",
        &json!({"pan": d.net.other_pan, "code": pin.code, "amount": 0, "kind": "first"}),
    )?;
    let waited = started.elapsed();
    s.check(
        status == 503
            && answer["error"] == "issuer_unavailable"
            && waited < Duration::from_millis(BANK_TIMEOUT_MS + 3000),
        format!(
            "a payment with the second bank's card: HTTP {status} {} after {} ms, a clear answer the gateway can show",
            answer["error"].as_str().unwrap_or("?"),
            waited.as_millis()
        ),
    )?;
    // The first bank answers at the same moment: its own verdict on a
    // code (a mistyped one, so no time step or SMS spacing is involved),
    // not Harim's `issuer_unavailable`.
    let started = Instant::now();
    let pan = d.pan.clone();
    let v = d.verify_card(&pan, "000000", "first", 0, None)?;
    s.check(
        v.result == "rejected" && v.reason == "wrong_code",
        format!(
            "a first-bank card at the same moment gets its own bank's verdict in {} ms ({}, a mistyped code); one bank down stalls no other",
            started.elapsed().as_millis(),
            v.describe()
        ),
    )
}

/// A Harim PIN for the second bank's card: the request goes to Harim, the
/// SMS comes from the card's own bank.
pub fn harim_other_bank(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let amount = 990_000;
    let ops = d.net.other_init()?.tokens.ops.expose_secret().to_owned();
    let url = format!("{}/v1/merchants/{PAYEE}", d.net.other_url()?);
    let resp = d
        .http
        .put(&url)
        .header("Authorization", format!("Bearer {ops}"))
        .send_json(json!({"name": super::PAYEE_NAME}))?;
    let (status, _) = json_answer(resp)?;
    s.check(
        status == 200 || status == 201,
        "the second bank registers the same merchant (each bank names the payees its SMS show)",
    )?;
    let n = d.net.other_sms()?.len();
    let (status, answer) = d.post_harim(
        "/v1/otp-requests",
        &json!({"pan": d.net.other_pan, "amount": amount, "payee_id": PAYEE, "type": "purchase"}),
    )?;
    s.check(
        status == 202 && answer["status"] == "requested",
        format!(
            "the payment page asks Harim for the second bank's card: HTTP {status} {}",
            answer["status"].as_str().unwrap_or("?")
        ),
    )?;
    let sms = wait_other_sms(d, n + 1)?;
    super::show_sms(s, &sms);
    let code = pooya_issuer::messages::find_one_time_code(&sms.body)
        .ok_or_else(|| StepFailed("the SMS carries no 7-digit PIN".into()))?;
    let pan = d.net.other_pan.clone();
    let v = d.verify_card(
        &pan,
        &code,
        "second",
        amount,
        Some((PAYEE, TxType::Purchase)),
    )?;
    s.check(
        v.result == "accepted" && v.matched.as_deref() == Some("transaction"),
        format!(
            "the second bank texted the PIN itself; the payment through Harim: {}",
            v.describe()
        ),
    )
}

fn wait_other_sms(d: &Demo, n: usize) -> Result<pooya_issuer::OutboxEntry, StepFailed> {
    let start = Instant::now();
    loop {
        let mut all = d.net.other_sms()?;
        if all.len() >= n {
            return Ok(all.swap_remove(n - 1));
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(StepFailed(
                "the SMS did not arrive from the second bank".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
