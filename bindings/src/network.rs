//! The calls of [`PooyaApp`] that use the network, as async methods
//! (Kotlin `suspend fun`, Swift `async`) over the host's async
//! [`Transport`] (issue 13, item 6; docs/phone.md, "FFI").
//!
//! Each is the core's sans-IO steps around one await, through
//! [`PooyaApp::exchange`]:
//! 1. take this app's network turn (an async lock: one network call at a
//!    time per app; a second call waits, without blocking a thread);
//! 2. lock the vault, **prepare** (checks, the sealed request, the clocks
//!    before), unlock;
//! 3. await the host's [`Transport`] — the vault is not locked meanwhile,
//!    so PINs, the lock screen and every other call go on;
//! 4. lock the vault, read the clocks after, **finish** (check the answer,
//!    store), unlock.
//!
//! Cancellation: a cancelled Kotlin coroutine or Swift task drops the
//! future. Dropped before step 4, the prepared request is dropped with
//! it (its secrets wiped) and nothing is stored; step 4 has no await, so
//! it runs whole or not at all. The host's transport call is cancelled
//! with it by uniffi. (The bank may have seen the request: a cancelled
//! activation may have spent its code.)
//!
//! A call that finds the vault locked, reset or changed when the answer
//! arrives fails in step 4 as the core says (`Locked`, …), storing
//! nothing. Adding another network call is a few lines: a method calling
//! [`PooyaApp::exchange`] with the core's prepare and finish steps, and an
//! [`Outgoing`] impl for its request type. A call of several rounds
//! (`sync`, `crate::card_life`) takes the turn once and runs each round
//! through [`PooyaApp::round`]; a round whose finish step must see the
//! transport's failure (a removal kept pending) uses it too.

use pooya_core::activation::DEFAULT_TIMEOUT_MS;
use pooya_core::hooks::{HostError as CoreHostError, HttpResponse as CoreResponse};
use pooya_core::{
    AddCardRequest, ClockReading, CoreError, Phone, PreparedCardRequest, TimeSyncRequest,
};
use zeroize::Zeroizing;

use crate::PooyaError;
use crate::hooks::HostError;
use crate::vault::{ActivatedCard, PooyaApp, TimeSyncInfo};

/// A request prepared by one of the core's prepare steps: what to send.
pub(crate) trait Outgoing: Send + 'static {
    /// Where to POST, the JSON body, and how long to wait (milliseconds).
    fn post(&self) -> (&str, &[u8], u64);
}

impl Outgoing for AddCardRequest {
    fn post(&self) -> (&str, &[u8], u64) {
        let ex = &self.exchange;
        (&ex.url, &ex.body, ex.timeout_ms)
    }
}

impl Outgoing for TimeSyncRequest {
    fn post(&self) -> (&str, &[u8], u64) {
        let ex = &self.exchange;
        (&ex.url, &ex.body, ex.timeout_ms)
    }
}

impl Outgoing for PreparedCardRequest {
    /// The core's card requests carry no timeout: the phone's default
    /// ([`DEFAULT_TIMEOUT_MS`]), which the bindings never change.
    fn post(&self) -> (&str, &[u8], u64) {
        (&self.url, &self.body, DEFAULT_TIMEOUT_MS)
    }
}

impl PooyaApp {
    /// Prepare → await the host's transport → finish, as the module
    /// documentation says: the vault's lock is held only inside `prepare`
    /// and `finish`, never across the await.
    ///
    /// # Errors
    /// What `prepare` and `finish` return; `Network` when the transport
    /// threw (nothing is stored then).
    pub(crate) async fn exchange<R: Outgoing, T>(
        &self,
        prepare: impl FnOnce(&mut Phone) -> Result<R, CoreError> + Send,
        finish: impl FnOnce(&mut Phone, R, CoreResponse, ClockReading) -> Result<T, CoreError> + Send,
    ) -> Result<T, PooyaError> {
        let _turn = self.network_turn.lock().await;
        self.round(prepare, |p, request, answer, after| {
            let answer = answer.map_err(|e| CoreError::Network(e.message))?;
            finish(p, request, answer, after)
        })
        .await
    }

