//! Master key rotation (docs/issuer.md, "Key rotation"): every value
//! sealed under the master key moves to a new version while the issuer
//! keeps serving, and the old version is retired once none remains.
//!
//! The version new values are sealed under is the database's
//! (`meta.master_key_version`), so every node agrees on it: a node adopts
//! it at start and re-reads it every [`KEY_VERSION_REFRESH`]. A rotation
//! 1. makes the new version in the key provider (a token object, or
//!    `master.v<N>.key` beside `master.key`) and names it in the database;
//! 2. waits [`SETTLE`] so running nodes seal under it too;
//! 3. reseals, in pages, every value under another version: each replaced
//!    only if it is still what was read (compare and swap), so a value the
//!    service changed meanwhile is left for the next pass;
//! 4. repeats until a pass finds nothing under an old version, then
//!    retires the old versions. A value still under one after
//!    [`MAX_PASSES`] (a node that cannot reach the new version keeps
//!    sealing under the old) stops the rotation before anything is retired.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::IssuerError;
use crate::keys::{KeyProvider, PURPOSE_ACTIVATION_KEY, PURPOSE_SEED, PURPOSE_SIGNING_KEY};
use crate::outbox::{DEV_BODY_PURPOSE, PAYLOAD_PURPOSE};
use crate::service::{
    Issuer, META_ACTIVATION_KEY, META_CANARY, META_SIGNING_KEY, PURPOSE_CANARY, PURPOSE_PAN,
};
use crate::store::{SealedKind, SealedValue, Store};

/// The `meta` key naming the master key version to seal under (u32,
/// big-endian). Absent: version 1.
pub const META_MASTER_KEY_VERSION: &str = "master_key_version";
/// How often a running node re-reads the version to seal under.
pub const KEY_VERSION_REFRESH: Duration = Duration::from_secs(2);
/// How long a rotation waits after naming the new version before it
/// reseals (three refreshes).
pub const SETTLE: Duration = Duration::from_secs(6);
/// Passes over every sealed value before a rotation gives up retiring.
pub const MAX_PASSES: u32 = 5;
const PAGE: u32 = 500;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// The versions held before.
    pub from: Vec<u32>,
    /// The version everything is sealed under now.
    pub to: u32,
    /// Values resealed, by kind ([`SealedKind::as_str`]).
    pub resealed: BTreeMap<&'static str, u64>,
    /// Values that changed while being resealed (left for the next pass).
    pub changed_meanwhile: u64,
    /// Passes made.
    pub passes: u32,
    /// The versions retired.
    pub retired: Vec<u32>,
}

/// The version the database names (1 when none is named).
///
/// # Errors
/// [`IssuerError::Storage`] for a value that is not 4 bytes.
pub async fn named_version(store: &dyn Store) -> Result<u32, IssuerError> {
    match store.meta(META_MASTER_KEY_VERSION).await? {
        None => Ok(1),
        Some(b) => {
            let b: [u8; 4] = b.as_slice().try_into().map_err(|_| {
                IssuerError::Storage("meta.master_key_version is not a version".into())
            })?;
            Ok(u32::from_be_bytes(b))
        }
    }
}

/// Seals under the version the database names from now on.
///
/// # Errors
/// [`IssuerError::Hsm`] (`hsm_key_missing`) when the provider does not
/// hold it: a node that cannot open what others seal must not serve.
pub async fn adopt_named_version(
    store: &dyn Store,
    keys: &dyn KeyProvider,
) -> Result<u32, IssuerError> {
    let v = named_version(store).await?;
    if keys.current_version() != v {
        keys.set_current_version(v)?;
        tracing::info!(version = v, "sealing under master key version");
    }
    Ok(v)
}

/// Re-reads the named version every [`KEY_VERSION_REFRESH`] while the
/// issuer lives. A version this node cannot use is logged (and shown in
/// `/metrics`) and the node keeps its old one; a rotation then refuses to
/// retire it.
pub(crate) fn spawn_version_watch(issuer: Weak<Issuer>) {
    tokio::spawn(async move {
        let mut warned = 0u32;
        loop {
            tokio::time::sleep(KEY_VERSION_REFRESH).await;
            let Some(issuer) = issuer.upgrade() else {
                return;
            };
            match adopt_named_version(issuer.store.as_ref(), issuer.keys.as_ref()).await {
                Ok(_) => warned = 0,
                Err(e) => {
                    let v = named_version(issuer.store.as_ref()).await.unwrap_or(0);
                    if warned != v {
                        tracing::error!(
                            version = v,
                            code = e.code(),
                            "this node cannot seal under the master key version the database names"
                        );
                        warned = v;
                    }
                }
            }
        }
    });
}

/// Which purpose a sealed value of `kind` (and `meta` key) was sealed
/// for; `None` for a `meta` entry that is not sealed.
fn purpose(kind: SealedKind, key: &str) -> Option<&'static str> {
    match kind {
        SealedKind::Meta => match key {
            META_CANARY => Some(PURPOSE_CANARY),
            META_SIGNING_KEY => Some(PURPOSE_SIGNING_KEY),
            META_ACTIVATION_KEY => Some(PURPOSE_ACTIVATION_KEY),
            _ => None,
        },
        SealedKind::CardPan => Some(PURPOSE_PAN),
        SealedKind::CardKeys => Some(PURPOSE_SEED),
        SealedKind::OutboxPayload => Some(PAYLOAD_PURPOSE),
        SealedKind::DevSmsBody => Some(DEV_BODY_PURPOSE),
    }
}

