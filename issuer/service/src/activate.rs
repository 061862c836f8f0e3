//! Activation v2 (`POST /v1/activations`; RFC 9180 HPKE base mode with
//! DHKEM(P-256), RFC 7748 §6.1 X25519, RFC 5869 HKDF, RFC 8032 Ed25519;
//! docs/protocol.md, "Activation").

use pooya_protocol::activation::{
    ActivationResponse, ActivationTranscript, ENC_LEN, SealedActivationRequest, derive_card_seed,
    encapsulated_key, open_request_with_dh,
};
use pooya_protocol::wire::decode_hex_array;
use pooya_protocol::{Pan, ProtocolError, normalize_activation_code, normalize_phone};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use zeroize::Zeroizing;

use crate::IssuerError;
use crate::error::{Field, ServiceError};
use crate::outbox::Notice;
use crate::rules::{ActivationGuess, decide_activation};
use crate::service::{Issuer, PURPOSE_PAN};
use crate::store::{ActivationFailure, ActivationWrite, PendingActivation};

impl Issuer {
    /// `POST /v1/activations`.
    ///
    /// The request is opened with the issuer's activation key first: one
    /// that does not open is refused (`not_sealed_to_issuer`) and writes
    /// nothing. A well-sealed guess for a phone with no live activation code
    /// writes no row of its own either (only the one-row stranger counter),
    /// and gets the same answer, after the same work, as a wrong code for a
    /// phone that has one. The code is spent, the card activated and its
    /// registered phone's notice queued in one transaction, and only while
    /// the phone's guessing budget is unspent (a guess counted meanwhile on
    /// another node may have burned the code).
    ///
    /// # Errors
    /// `not_sealed_to_issuer`, `invalid_request`, `invalid_phone`,
    /// `invalid_code`, `invalid_device_key`, `invalid_device_label`,
    /// `activation_refused`, or a storage failure.
    pub async fn activate(
        &self,
        req: SealedActivationRequest,
    ) -> Result<ActivationResponse, ServiceError> {
        let enc: [u8; ENC_LEN] = decode_hex_array("enc", &req.enc)
            .map_err(|e| ServiceError::protocol(Field::Sealed, &e))?;
        let sealed = hex::decode(&req.sealed)
            .map_err(|_| ServiceError::invalid(Field::Sealed, "sealed is not hex"))?;
        // The encapsulated key is checked to be a point before the key
        // holder sees it; what it fails at afterwards is the bank's (500).
        let point = encapsulated_key(&enc).map_err(|_| {
            ServiceError::invalid(
                Field::Sealed,
                "the activation request is not sealed to this issuer's activation key",
            )
        })?;
        let dh = self.keys.activation_agree(&self.activation_key, &point)?;
        let opened = open_request_with_dh(&self.activation_public_key, &dh, &enc, &sealed)
            .map_err(|e| match e {
                ProtocolError::InvalidField { .. } => ServiceError::invalid(
                    Field::SealedContent,
                    "the sealed request is not the expected JSON",
                ),
                _ => ServiceError::invalid(
                    Field::Sealed,
                    "the activation request is not sealed to this issuer's activation key",
                ),
            })?;
        let phone =
            normalize_phone(&opened.phone).map_err(|e| ServiceError::protocol(Field::Phone, &e))?;
        let code = Zeroizing::new(
            normalize_activation_code(&opened.code)
                .map_err(|e| ServiceError::protocol(Field::Code, &e))?,
        );
        let device_key: [u8; 32] = decode_hex_array("device_public_key", &opened.device_public_key)
            .map_err(|e| ServiceError::protocol(Field::DeviceKey, &e))?;
        let label = pooya_protocol::normalize_device_label(&opened.device_label).map_err(|_| {
            ServiceError::invalid(
                Field::DeviceLabel,
                "device_label must be 1 to 64 letters, digits, spaces, ZWNJ or - _ . ' + # /",
            )
        })?;
        drop(opened);
        // Key agreement before the code is looked at, so its failure says
        // nothing about the code.
        let eph = EphemeralPrivateKey::generate(&X25519, &self.rng)
            .map_err(|_| IssuerError::Crypto("ephemeral key"))?;
        let eph_public = eph
            .compute_public_key()
            .map_err(|_| IssuerError::Crypto("ephemeral public key"))?
            .as_ref()
            .to_vec();
        let shared: Zeroizing<[u8; 32]> =
            agreement::agree_ephemeral(eph, &UnparsedPublicKey::new(&X25519, device_key), |ss| {
                let mut out = Zeroizing::new([0u8; 32]);
                if ss.len() == 32 {
                    out.copy_from_slice(ss);
                }
                out
            })
            .map_err(|_| {
                ServiceError::invalid(
                    Field::DeviceKey,
                    "device_public_key is not a usable X25519 public key",
                )
            })?;
        let code_hash = self.code_hash(&phone, &code)?;
        let now = self.now();
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let max = self.settings.activation_max_failures;
        let lookup = self.store.activation_lookup(&phone, code_hash, at).await?;
        let guess = decide_activation(
            lookup.live_code,
            lookup.failures,
            lookup.found.is_some(),
            max,
        );
        let found = match (guess, lookup.found) {
            (ActivationGuess::Complete, Some(found)) => found,
            (ActivationGuess::Stranger, _) => {
                // Nobody's code to guess at: one counter row for all such
                // guesses, so the work (one write) matches a counted guess
                // and strangers add no rows.
                self.store.count_activation_stranger(at).await?;
                self.metrics.activation(false);
                tracing::debug!("activation guess for a phone with no live code");
                return Err(ServiceError::ActivationRefused);
            }
            _ => {
                let counted = self.store.count_activation_failure(&phone, at, max).await?;
                self.metrics.activation(false);
                if counted == ActivationFailure::Burned {
                    self.metrics
                        .burns
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("activation codes burned after repeated wrong guesses");
                }
                return Err(ServiceError::ActivationRefused);
            }
        };
        let PendingActivation {
            code_id,
            card_id,
            pan_sealed,
            registered_phone,
        } = found;
        let pan_bytes = self
            .keys
            .open(PURPOSE_PAN, card_id.as_bytes(), &pan_sealed)?;
        let pan_text = Zeroizing::new(
            String::from_utf8(pan_bytes.to_vec()).map_err(|_| IssuerError::Crypto("sealed PAN"))?,
        );
        // A stored PAN that does not parse is the bank's failure (500).
        let pan = Pan::parse(&pan_text).map_err(IssuerError::Protocol)?;
        let masked = pan.masked();
        let bank_name = self.bank_name(&pan);
        let policies = self.settings.policies.clone();
        let transcript = ActivationTranscript {
            enc: &enc,
            sealed: &sealed,
            phone: &phone,
            code: &code,
            device_public_key: &device_key,
            device_label: &label,
            issuer_ephemeral_public_key: &eph_public,
            card_id: &card_id,
            masked_pan: &masked,
            last4: pan.last4(),
            bank_name: &bank_name,
            policies: &policies,
            server_time: now,
        };
        let bytes = transcript.to_bytes();
        let seed = derive_card_seed(&shared[..], &bytes);
        let signature = self.keys.sign(&self.signing_key, &bytes)?;
        let seed_sealed = self.keys.seal_card_keys(&card_id, &seed)?;
        drop(seed);
        // The card's registered phone learns of every activation, so one it
        // did not make is noticed.
        let notice = Notice::CardActivated {
            last4: pan.last4().to_owned(),
            device_label: label.clone(),
            at: now,
        }
        .to(&registered_phone, self.keys.as_ref())?;
        let done = self
            .store
            .complete_activation(ActivationWrite {
                code_id,
                card_id: card_id.clone(),
                phone: phone.clone(),
                seed_sealed,
                device_label: label,
                device_public_key: device_key,
                max_failures: max,
                notice,
                now: at,
            })
            .await?;
        self.metrics.activation(done);
        if !done {
            tracing::info!("activation code spent or burned while it was checked");
            return Err(ServiceError::ActivationRefused);
        }
        self.wake_outbox();
        tracing::info!(card_id = %card_id, "activated");
        Ok(ActivationResponse {
            card_id,
            masked_pan: masked,
            last4: pan.last4().to_owned(),
            bank_name,
            policies,
            server_time: now,
            issuer_ephemeral_public_key: hex::encode(&eph_public),
            signature: hex::encode(signature),
        })
    }
}
