//! A card's life on the phone through the FFI (issue 13, item 2;
//! docs/phone.md, "A card's life on the phone" and "FFI"): removing a card
//! tells the bank or keeps the removal pending, and `sync` learns each
//! card's signed state. Both are async (Kotlin `suspend fun`, Swift
//! `async`) over the host's [`crate::Transport`], in the core's prepare →
//! await → finish steps ([`PooyaApp::exchange`], `crate::network`).
//!
//! The records here only mirror the core's [`pooya_core::CardRemoval`] and
//! [`pooya_core::CardSync`]; what is told, retried and refused is decided in
//! `pooya_core::card_life`.

use pooya_core::{BankNotice as CoreNotice, CardRemoval, CardSync, CoreError};
use zeroize::Zeroizing;

use crate::PooyaError;
use crate::vault::{PooyaApp, TimeSyncInfo};

// The records the core derives for the FFI (feature `uniffi`), under the
// names Kotlin and Swift know.
pub use pooya_core::SyncedCard as SyncedCardInfo;
pub use pooya_core::protocol::card_request::AppStatus as CardAppStatus;

/// Whether the bank heard of a removal (the core's `BankNotice`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RemovalNotice {
    /// The bank answered, signed, with the card's state after the removal:
    /// `Revoked`, or `OtherDevice` when the card was activated on another
    /// device since (the removal cannot touch that one).
    Told {
        /// The state the bank signed.
        status: CardAppStatus,
    },
    /// The bank no longer knows the card (404 `card_not_found`): nothing
    /// is left to stop. Counts as told.
    Forgotten,
    /// The bank was not told (no answer, a 5xx, a refusal such as
    /// `stale_request`, or an answer that failed its checks). The removal
    /// is kept in the vault and retried at the next `sync` of its issuer.
    Pending {
        /// Why, as the typed error with its stable code.
        reason: PooyaError,
    },
}

impl From<CoreNotice> for RemovalNotice {
    fn from(n: CoreNotice) -> Self {
        match n {
            CoreNotice::Told(status) => Self::Told { status },
            CoreNotice::Forgotten => Self::Forgotten,
            CoreNotice::Pending { reason } => Self::Pending {
                reason: reason.into(),
            },
        }
    }
}

/// What removing a card (or retrying a pending removal) did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CardRemovalInfo {
    /// The pending removal's id (gone from the vault unless `notice` is
    /// `Pending`).
    pub pending_id: i64,
    /// The issuer profile's name.
    pub issuer: String,
    /// The issuer's card id.
    pub issuer_card_id: String,
    /// Whether the bank knows (`Told` or `Forgotten`): nothing is pending.
    pub bank_told: bool,
    /// What the bank said.
    pub notice: RemovalNotice,
}

impl From<CardRemoval> for CardRemovalInfo {
    fn from(r: CardRemoval) -> Self {
        Self {
            pending_id: r.pending_id,
            issuer: r.issuer,
            issuer_card_id: r.issuer_card_id,
            bank_told: r.notice.told(),
            notice: r.notice.into(),
        }
    }
}

/// What [`PooyaApp::sync`] did, in order: the time, the pending removals,
/// the cards.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CardSyncInfo {
    /// The signed time sync done first.
    pub time: TimeSyncInfo,
    /// Each pending removal of the issuer tried, with what the bank said.
    pub removals: Vec<CardRemovalInfo>,
    /// Each card of the issuer with the state the bank signed.
    pub cards: Vec<SyncedCardInfo>,
    /// Cards the bank answered 404 `card_not_found` for: their state is
    /// left as it was.
    pub unknown_cards: Vec<i64>,
}

impl From<CardSync> for CardSyncInfo {
    fn from(s: CardSync) -> Self {
        Self {
            time: s.time,
            removals: s.removals.into_iter().map(Into::into).collect(),
            cards: s.cards,
            unknown_cards: s.unknown_cards,
        }
    }
}

