//! The store conformance suite (issue 11; docs/architecture.md, "Issuer
//! layers"): one set of cases every [`Store`] backend passes, as
//! matrix-sdk-base's store integration tests hold every state store to one
//! behaviour.
//!
//! Each case is a public `async fn(Arc<dyn Store>)` in [`cases`], run on a
//! fresh, empty, migrated store at fixed times ([`NOW`]); it panics (an
//! assertion) when the store does not behave as the [`Store`] trait and the
//! rules of `pooya_issuer_service::rules` say. A backend runs them all with
//! [`run_all`], or one `#[tokio::test]` per case with
//! [`conformance_tests!`] (clearer names in the test output):
//!
//! ```text
//! async fn fresh() -> pooya_issuer_conformance::Fresh { /* a new store */ }
//! pooya_issuer_conformance::conformance_tests!(fresh);
//! ```
//!
//! The concurrency cases spawn their calls with `tokio::spawn` on the
//! same store: run them on a multi-threaded runtime, so that the SQLite
//! writer must serialise them and PostgreSQL's locks must.

// This crate is a test suite: a case that finds a store misbehaving fails
// by panicking, as `assert!` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cases;
mod fixtures;
pub mod keys;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use pooya_issuer_service::Store;

pub use fixtures::{NOW, RULES};

/// A fresh store for one case, and whatever keeps it alive (a temporary
/// directory, a throwaway database), dropped after the store.
pub struct Fresh {
    /// The store: empty and migrated.
    pub store: Arc<dyn Store>,
    // Declared after `store`, so dropped after it.
    _guard: Box<dyn Any + Send>,
}

impl Fresh {
    /// A store that needs nothing kept alive.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_guard(store, ())
    }

    /// A store and what must outlive it (for example a `tempfile::TempDir`).
    pub fn with_guard(store: Arc<dyn Store>, guard: impl Any + Send) -> Self {
        Self {
            store,
            _guard: Box::new(guard),
        }
    }
}

impl From<Arc<dyn Store>> for Fresh {
    fn from(store: Arc<dyn Store>) -> Self {
        Self::new(store)
    }
}

/// Runs one case on a fresh store from `make`, dropping the store (and its
/// guard) afterwards.
pub async fn run_case<F, Fut, C, CFut>(make: F, case: C)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Fresh>,
    C: FnOnce(Arc<dyn Store>) -> CFut,
    CFut: Future<Output = ()>,
{
    let fresh = make().await;
    case(Arc::clone(&fresh.store)).await;
    drop(fresh);
}

/// Runs every case, each on its own fresh store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Fresh>,
{
    crate::conformance_tests!(@with run_all (make));
}

/// Expands to one `#[tokio::test]` per case (multi-threaded, two workers),
/// each on a fresh store from `$make`, an expression callable as
/// `$make()` whose future yields a [`Fresh`]. The calling crate needs
/// `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@with tests ($make));
    };
    (@with $mode:ident ($($args:tt)*)) => {
        $crate::conformance_tests! { @apply $mode ($($args)*);
            initialize_twice_is_refused,
            put_meta_once_keeps_the_first,
            tokens_and_meta_round_trip,
            enroll_a_new_card,
            reenroll_to_the_same_phone,
            reenroll_to_another_phone_notifies_the_old,
            sms_version_cards,
            activation_completes_once_and_bumps_the_generation,
            activation_failures_burn_at_the_budget,
            steps_are_accepted_above_the_mark,
            marks_of_an_older_generation,
            five_failures_block_with_one_notice,
            failures_within_the_window_block_across_acceptances,
            third_block_within_a_day_lasts_until_lifted,
            one_time_code_is_spent_once,
            unknown_card_numbers_are_counted_and_blocked,
            one_time_codes_are_rate_limited,
            one_time_codes_supersede_pending_ones,
            replies_without_code_are_limited,
            unblock_known_and_unknown,
            merchants_created_then_updated,
            outbox_claims_oldest_first_under_a_lease,
            outbox_delivered_is_never_claimed_again,
            outbox_failed_is_retried_then_given_up,
            delivery_reports_are_kept_with_their_message,
            dev_sms_round_trip,
            prune_removes_old_rows_and_keeps_live_state,
            prune_keeps_an_unknown_numbers_lasting_block,
            health_is_ok,
            concurrent_settlements_of_one_step_accept_once,
            concurrent_spends_of_one_code_accept_once,
            concurrent_failures_block_once,
            concurrent_activation_failures_burn_once,
            concurrent_claims_never_share_a_message,
            sealed_values_page_and_replace_by_compare_and_swap
        }
    };
    (@apply run_all ($make:ident); $($case:ident),*) => {
        $( $crate::run_case(&$make, $crate::cases::$case).await; )*
    };
    (@apply tests ($make:expr); $($case:ident),*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::run_case($make, $crate::cases::$case).await;
            }
        )*
    };
}
