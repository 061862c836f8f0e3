//! `pooya demo`: the whole story on one computer, told in plain words.
//!
//! A bank (the `pooya-issuer` library) starts in-process on 127.0.0.1 with
//! temporary data; an ATM enrolls a test card; the customer reads the SMS;
//! a temporary phone vault activates the card over HTTP with the real
//! activation client; the customer sets a cap and reads first, second and
//! transaction-bound PINs; a payment gateway asks the bank's HTTP API to
//! verify them. Each step checks what the bank answered against what must
//! happen; the demo exits 0 only when every step behaved.
//!
//! A second bank and Harim, the Central Bank's router, start beside it
//! ([`harim`]): from then on the payment gateway sends every PIN to Harim,
//! which routes it to the card's bank by BIN.
//!
//! Then the same card is enrolled for the SMS version too: the customer
//! texts its last four digits to the short code and pays with the
//! one-time PIN that comes back; and a payment page asks Harim for a
//! PIN bound to its amount and merchant. A card of the second bank joins
//! the same phone vault and pays through Harim; the second bank goes down
//! and the first bank's cards are served as before.
//!
//! The steps are a list of [`Step`]s over one [`Demo`] context: see
//! [`steps`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pooya_core::{CardId, KdfParams, KeyFileKeystore, Phone, PinView, Vault, VaultConfig};
use pooya_issuer::{BackgroundServer, InitOptions, InitOutput, ServerConfig};
use pooya_protocol::{Language, PaymentRequest, TxType, ids};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Global;
use crate::output::{CliError, rials};
use crate::transport::UreqTransport;

mod days;
mod harim;

/// The customer's mobile number in the demo.
pub const PHONE: &str = "09121234567";
/// The first bank's name in the phone.
const ISSUER: &str = "pooya-bank";
/// The app password of the demo's phone vault.
const PASSWORD: &str = "demo password 1379";
/// A merchant id for transaction-bound PINs.
pub const PAYEE: &str = "IR-SHOP-42";
/// The merchant's name the bank registers for [`PAYEE`]; Harim messages
/// show it (the payment page cannot choose it).
const PAYEE_NAME: &str = "فروشگاه نمونه";
/// The destination of the demo's card-to-card transfer, as the bank
/// names it in a transaction-bound PIN.
const TRANSFER_TO: &str = "IR-CARD-5022";

/// A step that did not behave.
#[derive(Debug)]
pub struct StepFailed(pub String);

impl<E: std::fmt::Display> From<E> for StepFailed {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// Where the story is told: plain text as it happens, or collected for
/// one JSON document at the end.
pub struct Story<'a> {
    out: Option<&'a mut dyn Write>,
    lines: Vec<String>,
}

impl Story<'_> {
    /// A line of narration.
    pub fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if let Some(out) = self.out.as_mut() {
            let _ = writeln!(out, "    {line}");
            let _ = out.flush();
        }
        self.lines.push(line);
    }

    /// A check: narrated with ✓, or the step fails with `line`.
    ///
    /// # Errors
    /// [`StepFailed`] when `ok` is false.
    pub fn check(&mut self, ok: bool, line: impl Into<String>) -> Result<(), StepFailed> {
        let line = line.into();
        if ok {
            self.say(format!("✓ {line}"));
            Ok(())
        } else {
            self.say(format!("✗ {line}"));
            Err(StepFailed(line))
        }
    }
}

/// One step of the demo.
pub struct Step {
    /// The step's title.
    pub title: &'static str,
    /// What it does; an error means it did not behave.
    pub run: fn(&mut Demo, &mut Story<'_>) -> Result<(), StepFailed>,
}

/// What the steps share: the bank, its tokens, the phone, the card.
pub struct Demo {
    bank_dir: tempfile::TempDir,
    phone_dir: tempfile::TempDir,
    init: Option<InitOutput>,
    server: Option<BackgroundServer>,
    http: ureq::Agent,
    /// The test card's number (a Bank Mellat BIN, random digits).
    pub pan: String,
    /// The phone, once its vault exists.
    pub phone: Option<Phone>,
    /// The activated card.
    pub card: Option<CardId>,
    /// The activation code read from the SMS.
    code: Option<Zeroizing<String>>,
    /// The second PIN kept to show the replay.
    second: Option<PinView>,
    /// When the last transaction-bound PIN's step ends (bank time).
    last_tx_until: u64,
    /// The second bank and Harim.
    net: harim::Network,
    /// The phone's clock (the system's, movable by the wrong-clock day).
    clock: Arc<days::DemoClock>,
    /// Codes the bank accepted in this demo (each is taken once).
    accepted: std::cell::RefCell<Vec<String>>,
}

/// A bank's verdict on a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `accepted`, `rejected` or `blocked`.
    pub result: String,
    /// The bank's reason code.
    pub reason: String,
    /// The matched PIN kind when accepted.
    pub matched: Option<String>,
}