    /// One round of [`PooyaApp::exchange`] for a caller that holds this
    /// app's network turn already (`self.network_turn`), with `finish`
    /// given the transport's failure too (a removal the bank did not hear
    /// is pending, not an error).
    ///
    /// # Errors
    /// What `prepare` and `finish` return.
    pub(crate) async fn round<R: Outgoing, T>(
        &self,
        prepare: impl FnOnce(&mut Phone) -> Result<R, CoreError> + Send,
        finish: impl FnOnce(
            &mut Phone,
            R,
            Result<CoreResponse, CoreHostError>,
            ClockReading,
        ) -> Result<T, CoreError>
        + Send,
    ) -> Result<T, PooyaError> {
        let request = self.with_phone(prepare)?;
        let (url, body, timeout_ms) = request.post();
        let answer = self
            .transport
            .post_json(url.to_owned(), body.to_vec(), timeout_ms)
            .await
            .map(|a| CoreResponse {
                status: a.status,
                body: a.body,
            })
            .map_err(|e| match e {
                HostError::Failed { details } => CoreHostError::new(details),
            });
        self.with_phone(move |p| {
            let after = p.clock_reading();
            finish(p, request, answer, after)
        })
    }
}

#[uniffi::export]
impl PooyaApp {
    /// Activates a card with the code the bank sent by SMS and stores it.
    /// The code may have Persian or Arabic-Indic digits, spaces and
    /// dashes; its check digit is checked before any network call.
    /// `label` `null`: the bank's name and the last four digits. The new
    /// card's cap is the smallest tier. Async: awaits the Transport
    /// without blocking the caller's thread.
    ///
    /// # Errors
    /// `InvalidActivationCode` (no network call was made), `Locked`,
    /// `PhoneNotSet`, `IssuerNotFound`, `InvalidInput { field: "label" }`,
    /// `Network` (the Transport threw), `ActivationRefused`, `IssuerError`,
    /// `BadResponse`, `BadSignature`, `PolicyRefused`,
    /// `ServerTimeImplausible`. On any error, and when cancelled, nothing
    /// is stored.
    pub async fn add_card(
        &self,
        issuer: String,
        code: String,
        label: Option<String>,
    ) -> Result<ActivatedCard, PooyaError> {
        let code = Zeroizing::new(code);
        self.exchange(
            |p| p.prepare_add_card(&issuer, &code, label.as_deref()),
            Phone::finish_add_card,
        )
        .await
    }

    /// Syncs the bank's time (signed `/v1/time`, through the Transport)
    /// and records it against the boot clock. Async, as
    /// [`PooyaApp::add_card`].
    ///
    /// # Errors
    /// `Locked`, `IssuerNotFound`, `Network`, `IssuerError`,
    /// `BadResponse`, `BadSignature`. On any error, and when cancelled,
    /// nothing is stored.
    pub async fn sync_time(&self, issuer: String) -> Result<TimeSyncInfo, PooyaError> {
        self.exchange(|p| p.prepare_sync_time(&issuer), Phone::finish_sync_time)
            .await
    }
}

#[cfg(test)]
mod tests {
    //! The async calls polled by hand (no runtime: what uniffi does for the
    //! host), with Rust transports whose futures the test controls.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::hooks::{HttpResponse, Transport};
    use crate::vault::tests::{NoNetwork, TestClock, activation_key, app_over, tempdir};

