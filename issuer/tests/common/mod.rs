//! Shared helpers of the issuer's HTTP tests: a client, a running issuer in
//! a temporary directory, and a phone played with pooya-protocol and ring.
// Test-only helpers: a failed step should stop the test loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use pooya_issuer::{
    BackgroundServer, InitOptions, InitOutput, ManualClock, ServerConfig, Settings,
};
use pooya_protocol::activation::{
    ActivationPlaintext, ActivationResponse, ActivationTranscript, derive_card_seed, seal_request,
};
use pooya_protocol::{CardKeys, Pan, first_pin, ids, normalize_phone, second_pin};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, UnparsedPublicKey as SigKey};
use serde_json::{Value, json};

/// A fixed starting time, at the start of a 60 s step.
pub const T0: u64 = 1_800_000_000;
pub const PHONE: &str = "09121234567";

/// A test card number: a Bank Mellat BIN, `n` in the middle, Luhn digit.
pub fn pan(n: u64) -> String {
    let payload = format!("610433{n:09}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A client that reports every status as an answer.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        Self {
            base: base.to_owned(),
            agent,
        }
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        let url = format!("{}{}", self.base, path);
        let mut resp = match method {
            "GET" => {
                let mut r = self.agent.get(&url);
                if let Some(t) = token {
                    r = r.header("Authorization", format!("Bearer {t}"));
                }
                r.call()
            }
            _ => {
                let mut r = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other}"),
                };
                if let Some(t) = token {
                    r = r.header("Authorization", format!("Bearer {t}"));
                }
                if let Some(ct) = content_type {
                    r = r.content_type(ct);
                }
                r.send(body.unwrap_or_default())
            }
        }
        .expect("HTTP exchange");
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Answer { status, body }
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.raw("POST", path, token, Some("application/json"), Some(&bytes))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.raw("GET", path, token, None, None)
    }
}

/// A running issuer in a temporary directory, with a manual clock.
pub struct Bank {
    pub dir: tempfile::TempDir,
    pub init: InitOutput,
    pub clock: ManualClock,
    pub settings: Settings,
    pub server: Option<BackgroundServer>,
    pub client: Client,
}

impl Bank {
    pub fn start() -> Self {
        Self::start_with(Settings::development())
    }

    pub fn start_with(settings: Settings) -> Self {
        Self::start_with_init(settings, InitOptions::default())
    }

    /// As [`Bank::start_with`], initialised with `options` (a key
    /// provider, a PKCS#11 token).
    pub fn start_with_init(settings: Settings, options: InitOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let init = init_issuer_with(dir.path(), options);
        let clock = ManualClock::new(T0);
        let server = spawn(dir.path(), &clock, &settings);
        let client = Client::new(&server.base_url());
        Self {
            dir,
            init,
            clock,
            settings,
            server: Some(server),
            client,
        }
    }

