//! The demo payment page (`serve --demo-gateway`, `/demo/pay`) in headless
//! Chromium from Debian's packages, driven through chromedriver with
//! fantoccini: request a dynamic PIN, read it from the outbox beside the
//! page, pay (accepted), pay again (rejected), and pay a changed amount
//! (rejected); and a payment QR code the page renders, decoded from the
//! browser's screenshot, paid with the PIN the phone core made from it.
//! Chromium missing is a failure, not a skip: the test command
//! (`cargo xtask test`) installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, T0, pan};
use fantoccini::{ClientBuilder, Locator};
use pooya_issuer::{DemoGateway, InitOptions, ManualClock, ServerConfig};
use serde_json::json;

/// chromedriver, ended with the test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium and chromium-driver packages \
         (`cargo xtask test` does), or set {var}",
        path.display()
    );
    path
}

fn start_chromedriver() -> (Driver, u16) {
    let exe = tool("POOYA_CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver(child);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

async fn set(c: &fantoccini::Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn wait_for(c: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| {
            panic!("no {css}: {e}");
        })
}

/// The one-time PIN in the newest SMS the page shows, once it is not one
/// of `seen`.
async fn new_code_in_outbox(c: &fantoccini::Client, seen: &[String]) -> String {
    let start = Instant::now();
    loop {
        // The list is redrawn every second; a stale element is retried.
        if let Ok(items) = c.find_all(Locator::Css("#outbox .sms-body")).await
            && let Some(first) = items.first()
            && let Ok(text) = first.text().await
            && let Some(code) = pooya_issuer::messages::find_one_time_code(&text)
            && !seen.contains(&code)
        {
            return code;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no new PIN in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn harim_on_the_demo_payment_page() {
    let chromium = tool("POOYA_CHROMIUM", "/usr/bin/chromium");
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = ServerConfig::new(dir.path());
    cfg.clock = Arc::new(clock.clone());
    cfg.demo_gateway = Some(DemoGateway {
        gateway_token: init.tokens.gateway.clone(),
    });
    let server = pooya_issuer::spawn_on_thread(cfg).unwrap();
    let api = Client::new(&server.base_url());
    let card = pan(777);
    let a = api.post(
        "/v1/enrollments",
        Some(init.tokens.atm.expose_secret()),
        &json!({"pan": card, "phone": "09121234567", "channel": "sms"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // The SMS shows the name the bank registered for the payee id.
    let m = api.raw(
        "PUT",
        "/v1/merchants/IR-SHOP-42",
        Some(init.tokens.ops.expose_secret()),
        Some("application/json"),
        Some(br#"{"name": "Demo Shop"}"#),
    );
    assert_eq!(m.status, 201, "{}", m.body);

    let (_driver, port) = start_chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");

        c.goto(&format!("{}/demo/pay", server.base_url()))
            .await
            .unwrap();
        let source = c.source().await.unwrap();
        assert!(!source.contains(init.tokens.gateway.expose_secret()));
        assert!(!source.contains("pya_"), "no token in the page");
        set(&c, "pan", &card).await;
        set(&c, "amount", "1,250,000").await;
        set(&c, "payee-id", "IR-SHOP-42").await;

        // Request a PIN and read it from the SMS beside the page.
        c.find(Locator::Id("request-pin"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&c, "#request-status[data-state='requested']").await;
        let first = new_code_in_outbox(&c, &[]).await;
        let sms = c
            .find(Locator::Css("#outbox .sms-body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            sms.contains("۱٬۲۵۰٬۰۰۰") && sms.contains("Demo Shop"),
            "{sms}"
        );

        // Pay: accepted.
        set(&c, "pin", &first).await;
        c.find(Locator::Id("pay"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let r = wait_for(&c, "#result[data-result='accepted']").await;
        assert!(r.text().await.unwrap().starts_with("Accepted"));

        // The same PIN again: rejected, replayed.
        c.find(Locator::Id("pay"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let r = wait_for(
            &c,
            "#result[data-result='rejected'][data-reason='replayed']",
        )
        .await;
        assert!(r.text().await.unwrap().contains("already used"));

        // Asking again at once: the page says to wait.
        c.find(Locator::Id("request-pin"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let s = wait_for(&c, "#request-status[data-state='rate_limited']").await;
        assert!(s.text().await.unwrap().contains("Please wait 60 seconds"));

        // A minute later, a new PIN; the amount is changed before paying:
        // rejected.
        clock.advance(60);
        c.find(Locator::Id("request-pin"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&c, "#request-status[data-state='requested']").await;
        let second = new_code_in_outbox(&c, std::slice::from_ref(&first)).await;
        set(&c, "amount", "1,350,000").await;
        set(&c, "pin", &second).await;
        c.find(Locator::Id("pay"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let r = wait_for(
            &c,
            "#result[data-result='rejected'][data-reason='wrong_code']",
        )
        .await;
        assert!(r.text().await.unwrap().contains("another amount"));

        if let Some(path) = std::env::var_os("POOYA_DEMO_SCREENSHOT") {
            let png = c.screenshot().await.unwrap();
            std::fs::write(path, png).unwrap();
        }
        c.close().await.unwrap();
    });
    server.shutdown().unwrap();
}

/// The QR code on the page's screenshot, decoded (ISO/IEC 18004) with
/// `rqrr` from the PNG the browser took: exactly one code, its text.
fn qr_in_screenshot(png: &[u8]) -> String {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG screenshot")
        .to_luma8();
    let (w, h) = img.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            img.get_pixel(x as u32, y as u32).0[0]
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the page");
    let (_, text) = grids[0].decode().expect("the QR code decodes");
    text
}

#[test]
fn a_payment_qr_code_on_the_demo_page_is_scanned_and_paid() {
    let chromium = tool("POOYA_CHROMIUM", "/usr/bin/chromium");
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let init = pooya_issuer::init(dir.path(), &InitOptions::default()).unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = ServerConfig::new(dir.path());
    cfg.clock = Arc::new(clock.clone());
    cfg.demo_gateway = Some(DemoGateway {
        gateway_token: init.tokens.gateway.clone(),
    });
    let server = pooya_issuer::spawn_on_thread(cfg).unwrap();
    let api = Client::new(&server.base_url());
    // A card with the app: enrolled at the ATM, activated by the phone.
    let card = pan(778);
    let phone = "09121234568";
    let a = api.post(
        "/v1/enrollments",
        Some(init.tokens.atm.expose_secret()),
        &json!({"pan": card, "phone": phone, "channel": "app"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // The SMS goes out from the outbox after the answer: wait for it.
    let start = Instant::now();
    let code = loop {
        let sms = api.get(
            "/v1/sms/outbox?phone=%2B989121234568",
            Some(init.tokens.ops.expose_secret()),
        );
        let found = sms.json()["messages"].as_array().and_then(|ms| {
            ms.iter().find_map(|m| {
                pooya_issuer::messages::find_activation_code(m["body"].as_str().unwrap_or(""))
            })
        });
        if let Some(code) = found {
            break code;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no activation code SMS"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, activated) =
        common::Phone::new().activate(&api, phone, &code, &common::Pinned::of(&init));
    assert_eq!(status, 201);
    let activated = activated.unwrap();
    let policies = activated.response.policies.clone();
    let cap = *policies.cap_ladder.tiers().last().unwrap();
    let secret = pooya_core::vault::CardSecret {
        id: 1,
        issuer: "bank".into(),
        keys: activated.seed.derive_keys(),
        seed: activated.seed,
        policies,
        cap,
    };

    let (_driver, port) = start_chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,1600",
                    "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        c.goto(&format!("{}/demo/pay", server.base_url()))
            .await
            .unwrap();
        set(&c, "amount", "۴٬۲۰۰٬۰۰۰").await;
        set(&c, "payee-id", "IR-SHOP-42").await;
        set(&c, "payee-name", "Demo Shop").await;
        c.find(Locator::Id("tx-type"))
            .await
            .unwrap()
            .select_by_value("transfer")
            .await
            .unwrap();
        c.find(Locator::Id("show-qr"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&c, "#qr[data-state='shown'] svg").await;
        let shown = c
            .find(Locator::Id("qr-uri"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();

        // The phone's camera: the page's screenshot, decoded.
        let png = c.screenshot().await.unwrap();
        let uri = qr_in_screenshot(&png);
        assert_eq!(uri, shown, "the QR code holds the URI the page shows");
        assert_eq!(
            uri,
            format!(
                "pooya:pay?amount=4200000&payee=IR-SHOP-42&name=Demo%20Shop&type=transfer&expires={}",
                T0 + 300
            )
        );
        // What the app shows, and the PIN the phone core makes for it.
        let view = pooya_core::pins::payment_view(&uri, pooya_protocol::Language::Fa, T0).unwrap();
        assert_eq!(
            (view.amount_fa.as_str(), view.tx_type_name, view.payee_name.as_str()),
            ("۴٬۲۰۰٬۰۰۰", "کارت به کارت", "Demo Shop")
        );
        let pin = pooya_core::pins::payment_pin(&secret, &uri, T0).unwrap();

        // Pay as the page says (a transfer): accepted, bound to the type.
        set(&c, "pan", &card).await;
        set(&c, "pin", &pin.code).await;
        c.find(Locator::Id("pay"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let r = wait_for(&c, "#result[data-result='accepted']").await;
        assert!(r.text().await.unwrap().starts_with("Accepted"));

        // A minute later a new PIN for the same request, but the page
        // calls it a purchase: refused.
        clock.advance(60);
        let again = pooya_core::pins::payment_pin(&secret, &uri, T0 + 60).unwrap();
        c.find(Locator::Id("tx-type"))
            .await
            .unwrap()
            .select_by_value("purchase")
            .await
            .unwrap();
        set(&c, "pin", &again.code).await;
        c.find(Locator::Id("pay"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &c,
            "#result[data-result='rejected'][data-reason='wrong_code']",
        )
        .await;
        c.close().await.unwrap();
    });
    server.shutdown().unwrap();
}

// ---- issue 14: the demo payment page through Harim --------------------

/// The page's gateway token at Harim.
const HARIM_GATEWAY: &str = "gw-demo-page-token-0001";
const HARIM_ADMIN: &str = "harim-admin-token-0001";

/// A card number of `bin` (6 digits) with `n` in the middle, Luhn digit.
fn card_of(bin: &str, n: u64) -> String {
    let payload = format!("{bin}{n:09}");
    format!(
        "{payload}{}",
        pooya_protocol::ids::luhn_check_digit(&payload)
    )
}

/// Harim's clock, standing with a bank's manual clock.
struct BankClock(ManualClock);

impl pooya_harim::Clock for BankClock {
    fn now(&self) -> u64 {
        pooya_issuer::Clock::now(&self.0)
    }
}

/// The newest message on the phone panel (its header line and text),
/// once its PIN is not one of `seen`; and that PIN.
async fn newest_sms(c: &fantoccini::Client, seen: &[String]) -> (String, String, String) {
    let start = Instant::now();
    loop {
        if let Ok(items) = c.find_all(Locator::Css("#outbox .sms")).await
            && let Some(first) = items.first()
            && let Ok(meta) = first.find(Locator::Css(".sms-meta")).await
            && let Ok(meta) = meta.text().await
            && let Ok(body) = first.find(Locator::Css(".sms-body")).await
            && let Ok(body) = body.text().await
            && let Some(code) = pooya_issuer::messages::find_one_time_code(&body)
            && !seen.contains(&code)
        {
            return (meta, body, code);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no new PIN on the phone panel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Request a PIN for `card` from the page, read it on the phone panel
/// (sent by `bank`), pay with it: accepted. Returns the PIN.
async fn pay_through_harim(
    c: &fantoccini::Client,
    card: &str,
    bank: &str,
    shop: &str,
    seen: &[String],
) -> String {
    set(c, "pan", card).await;
    set(c, "amount", "1,250,000").await;
    click(c, "request-pin").await;
    wait_for(c, "#request-status[data-state='requested']").await;
    let (meta, sms, code) = newest_sms(c, seen).await;
    assert!(meta.starts_with(&format!("{bank}: ")), "{meta}");
    assert!(sms.contains("۱٬۲۵۰٬۰۰۰") && sms.contains(shop), "{sms}");
    set(c, "pin", &code).await;
    click(c, "pay").await;
    let r = wait_for(c, "#result[data-result='accepted']").await;
    assert!(r.text().await.unwrap().starts_with("Accepted"));
    code
}

/// Two real issuers (BINs 610433 and 603799) behind one real Harim; the
/// page served by the first in Harim mode, its phone panel reading both
/// banks' outboxes; one phone number holds a card of each bank. A card of
/// each bank pays from the page (PIN by SMS through Harim); a QR payment
/// with the other bank's card; that bank stopped: its card is told "the
/// bank is not reachable" (`issuer_unavailable`) while the first bank's
/// card pays.
#[test]
fn two_banks_through_harim_on_the_demo_payment_page() {
    let chromium = tool("POOYA_CHROMIUM", "/usr/bin/chromium");
    let profile = tempfile::tempdir().unwrap();
    let mut mellat = common::Bank::start();
    let mut saderat = common::Bank::start();
    let phone = "09121110001";
    let mellat_card = card_of("610433", 11);
    let saderat_card = card_of("603799", 22);
    mellat.enroll_and_activate(&mellat_card, phone);
    let saderat_phone_card = saderat.enroll_and_activate(&saderat_card, phone);
    mellat.register_merchant("IR-SHOP-42", "Demo Shop");
    saderat.register_merchant("IR-SHOP-42", "Demo Shop Saderat");

    // Harim, routing each BIN to its bank with that bank's gateway token.
    let settings = tempfile::tempdir().unwrap();
    let token_file = |name: &str, token: &str| {
        let path = settings.path().join(format!("{name}.token"));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path
    };
    let harim_settings = json!({
        "admin_token": {"file": token_file("admin", HARIM_ADMIN)},
        "gateways": [{"name": "demo-page", "token": {"env": "HARIM_GW"}}],
        "issuers": [
            {"name": "mellat", "base_url": mellat.client.base, "bins": ["610433"],
             "token": {"file": token_file("mellat", mellat.gateway())}},
            {"name": "saderat", "base_url": saderat.client.base, "bins": ["603799"],
             "token": {"file": token_file("saderat", saderat.gateway())}},
        ],
    });
    let harim_path = settings.path().join("harim.json");
    std::fs::write(&harim_path, harim_settings.to_string()).unwrap();
    let mut hcfg = pooya_harim::HarimConfig::new(&harim_path);
    hcfg.listen = Some("127.0.0.1:0".parse().unwrap());
    hcfg.clock = Arc::new(BankClock(mellat.clock.clone()));
    hcfg.env = Arc::new(|k| (k == "HARIM_GW").then(|| HARIM_GATEWAY.to_owned()));
    let harim = pooya_harim::spawn_on_thread(hcfg).unwrap();

    // Bank Mellat's issuer again on its address, now also serving the
    // page, its gateway calling Harim, its phone panel reading both banks
    // (the settings file as `serve --demo-harim FILE` reads it).
    let demo_file = settings.path().join("demo-harim.json");
    std::fs::write(
        &demo_file,
        json!({
            "harim": {"base_url": harim.base_url(), "token": {"file": token_file("gw", HARIM_GATEWAY)}},
            "banks": [
                {"name": "mellat", "base_url": mellat.client.base, "ops_token": {"env": "MELLAT_OPS"}},
                {"name": "saderat", "base_url": saderat.client.base, "ops_token": {"env": "SADERAT_OPS"}},
            ],
        })
        .to_string(),
    )
    .unwrap();
    let ops = [
        ("MELLAT_OPS", mellat.ops().to_owned()),
        ("SADERAT_OPS", saderat.ops().to_owned()),
    ];
    let demo = pooya_issuer::DemoHarim::from_file(&demo_file, &|name| {
        ops.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let first_server = mellat.server.take().unwrap();
    let addr = first_server.local_addr();
    first_server.shutdown().unwrap();
    let mut cfg = ServerConfig::new(mellat.dir.path());
    cfg.listen = addr;
    cfg.clock = Arc::new(mellat.clock.clone());
    cfg.settings = mellat.settings.clone();
    cfg.demo_harim = Some(demo);
    let page_base = format!("http://{addr}");
    mellat.server = Some(pooya_issuer::spawn_on_thread(cfg).unwrap());

    let (_driver, port) = start_chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,1600",
                    "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        c.goto(&format!("{page_base}/demo/pay")).await.unwrap();
        let source = c.source().await.unwrap();
        assert!(!source.contains(HARIM_GATEWAY), "no token in the page");
        set(&c, "payee-id", "IR-SHOP-42").await;

        // A card of each bank, through Harim; the SMS of each bank on the
        // one phone's panel.
        let first = pay_through_harim(&c, &mellat_card, "mellat", "Demo Shop", &[]).await;
        mellat.clock.advance(60);
        saderat.clock.advance(60);
        let second = pay_through_harim(
            &c,
            &saderat_card,
            "saderat",
            "Demo Shop Saderat",
            std::slice::from_ref(&first),
        )
        .await;
        // Both banks' PINs are on the phone's panel, newest first.
        let metas = c.find_all(Locator::Css("#outbox .sms-meta")).await.unwrap();
        assert_eq!(metas.len(), 2, "the two PIN messages of the phone");
        assert!(metas[1].text().await.unwrap().starts_with("mellat: "));

        // The QR flow, paid with Bank Saderat's card through Harim.
        let now = pooya_issuer::Clock::now(&saderat.clock);
        set(&c, "amount", "۴٬۲۰۰٬۰۰۰").await;
        set(&c, "payee-name", "Demo Shop").await;
        click(&c, "show-qr").await;
        wait_for(&c, "#qr[data-state='shown'] svg").await;
        let png = c.screenshot().await.unwrap();
        let uri = qr_in_screenshot(&png);
        assert!(
            uri.starts_with("pooya:pay?amount=4200000&payee=IR-SHOP-42"),
            "{uri}"
        );
        let policies = saderat_phone_card.response.policies.clone();
        let cap = *policies.cap_ladder.tiers().last().unwrap();
        let secret = pooya_core::vault::CardSecret {
            id: 2,
            issuer: "saderat".into(),
            keys: saderat_phone_card.seed.derive_keys(),
            seed: saderat_phone_card.seed.clone(),
            policies,
            cap,
        };
        let pin = pooya_core::pins::payment_pin(&secret, &uri, now).unwrap();
        set(&c, "pan", &saderat_card).await;
        set(&c, "pin", &pin.code).await;
        click(&c, "pay").await;
        let r = wait_for(&c, "#result[data-result='accepted']").await;
        assert!(r.text().await.unwrap().starts_with("Accepted"));

        // Bank Saderat stops: its card is told the bank is not reachable,
        // for a PIN request and for a payment; the panel says so too.
        saderat.server.take().unwrap().shutdown().unwrap();
        set(&c, "amount", "1,250,000").await;
        click(&c, "request-pin").await;
        let s = wait_for(&c, "#request-status[data-error='issuer_unavailable']").await;
        assert!(
            s.text()
                .await
                .unwrap()
                .contains("the bank is not reachable"),
            "{}",
            s.text().await.unwrap()
        );
        set(&c, "pin", &second).await;
        click(&c, "pay").await;
        let r = wait_for(&c, "#result[data-reason='issuer_unavailable']").await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("the bank is not reachable")
        );
        let down = wait_for(&c, "#outbox-unreachable").await;
        let start = Instant::now();
        while !down.text().await.unwrap().contains("saderat") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no unreachable bank shown"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Meanwhile Bank Mellat's card pays as before.
        mellat.clock.advance(60);
        pay_through_harim(&c, &mellat_card, "mellat", "Demo Shop", &[first, second]).await;
        if let Some(path) = std::env::var_os("POOYA_DEMO_HARIM_SCREENSHOT") {
            let png = c.screenshot().await.unwrap();
            std::fs::write(path, png).unwrap();
        }
        c.close().await.unwrap();
    });
    drop(harim);
}
