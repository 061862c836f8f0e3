//! The circuit breaker of one issuer: a pure state machine over time in
//! milliseconds (M. Nygard, *Release It!*, "Circuit Breaker"):
//!
//! - **closed**: requests pass; `failures` consecutive failures (a
//!   timeout, a refused connection, a 5xx) open it;
//! - **open**: requests are refused at once (`issuer_unavailable`) until
//!   `cool_down_ms` have passed;
//! - **half-open**: one request passes as a probe; its success closes the
//!   breaker, its failure opens it for another cool-down, and a probe
//!   that never finished (the gateway hung up) lets the next request
//!   probe.

/// A breaker's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failures that open the breaker (≥ 1).
    pub failures: u32,
    /// How long it stays open before a probe, in milliseconds.
    pub cool_down_ms: u64,
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests pass; `consecutive` failures so far.
    Closed {
        /// Consecutive failures since the last success.
        consecutive: u32,
    },
    /// Requests are refused until `until` (ms).
    Open {
        /// When a probe may go.
        until: u64,
    },
    /// The cool-down is over: one probe at a time.
    HalfOpen {
        /// A probe is on its way.
        probing: bool,
    },
}

impl State {
    /// The metric's value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u8 {
        match self {
            Self::Closed { .. } => 0,
            Self::Open { .. } => 1,
            Self::HalfOpen { .. } => 2,
        }
    }

    /// The state's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

/// May a request go?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes, as an ordinary request.
    Pass,
    /// Yes, as the probe of a half-open breaker.
    Probe,
    /// No: answer `issuer_unavailable`; a retry makes sense after
    /// `retry_after_ms`.
    Refuse {
        /// Until the breaker may let a probe through (0: a probe is on its
        /// way now).
        retry_after_ms: u64,
    },
}

/// How a request that was let through ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The issuer answered (any status below 500).
    Success,
    /// A timeout, a connection failure or a 5xx.
    Failure,
    /// It never finished (the gateway's request was dropped).
    Abandoned,
}

/// A breaker: its policy and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    policy: Policy,
    state: State,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            state: State::Closed { consecutive: 0 },
        }
    }

    /// Its state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Its policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Decides whether a request at `now` (ms) may go, moving an open
    /// breaker whose cool-down is over to half-open.
    pub fn admit(&mut self, now: u64) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Pass,
            State::Open { until } if now < until => Admission::Refuse {
                retry_after_ms: until - now,
            },
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::HalfOpen { probing: true } => Admission::Refuse { retry_after_ms: 0 },
        }
    }

    /// Records how a request admitted as `admission` ended at `now` (ms).
    pub fn record(&mut self, admission: Admission, outcome: Outcome, now: u64) {
        let open = State::Open {
            until: now.saturating_add(self.policy.cool_down_ms),
        };
        self.state = match (admission, self.state, outcome) {
            (Admission::Refuse { .. }, s, _) => s,
            (Admission::Probe, _, Outcome::Success) => State::Closed { consecutive: 0 },
            (Admission::Probe, _, Outcome::Failure) => open,
            (Admission::Probe, _, Outcome::Abandoned) => State::HalfOpen { probing: false },
            // Ordinary requests count only while closed: those let through
            // before it opened say nothing new.
            (Admission::Pass, State::Closed { .. }, Outcome::Success) => {
                State::Closed { consecutive: 0 }
            }
            (Admission::Pass, State::Closed { consecutive }, Outcome::Failure) => {
                let consecutive = consecutive.saturating_add(1);
                if consecutive >= self.policy.failures {
                    open
                } else {
                    State::Closed { consecutive }
                }
            }
            (Admission::Pass, s, _) => s,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: Policy = Policy {
        failures: 3,
        cool_down_ms: 1000,
    };

    #[test]
    fn closed_open_half_open_closed() {
        let mut b = Breaker::new(P);
        // Two failures, a success: the count starts again.
        for _ in 0..2 {
            assert_eq!(b.admit(0), Admission::Pass);
            b.record(Admission::Pass, Outcome::Failure, 0);
        }
        b.record(Admission::Pass, Outcome::Success, 0);
        assert_eq!(b.state(), State::Closed { consecutive: 0 });
        // Three in a row open it.
        for t in 0..3 {
            b.record(Admission::Pass, Outcome::Failure, 10 + t);
        }
        assert_eq!(b.state(), State::Open { until: 1012 });
        assert_eq!(
            b.admit(500),
            Admission::Refuse {
                retry_after_ms: 512
            }
        );
        // A straggler's answer changes nothing.
        b.record(Admission::Pass, Outcome::Success, 600);
        assert_eq!(b.state(), State::Open { until: 1012 });
        // After the cool-down, one probe, others refused.
        assert_eq!(b.admit(1012), Admission::Probe);
        assert_eq!(b.admit(1013), Admission::Refuse { retry_after_ms: 0 });
        // The probe fails: open again for a full cool-down.
        b.record(Admission::Probe, Outcome::Failure, 1100);
        assert_eq!(b.state(), State::Open { until: 2100 });
        // The next probe is abandoned: the one after probes again.
        assert_eq!(b.admit(2100), Admission::Probe);
        b.record(Admission::Probe, Outcome::Abandoned, 2101);
        assert_eq!(b.state(), State::HalfOpen { probing: false });
        assert_eq!(b.admit(2102), Admission::Probe);
        b.record(Admission::Probe, Outcome::Success, 2103);
        assert_eq!(b.state(), State::Closed { consecutive: 0 });
        assert_eq!(b.admit(2104), Admission::Pass);
    }

    #[test]
    fn one_failure_policy_opens_at_once() {
        let mut b = Breaker::new(Policy {
            failures: 1,
            cool_down_ms: 5,
        });
        b.record(Admission::Pass, Outcome::Failure, 7);
        assert_eq!(b.state(), State::Open { until: 12 });
        assert_eq!(b.state().as_str(), "open");
        assert_eq!(b.state().gauge(), 1);
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::Failure),
            Just(Outcome::Abandoned)
        ]
    }

    proptest! {
        /// Whatever happens: at most one probe is out at a time, an open
        /// breaker refuses until its cool-down ends, and it never opens
        /// with fewer consecutive failures than the policy says.
        #[test]
        fn invariants_hold(steps in proptest::collection::vec((0u64..400, outcome(), any::<bool>()), 1..200)) {
            let mut b = Breaker::new(P);
            let mut now = 0u64;
            let mut probes_out = 0u32;
            let mut pending: Vec<Admission> = Vec::new();
            let mut run = 0u32;
            for (dt, out, finish_first) in steps {
                now += dt;
                if finish_first && !pending.is_empty() {
                    let a = pending.remove(0);
                    if a == Admission::Probe { probes_out -= 1; }
                    let before = b.state();
                    b.record(a, out, now);
                    if let (Admission::Pass, State::Closed { .. }) = (a, before) {
                        run = if out == Outcome::Failure { run + 1 } else if out == Outcome::Success { 0 } else { run };
                        if let State::Open { .. } = b.state() { prop_assert!(run >= P.failures); run = 0; }
                    }
                    if let (Admission::Probe, State::Closed { .. }) = (a, b.state()) { run = 0; }
                }
                let a = b.admit(now);
                match a {
                    Admission::Probe => { probes_out += 1; prop_assert_eq!(probes_out, 1); pending.push(a); }
                    Admission::Pass => pending.push(a),
                    Admission::Refuse { retry_after_ms } => {
                        if let State::Open { until } = b.state() { prop_assert_eq!(until - now, retry_after_ms); }
                    }
                }
            }
        }
    }
}
