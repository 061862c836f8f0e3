//! Harim's metrics, rendered in the Prometheus text format (version
//! 0.0.4) at `/metrics`. Labels are route names, issuer and gateway names
//! from the settings and fixed kinds: never a card number or a token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::table::Table;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The two routes Harim forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Route {
    /// `POST /v1/otp-requests`.
    OtpRequests,
    /// `POST /v1/verify`.
    Verify,
}

impl Route {
    /// The path, the same at Harim and at an issuer.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::OtpRequests => "/v1/otp-requests",
            Self::Verify => "/v1/verify",
        }
    }
}

/// Why a request to an issuer did not bring an answer (or brought a 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ErrorKind {
    /// No answer within the issuer's `timeout_ms`.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// The connection broke before a whole answer.
    Transport,
    /// The issuer answered 5xx (passed back unchanged).
    Status5xx,
    /// The breaker was open: not sent.
    BreakerOpen,
    /// `max_in_flight` requests were on their way: not sent.
    Saturated,
}

impl ErrorKind {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Transport => "transport",
            Self::Status5xx => "status_5xx",
            Self::BreakerOpen => "breaker_open",
            Self::Saturated => "saturated",
        }
    }
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    http: BTreeMap<(String, u16), u64>,
    issuer_requests: BTreeMap<(String, &'static str, u16), u64>,
    issuer_latency: BTreeMap<String, Histogram>,
    issuer_errors: BTreeMap<(String, &'static str), u64>,
    gateway_requests: BTreeMap<(String, &'static str), u64>,
    gateway_limited: BTreeMap<String, u64>,
    unknown_bin: BTreeMap<&'static str, u64>,
    reloads: BTreeMap<&'static str, u64>,
}

/// The counters, shared by every request and kept across reloads.
#[derive(Default)]
pub(crate) struct Metrics(Mutex<Inner>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g);
        }
    }

    /// An answer Harim gave on `route` (its matched path).
    pub(crate) fn http(&self, route: &str, status: u16) {
        self.with(|m| *m.http.entry((route.to_owned(), status)).or_default() += 1);
    }

    /// An answer from an issuer, and how long it took.
    pub(crate) fn issuer_answer(&self, issuer: &str, route: Route, status: u16, secs: f64) {
        self.with(|m| {
            *m.issuer_requests
                .entry((issuer.to_owned(), route.path(), status))
                .or_default() += 1;
            m.issuer_latency
                .entry(issuer.to_owned())
                .or_default()
                .observe(secs);
        });
    }

    /// A request to an issuer that failed, or was not sent.
    pub(crate) fn issuer_error(&self, issuer: &str, kind: ErrorKind) {
        self.with(|m| {
            *m.issuer_errors
                .entry((issuer.to_owned(), kind.as_str()))
                .or_default() += 1
        });
    }

    /// A gateway's authenticated request.
    pub(crate) fn gateway_request(&self, gateway: &str, route: Route) {
        self.with(|m| {
            *m.gateway_requests
                .entry((gateway.to_owned(), route.path()))
                .or_default() += 1
        });
    }

    /// A gateway's request refused by its rate limit.
    pub(crate) fn gateway_limited(&self, gateway: &str) {
        self.with(|m| *m.gateway_limited.entry(gateway.to_owned()).or_default() += 1);
    }

    /// A card number no issuer owns (answered by Harim itself).
    pub(crate) fn unknown_bin(&self, route: Route) {
        self.with(|m| *m.unknown_bin.entry(route.path()).or_default() += 1);
    }

    /// A reload, `ok` or `refused`.
    pub(crate) fn reload(&self, result: &'static str) {
        self.with(|m| *m.reloads.entry(result).or_default() += 1);
    }

    /// The text format, with the breaker states and in-flight counts of
    /// the current table.
    pub(crate) fn render(&self, table: &Table) -> String {
        let mut out = String::new();
        let Ok(m) = self.0.lock() else {
            return out;
        };
        let _ = writeln!(
            out,
            "# HELP pooya_harim_http_requests_total Answers Harim gave, by route and status."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_http_requests_total counter");
        for ((route, status), n) in &m.http {
            let _ = writeln!(
                out,
                "pooya_harim_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_issuer_requests_total Answers from issuers, by issuer, route and status."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_issuer_requests_total counter");
        for ((issuer, route, status), n) in &m.issuer_requests {
            let _ = writeln!(
                out,
                "pooya_harim_issuer_requests_total{{issuer=\"{issuer}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_issuer_request_duration_seconds Time to an issuer's whole answer."
        );
        let _ = writeln!(
            out,
            "# TYPE pooya_harim_issuer_request_duration_seconds histogram"
        );
        for (issuer, h) in &m.issuer_latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "pooya_harim_issuer_request_duration_seconds_bucket{{issuer=\"{issuer}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "pooya_harim_issuer_request_duration_seconds_bucket{{issuer=\"{issuer}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "pooya_harim_issuer_request_duration_seconds_sum{{issuer=\"{issuer}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "pooya_harim_issuer_request_duration_seconds_count{{issuer=\"{issuer}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_issuer_errors_total Requests to issuers that failed or were not sent, by kind."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_issuer_errors_total counter");
        for ((issuer, kind), n) in &m.issuer_errors {
            let _ = writeln!(
                out,
                "pooya_harim_issuer_errors_total{{issuer=\"{issuer}\",kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_issuer_breaker_state The issuer's circuit breaker: 0 closed, 1 open, 2 half-open."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_issuer_breaker_state gauge");
        for i in &table.issuers {
            let _ = writeln!(
                out,
                "pooya_harim_issuer_breaker_state{{issuer=\"{}\"}} {}",
                i.name,
                i.breaker_state().gauge()
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_issuer_in_flight Requests on their way to the issuer now."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_issuer_in_flight gauge");
        for i in &table.issuers {
            let _ = writeln!(
                out,
                "pooya_harim_issuer_in_flight{{issuer=\"{}\"}} {}",
                i.name,
                i.in_flight()
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_gateway_requests_total Authenticated requests of each gateway, by route."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_gateway_requests_total counter");
        for ((gw, route), n) in &m.gateway_requests {
            let _ = writeln!(
                out,
                "pooya_harim_gateway_requests_total{{gateway=\"{gw}\",route=\"{route}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_gateway_rate_limited_total Requests refused by the gateway's rate limit."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_gateway_rate_limited_total counter");
        for (gw, n) in &m.gateway_limited {
            let _ = writeln!(
                out,
                "pooya_harim_gateway_rate_limited_total{{gateway=\"{gw}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_unknown_bin_total Requests for cards of a BIN no issuer owns."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_unknown_bin_total counter");
        for (route, n) in &m.unknown_bin {
            let _ = writeln!(
                out,
                "pooya_harim_unknown_bin_total{{route=\"{route}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_reloads_total Settings reloads, by result."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_reloads_total counter");
        for (result, n) in &m.reloads {
            let _ = writeln!(out, "pooya_harim_reloads_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP pooya_harim_routes The BIN prefixes in the current table."
        );
        let _ = writeln!(out, "# TYPE pooya_harim_routes gauge");
        let _ = writeln!(out, "pooya_harim_routes {}", table.routes.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.0005);
        h.observe(0.3);
        h.observe(20.0);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[BUCKETS.len() - 1], 2);
        assert_eq!(h.count, 3);
    }
}
