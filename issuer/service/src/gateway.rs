//! What an SMS gateway tells the issuer besides inbound messages: delivery
//! reports against outbox messages (docs/issuer.md, "Kannel").

use crate::ServiceError;
use crate::service::Issuer;
use crate::store::DeliveryReport;

/// Longest outbox message id looked up (`msg_` and 32 hex digits; anything
/// longer is no message of ours).
const MAX_MESSAGE_ID_LEN: usize = 64;

/// What became of a delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Recorded against its message.
    Recorded,
    /// No such message in the outbox (unknown, or pruned): recorded
    /// nowhere, counted in `/metrics`.
    UnknownMessage,
}

impl Issuer {
    /// Records a gateway's delivery report against the outbox message
    /// `message_id`, and counts it (`pooya_issuer_sms_delivery_reports_total`,
    /// or `…_unknown_total` for no known message).
    ///
    /// # Errors
    /// A storage failure.
    pub async fn delivery_report(
        &self,
        message_id: &str,
        report: DeliveryReport,
    ) -> Result<ReportOutcome, ServiceError> {
        let known = message_id.len() <= MAX_MESSAGE_ID_LEN
            && self
                .store
                .record_delivery_report(
                    message_id,
                    report,
                    i64::try_from(self.now()).unwrap_or(i64::MAX),
                )
                .await?;
        if known {
            self.metrics.delivery_report(Some(report));
            Ok(ReportOutcome::Recorded)
        } else {
            tracing::info!(
                report = report.as_str(),
                "a delivery report for no known message"
            );
            self.metrics.delivery_report(None);
            Ok(ReportOutcome::UnknownMessage)
        }
    }
}
