//! The routing table in force: built from checked settings, swapped whole
//! on a reload. A request holds the `Arc` of the table it started with to
//! its end. An issuer or gateway whose settings did not change keeps its
//! runtime state (breaker, requests in flight, bucket) across a reload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::breaker::{Breaker, Policy, State as BreakerState};
use crate::ratelimit::{Bucket, Rate};
use crate::routing::Routes;
use crate::settings::Checked;
use crate::token::{OutgoingToken, TokenDigest, TokenKey, bearer};

/// An issuer as Harim calls it.
pub(crate) struct IssuerRuntime {
    pub(crate) name: String,
    pub(crate) base_url: String,
    pub(crate) token: OutgoingToken,
    token_digest: TokenDigest,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) breaker: Mutex<Breaker>,
}

impl IssuerRuntime {
    /// The breaker's state now.
    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker
            .lock()
            .map(|b| b.state())
            .unwrap_or(BreakerState::Open { until: u64::MAX })
    }

    /// Requests on their way now.
    pub(crate) fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    fn policy(&self) -> Option<Policy> {
        self.breaker.lock().ok().map(|b| b.policy())
    }
}

/// A gateway as Harim knows it.
pub(crate) struct GatewayRuntime {
    pub(crate) name: String,
    digest: TokenDigest,
    pub(crate) bucket: Mutex<Bucket>,
}

/// Who a request's token says it is.
#[derive(Clone)]
pub(crate) enum Caller {
    /// A gateway.
    Gateway(Arc<GatewayRuntime>),
    /// The admin token.
    Admin,
    /// The ops (monitoring) token.
    Ops,
    /// No token, or one Harim does not know.
    Unknown,
}

/// The table in force.
pub(crate) struct Table {
    pub(crate) routes: Routes,
    pub(crate) issuers: Vec<Arc<IssuerRuntime>>,
    pub(crate) gateways: Vec<Arc<GatewayRuntime>>,
    admin: TokenDigest,
    ops: Option<TokenDigest>,
    pub(crate) body_limit_bytes: usize,
    pub(crate) otp_ttl_secs: u64,
}

impl Table {
    /// Builds a table from checked settings, keeping the runtime state of
    /// the issuers and gateways of `old` whose settings are unchanged.
    pub(crate) fn build(c: Checked, key: &TokenKey, old: Option<&Table>, now_ms: u64) -> Self {
        let issuers = c
            .issuers
            .into_iter()
            .map(|i| {
                let digest = key.digest(&i.token);
                let timeout = Duration::from_millis(i.timeout_ms);
                let kept = old.and_then(|t| {
                    t.issuers.iter().find(|o| {
                        o.name == i.name
                            && o.base_url == i.base_url
                            && o.token_digest.matches(&digest)
                            && o.timeout == timeout
                            && o.max_in_flight == i.max_in_flight
                            && o.policy() == Some(i.breaker)
                    })
                });
                match kept {
                    Some(o) => Arc::clone(o),
                    None => Arc::new(IssuerRuntime {
                        name: i.name,
                        base_url: i.base_url,
                        token: OutgoingToken::new(i.token),
                        token_digest: digest,
                        timeout,
                        max_in_flight: i.max_in_flight,
                        permits: Arc::new(Semaphore::new(i.max_in_flight)),
                        breaker: Mutex::new(Breaker::new(i.breaker)),
                    }),
                }
            })
            .collect();
        let gateways = c
            .gateways
            .into_iter()
            .map(|g| {
                let digest = key.digest(&g.token);
                let kept = old.and_then(|t| {
                    t.gateways.iter().find(|o| {
                        o.name == g.name
                            && o.digest.matches(&digest)
                            && o.bucket.lock().map(|b| b.rate() == g.rate).unwrap_or(false)
                    })
                });
                match kept {
                    Some(o) => Arc::clone(o),
                    None => Arc::new(GatewayRuntime {
                        name: g.name,
                        digest,
                        bucket: Mutex::new(Bucket::new(
                            Rate {
                                per_sec: g.rate.per_sec,
                                burst: g.rate.burst,
                            },
                            now_ms,
                        )),
                    }),
                }
            })
            .collect();
        Self {
            routes: c.routes,
            issuers,
            gateways,
            admin: key.digest(&c.admin),
            ops: c.ops.as_ref().map(|o| key.digest(o)),
            body_limit_bytes: c.body_limit_bytes,
            otp_ttl_secs: c.otp_ttl_secs,
        }
    }