#[uniffi::export]
impl PooyaApp {
    /// Removes card `card_id` from this phone after the app password and
    /// tells the bank (`POST /v1/cards/remove`, proved with the card's
    /// device key, answered signed). The card is gone from the phone
    /// whatever the bank says; a removal the bank did not hear is kept
    /// (`notice` `Pending`, `bank_told` false) and retried by
    /// [`PooyaApp::sync`]. Async: awaits the Transport without blocking
    /// the caller's thread (the password check itself is Argon2id).
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `IssuerNotFound`, the password errors of
    /// [`PooyaApp::unlock_with_password`], `Storage`; on these nothing
    /// changed. The bank's failures are not errors: they are `Pending`.
    /// Cancelled after the password was checked, the card is removed and
    /// its removal pending.
    pub async fn remove_card(
        &self,
        card_id: i64,
        password: String,
    ) -> Result<CardRemovalInfo, PooyaError> {
        let password = Zeroizing::new(password);
        let _turn = self.network_turn.lock().await;
        self.round(
            |p| p.prepare_remove_card(card_id, &password),
            |p, request, answer, _| p.finish_remove_card(&request, answer),
        )
        .await
        .map(Into::into)
    }

    /// Everything the phone learns from `issuer` when online, as
    /// `pooya_core::Phone::sync` does it, each step through the
    /// Transport: the signed time first (the card requests name the bank
    /// time), then each pending removal of the issuer, then each of its
    /// cards' signed state, so PINs of a card that is not active are
    /// refused from now on (`CardRevoked`, …) and a card active again
    /// gives PINs again. Holds this app's network turn throughout.
    ///
    /// # Errors
    /// The errors of [`PooyaApp::sync_time`] (nothing else is tried then);
    /// for a card's state `Network`, `IssuerError` (but 404
    /// `card_not_found`: listed in `unknown_cards`), `BadResponse`,
    /// `BadSignature` (a forged or replayed answer changes nothing). A
    /// removal the bank does not hear stays pending and is no error.
    /// Steps done before an error or a cancellation stay done.
    pub async fn sync(&self, issuer: String) -> Result<CardSyncInfo, PooyaError> {
        let _turn = self.network_turn.lock().await;
        let time = self
            .round(
                |p| p.prepare_sync_time(&issuer),
                |p, request, answer, after| {
                    let answer = answer.map_err(|e| CoreError::Network(e.message))?;
                    p.finish_sync_time(request, answer, after)
                },
            )
            .await?;
        let mut removals = Vec::new();
        for request in self.with_phone(|p| p.prepare_pending_removals(&issuer))? {
            let removal = self
                .round(
                    move |_| Ok(request),
                    |p, request, answer, _| p.finish_remove_card(&request, answer),
                )
                .await?;
            removals.push(removal);
        }
        let mut cards = Vec::new();
        let mut unknown_cards = Vec::new();
        for id in self.with_phone(|p| p.sync_card_ids(&issuer))? {
            let synced = self
                .round(
                    |p| p.prepare_card_status(id),
                    |p, request, answer, _| p.finish_sync_card(&request, answer),
                )
                .await?;
            match synced {
                Some(c) => cards.push(c),
                None => unknown_cards.push(id),
            }
        }
        Ok(CardSync {
            time,
            removals,
            cards,
            unknown_cards,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::future::Future;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    use pooya_core::protocol::card_request::{
        self, AppStatus, CardAction, CardRequest, answer_signing_input, not_found_signing_input,
    };
    use pooya_core::protocol::time::{TimeRequest, time_signing_input};
    use pooya_core::protocol::{CardSeed, Pan, Policies};
    use pooya_core::{IssuerProfile, NewCard};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    use super::*;
    use crate::hooks::{HostError, HttpResponse, Transport};
    use crate::vault::tests::{TestClock, app_over, tempdir};

    const T0: u64 = 1_800_000_000;
    const PASSWORD: &str = "correct horse";

    /// Polls `f` to the end on this thread (the bank below answers at
    /// once), as uniffi's host executor would.
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the call is waiting"),
        }
    }

    /// A bank in memory behind the async Transport, answering as the
    /// issuer does: `/v1/time` signed over the nonce, and the card routes
    /// checked against each card's device key and signed over the request
    /// (docs/protocol.md, "Signed card answers"), at bank time [`T0`].
    struct Bank {
        key: Ed25519KeyPair,
        /// Issuer card id -> (seed bytes, state).
        cards: Mutex<HashMap<String, ([u8; 32], AppStatus)>>,
        down: AtomicBool,
    }

    impl Bank {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                key: Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap(),
                cards: Mutex::new(HashMap::new()),
                down: AtomicBool::new(false),
            })
        }
        fn set(&self, card: &str, s: AppStatus) {
            self.cards.lock().unwrap().get_mut(card).unwrap().1 = s;
        }
        fn status(&self, card: &str) -> AppStatus {
            self.cards.lock().unwrap()[card].1
        }
        fn answer(status: u16, v: &serde_json::Value) -> HttpResponse {
            HttpResponse {
                status,
                body: serde_json::to_vec(v).unwrap(),
            }
        }
    }

    #[async_trait::async_trait]
    impl Transport for Bank {
        async fn post_json(
            &self,
            url: String,
            body: Vec<u8>,
            _: u64,
        ) -> Result<HttpResponse, HostError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(HostError::Failed {
                    details: "connection refused".into(),
                });
            }
            if url.ends_with("/v1/time") {
                let req: TimeRequest = serde_json::from_slice(&body).unwrap();
                let nonce = hex::decode(&req.nonce).unwrap();
                let sig = self.key.sign(&time_signing_input(&nonce, T0));
                return Ok(Self::answer(
                    200,
                    &json!({"nonce": req.nonce, "server_time": T0,
                            "signature": hex::encode(sig.as_ref())}),
                ));
            }
            let action = if url.ends_with("/v1/cards/remove") {
                CardAction::Remove
            } else {
                CardAction::Status
            };
            let req: CardRequest = serde_json::from_slice(&body).unwrap();
            let mut cards = self.cards.lock().unwrap();
            let Some((seed, state)) = cards.get_mut(&req.card_id) else {
                // Signed over the request, as the issuer does.
                let sent = card_request::parse_proof(&req.proof).unwrap();
                let input = not_found_signing_input(action, &req.card_id, req.time, &sent);
                let sig = self.key.sign(&input);
                return Ok(Self::answer(
                    404,
                    &json!({"error": "card_not_found", "message": "no such card",
                            "signature": hex::encode(sig.as_ref())}),
                ));
            };
            let device_key = CardSeed::from_bytes(*seed).device_key();
            let proof = card_request::proof(&device_key, action, &req.card_id, req.time);
            assert_eq!(hex::encode(proof), req.proof, "the phone's proof");
            if action == CardAction::Remove {
                *state = AppStatus::Revoked;
            }
            let input = answer_signing_input(action, &req.card_id, *state, req.time, &proof);
            let sig = self.key.sign(&input);
            Ok(Self::answer(
                200,
                &json!({"card_id": req.card_id, "status": *state,
                        "signature": hex::encode(sig.as_ref())}),
            ))
        }
    }

    /// An app with the bank's profile and two cards (`crd_1`, `crd_2`),
    /// both active at the bank; returns their local ids.
    fn phone(bank: &Arc<Bank>) -> (PathBuf, Arc<PooyaApp>, Vec<i64>) {
        let dir = tempdir();
        let a = app_over(
            &dir,
            None,
            Arc::new(TestClock(AtomicU64::new(T0))),
            bank.clone(),
        );
        a.create_vault(PASSWORD.into()).unwrap();
        let public_key: [u8; 32] = bank.key.public_key().as_ref().try_into().unwrap();
        let mut ids = Vec::new();
        for (i, pan) in [(1u8, "6104337700000050"), (2, "6104337700000068")] {
            let card_id = format!("crd_{i}");
            bank.cards
                .lock()
                .unwrap()
                .insert(card_id.clone(), ([i; 32], AppStatus::Active));
            let id = a
                .with_vault(|v| {
                    if i == 1 {
                        v.add_issuer(&IssuerProfile {
                            name: "bank".into(),
                            base_url: "http://127.0.0.1:9".into(),
                            public_key,
                            activation_key: None,
                            time_offset_secs: 0,
                            time_anchor: None,
                        })?;
                    }
                    let policies = Policies::default();
                    let cap = policies.cap_ladder.tiers()[0];
                    v.add_card(&NewCard::from_pan(
                        "bank",
                        &card_id,
                        &format!("card {i}"),
                        &Pan::parse(pan)?,
                        policies,
                        cap,
                        CardSeed::from_bytes([i; 32]),
                    ))
                })
                .unwrap();
            ids.push(id);
        }
        (dir, a, ids)
    }

    #[test]
    fn remove_card_tells_the_bank_and_sync_learns_a_revocation() {
        let bank = Bank::new();
        let (dir, a, ids) = phone(&bank);
        assert_eq!(
            ready(a.remove_card(ids[0], "wrong password 1".into()))
                .unwrap_err()
                .code(),
            "wrong_password"
        );
        assert_eq!(a.cards().unwrap().len(), 2);
        assert_eq!(
            ready(a.remove_card(99, PASSWORD.into())).unwrap_err(),
            PooyaError::CardNotFound
        );

        let r = ready(a.remove_card(ids[0], PASSWORD.into())).unwrap();
        assert!(r.bank_told);
        assert_eq!(
            r.notice,
            RemovalNotice::Told {
                status: CardAppStatus::Revoked
            }
        );
        assert_eq!(
            (r.issuer.as_str(), r.issuer_card_id.as_str()),
            ("bank", "crd_1")
        );
        assert_eq!(bank.status("crd_1"), AppStatus::Revoked);
        assert_eq!(bank.status("crd_2"), AppStatus::Active);
        assert_eq!(a.cards().unwrap().len(), 1);

        // The ATM deactivates the other card: the sync learns it.
        bank.set("crd_2", AppStatus::Revoked);
        let s = ready(a.sync("bank".into())).unwrap();
        assert_eq!(s.time.server_time, T0);
        assert!(s.removals.is_empty());
        assert!(s.unknown_cards.is_empty());
        assert_eq!(
            s.cards,
            vec![SyncedCardInfo {
                card_id: ids[1],
                previous: CardAppStatus::Active,
                status: CardAppStatus::Revoked,
                checked_at: T0,
            }]
        );
        let info = a.card(ids[1]).unwrap();
        assert_eq!(info.app_status, CardAppStatus::Revoked);
        assert_eq!(info.status_checked_at, Some(T0));
        let e = a.first_pin(ids[1]).unwrap_err();
        assert_eq!(e, PooyaError::CardRevoked);
        assert_eq!(e.code(), "card_revoked");

        // Suspended, then active again: PINs follow the signed state.
        bank.set("crd_2", AppStatus::Suspended);
        ready(a.sync("bank".into())).unwrap();
        assert_eq!(a.second_pin(ids[1]).unwrap_err().code(), "card_suspended");
        bank.set("crd_2", AppStatus::Active);
        let s = ready(a.sync("bank".into())).unwrap();
        assert_eq!(s.cards[0].previous, CardAppStatus::Suspended);
        assert!(a.first_pin(ids[1]).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_removal_the_bank_cannot_hear_is_pending_until_the_next_sync() {
        let bank = Bank::new();
        let (dir, a, ids) = phone(&bank);
        bank.down.store(true, Ordering::SeqCst);
        let r = ready(a.remove_card(ids[0], PASSWORD.into())).unwrap();
        assert!(!r.bank_told);
        assert_eq!(
            r.notice,
            RemovalNotice::Pending {
                reason: PooyaError::Network {
                    details: "connection refused".into()
                }
            }
        );
        // Gone from the phone all the same; the bank still has it active.
        assert_eq!(a.cards().unwrap().len(), 1);
        assert_eq!(bank.status("crd_1"), AppStatus::Active);
        // The sync fails at its first step (the time): nothing else tried.
        assert_eq!(ready(a.sync("bank".into())).unwrap_err().code(), "network");

        // Online again: the sync sends the removal; a card the bank no
        // longer knows is listed, its state left as it was.
        bank.down.store(false, Ordering::SeqCst);
        bank.cards.lock().unwrap().remove("crd_2");
        let s = ready(a.sync("bank".into())).unwrap();
        assert_eq!(s.removals.len(), 1);
        assert_eq!(s.removals[0].pending_id, r.pending_id);
        assert!(s.removals[0].bank_told);
        assert_eq!(
            s.removals[0].notice,
            RemovalNotice::Told {
                status: CardAppStatus::Revoked
            }
        );
        assert_eq!(bank.status("crd_1"), AppStatus::Revoked);
        assert!(s.cards.is_empty());
        assert_eq!(s.unknown_cards, vec![ids[1]]);
        assert_eq!(a.card(ids[1]).unwrap().status_checked_at, None);
        // Nothing is pending any more.
        assert!(ready(a.sync("bank".into())).unwrap().removals.is_empty());
        assert_eq!(
            ready(a.sync("nobody".into())).unwrap_err(),
            PooyaError::IssuerNotFound
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