impl Verdict {
    fn describe(&self) -> String {
        match &self.matched {
            Some(m) => format!("{} ({m})", self.result),
            None => format!("{} ({})", self.result, self.reason),
        }
    }
}

fn random_pan() -> Result<String, StepFailed> {
    random_pan_with("610433")
}

/// A random card number of a BIN, with its Luhn check digit.
fn random_pan_with(bin: &str) -> Result<String, StepFailed> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| StepFailed("random generator failed".into()))?;
    let n = u64::from_be_bytes(bytes) % 1_000_000_000;
    let payload = format!("{bin}{n:09}");
    Ok(format!("{payload}{}", ids::luhn_check_digit(&payload)))
}

/// Persian digits for what the customer types.
fn persian(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

impl Demo {
    /// Temporary directories for the bank and the phone.
    ///
    /// # Errors
    /// When a temporary directory cannot be made.
    pub fn new() -> Result<Self, StepFailed> {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Self {
            bank_dir: tempfile::Builder::new()
                .prefix("pooya-demo-bank-")
                .tempdir()?,
            phone_dir: tempfile::Builder::new()
                .prefix("pooya-demo-phone-")
                .tempdir()?,
            init: None,
            server: None,
            http,
            pan: random_pan()?,
            phone: None,
            card: None,
            code: None,
            second: None,
            last_tx_until: 0,
            net: harim::Network::new()?,
            clock: Arc::new(days::DemoClock::default()),
            accepted: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// The bank's base URL.
    ///
    /// # Errors
    /// Before the bank started.
    pub fn base_url(&self) -> Result<String, StepFailed> {
        self.server
            .as_ref()
            .map(BackgroundServer::base_url)
            .ok_or_else(|| StepFailed("the bank is not running".into()))
    }

    fn tokens(&self) -> Result<&InitOutput, StepFailed> {
        self.init
            .as_ref()
            .ok_or_else(|| StepFailed("the bank is not initialised".into()))
    }

    fn phone(&mut self) -> Result<&mut Phone, StepFailed> {
        self.phone
            .as_mut()
            .ok_or_else(|| StepFailed("the phone has no vault".into()))
    }

    fn card(&self) -> Result<CardId, StepFailed> {
        self.card
            .ok_or_else(|| StepFailed("no card was activated".into()))
    }

    /// POSTs JSON to the bank with a role token; returns status and body.
    ///
    /// # Errors
    /// When no HTTP answer arrives or it is not JSON.
    pub fn post(&self, path: &str, token: &str, body: &Value) -> Result<(u16, Value), StepFailed> {
        let url = format!("{}{path}", self.base_url()?);
        let resp = self
            .http
            .post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)?;
        json_answer(resp)
    }

    /// PUTs JSON to the bank with a role token; returns status and body.
    ///
    /// # Errors
    /// When no HTTP answer arrives or it is not JSON.
    pub fn put(&self, path: &str, token: &str, body: &Value) -> Result<(u16, Value), StepFailed> {
        let url = format!("{}{path}", self.base_url()?);
        let resp = self
            .http
            .put(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)?;
        json_answer(resp)
    }

    /// An ATM enrollment (`channel` is `app` or `sms`).
    ///
    /// # Errors
    /// When the bank does not answer 201.
    pub fn enroll(&self, channel: &str) -> Result<Value, StepFailed> {
        let atm = self.tokens()?.tokens.atm.expose_secret().to_owned();
        let (status, body) = self.post(
            "/v1/enrollments",
            &atm,
            &json!({"pan": self.pan, "phone": PHONE, "channel": channel}),
        )?;
        if status != 201 {
            return Err(StepFailed(format!(
                "enrollment answered HTTP {status}: {body}"
            )));
        }
        Ok(body)
    }

    /// The SMS messages the customer received, oldest first.
    ///
    /// # Errors
    /// When the bank's outbox cannot be read.
    pub fn sms(&self) -> Result<Vec<pooya_issuer::OutboxEntry>, StepFailed> {
        Ok(pooya_issuer::read_outbox(
            self.bank_dir.path(),
            Some(PHONE),
        )?)
    }

    /// Waits (up to 10 s) for the customer's SMS number `n` (1-based):
    /// one-time PINs and short-code replies are sent after the bank
    /// answers.
    ///
    /// # Errors
    /// When it does not arrive.
    pub fn wait_sms(&self, n: usize) -> Result<pooya_issuer::OutboxEntry, StepFailed> {
        let start = std::time::Instant::now();
        loop {
            let mut all = self.sms()?;
            if all.len() >= n {
                return Ok(all.swap_remove(n - 1));
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(StepFailed("the SMS did not arrive".into()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The gateway asks the bank about a code.
    ///
    /// # Errors
    /// When the bank does not answer 200.
    pub fn verify(
        &self,
        code: &str,
        kind: &str,
        amount: u64,
        payee: Option<&str>,
    ) -> Result<Verdict, StepFailed> {
        self.verify_tx(code, kind, amount, payee.map(|p| (p, TxType::Purchase)))
    }

    /// The gateway asks the bank about a code for a transaction of a
    /// type to a payee (`None`: no payee).
    ///
    /// # Errors
    /// When the bank does not answer 200.
    pub fn verify_tx(
        &self,
        code: &str,
        kind: &str,
        amount: u64,
        payee: Option<(&str, TxType)>,
    ) -> Result<Verdict, StepFailed> {
        self.verify_card(&self.pan, code, kind, amount, payee)
    }

    /// The gateway asks Harim about a code for a card of either bank;
    /// Harim routes it to the card's bank by BIN.
    ///
    /// # Errors
    /// When Harim does not answer 200.
    pub fn verify_card(
        &self,
        pan: &str,
        code: &str,
        kind: &str,
        amount: u64,
        payee: Option<(&str, TxType)>,
    ) -> Result<Verdict, StepFailed> {
        let mut body = json!({"pan": pan, "code": code, "amount": amount, "kind": kind});
        if let Some((p, t)) = payee {
            body["payee"] = json!(p);
            body["type"] = json!(t.as_str());
        }
        let (status, v) = self.post_harim("/v1/verify", &body)?;
        if status != 200 {
            return Err(StepFailed(format!("verify answered HTTP {status}: {v}")));
        }
        if v["result"] == "accepted" {
            self.accepted.borrow_mut().push(code.to_owned());
        }
        Ok(Verdict {
            result: v["result"].as_str().unwrap_or_default().to_owned(),
            reason: v["reason"].as_str().unwrap_or_default().to_owned(),
            matched: v["matched"].as_str().map(str::to_owned),
        })
    }

    /// Whether the bank accepted `code` earlier in this demo.
    fn was_accepted(&self, code: &str) -> bool {
        self.accepted.borrow().iter().any(|c| c == code)
    }

    fn stop(&mut self) -> Result<(), StepFailed> {
        self.net.stop()?;
        if let Some(s) = self.server.take() {
            s.shutdown()?;
        }
        Ok(())
    }
}

/// The demo's steps, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "The bank starts",
            run: bank_starts,
        },
        Step {
            title: "Harim and a second bank start",
            run: harim::harim_starts,
        },
        Step {
            title: "At the ATM",
            run: at_the_atm,
        },
        Step {
            title: "The SMS",
            run: the_sms,
        },
        Step {
            title: "The phone activates the card",
            run: activate,
        },
        Step {
            title: "The customer sets a cap",
            run: set_cap,
        },
        Step {
            title: "First PIN at an ATM",
            run: first_pin,
        },
        Step {
            title: "Second PIN for an online payment",
            run: second_pin,
        },
        Step {
            title: "The same code again (replay)",
            run: replay,
        },
        Step {
            title: "A card-to-card transfer PIN",
            run: transaction_pin,
        },
        Step {
            title: "The SMS version",
            run: sms_version,
        },
        Step {
            title: "Harim: \"request dynamic PIN\" on a payment page",
            run: harim,
        },
        Step {
            title: "Scan and sign: a payment QR code",
            run: qr_payment,
        },
        Step {
            title: "A wrong-clock day",
            run: days::wrong_clock_day,
        },
        Step {
            title: "A second bank's card in the same app",
            run: harim::second_bank_card,
        },
        Step {
            title: "Harim: a PIN for the second bank's card",
            run: harim::harim_other_bank,
        },
        Step {
            title: "One bank down, the other served",
            run: harim::a_bank_is_down,
        },
        Step {
            title: "A lost phone",
            run: days::lost_phone,
        },
    ]
}

fn bank_starts(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let init = pooya_issuer::init(d.bank_dir.path(), &InitOptions::default())?;
    let server = pooya_issuer::spawn_on_thread(ServerConfig::new(d.bank_dir.path()))?;
    s.say(format!(
        "The bank's server runs in this process at {} with temporary data in {}.",
        server.base_url(),
        d.bank_dir.path().display()
    ));
    s.say(format!(
        "Its Ed25519 public key, which the app pins: {}",
        init.issuer_public_key
    ));
    s.say(format!(
        "Its P-256 activation key, which the app pins too and seals every activation request to: {}…",
        &init.activation_public_key[..24]
    ));
    let same = server.issuer_public_key() == init.issuer_public_key
        && server.activation_public_key() == init.activation_public_key;
    d.init = Some(init);
    d.server = Some(server);
    s.check(same, "the server signs with the key printed at init")
}

fn at_the_atm(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let masked = ids::Pan::parse(&d.pan)?.masked();
    s.say(format!(
        "The customer inserts card {masked}, types the card's PIN and chooses \"activate via app\" for phone {PHONE}."
    ));
    let body = d.enroll("app")?;
    s.check(
        body["channel"] == "app" && body["masked_pan"] == masked.as_str(),
        format!(
            "the bank enrolled the card ({}) and sent an activation code by SMS",
            body["card_id"].as_str().unwrap_or("?")
        ),
    )
}

fn the_sms(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let sms = d.sms()?;
    let last = sms
        .last()
        .ok_or_else(|| StepFailed("no SMS arrived".into()))?;
    s.say(format!("From {} to {}:", last.from, last.to));
    for line in last.body.lines() {
        s.say(format!("  │ {line}"));
    }
    let code = pooya_issuer::messages::find_activation_code(&last.body);
    let found = code.is_some();
    d.code = code.map(Zeroizing::new);
    s.check(found, "the SMS carries an activation code")
}

fn activate(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let path: PathBuf = d.phone_dir.path().join("vault.db");
    s.say("A new phone vault is created with an app password.");
    s.say(format!(
        "(Demo setting: Argon2id at the accepted floor, {} MiB and {} passes, to be quick; a real vault uses {} MiB and {} passes.)",
        KdfParams::FLOOR.memory_kib() / 1024,
        KdfParams::FLOOR.iterations(),
        KdfParams::DEFAULT.memory_kib() / 1024,
        KdfParams::DEFAULT.iterations()
    ));
    let vault = Vault::create(
        &path,
        PASSWORD,
        Arc::new(KeyFileKeystore::beside(&path)),
        None,
        Arc::clone(&d.clock) as Arc<dyn pooya_core::hooks::Clock>,
        VaultConfig::with_kdf(KdfParams::FLOOR),
    )?;
    let mut phone = Phone::new(vault, Arc::new(UreqTransport), "demo phone")?;
    let number = phone.set_phone_number(PHONE)?;
    let key = d.tokens()?.issuer_public_key.clone();
    let activation_key = d.tokens()?.activation_public_key.clone();
    let url = d.base_url()?;
    phone.add_issuer(ISSUER, &url, &key, &activation_key)?;
    s.say(format!(
        "Phone number {number}; the bank pooya-bank at {url} with both its keys pinned."
    ));
    let code = d
        .code
        .clone()
        .ok_or_else(|| StepFailed("no activation code".into()))?;
    let typed = persian(&pooya_protocol::ids::format_activation_code(&code));
    s.say(format!(
        "The customer types the code on a Persian keyboard: {typed}"
    ));
    let typo = {
        let mut t: Vec<char> = code.chars().collect();
        let last = t.len() - 1;
        t[last] = if t[last] == '0' { '1' } else { '0' };
        t.into_iter().collect::<String>()
    };
    let refused = phone.add_card(ISSUER, &typo, None);
    s.check(
        matches!(
            refused,
            Err(pooya_core::CoreError::InvalidActivationCode(_))
        ),
        "a mistyped code is caught on the phone by its check digit, before any network call",
    )?;
    let added = phone.add_card(ISSUER, &typed, None)?;
    let c = &added.card;
    s.say(
        "The phone sealed its request (number, code, a fresh X25519 key, device name) to the bank's activation key with HPKE: a proxy that terminates TLS sees none of it. The bank answered with its own X25519 key, the card's data and policies, signed over a transcript that binds the sealed request.",
    );
    let enrolled = ids::Pan::parse(&d.pan)?;
    s.check(
        c.masked_pan == enrolled.masked() && c.last4 == enrolled.last4(),
        format!(
            "signature checked against the pinned key; seed derived on both sides, never sent; card stored sealed: {} ({}, {})",
            c.masked_pan, c.bank_name_en, c.bank_name_fa
        ),
    )?;
    s.say(format!(
        "New cards start at the lowest cap tier: {} Rials. Bank clock offset: {:+} s.",
        rials(c.cap),
        added.time_offset_secs
    ));
    d.card = Some(c.id);
    d.phone = Some(phone);
    let sms = d.sms()?;
    let notice = sms
        .last()
        .ok_or_else(|| StepFailed("no SMS arrived".into()))?;
    s.say("The card's registered phone is told of the activation:");
    for line in notice.body.lines() {
        s.say(format!("  │ {line}"));
    }
    s.check(
        notice.body.contains("demo phone"),
        "every activation is announced by SMS, naming the device, so one the customer did not make is noticed",
    )
}

fn set_cap(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let phone = d.phone()?;
    let view = phone.card(card)?;
    s.say(format!(
        "The bank's tiers: {} Rials.",
        view.cap_ladder
            .iter()
            .map(|t| rials(*t))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.say("The customer asks for 30,000,000 Rials. Raising a cap needs the app password:");
    let without = phone.set_cap(card, 30_000_000, None);
    s.check(
        matches!(without, Err(pooya_core::CoreError::PasswordRequired)),
        "without the password the cap is not raised",
    )?;
    let change = phone.set_cap(card, 30_000_000, Some(PASSWORD))?;
    s.check(
        change.cap == 20_000_000 && change.rounded_down(),
        format!(
            "with it the cap is {} Rials: 30,000,000 is between tiers, so it was rounded down and the customer told",
            rials(change.cap)
        ),
    )
}

fn first_pin(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let pin = d.phone()?.first_pin(card)?;
    s.say(format!(
        "The phone shows the first PIN {} (offline; {} s left in its step).",
        pin.code, pin.seconds_left
    ));
    let v = d.verify(&pin.code, "first", 0, None)?;
    s.check(
        v.result == "accepted",
        format!("the ATM asks the bank: {}", v.describe()),
    )
}

fn second_pin(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let pin = d.phone()?.second_pin(card, None)?;
    s.say(format!(
        "The phone shows the second PIN {}, bound to the cap of {} Rials.",
        pin.code,
        rials(pin.cap.unwrap_or(0))
    ));
    let above = d.verify(&pin.code, "second", 25_000_000, None)?;
    s.check(
        above.result == "rejected",
        format!(
            "a payment of 25,000,000 Rials (above the cap): {}",
            above.describe()
        ),
    )?;
    let within = d.verify(&pin.code, "second", 15_000_000, None)?;
    s.check(
        within.result == "accepted",
        format!(
            "a payment of 15,000,000 Rials (within the cap): {}",
            within.describe()
        ),
    )?;
    d.second = Some(pin);
    Ok(())
}

fn replay(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let code = d
        .second
        .as_ref()
        .map(|p| p.code.clone())
        .ok_or_else(|| StepFailed("no second PIN to replay".into()))?;
    s.say("Someone who saw the code tries it again for another payment.");
    let v = d.verify(&code, "second", 1_000_000, None)?;
    s.check(
        v.result == "rejected" && v.reason == "replayed",
        format!("the bank: {}", v.describe()),
    )
}

fn transaction_pin(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let amount = 1_250_000;
    let pin = d
        .phone()?
        .transaction_pin(card, TxType::Transfer, amount, TRANSFER_TO)?;
    s.say(format!(
        "The phone shows {} for a card-to-card transfer (کارت به کارت) of exactly {} Rials to {TRANSFER_TO}: the type, the amount and the payee are all in the PIN (Central Bank rule of 1399/10/08).",
        pin.code,
        rials(amount)
    ));
    d.last_tx_until = pin.valid_until;
    let wrong = d.verify_tx(
        &pin.code,
        "second",
        amount,
        Some(("IR-EVIL-99", TxType::Transfer)),
    )?;
    s.check(
        wrong.result == "rejected",
        format!(
            "a page that changed the payee to IR-EVIL-99: {}",
            wrong.describe()
        ),
    )?;
    let as_purchase = d.verify_tx(
        &pin.code,
        "second",
        amount,
        Some((TRANSFER_TO, TxType::Purchase)),
    )?;
    s.check(
        as_purchase.result == "rejected",
        format!(
            "the same PIN passed off as a purchase from {TRANSFER_TO}: {}",
            as_purchase.describe()
        ),
    )?;
    let right = d.verify_tx(
        &pin.code,
        "second",
        amount,
        Some((TRANSFER_TO, TxType::Transfer)),
    )?;
    s.check(
        right.result == "accepted" && right.matched.as_deref() == Some("transaction"),
        format!("the real transfer to {TRANSFER_TO}: {}", right.describe()),
    )
}

fn qr_payment(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let card = d.card()?;
    let amount = 4_200_000;
    // The bank's time as the phone knows it: the payment page's clock.
    let now = d.phone()?.first_pin(card)?.issuer_time;
    let request = PaymentRequest::new(amount, PAYEE, PAYEE_NAME, TxType::Purchase, now + 300)?;
    let uri = request.to_uri();
    s.say(format!(
        "The payment page of {PAYEE_NAME} shows a QR code; the phone's camera reads {uri}"
    ));
    let fa = d.phone()?.payment_view(card, &uri, Language::Fa)?;
    let en = d.phone()?.payment_view(card, &uri, Language::En)?;
    s.say(format!(
        "The phone shows: {} · {} · {} ({}) · {} left",
        fa.tx_type_name, fa.amount_text, fa.payee_name, fa.payee, fa.time_left
    ));
    s.say(format!(
        "                 {} · {} · {} left",
        en.tx_type_name, en.amount_text, en.time_left
    ));
    // One transaction-bound PIN per card per time step (RFC 6238 §5.2):
    // after the transfer above, wait for the next step.
    let mut pin = d.phone()?.payment_pin(card, &uri)?;
    if pin.valid_from < d.last_tx_until {
        let wait = d.last_tx_until.saturating_sub(pin.issuer_time);
        s.say(format!(
            "(the bank takes one transaction-bound PIN per card per minute: waiting {wait} s for the next one after the transfer)"
        ));
        std::thread::sleep(Duration::from_secs(wait + 1));
        pin = d.phone()?.payment_pin(card, &uri)?;
    }
    d.last_tx_until = pin.valid_until;
    s.say(format!(
        "The customer confirms; the phone makes {} for exactly this request, nothing typed by hand.",
        pin.code
    ));
    let changed = d.verify(&pin.code, "second", amount + 1, Some(PAYEE))?;
    s.check(
        changed.result == "rejected",
        format!(
            "a page that charges {} Rials instead: {}",
            rials(amount + 1),
            changed.describe()
        ),
    )?;
    let right = d.verify(&pin.code, "second", amount, Some(PAYEE))?;
    s.check(
        right.result == "accepted" && right.matched.as_deref() == Some("transaction"),
        format!("the QR payment: {}", right.describe()),
    )
}

/// Prints an SMS as the customer's phone shows it.
fn show_sms(s: &mut Story<'_>, sms: &pooya_issuer::OutboxEntry) {
    s.say(format!("From {} to {}:", sms.from, sms.to));
    for line in sms.body.lines() {
        s.say(format!("  │ {line}"));
    }
}

fn sms_version(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let last4 = ids::Pan::parse(&d.pan)?.last4().to_owned();
    s.say("Back at the ATM, the customer also turns on the SMS version for the same card, for days without the phone's app.");
    let body = d.enroll("sms")?;
    let n = d.sms()?.len();
    show_sms(s, &d.wait_sms(n)?);
    s.check(
        body["channel"] == "sms",
        "the card now has both: the app and the SMS version",
    )?;
    let typed = format!(
        " {} ",
        persian(&last4)
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" ")
    );
    s.say(format!(
        "The customer texts \"{}\" (the last four digits, on a Persian keyboard) to 30003303.",
        typed.trim()
    ));
    let sms_token = d.tokens()?.tokens.sms.expose_secret().to_owned();
    let (status, answer) = d.post(
        "/v1/sms/inbound",
        &sms_token,
        &json!({"from": PHONE, "to": "30003303", "body": typed}),
    )?;
    s.check(
        status == 200 && answer["status"] == "accepted",
        "the SMS centre hands the message to the bank",
    )?;
    let reply = d.wait_sms(n + 1)?;
    show_sms(s, &reply);
    let code = pooya_issuer::messages::find_one_time_code(&reply.body)
        .ok_or_else(|| StepFailed("the reply carries no 7-digit PIN".into()))?;
    s.check(
        code.len() == 7,
        "a 7-digit one-time second PIN, valid for 2 minutes",
    )?;
    let v = d.verify(&code, "second", 3_500_000, None)?;
    s.check(
        v.result == "accepted" && v.matched.as_deref() == Some("second"),
        format!(
            "an online payment of 3,500,000 Rials with it: {}",
            v.describe()
        ),
    )?;
    let again = d.verify(&code, "second", 3_500_000, None)?;
    s.check(
        again.result == "rejected" && again.reason == "replayed",
        format!("the same PIN again: {}", again.describe()),
    )?;
    s.say("Both stay active: the bank checks the app's PINs and SMS PINs side by side, and either may be used.");
    Ok(())
}

fn harim(d: &mut Demo, s: &mut Story<'_>) -> Result<(), StepFailed> {
    let amount = 2_750_000;
    let ops = d.tokens()?.tokens.ops.expose_secret().to_owned();
    let (status, merchant) = d.put(
        &format!("/v1/merchants/{PAYEE}"),
        &ops,
        &json!({ "name": PAYEE_NAME }),
    )?;
    s.check(
        (status == 200 || status == 201) && merchant["name"] == PAYEE_NAME,
        format!(
            "the bank registers the merchant {PAYEE} as {PAYEE_NAME}: the name a Harim SMS shows comes from the bank, never from the payment page (HTTP {status})"
        ),
    )?;
    s.say(format!(
        "On a payment page of {PAYEE_NAME} ({PAYEE}), the customer enters the card number and presses \"request dynamic PIN\" for {} Rials.",
        rials(amount)
    ));
    let request =
        |pan: &str| json!({"pan": pan, "amount": amount, "payee_id": PAYEE, "type": "purchase"});
    let n = d.sms()?.len();
    let (status, answer) = d.post_harim("/v1/otp-requests", &request(&d.pan))?;
    s.check(
        status == 202 && answer["status"] == "requested",
        format!("the gateway asks Harim, which asks the card's bank: HTTP {status} {answer}"),
    )?;
    let sms = d.wait_sms(n + 1)?;
    show_sms(s, &sms);
    s.check(
        sms.body.contains(&pooya_protocol::format_rials_fa(amount)) && sms.body.contains(PAYEE_NAME),
        "the SMS names the amount (Persian digits) and the merchant, so the customer sees what the PIN is for",
    )?;
    let code = pooya_issuer::messages::find_one_time_code(&sms.body)
        .ok_or_else(|| StepFailed("the SMS carries no 7-digit PIN".into()))?;
    let other = random_pan()?;
    let (st2, answer2) = d.post_harim("/v1/otp-requests", &request(&other))?;
    let (st3, answer3) = d.post_harim("/v1/otp-requests", &request(&random_pan_with("589210")?))?;
    // The same answer but for the clock: `expires_at` is each request's
    // own time plus the same lifetime (the SMS above may take a second).
    let without_time = |a: &serde_json::Value| {
        let mut a = a.clone();
        if let Some(o) = a.as_object_mut() {
            o.remove("expires_at");
        }
        a
    };
    let later = answer2["expires_at"].as_u64() >= answer["expires_at"].as_u64()
        && answer2["expires_at"].is_u64();
    s.check(
        st2 == status
            && st3 == status
            && without_time(&answer2) == without_time(&answer)
            && without_time(&answer3) == without_time(&answer)
            && later,
        "a card number the bank does not know, and one of a BIN no bank owns, get the very same answer (no card enumeration)",
    )?;
    let changed = d.verify(&code, "second", amount + 1_000_000, Some(PAYEE))?;
    s.check(
        changed.result == "rejected",
        format!(
            "a page that raised the amount to {} Rials: {}",
            rials(amount + 1_000_000),
            changed.describe()
        ),
    )?;
    let right = d.verify(&code, "second", amount, Some(PAYEE))?;
    s.check(
        right.result == "accepted" && right.matched.as_deref() == Some("transaction"),
        format!("the real payment: {}", right.describe()),
    )
}

/// The outcome of one step.
#[derive(Debug)]
pub struct StepReport {
    /// The step's title.
    pub title: &'static str,
    /// Whether it behaved.
    pub ok: bool,
    /// What was said.
    pub lines: Vec<String>,
}

/// Runs `steps` in order, telling the story on `out` (or only collecting
/// it when `out` is `None`). Stops at the first step that misbehaves.
///
/// # Errors
/// When the temporary directories cannot be made.
pub fn run(mut out: Option<&mut dyn Write>, steps: &[Step]) -> Result<Vec<StepReport>, StepFailed> {
    let mut demo = Demo::new()?;
    let mut reports = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(o) = out.as_mut() {
            let _ = writeln!(o, "[{}] {}", i + 1, step.title);
        }
        let mut story = Story {
            out: out.as_mut().map(|o| &mut **o as &mut dyn Write),
            lines: Vec::new(),
        };
        let result = (step.run)(&mut demo, &mut story);
        if let Err(e) = &result
            && !story.lines.iter().any(|l| l.starts_with('✗'))
        {
            story.say(format!("✗ {}", e.0));
        }
        let ok = result.is_ok();
        reports.push(StepReport {
            title: step.title,
            ok,
            lines: story.lines,
        });
        if !ok {
            break;
        }
    }
    demo.stop()?;
    Ok(reports)
}

/// `pooya demo`.
pub fn run_cli(global: &Global) -> Result<(), CliError> {
    let all = steps();
    let mut stdout = std::io::stdout();
    if !global.json {
        println!(
            "Pooya demo: two banks, Harim, an ATM, a customer's phone and a payment gateway, all on this computer."
        );
        println!();
    }
    let out: Option<&mut dyn Write> = if global.json { None } else { Some(&mut stdout) };
    let reports = run(out, &all).map_err(|e| CliError::new("demo_failed", e.0))?;
    let behaved = reports.iter().filter(|r| r.ok).count();
    let ok = behaved == all.len();
    if global.json {
        crate::output::json(&json!({
            "ok": ok,
            "steps": reports.iter().map(|r| json!({"title": r.title, "ok": r.ok, "lines": r.lines})).collect::<Vec<_>>(),
        }));
    } else {
        println!();
        if ok {
            println!("All {} steps behaved as expected.", all.len());
        } else {
            println!(
                "{behaved} of {} steps behaved; the demo stopped at the first that did not.",
                all.len()
            );
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::new(
            "demo_failed",
            "a step of the demo did not behave as expected",
        ))
    }
}

/// The status and JSON body of a bank's answer.
///
/// # Errors
/// When the body cannot be read or is not JSON.
fn json_answer(mut resp: ureq::http::Response<ureq::Body>) -> Result<(u16, Value), StepFailed> {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string()?;
    let json = serde_json::from_str(&text)
        .map_err(|_| StepFailed(format!("the bank answered HTTP {status} without JSON")))?;
    Ok((status, json))
}
