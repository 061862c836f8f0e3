//! Shared helpers: a real issuer on 127.0.0.1 with a manual clock, a
//! `ureq` transport for the phone, transports that count or tamper, and
//! a phone over a temporary vault.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pooya_core::hooks::{HostError, HttpResponse, Transport};
use pooya_core::testing::{ManualClock as PhoneClock, MemoryKeystore};
use pooya_core::{KdfParams, Phone, Vault, VaultConfig};
use pooya_issuer::{
    BackgroundServer, InitOptions, InitOutput, ManualClock, ServerConfig, Settings,
};
use pooya_protocol::ids;
use serde_json::{Value, json};

/// A start time on a 60 s step boundary.
pub const T0: u64 = 1_800_000_000;
pub const PHONE: &str = "09121234567";
pub const PASSWORD: &str = "e2e password 1379";

/// A test card number: a Bank Mellat BIN, `n` in the middle, Luhn digit.
pub fn pan(n: u64) -> String {
    pan_with_bin("610433", n)
}

/// A test card number with another six-digit BIN.
pub fn pan_with_bin(bin: &str, n: u64) -> String {
    let payload = format!("{bin}{n:09}");
    format!("{payload}{}", ids::luhn_check_digit(&payload))
}

/// Persian digits, as a customer on a Persian keyboard types them.
pub fn persian(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x06F0 + d).unwrap(),
            None => c,
        })
        .collect()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The phone's network: POST JSON with ureq.
#[derive(Default)]
pub struct HttpTransport;

impl Transport for HttpTransport {
    fn post_json(
        &self,
        url: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            .build()
            .into();
        let mut r = agent
            .post(url)
            .content_type("application/json")
            .send(body)
            .map_err(|e| HostError::new(e.to_string()))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .read_to_vec()
            .map_err(|e| HostError::new(e.to_string()))?;
        Ok(HttpResponse { status, body })
    }
}

/// Counts the calls, then passes them on.
#[derive(Default)]
pub struct CountingTransport {
    pub calls: AtomicU32,
    inner: HttpTransport,
}

impl Transport for CountingTransport {
    fn post_json(
        &self,
        url: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.post_json(url, body, timeout_ms)
    }
}

/// A tiny proxy between phone and bank that rewrites the bank's answer:
/// `tamper` gets the status and the parsed JSON and returns what the
/// phone receives.
pub type Tamper = Box<dyn Fn(u16, Value) -> (u16, Vec<u8>) + Send + Sync>;

#[derive(Default)]
pub struct TamperingTransport {
    inner: HttpTransport,
    tamper: Mutex<Option<Tamper>>,
}

impl TamperingTransport {
    pub fn set(&self, tamper: Option<Tamper>) {
        *self.tamper.lock().unwrap() = tamper;
    }
}

impl Transport for TamperingTransport {
    fn post_json(
        &self,
        url: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError> {
        let answer = self.inner.post_json(url, body, timeout_ms)?;
        let guard = self.tamper.lock().unwrap();
        let Some(tamper) = guard.as_ref() else {
            return Ok(answer);
        };
        let json: Value = serde_json::from_slice(&answer.body).unwrap();
        let (status, body) = tamper(answer.status, json);
        Ok(HttpResponse { status, body })
    }
}

/// A running issuer in a temporary directory with a manual clock.
pub struct Bank {
    pub dir: tempfile::TempDir,
    pub init: InitOutput,
    pub clock: ManualClock,
    pub server: Option<BackgroundServer>,
    http: ureq::Agent,
}

/// The file in a test's data directory naming its PostgreSQL database.
const DATABASE_URL_FILE: &str = "test-database-url";

fn spawn(dir: &Path, clock: &ManualClock) -> BackgroundServer {
    let mut config = ServerConfig::new(dir);
    config.database_url = std::fs::read_to_string(dir.join(DATABASE_URL_FILE)).ok();
    config.clock = Arc::new(clock.clone());
    config.settings = Settings::development();
    pooya_issuer::spawn_on_thread(config).unwrap()
}

impl Bank {
    pub fn start(now: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // With POOYA_TEST_BACKEND=postgres, on a fresh database of the
        // test process's throwaway PostgreSQL cluster (pooya-testpg).
        let database_url = match std::env::var("POOYA_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let url = pooya_testpg::TestPostgres::shared()
                    .unwrap()
                    .fresh_database()
                    .unwrap();
                std::fs::write(dir.path().join(DATABASE_URL_FILE), &url).unwrap();
                Some(url)
            }
            Ok("sqlite") | Err(_) => None,
            Ok(other) => panic!("POOYA_TEST_BACKEND={other}: sqlite or postgres"),
        };
        let init = pooya_issuer::init(
            dir.path(),
            &InitOptions {
                database_url,
                ..InitOptions::default()
            },
        )
        .unwrap();
        let clock = ManualClock::new(now);
        let server = spawn(dir.path(), &clock);
        Self {
            dir,
            init,
            clock,
            server: Some(server),
            http: agent(),
        }
    }