/// One pass's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pass {
    found_old: u64,
    changed: u64,
}

async fn reseal_pass(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    target: u32,
    resealed: &mut BTreeMap<&'static str, u64>,
) -> Result<Pass, IssuerError> {
    let mut pass = Pass::default();
    for kind in SealedKind::ALL {
        let mut after = String::new();
        loop {
            let page = store.sealed_values(kind, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.key.clone();
            for SealedValue {
                key,
                context,
                sealed,
            } in &page
            {
                let Some(purpose) = purpose(kind, key) else {
                    continue;
                };
                match keys.sealed_version(sealed) {
                    Some(v) if v != target => {}
                    _ => continue,
                }
                pass.found_old += 1;
                let new = match kind {
                    SealedKind::CardKeys => {
                        let card_id = std::str::from_utf8(context)
                            .map_err(|_| IssuerError::Storage("a card id is not UTF-8".into()))?;
                        keys.reseal_card_keys(card_id, sealed)?
                    }
                    _ => keys.reseal(purpose, context, sealed)?,
                };
                if store.replace_sealed(kind, key, sealed, &new).await? {
                    *resealed.entry(kind.as_str()).or_default() += 1;
                } else {
                    pass.changed += 1;
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
    }
    Ok(pass)
}

/// Rotates the master key: see the module documentation. `settle` is how
/// long to wait for running nodes to adopt the new version ([`SETTLE`]
/// in production; a test with no other node may pass zero).
///
/// # Errors
/// [`IssuerError::Storage`], [`IssuerError::Crypto`], [`IssuerError::Hsm`],
/// [`IssuerError::Io`]; [`IssuerError::InvalidSettings`] when values
/// remain under an old version after [`MAX_PASSES`] (nothing retired).
pub async fn rotate_keys(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    settle: Duration,
    now: i64,
) -> Result<RotationReport, IssuerError> {
    adopt_named_version(store, keys).await?;
    let from = keys.versions()?;
    let to = keys.create_version()?;
    store
        .set_meta(
            META_MASTER_KEY_VERSION,
            to.to_be_bytes().to_vec(),
            "master_key_rotated",
            now,
        )
        .await?;
    keys.set_current_version(to)?;
    tracing::info!(
        version = to,
        "new master key version named; waiting for nodes to adopt it"
    );
    tokio::time::sleep(settle).await;
    let report = RotationReport {
        from,
        to,
        resealed: BTreeMap::new(),
        changed_meanwhile: 0,
        passes: 0,
        retired: Vec::new(),
    };
    reseal_and_retire(store, keys, report, now).await
}

/// Retires every held version but `current`, after checking again that
/// nothing is sealed under one.
async fn retire_old(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    current: u32,
    now: i64,
) -> Result<Vec<u32>, IssuerError> {
    let mut retired = Vec::new();
    for v in keys.versions()? {
        if v != current {
            keys.retire_version(v)?;
            retired.push(v);
        }
    }
    if !retired.is_empty() {
        let detail: Vec<String> = retired.iter().map(u32::to_string).collect();
        tracing::info!(retired = %detail.join(","), "master key versions retired");
        store
            .set_meta(
                META_MASTER_KEY_VERSION,
                current.to_be_bytes().to_vec(),
                "master_key_retired",
                now,
            )
            .await?;
    }
    Ok(retired)
}

/// Finishes a rotation that stopped before retiring (`rotate-keys
/// --finish`): reseals what is left under old versions, then retires them.
///
/// # Errors
/// As [`rotate_keys`].
pub async fn finish_rotation(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    now: i64,
) -> Result<RotationReport, IssuerError> {
    let to = adopt_named_version(store, keys).await?;
    let report = RotationReport {
        from: keys.versions()?,
        to,
        resealed: BTreeMap::new(),
        changed_meanwhile: 0,
        passes: 0,
        retired: Vec::new(),
    };
    reseal_and_retire(store, keys, report, now).await
}

/// Passes over every sealed value until one finds nothing under an old
/// version, then retires the old versions.
async fn reseal_and_retire(
    store: &dyn Store,
    keys: &dyn KeyProvider,
    mut report: RotationReport,
    now: i64,
) -> Result<RotationReport, IssuerError> {
    let to = report.to;
    loop {
        report.passes += 1;
        let pass = reseal_pass(store, keys, to, &mut report.resealed).await?;
        report.changed_meanwhile += pass.changed;
        if pass.found_old == 0 {
            break;
        }
        if report.passes >= MAX_PASSES {
            return Err(IssuerError::InvalidSettings(format!(
                "values are still sealed under an old master key version after {MAX_PASSES} \
                 passes (is a node sealing under it?); version {to} is current and nothing was \
                 retired: run `rotate-keys --finish` once every node seals under it"
            )));
        }
    }
    report.retired = retire_old(store, keys, to, now).await?;
    Ok(report)
}

/// Starts the version watch of a freshly opened issuer.
pub(crate) fn watch(issuer: &Arc<Issuer>) {
    spawn_version_watch(Arc::downgrade(issuer));
}
