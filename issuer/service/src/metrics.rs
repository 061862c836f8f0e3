//! Counters and latency histograms, rendered in the Prometheus text
//! exposition format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::store::{DeliveryReport, OutboxCounts};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The routes counted separately (anything else is `other`).
pub const ROUTES: [&str; 12] = [
    "/v1/enrollments",
    "/v1/activations",
    "/v1/verify",
    "/v1/cards/unblock",
    "/v1/sms/inbound",
    "/v1/sms/kannel/inbound",
    "/v1/sms/kannel/dlr",
    "/v1/otp-requests",
    "/v1/sms/outbox",
    "/healthz",
    "/metrics",
    "other",
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, micros: u64) {
        let secs = micros as f64 / 1e6;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }
}

/// The issuer's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; ROUTES.len()],
    latency: [Histogram; ROUTES.len()],
    /// accepted, rejected, blocked
    verify: [AtomicU64; 3],
    /// Cards blocked.
    pub(crate) blocks: AtomicU64,
    /// Verifications answered `wrong_code` with nothing to match (an
    /// unknown card number, or no app and no recent one-time PIN): the
    /// precise reason, `not_enrolled`, for operators only.
    pub(crate) not_enrolled: AtomicU64,
    /// Verifications refused `dynamic_linking_required` (a right code not
    /// bound to the payment where dynamic linking is required).
    pub(crate) unlinked: AtomicU64,
    /// succeeded, refused
    activations: [AtomicU64; 2],
    /// Enrollments.
    pub(crate) enrollments: AtomicU64,
    /// Activation-code burns.
    pub(crate) burns: AtomicU64,
    /// SMS messages sent, failed.
    sms: [AtomicU64; 2],
    /// One-time codes issued: SMS version, Harim.
    one_time_codes: [AtomicU64; 2],
    /// One-time code requests refused by the rate limits: SMS version,
    /// Harim.
    rate_limited: [AtomicU64; 2],
    /// Short-code replies without a code: help, wait, suppressed (over the
    /// per-phone limit, not sent).
    sms_replies: [AtomicU64; 3],
    /// Delivery reports recorded, by [`DeliveryReport`] (in the order of
    /// [`DeliveryReport::ALL`]), then reports for no known message.
    delivery_reports: [AtomicU64; DeliveryReport::ALL.len() + 1],
}

/// A short-code reply without a code, for counting.
#[derive(Clone, Copy)]
pub(crate) enum ReplyCount {
    Help,
    Wait,
    Suppressed,
}

/// A verification verdict, for counting.
#[derive(Clone, Copy)]
pub(crate) enum VerifyCount {
    Accepted,
    Rejected,
    Blocked,
}

impl Metrics {
    /// Counts an answered request and its latency.
    pub fn request(&self, route: &str, status: u16, micros: u64) {
        let r = ROUTES
            .iter()
            .position(|x| *x == route)
            .unwrap_or(ROUTES.len() - 1);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[r][class].fetch_add(1, Relaxed);
        self.latency[r].observe(micros);
    }