    /// Polls `f` to the end on this thread (every future here is ready
    /// or pending forever).
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the call is waiting"),
        }
    }

    fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A network that never answers (a request in flight), counting calls.
    struct Hanging(AtomicU32);

    #[async_trait::async_trait]
    impl Transport for Hanging {
        async fn post_json(
            &self,
            _: String,
            _: Vec<u8>,
            _: u64,
        ) -> Result<HttpResponse, HostError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
    }

    fn code() -> String {
        let payload = "123456789";
        let check = pooya_core::protocol::ids::luhn_check_digit(payload);
        format!("{payload}{check}")
    }

    fn onboarded(transport: Arc<dyn Transport>) -> (std::path::PathBuf, Arc<PooyaApp>) {
        let dir = tempdir();
        let a = app_over(
            &dir,
            None,
            Arc::new(TestClock(AtomicU64::new(1_800_000_000))),
            transport,
        );
        a.create_vault("correct horse".into()).unwrap();
        (dir, a)
    }

    #[test]
    fn activation_errors_before_and_at_the_network() {
        let (dir, a) = onboarded(Arc::new(NoNetwork));
        assert_eq!(
            ready(a.add_card("bank".into(), code(), None)).unwrap_err(),
            PooyaError::PhoneNotSet
        );
        a.set_phone("09121234567".into()).unwrap();
        assert_eq!(
            ready(a.add_card("bank".into(), code(), None)).unwrap_err(),
            PooyaError::IssuerNotFound
        );
        a.add_issuer(
            "bank".into(),
            "http://127.0.0.1:9".into(),
            "ab".repeat(32),
            activation_key(),
        )
        .unwrap();
        // A typo: refused before the transport is called.
        let c = code();
        let typo = format!("{}{}", &c[..9], (c.as_bytes()[9] - b'0' + 1) % 10);
        assert_eq!(
            ready(a.add_card("bank".into(), typo, None))
                .unwrap_err()
                .code(),
            "invalid_activation_code"
        );
        // The transport throws: typed, with its details, nothing stored.
        assert_eq!(
            ready(a.add_card("bank".into(), c, None)).unwrap_err(),
            PooyaError::Network {
                details: "offline".into()
            }
        );
        assert_eq!(
            ready(a.sync_time("bank".into())).unwrap_err(),
            PooyaError::Network {
                details: "offline".into()
            }
        );
        assert!(a.cards().unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_vault_is_free_while_a_call_awaits_and_a_dropped_call_stores_nothing() {
        let net = Arc::new(Hanging(AtomicU32::new(0)));
        let (dir, a) = onboarded(net.clone());
        a.set_phone("09121234567".into()).unwrap();
        a.add_issuer(
            "bank".into(),
            "http://127.0.0.1:9".into(),
            "ab".repeat(32),
            activation_key(),
        )
        .unwrap();
        let before = a.issuers().unwrap();

        let mut first = Box::pin(a.add_card("bank".into(), code(), None));
        assert!(poll_once(first.as_mut()).is_pending());
        assert_eq!(net.0.load(Ordering::SeqCst), 1);
        // The vault is not held: other calls answer at once.
        assert!(a.cards().unwrap().is_empty());
        assert_eq!(a.time_status("bank".into()).unwrap().time, 1_800_000_000);

        // A second network call waits for its turn without calling out.
        let mut second = Box::pin(a.sync_time("bank".into()));
        assert!(poll_once(second.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(net.0.load(Ordering::SeqCst), 1);

        // Cancelled (the coroutine's future dropped): nothing stored, and
        // the turn passes to the waiting call.
        drop(first);
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(net.0.load(Ordering::SeqCst), 2);
        drop(second);
        assert!(a.cards().unwrap().is_empty());
        assert_eq!(a.status().unwrap().card_count, 0);
        assert_eq!(a.issuers().unwrap(), before);

        // And the app is not stuck: a new call gets its turn at once.
        let mut third = Box::pin(a.sync_time("bank".into()));
        assert!(poll_once(third.as_mut()).is_pending());
        assert_eq!(net.0.load(Ordering::SeqCst), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
