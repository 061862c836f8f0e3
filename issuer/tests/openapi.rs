//! The OpenAPI contract (docs/issuer.md, "The OpenAPI contract"): the
//! document the code makes is the one committed at
//! docs/openapi/issuer.json (`POOYA_BLESS_OPENAPI=1` rewrites it), it is
//! served at `GET /openapi.json`, and every error code the service can
//! answer with is in it, with its status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::Bank;
use pooya_issuer::service::{Field, HsmError, PayeeAt};
use pooya_issuer::{ApiError, IssuerError, ServiceError};
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi/issuer.json");

fn document() -> Value {
    serde_json::from_str(&pooya_issuer::openapi_json().unwrap()).unwrap()
}

#[test]
fn the_committed_document_is_the_one_the_code_makes() {
    let made = pooya_issuer::openapi_json().unwrap();
    if std::env::var_os("POOYA_BLESS_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(std::path::Path::new(COMMITTED).parent().unwrap()).unwrap();
        std::fs::write(COMMITTED, &made).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == made,
        "docs/openapi/issuer.json differs from the document the code makes: \
         rerun with POOYA_BLESS_OPENAPI=1 to rewrite it, and review the diff"
    );
}

/// Every `(status, code)` an operation documents.
fn documented(doc: &Value) -> BTreeSet<(u16, String)> {
    let mut out = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                let schema = &resp["content"]["application/json"]["schema"];
                for part in schema["allOf"].as_array().into_iter().flatten() {
                    for code in part["properties"]["error"]["enum"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        out.insert((status.parse().unwrap(), code.as_str().unwrap().to_owned()));
                    }
                }
            }
        }
    }
    out
}

/// Every field that can be refused; the match makes a new one a compile
/// error here until it is listed.
fn every_field() -> Vec<Field> {
    let all = vec![
        Field::Pan,
        Field::Phone,
        Field::Code,
        Field::Payee,
        Field::Amount,
        Field::DeviceKey,
        Field::DeviceLabel,
        Field::Sealed,
        Field::SealedContent,
        Field::MerchantName,
        Field::MerchantNameScript,
        Field::Query,
        Field::Nonce,
        Field::CardId,
        Field::Proof,
        Field::TxType,
        Field::TxTypeMissing,
    ];
    for f in &all {
        match f {
            Field::Pan
            | Field::Phone
            | Field::Code
            | Field::Payee
            | Field::Amount
            | Field::DeviceKey
            | Field::DeviceLabel
            | Field::Sealed
            | Field::SealedContent
            | Field::MerchantName
            | Field::MerchantNameScript
            | Field::Query
            | Field::Nonce
            | Field::CardId
            | Field::Proof
            | Field::TxType
            | Field::TxTypeMissing => {}
        }
    }
    all
}

/// Every error the service can answer with, one of each variant; the
/// match makes a new variant a compile error here until it is listed.
fn every_service_error() -> Vec<ServiceError> {
    let mut all: Vec<ServiceError> = every_field()
        .into_iter()
        .map(|f| ServiceError::invalid(f, "x"))
        .collect();
    all.extend([
        ServiceError::Unauthorized,
        ServiceError::Forbidden,
        ServiceError::ActivationRefused,
        ServiceError::CardNotFound,
        ServiceError::CardNotFoundSigned {
            signature: "ab".repeat(64),
        },
        ServiceError::UnknownPayee(PayeeAt::Path),
        ServiceError::UnknownPayee(PayeeAt::Request),
        ServiceError::RateLimited {
            retry_after_secs: 3,
        },
        ServiceError::CardRevoked,
        ServiceError::StaleRequest,
    ]);
    let issuer = vec![
        IssuerError::Io {
            context: "x",
            message: "y".into(),
        },
        IssuerError::Storage("x".into()),
        IssuerError::SchemaTooNew {
            found: 2,
            supported: 1,
        },
        IssuerError::AlreadyInitialized,
        IssuerError::NotInitialized,
        IssuerError::WrongMasterKey,
        IssuerError::KeyFile("x"),
        IssuerError::Crypto("x"),
        IssuerError::InvalidSettings("x".into()),
        IssuerError::Sms("x".into()),
        IssuerError::Unavailable,
        IssuerError::UnsafeDataDir("x".into()),
        IssuerError::Server("x".into()),
        IssuerError::Protocol(pooya_protocol::ProtocolError::InvalidKeyLength(3)),
        IssuerError::Hsm(HsmError::Unavailable("x".into())),
        IssuerError::Hsm(HsmError::TokenNotFound("x".into())),
        IssuerError::Hsm(HsmError::PinIncorrect),
        IssuerError::Hsm(HsmError::KeyMissing("x".into())),
        IssuerError::Hsm(HsmError::MechanismUnsupported("x")),
        IssuerError::Hsm(HsmError::Failed {
            operation: "x",
            ckr: "y".into(),
        }),
    ];
    all.extend(issuer.into_iter().map(ServiceError::Issuer));
    for e in &all {
        match e {
            ServiceError::Invalid { .. }
            | ServiceError::Unauthorized
            | ServiceError::Forbidden
            | ServiceError::ActivationRefused
            | ServiceError::CardNotFound
            | ServiceError::CardNotFoundSigned { .. }
            | ServiceError::UnknownPayee(_)
            | ServiceError::RateLimited { .. }
            | ServiceError::CardRevoked
            | ServiceError::StaleRequest
            | ServiceError::Issuer(_) => {}
        }
    }
    all
}