    /// Who an `Authorization` header names. Every known token is compared,
    /// each in constant time, whichever matches.
    pub(crate) fn caller(&self, key: &TokenKey, authorization: Option<&str>) -> Caller {
        let Some(token) = bearer(authorization) else {
            return Caller::Unknown;
        };
        let d = key.digest(token);
        let mut found = Caller::Unknown;
        for g in &self.gateways {
            if g.digest.matches(&d) {
                found = Caller::Gateway(Arc::clone(g));
            }
        }
        if self.admin.matches(&d) {
            found = Caller::Admin;
        }
        if self.ops.as_ref().is_some_and(|o| o.matches(&d)) {
            found = Caller::Ops;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::breaker::{Admission, Outcome};
    use crate::settings::Settings;

    fn checked(timeout_ms: u64, rate: f64) -> Checked {
        let text = serde_json::json!({
            "admin_token": {"env": "A"},
            "gateways": [{"name": "g", "token": {"env": "G"}, "rate_per_sec": rate, "burst": 1}],
            "issuers": [
                {"name": "a", "base_url": "http://127.0.0.1:1", "bins": ["610433"], "token": {"env": "T"}, "timeout_ms": timeout_ms,
                 "breaker": {"failures": 1, "cool_down_ms": 1000}},
                {"name": "b", "base_url": "http://127.0.0.1:2", "bins": ["603799"], "token": {"env": "T"}}
            ]
        })
        .to_string();
        let env = |v: &str| Some(format!("token-of-{v}-0123456789"));
        Settings::from_json(&text).unwrap().check(&env).unwrap()
    }

    /// A reload keeps the breaker and bucket of what did not change, and
    /// starts afresh what did.
    #[test]
    fn a_reload_keeps_the_state_of_unchanged_issuers_and_gateways() {
        let key = TokenKey::new().unwrap();
        let old = Table::build(checked(500, 1.0), &key, None, 0);
        old.issuers[0]
            .breaker
            .lock()
            .unwrap()
            .record(Admission::Pass, Outcome::Failure, 0);
        assert_eq!(old.issuers[0].breaker_state().as_str(), "open");
        assert!(old.gateways[0].bucket.lock().unwrap().take(0).is_ok());
        let same = Table::build(checked(500, 1.0), &key, Some(&old), 10);
        assert!(Arc::ptr_eq(&old.issuers[0], &same.issuers[0]));
        assert!(Arc::ptr_eq(&old.gateways[0], &same.gateways[0]));
        assert_eq!(same.issuers[0].breaker_state().as_str(), "open");
        assert!(same.gateways[0].bucket.lock().unwrap().take(10).is_err());
        let changed = Table::build(checked(900, 2.0), &key, Some(&old), 10);
        assert!(!Arc::ptr_eq(&old.issuers[0], &changed.issuers[0]));
        assert_eq!(changed.issuers[0].breaker_state().as_str(), "closed");
        assert!(Arc::ptr_eq(&old.issuers[1], &changed.issuers[1]));
        assert!(changed.gateways[0].bucket.lock().unwrap().take(10).is_ok());
        // Callers by token.
        assert!(matches!(
            changed.caller(&key, Some("Bearer token-of-G-0123456789")),
            Caller::Gateway(_)
        ));
        assert!(matches!(
            changed.caller(&key, Some("Bearer token-of-A-0123456789")),
            Caller::Admin
        ));
        assert!(matches!(
            changed.caller(&key, Some("Bearer token-of-T-0123456789")),
            Caller::Unknown
        ));
        assert!(matches!(changed.caller(&key, None), Caller::Unknown));
    }
}
