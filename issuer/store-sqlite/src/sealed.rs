//! Reading and replacing sealed values for key rotation
//! (`Store::sealed_values`, `Store::replace_sealed`).

use pooya_issuer_service::store::{SealedKind, SealedValue};
use rusqlite::{Connection, params};

use crate::DbError;

/// The table, row key, context and value columns of a kind, and the extra
/// condition that leaves out what is not sealed. Fixed strings only.
struct Place {
    table: &'static str,
    key: &'static str,
    context: &'static str,
    value: &'static str,
    only: &'static str,
    integer_key: bool,
}

fn place(kind: SealedKind) -> Place {
    match kind {
        SealedKind::Meta => Place {
            table: "meta",
            key: "key",
            context: "''",
            value: "value",
            only: "1",
            integer_key: false,
        },
        SealedKind::CardPan => Place {
            table: "cards",
            key: "id",
            context: "id",
            value: "pan_sealed",
            only: "1",
            integer_key: false,
        },
        SealedKind::CardKeys => Place {
            table: "cards",
            key: "id",
            context: "id",
            value: "seed_sealed",
            only: "seed_sealed IS NOT NULL",
            integer_key: false,
        },
        SealedKind::OutboxPayload => Place {
            table: "sms_outbox",
            key: "id",
            context: "message_id",
            value: "payload",
            only: "sealed = 1 AND payload IS NOT NULL",
            integer_key: true,
        },
        SealedKind::DevSmsBody => Place {
            table: "dev_sms_log",
            key: "id",
            context: "to_phone",
            value: "body_sealed",
            only: "1",
            integer_key: true,
        },
    }
}

fn integer_key(key: &str) -> Result<i64, DbError> {
    if key.is_empty() {
        return Ok(0);
    }
    key.parse()
        .map_err(|_| DbError::Storage("a sealed value's row key is not a row id".into()))
}

pub(crate) fn sealed_values(
    c: &Connection,
    kind: SealedKind,
    after: &str,
    limit: u32,
) -> Result<Vec<SealedValue>, DbError> {
    let p = place(kind);
    let sql = format!(
        "SELECT {key}, {context}, {value} FROM {table} WHERE {only} AND {key} > ?1 \
         ORDER BY {key} LIMIT ?2",
        key = p.key,
        context = p.context,
        value = p.value,
        table = p.table,
        only = p.only,
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = if p.integer_key {
        stmt.query_map(params![integer_key(after)?, limit], |r| {
            Ok(SealedValue {
                key: r.get::<_, i64>(0)?.to_string(),
                context: r.get::<_, String>(1)?.into_bytes(),
                sealed: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?
    } else {
        stmt.query_map(params![after, limit], |r| {
            Ok(SealedValue {
                key: r.get(0)?,
                context: r.get::<_, String>(1)?.into_bytes(),
                sealed: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?
    };
    Ok(rows)
}

pub(crate) fn replace_sealed(
    c: &Connection,
    kind: SealedKind,
    key: &str,
    old: &[u8],
    new: &[u8],
) -> Result<bool, DbError> {
    let p = place(kind);
    let sql = format!(
        "UPDATE {table} SET {value} = ?1 WHERE {key} = ?2 AND {value} = ?3",
        table = p.table,
        value = p.value,
        key = p.key,
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let n = if p.integer_key {
        stmt.execute(params![new, integer_key(key)?, old])?
    } else {
        stmt.execute(params![new, key, old])?
    };
    Ok(n == 1)
}