    pub fn url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }

    pub fn key(&self) -> String {
        self.init.issuer_public_key.clone()
    }

    pub fn activation_key(&self) -> String {
        self.init.activation_public_key.clone()
    }

    /// Stops the server and starts another on the same data.
    pub fn restart(&mut self) {
        self.server.take().unwrap().shutdown().unwrap();
        self.server = Some(spawn(self.dir.path(), &self.clock));
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.url()))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap())
    }

    /// Enrolls `pan` for the app; returns the code from the newest SMS.
    pub fn enroll(&self, pan: &str) -> String {
        let (status, body) = self.post(
            "/v1/enrollments",
            self.init.tokens.atm.expose_secret(),
            &json!({"pan": pan, "phone": PHONE, "channel": "app"}),
        );
        assert_eq!(status, 201, "{body}");
        let sms = self.sms();
        pooya_issuer::messages::find_activation_code(sms.last().unwrap()).unwrap()
    }

    /// The texts the customer's phone received, oldest first, once the
    /// bank's outbox has delivered every message committed so far.
    pub fn sms(&self) -> Vec<String> {
        let ops = format!("Bearer {}", self.init.tokens.ops.expose_secret());
        let start = std::time::Instant::now();
        loop {
            let metrics = self
                .http
                .get(format!("{}/metrics", self.url()))
                .header("Authorization", &ops)
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap();
            if metrics.contains("pooya_issuer_sms_outbox_messages{state=\"pending\"} 0\n") {
                break;
            }
            assert!(start.elapsed().as_secs() < 10, "the outbox did not drain");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let v: Value = self
            .http
            .get(format!(
                "{}/v1/sms/outbox?phone=%2B98{}",
                self.url(),
                &PHONE[1..]
            ))
            .header("Authorization", &ops)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The gateway's question; returns `(result, reason, matched)`. A
    /// payment with a payee is a purchase ([`Self::verify_tx`] names the
    /// type).
    pub fn verify(
        &self,
        pan: &str,
        code: &str,
        amount: u64,
        payee: Option<&str>,
        kind: &str,
    ) -> (String, String, Option<String>) {
        match payee {
            Some(p) => self.verify_tx(pan, code, amount, p, "purchase", kind),
            None => {
                self.verify_body(json!({"pan": pan, "code": code, "amount": amount, "kind": kind}))
            }
        }
    }

    /// The gateway's question for a transaction of `tx_type` to `payee`.
    pub fn verify_tx(
        &self,
        pan: &str,
        code: &str,
        amount: u64,
        payee: &str,
        tx_type: &str,
        kind: &str,
    ) -> (String, String, Option<String>) {
        self.verify_body(
            json!({"pan": pan, "code": code, "amount": amount, "kind": kind,
                                "payee": payee, "type": tx_type}),
        )
    }

    fn verify_body(&self, body: serde_json::Value) -> (String, String, Option<String>) {
        let (status, v) = self.post(
            "/v1/verify",
            self.init.tokens.gateway.expose_secret(),
            &body,
        );
        assert_eq!(status, 200, "{v}");
        (
            v["result"].as_str().unwrap().to_owned(),
            v["reason"].as_str().unwrap().to_owned(),
            v["matched"].as_str().map(str::to_owned),
        )
    }

    pub fn accepts(
        &self,
        pan: &str,
        code: &str,
        amount: u64,
        payee: Option<&str>,
        kind: &str,
    ) -> bool {
        self.verify(pan, code, amount, payee, kind).0 == "accepted"
    }
}

/// A phone's device: a vault path, its keystore and its clock, so the
/// phone can be "restarted" on the same device.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub keystore: Arc<MemoryKeystore>,
    pub clock: Arc<PhoneClock>,
}

impl Device {
    pub fn new(now: u64) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keystore: Arc::new(MemoryKeystore::new()),
            clock: Arc::new(PhoneClock::new(now)),
        }
    }

    /// The phone's own clock.
    pub fn clock_now(&self) -> u64 {
        use pooya_core::hooks::Clock;
        self.clock.now_unix()
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("vault.db")
    }

    /// A new vault (floor KDF) with the phone number set.
    pub fn create(&self, transport: Arc<dyn Transport>) -> Phone {
        let vault = Vault::create(
            &self.path(),
            PASSWORD,
            self.keystore.clone(),
            None,
            self.clock.clone(),
            VaultConfig::with_kdf(KdfParams::FLOOR),
        )
        .unwrap();
        let mut phone = Phone::new(vault, transport, "e2e phone").unwrap();
        phone.set_phone_number(PHONE).unwrap();
        phone
    }

    /// The vault opened again and unlocked, as after a restart.
    pub fn reopen(&self, transport: Arc<dyn Transport>) -> Phone {
        let mut vault = Vault::open(
            &self.path(),
            self.keystore.clone(),
            None,
            self.clock.clone(),
            VaultConfig::with_kdf(KdfParams::FLOOR),
        )
        .unwrap();
        vault.unlock_with_password(PASSWORD).unwrap();
        Phone::new(vault, transport, "e2e phone").unwrap()
    }
}
