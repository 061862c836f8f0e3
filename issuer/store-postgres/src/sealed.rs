//! Reading and replacing sealed values for key rotation
//! (`Store::sealed_values`, `Store::replace_sealed`).

use deadpool_postgres::GenericClient;
use pooya_issuer_service::IssuerError;
use pooya_issuer_service::store::{SealedKind, SealedValue};

use crate::error::PgError;
use crate::store::{exec, query};

/// The fixed SQL of a kind: the listing (after, limit) and the compare and
/// swap (new, key, old).
fn sql(kind: SealedKind) -> (&'static str, &'static str) {
    match kind {
        SealedKind::Meta => (
            "SELECT key, '', value FROM meta WHERE key > $1 ORDER BY key LIMIT $2",
            "UPDATE meta SET value = $1 WHERE key = $2 AND value = $3",
        ),
        SealedKind::CardPan => (
            "SELECT id, id, pan_sealed FROM cards WHERE id > $1 ORDER BY id LIMIT $2",
            "UPDATE cards SET pan_sealed = $1 WHERE id = $2 AND pan_sealed = $3",
        ),
        SealedKind::CardKeys => (
            "SELECT id, id, seed_sealed FROM cards WHERE seed_sealed IS NOT NULL AND id > $1 \
             ORDER BY id LIMIT $2",
            "UPDATE cards SET seed_sealed = $1 WHERE id = $2 AND seed_sealed = $3",
        ),
        SealedKind::OutboxPayload => (
            "SELECT id::text, message_id, payload FROM sms_outbox \
             WHERE sealed AND payload IS NOT NULL AND id > $1::text::bigint ORDER BY id LIMIT $2",
            "UPDATE sms_outbox SET payload = $1 WHERE id = $2::text::bigint AND payload = $3",
        ),
        SealedKind::DevSmsBody => (
            "SELECT id::text, to_phone, body_sealed FROM dev_sms_log \
             WHERE id > $1::text::bigint ORDER BY id LIMIT $2",
            "UPDATE dev_sms_log SET body_sealed = $1 WHERE id = $2::text::bigint \
             AND body_sealed = $3",
        ),
    }
}

fn integer_kind(kind: SealedKind) -> bool {
    matches!(kind, SealedKind::OutboxPayload | SealedKind::DevSmsBody)
}

/// The cursor as the SQL takes it: row ids start at 1, so "" is "0".
fn cursor(kind: SealedKind, key: &str) -> Result<String, PgError> {
    if !integer_kind(kind) {
        return Ok(key.to_owned());
    }
    if key.is_empty() {
        return Ok("0".into());
    }
    key.parse::<i64>().map(|k| k.to_string()).map_err(|_| {
        PgError::Issuer(IssuerError::Storage(
            "a sealed value's row key is not a row id".into(),
        ))
    })
}

pub(crate) async fn sealed_values<C: GenericClient>(
    c: &C,
    kind: SealedKind,
    after: &str,
    limit: u32,
) -> Result<Vec<SealedValue>, PgError> {
    let after = cursor(kind, after)?;
    let limit = i64::from(limit);
    let rows = query(c, sql(kind).0, &[&after, &limit]).await?;
    rows.iter()
        .map(|r| {
            Ok(SealedValue {
                key: r.try_get(0)?,
                context: r.try_get::<_, String>(1)?.into_bytes(),
                sealed: r.try_get(2)?,
            })
        })
        .collect()
}

pub(crate) async fn replace_sealed<C: GenericClient>(
    c: &C,
    kind: SealedKind,
    key: &str,
    old: &[u8],
    new: &[u8],
) -> Result<bool, PgError> {
    let key = cursor(kind, key)?;
    Ok(exec(c, sql(kind).1, &[&new, &key, &old]).await? == 1)
}