    /// Stops the server and starts a new one on the same data directory.
    pub fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().unwrap();
        }
        let server = spawn(self.dir.path(), &self.clock, &self.settings);
        self.client = Client::new(&server.base_url());
        self.server = Some(server);
    }

    pub fn atm(&self) -> &str {
        self.init.tokens.atm.expose_secret()
    }
    pub fn gateway(&self) -> &str {
        self.init.tokens.gateway.expose_secret()
    }
    pub fn ops(&self) -> &str {
        self.init.tokens.ops.expose_secret()
    }
    pub fn sms(&self) -> &str {
        self.init.tokens.sms.expose_secret()
    }

    /// An SMS from `from` to `to`, as the SMS centre hands it over.
    pub fn inbound(&self, from: &str, to: &str, body: &str) -> Answer {
        self.client.post(
            "/v1/sms/inbound",
            Some(self.sms()),
            &json!({"from": from, "to": to, "body": body}),
        )
    }

    /// A Harim request from a payment gateway.
    /// Registers (or renames) the merchant `payee_id` as `name`, as the
    /// bank's operations team does before its first Harim request.
    pub fn register_merchant(&self, payee_id: &str, name: &str) {
        let body = serde_json::to_vec(&json!({ "name": name })).unwrap();
        let a = self.client.raw(
            "PUT",
            &format!("/v1/merchants/{payee_id}"),
            Some(self.ops()),
            Some("application/json"),
            Some(&body),
        );
        assert!(a.status == 200 || a.status == 201, "{}", a.body);
    }

    /// A Harim request for a purchase from `payee_id`, registered first
    /// as `payee_name`.
    pub fn harim(&self, pan: &str, amount: u64, payee_name: &str, payee_id: &str) -> Answer {
        self.harim_tx(pan, amount, payee_name, payee_id, "purchase")
    }

    /// A Harim request of transaction type `tx_type` for `payee_id`,
    /// registered first as `payee_name`.
    pub fn harim_tx(
        &self,
        pan: &str,
        amount: u64,
        payee_name: &str,
        payee_id: &str,
        tx_type: &str,
    ) -> Answer {
        self.register_merchant(payee_id, payee_name);
        self.client.post(
            "/v1/otp-requests",
            Some(self.gateway()),
            &json!({"pan": pan, "amount": amount, "payee_id": payee_id, "type": tx_type}),
        )
    }

    /// Waits (up to 10 s) until `phone` has at least `n` messages, since
    /// one-time PINs and short-code replies are sent after the answer.
    pub fn wait_outbox(&self, phone: &str, n: usize) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let msgs = self.outbox(phone);
            if msgs.len() >= n {
                return msgs;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{phone} has {} messages, expected {n}",
                msgs.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The one-time PIN in the newest SMS to `phone`, once `n` messages
    /// arrived.
    pub fn one_time_code(&self, phone: &str, n: usize) -> String {
        let msgs = self.wait_outbox(phone, n);
        let body = msgs[n - 1]["body"].as_str().unwrap().to_owned();
        pooya_issuer::messages::find_one_time_code(&body)
            .unwrap_or_else(|| panic!("no one-time code in {body}"))
    }

    pub fn enroll(&self, pan: &str, phone: &str, channel: &str) -> Answer {
        self.client.post(
            "/v1/enrollments",
            Some(self.atm()),
            &json!({"pan": pan, "phone": phone, "channel": channel}),
        )
    }

    /// Waits (up to 10 s) until the durable outbox has delivered every
    /// message committed so far (none pending in `/metrics`).
    pub fn settle_outbox(&self) {
        let start = std::time::Instant::now();
        loop {
            let m = self.client.get("/metrics", Some(self.ops()));
            assert_eq!(m.status, 200, "{}", m.body);
            if m.body
                .contains("pooya_issuer_sms_outbox_messages{state=\"pending\"} 0\n")
            {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the outbox did not drain"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The SMS messages to `phone`, oldest first, read over HTTP once the
    /// outbox has delivered what is committed.
    pub fn outbox(&self, phone: &str) -> Vec<Value> {
        self.settle_outbox();
        let a = self.client.get(
            &format!("/v1/sms/outbox?phone={}", phone.replace('+', "%2B")),
            Some(self.ops()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()["messages"].as_array().unwrap().clone()
    }

    /// The activation code in the newest SMS to `phone`.
    pub fn last_activation_code(&self, phone: &str) -> String {
        let msgs = self.outbox(phone);
        let body = msgs.last().unwrap()["body"].as_str().unwrap().to_owned();
        pooya_issuer::messages::find_activation_code(&body)
            .unwrap_or_else(|| panic!("no code in {body}"))
    }

    /// A verification; a payment with a payee is a purchase (see
    /// [`Bank::verify_tx`] for the other transaction types).
    pub fn verify(
        &self,
        pan: &str,
        code: &str,
        amount: u64,
        payee: Option<&str>,
        kind: &str,
    ) -> Answer {
        let mut body = json!({"pan": pan, "code": code, "amount": amount, "kind": kind});
        if let Some(p) = payee {
            body["payee"] = json!(p);
            body["type"] = json!("purchase");
        }
        self.client.post("/v1/verify", Some(self.gateway()), &body)
    }

    /// A second-PIN verification of a transaction of `tx_type` to `payee`.
    pub fn verify_tx(
        &self,
        pan: &str,
        code: &str,
        amount: u64,
        payee: &str,
        tx_type: &str,
    ) -> Answer {
        let body = json!({"pan": pan, "code": code, "amount": amount, "kind": "second",
                          "payee": payee, "type": tx_type});
        self.client.post("/v1/verify", Some(self.gateway()), &body)
    }

    /// The keys a phone pins for this bank.
    pub fn pinned(&self) -> Pinned {
        Pinned::of(&self.init)
    }

    /// Enrolls and activates `pan` for `phone`, returning the phone's card.
    pub fn enroll_and_activate(&self, pan: &str, phone: &str) -> PhoneCard {
        let a = self.enroll(pan, phone, "app");
        assert_eq!(a.status, 201, "{}", a.body);
        let code = self.last_activation_code(phone);
        let phone_side = Phone::new();
        let (status, card) = phone_side.activate(&self.client, phone, &code, &self.pinned());
        assert_eq!(status, 201);
        card.unwrap()
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = s.shutdown();
        }
    }
}

/// The file in a test's data directory naming its PostgreSQL database.
const DATABASE_URL_FILE: &str = "test-database-url";

/// `init` of a test issuer: on SQLite in `dir`, or with
/// `POOYA_TEST_BACKEND=postgres` on a fresh database of the test
/// process's throwaway PostgreSQL cluster (`pooya-testpg`), remembered in
/// `dir` for [`spawn`]. The same suites run against both backends.
pub fn init_issuer(dir: &Path) -> InitOutput {
    init_issuer_with(dir, InitOptions::default())
}

/// [`init_issuer`] with `options` (the database is still the test
/// backend's).
pub fn init_issuer_with(dir: &Path, options: InitOptions) -> InitOutput {
    let database_url = match std::env::var("POOYA_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let url = pooya_testpg::TestPostgres::shared()
                .unwrap()
                .fresh_database()
                .unwrap();
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(DATABASE_URL_FILE), &url).unwrap();
            Some(url)
        }
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("POOYA_TEST_BACKEND={other}: sqlite or postgres"),
    };
    pooya_issuer::init(
        dir,
        &InitOptions {
            database_url,
            ..options
        },
    )
    .unwrap()
}

pub fn spawn(dir: &Path, clock: &ManualClock, settings: &Settings) -> BackgroundServer {
    let mut cfg = ServerConfig::new(dir);
    cfg.database_url = std::fs::read_to_string(dir.join(DATABASE_URL_FILE)).ok();
    cfg.clock = Arc::new(clock.clone());
    cfg.settings = settings.clone();
    pooya_issuer::spawn_on_thread(cfg).unwrap()
}

/// The two keys a phone pins for an issuer (`init --json`).
#[derive(Clone, Debug)]
pub struct Pinned {
    pub public_key: String,
    pub activation_key: String,
}

impl Pinned {
    pub fn of(init: &InitOutput) -> Self {
        Self {
            public_key: init.issuer_public_key.clone(),
            activation_key: init.activation_public_key.clone(),
        }
    }
}

/// Seals `plaintext` to `activation_key` (hex) as a phone does: the body
/// of `POST /v1/activations`, and the `enc` and ciphertext the transcript
/// binds.
pub fn seal_plaintext(
    activation_key: &str,
    plaintext: &ActivationPlaintext,
) -> (Value, Vec<u8>, Vec<u8>) {
    let rng = SystemRandom::new();
    let mut ikm = [0u8; 32];
    rng.fill(&mut ikm).unwrap();
    let (enc, sealed) =
        seal_request(&hex::decode(activation_key).unwrap(), plaintext, &ikm).unwrap();
    (
        json!({"enc": hex::encode(enc), "sealed": hex::encode(&sealed)}),
        enc.to_vec(),
        sealed,
    )
}

/// [`seal_plaintext`] of a request from `phone` with `code`.
pub fn sealed_activation(
    activation_key: &str,
    phone: &str,
    code: &str,
    device_public_key: &[u8],
    label: &str,
) -> (Value, Vec<u8>, Vec<u8>) {
    let plaintext = ActivationPlaintext {
        phone: phone.into(),
        code: code.into(),
        device_public_key: hex::encode(device_public_key),
        device_label: label.into(),
    };
    seal_plaintext(activation_key, &plaintext)
}

/// The sealed body of an activation request given as JSON fields
/// (`phone`, `code`, `device_public_key` hex text, `device_label`), sealed
/// to `bank`'s activation key: for guesses and malformed requests.
pub fn sealed_json(bank: &Bank, fields: &Value) -> Value {
    let plaintext = ActivationPlaintext {
        phone: fields["phone"].as_str().unwrap().into(),
        code: fields["code"].as_str().unwrap().into(),
        device_public_key: fields["device_public_key"].as_str().unwrap().into(),
        device_label: fields["device_label"].as_str().unwrap().into(),
    };
    seal_plaintext(&bank.init.activation_public_key, &plaintext).0
}

/// The phone's side of an activation.
pub struct Phone {
    key: EphemeralPrivateKey,
    public: Vec<u8>,
}

/// What the phone keeps after activation.
#[derive(Clone)]
pub struct PhoneCard {
    pub response: ActivationResponse,
    pub keys: CardKeys,
    /// The card's device key (docs/protocol.md, "Card requests").
    pub device_key: pooya_protocol::PinKey,
    /// The seed the keys come from (for the phone core's own functions).
    pub seed: pooya_protocol::CardSeed,
}

impl Phone {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let key = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = key.compute_public_key().unwrap().as_ref().to_vec();
        Self { key, public }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(&self.public)
    }

    /// Sends the activation sealed to the pinned activation key; on 201
    /// checks the signature against the pinned issuer key and derives the
    /// seed as the phone does.
    pub fn activate(
        self,
        client: &Client,
        phone: &str,
        code: &str,
        pinned: &Pinned,
    ) -> (u16, Option<PhoneCard>) {
        let label = "Test phone";
        let (body, enc, sealed) =
            sealed_activation(&pinned.activation_key, phone, code, &self.public, label);
        let a = client.post("/v1/activations", None, &body);
        if a.status != 201 {
            return (a.status, None);
        }
        let resp: ActivationResponse = serde_json::from_str(&a.body).unwrap();
        let norm_phone = normalize_phone(phone).unwrap();
        let norm_code = pooya_protocol::normalize_activation_code(code).unwrap();
        let eph: Vec<u8> = hex::decode(&resp.issuer_ephemeral_public_key).unwrap();
        let transcript = ActivationTranscript {
            enc: &enc,
            sealed: &sealed,
            phone: &norm_phone,
            code: &norm_code,
            device_public_key: &self.public,
            device_label: label,
            issuer_ephemeral_public_key: &eph,
            card_id: &resp.card_id,
            masked_pan: &resp.masked_pan,
            last4: &resp.last4,
            bank_name: &resp.bank_name,
            policies: &resp.policies,
            server_time: resp.server_time,
        };
        let bytes = transcript.to_bytes();
        let sig = hex::decode(&resp.signature).unwrap();
        SigKey::new(&ED25519, hex::decode(&pinned.public_key).unwrap())
            .verify(&bytes, &sig)
            .expect("issuer signature over the transcript");
        let seed =
            agreement::agree_ephemeral(self.key, &UnparsedPublicKey::new(&X25519, &eph), |ss| {
                derive_card_seed(ss, &bytes)
            })
            .unwrap();
        let keys = seed.derive_keys();
        (
            a.status,
            Some(PhoneCard {
                response: resp,
                keys,
                device_key: seed.device_key(),
                seed,
            }),
        )
    }
}

/// A random code of `digits` digits.
pub fn random_code(rng: &SystemRandom, digits: usize) -> String {
    let mut b = vec![0u8; digits];
    rng.fill(&mut b).unwrap();
    b.iter().map(|x| char::from(b'0' + x % 10)).collect()
}

/// Masks a PAN as the issuer shows it.
pub fn masked(p: &str) -> String {
    Pan::parse(p).unwrap().masked()
}

/// One lane of a verification load that never replays a code: over its
/// share of `cards` (every `lanes`-th from `lane`), each card's first and
/// second PIN of the current minute, sent once each to the next of
/// `bases` in turn, pausing `pause` between requests, until `stop`. Every
/// answer must be 200 `accepted`; returns how many were.
pub fn fresh_code_load(
    bases: &[String],
    gateway: &str,
    cards: &[(String, PhoneCard)],
    lane: usize,
    lanes: usize,
    stop: &std::sync::atomic::AtomicBool,
    pause: std::time::Duration,
) -> u64 {
    use std::sync::atomic::Ordering;
    let clients: Vec<Client> = bases.iter().map(|b| Client::new(b)).collect();
    let mut sent = std::collections::HashMap::new();
    let mut accepted = 0u64;
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (c, (p, card)) in cards.iter().enumerate().skip(lane).step_by(lanes) {
            for kind in ["first", "second"] {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let policies = &card.response.policies;
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                if sent.get(&(c, kind)) == Some(&(t / 60)) {
                    continue;
                }
                sent.insert((c, kind), t / 60);
                idle = false;
                let cap = policies.cap_ladder.tiers()[0];
                let (code, amount) = if kind == "first" {
                    (first_pin(&card.keys, policies, t).unwrap().code, 0)
                } else {
                    (second_pin(&card.keys, policies, cap, t).unwrap().code, cap)
                };
                turn += 1;
                let v = clients[turn % clients.len()].post(
                    "/v1/verify",
                    Some(gateway),
                    &json!({"pan": p, "code": code, "amount": amount, "kind": kind}),
                );
                assert_eq!(v.status, 200, "{}", v.body);
                assert_eq!(v.json()["result"], "accepted", "a right code: {}", v.body);
                accepted += 1;
                std::thread::sleep(pause);
            }
        }
        if idle {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    accepted
}