    pub(crate) fn verify(&self, v: VerifyCount) {
        self.verify[v as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn activation(&self, ok: bool) {
        self.activations[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    pub(crate) fn sms(&self, ok: bool) {
        self.sms[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// A one-time code issued (`harim`: false for the SMS version).
    pub(crate) fn one_time_code(&self, harim: bool) {
        self.one_time_codes[usize::from(harim)].fetch_add(1, Relaxed);
    }

    /// A one-time code request refused by the rate limits.
    pub(crate) fn rate_limited(&self, harim: bool) {
        self.rate_limited[usize::from(harim)].fetch_add(1, Relaxed);
    }

    /// A delivery report recorded against a message, or (`None`) one for
    /// no message of the outbox.
    pub(crate) fn delivery_report(&self, r: Option<DeliveryReport>) {
        let i = r
            .and_then(|r| DeliveryReport::ALL.iter().position(|x| *x == r))
            .unwrap_or(DeliveryReport::ALL.len());
        self.delivery_reports[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn sms_reply(&self, r: ReplyCount) {
        self.sms_replies[r as usize].fetch_add(1, Relaxed);
    }

    /// The metrics in the Prometheus text format, with the store's
    /// counters and the outbox's size.
    pub fn render(
        &self,
        store: &[(&'static str, &'static str, u64)],
        outbox: OutboxCounts,
    ) -> String {
        let mut o = String::with_capacity(8192);
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_http_requests_total HTTP requests by route and status class.\n# TYPE pooya_issuer_http_requests_total counter"
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for (c, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let n = self.requests[r][c].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        o,
                        "pooya_issuer_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_http_request_duration_seconds Time to answer, by route.\n# TYPE pooya_issuer_http_request_duration_seconds histogram"
        );
        for (r, route) in ROUTES.iter().enumerate() {
            let h = &self.latency[r];
            let count = h.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "pooya_issuer_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.buckets[i].load(Relaxed)
                );
            }
            let _ = writeln!(
                o,
                "pooya_issuer_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                o,
                "pooya_issuer_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                o,
                "pooya_issuer_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_verifications_total Verification verdicts.\n# TYPE pooya_issuer_verifications_total counter"
        );
        for (i, r) in ["accepted", "rejected", "blocked"].iter().enumerate() {
            let _ = writeln!(
                o,
                "pooya_issuer_verifications_total{{result=\"{r}\"}} {}",
                self.verify[i].load(Relaxed)
            );
        }
        let simple = [
            (
                "pooya_issuer_card_blocks_total",
                "Cards whose dynamic PINs were blocked after repeated failures.",
                self.blocks.load(Relaxed),
            ),
            (
                "pooya_issuer_verifications_not_enrolled_total",
                "Verifications with nothing to match (unknown card number, or no app and no recent one-time PIN), answered as a wrong code.",
                self.not_enrolled.load(Relaxed),
            ),
            (
                "pooya_issuer_verifications_unlinked_total",
                "Verifications refused because dynamic linking is required and the code was not bound to the payment.",
                self.unlinked.load(Relaxed),
            ),
            (
                "pooya_issuer_enrollments_total",
                "Enrollments from ATMs.",
                self.enrollments.load(Relaxed),
            ),
            (
                "pooya_issuer_activation_code_burns_total",
                "Phones whose pending activation codes were burned after wrong guesses.",
                self.burns.load(Relaxed),
            ),
        ];
        for (name, help, v) in simple.into_iter().chain(store.iter().copied()) {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_activations_total Activation attempts by result.\n# TYPE pooya_issuer_activations_total counter"
        );
        for (i, r) in ["succeeded", "refused"].iter().enumerate() {
            let _ = writeln!(
                o,
                "pooya_issuer_activations_total{{result=\"{r}\"}} {}",
                self.activations[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_sms_total SMS messages handed to the sender.\n# TYPE pooya_issuer_sms_total counter"
        );
        for (i, r) in ["sent", "failed"].iter().enumerate() {
            let _ = writeln!(
                o,
                "pooya_issuer_sms_total{{result=\"{r}\"}} {}",
                self.sms[i].load(Relaxed)
            );
        }
        for (name, help, values) in [
            (
                "pooya_issuer_one_time_codes_total",
                "One-time PINs issued by SMS, by channel.",
                &self.one_time_codes,
            ),
            (
                "pooya_issuer_one_time_rate_limited_total",
                "One-time PIN requests refused by the rate limits, by channel.",
                &self.rate_limited,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for (i, ch) in ["sms", "harim"].iter().enumerate() {
                let _ = writeln!(o, "{name}{{channel=\"{ch}\"}} {}", values[i].load(Relaxed));
            }
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_sms_replies_total Short-code replies without a code.\n# TYPE pooya_issuer_sms_replies_total counter"
        );
        for (i, k) in ["help", "wait", "suppressed"].iter().enumerate() {
            let _ = writeln!(
                o,
                "pooya_issuer_sms_replies_total{{kind=\"{k}\"}} {}",
                self.sms_replies[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_sms_delivery_reports_total Delivery reports of the SMS gateway recorded against outbox messages, by report.\n# TYPE pooya_issuer_sms_delivery_reports_total counter"
        );
        for (i, r) in DeliveryReport::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "pooya_issuer_sms_delivery_reports_total{{report=\"{}\"}} {}",
                r.as_str(),
                self.delivery_reports[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_sms_delivery_reports_unknown_total Delivery reports for no message of the outbox (unknown or pruned), answered and dropped.\n# TYPE pooya_issuer_sms_delivery_reports_unknown_total counter\npooya_issuer_sms_delivery_reports_unknown_total {}",
            self.delivery_reports[DeliveryReport::ALL.len()].load(Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP pooya_issuer_sms_outbox_messages Messages in the durable outbox, by state.\n# TYPE pooya_issuer_sms_outbox_messages gauge"
        );
        for (state, n) in [("pending", outbox.pending), ("failed", outbox.failed)] {
            let _ = writeln!(
                o,
                "pooya_issuer_sms_outbox_messages{{state=\"{state}\"}} {n}"
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("/v1/verify", 200, 1500);
        m.request("/nope", 404, 10);
        m.verify(VerifyCount::Blocked);
        let text = m.render(&[], OutboxCounts::default());
        assert!(
            text.contains(
                "pooya_issuer_http_requests_total{route=\"/v1/verify\",status=\"2xx\"} 1"
            )
        );
        assert!(text.contains("route=\"other\",status=\"4xx\"} 1"));
        assert!(text.contains(
            "pooya_issuer_http_request_duration_seconds_bucket{route=\"/v1/verify\",le=\"0.001\"} 0"
        ));
        assert!(text.contains(
            "pooya_issuer_http_request_duration_seconds_bucket{route=\"/v1/verify\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains("pooya_issuer_verifications_total{result=\"blocked\"} 1"));
        m.delivery_report(Some(DeliveryReport::SmscSubmitted));
        m.delivery_report(Some(DeliveryReport::SmscSubmitted));
        m.delivery_report(None);
        let text = m.render(&[], OutboxCounts::default());
        assert!(
            text.contains("pooya_issuer_sms_delivery_reports_total{report=\"smsc_submitted\"} 2")
        );
        assert!(text.contains("pooya_issuer_sms_delivery_reports_total{report=\"delivered\"} 0"));
        assert!(text.contains("pooya_issuer_sms_delivery_reports_unknown_total 1"));
    }
}