#[test]
fn every_code_the_service_can_answer_is_documented_with_its_status() {
    let documented = documented(&document());
    let missing: Vec<(u16, &str)> = every_service_error()
        .into_iter()
        .map(ApiError::from)
        .map(|a| (a.status.as_u16(), a.code))
        .filter(|(s, c)| !documented.contains(&(*s, (*c).to_owned())))
        .collect();
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    // The HTTP layer's own codes too.
    for code in [
        "invalid_json",
        "unknown_field",
        "missing_field",
        "invalid_field",
        "payload_too_large",
        "unsupported_media_type",
        "request_timeout",
        "invalid_report",
        "invalid_text",
    ] {
        assert!(
            documented.iter().any(|(_, c)| c == code),
            "{code} not in the document"
        );
    }
}

#[test]
fn every_route_is_an_operation_with_its_role() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let roles: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s.as_object().unwrap().keys().cloned())
                .collect();
            ops.insert(format!(
                "{} {path} {}",
                method.to_uppercase(),
                roles.join(",")
            ));
            // Every operation documents its failures.
            assert!(op["responses"]["500"].is_object(), "{method} {path}");
        }
    }
    let expected: BTreeSet<String> = [
        "POST /v1/enrollments atm",
        "POST /v1/activations ",
        "POST /v1/verify gateway",
        "POST /v1/cards/unblock ops",
        "POST /v1/sms/inbound sms",
        "POST /v1/otp-requests gateway",
        "GET /v1/sms/outbox ops",
        "PUT /v1/merchants/{payee_id} ops",
        "GET /v1/merchants/{payee_id} ops",
        "GET /v1/time ",
        "POST /v1/time ",
        "POST /v1/cards/deactivate atm",
        "POST /v1/cards/suspend ops",
        "POST /v1/cards/resume ops",
        "POST /v1/cards/revoke ops",
        "POST /v1/cards/remove ",
        "POST /v1/cards/status ",
        "GET /v1/sms/kannel/dlr ",
        "GET /v1/sms/kannel/inbound ",
        "GET /healthz ",
        "GET /metrics ops",
        "GET /openapi.json ",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(ops, expected);
    for role in ["atm", "gateway", "sms", "ops"] {
        assert_eq!(
            doc["components"]["securitySchemes"][role]["scheme"], "bearer",
            "{role}"
        );
    }
}

#[test]
fn request_schemas_are_the_serde_shapes() {
    let doc = document();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let verify = schema("VerifyRequest");
    assert_eq!(verify["additionalProperties"], false);
    let required: BTreeSet<&str> = verify["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["pan", "code", "amount", "kind"]));
    // `tx_type` is `type` on the wire.
    assert!(verify["properties"]["type"].is_object(), "{verify}");
    assert!(verify["properties"]["tx_type"].is_null());
    assert_eq!(
        schema("TxType")["enum"],
        serde_json::json!(["purchase", "transfer", "bill"])
    );
    assert_eq!(schema("Channel")["enum"], serde_json::json!(["app", "sms"]));
    for name in [
        "EnrollmentRequest",
        "SealedActivationRequest",
        "UnblockRequest",
        "InboundSms",
        "OtpRequest",
        "MerchantRequest",
        "CardStatusRequest",
        "CardRequest",
        "TimeRequest",
    ] {
        assert_eq!(schema(name)["additionalProperties"], false, "{name}");
    }
}

#[test]
fn the_document_is_served_without_the_routes_this_issuer_lacks() {
    let bank = Bank::start();
    let a = bank.client.get("/openapi.json", None);
    assert_eq!(a.status, 200, "{}", a.body);
    let served = a.json();
    let mut expected = document();
    let paths = expected["paths"].as_object_mut().unwrap();
    // The development issuer has no Kannel gateway: no Kannel routes.
    paths.retain(|p, _| !p.starts_with("/v1/sms/kannel/"));
    assert_eq!(served, expected);
    let a = bank
        .client
        .get("/v1/sms/kannel/dlr?msg=a&type=1&tag=b", None);
    assert_eq!((a.status, a.error_code().as_str()), (404, "not_found"));
}
