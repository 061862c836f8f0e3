//! Harim's OpenAPI 3.1 document, generated from the handlers' own types
//! (utoipa), served at `GET /openapi.json` and committed at
//! docs/openapi/harim.json (a test fails when the two differ;
//! `POOYA_BLESS_OPENAPI=1` rewrites the file).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::local::{
    ErrorBody, OtpRequest, OtpRequestAnswer, PinKindName, TxTypeName, VerifyAnswer, VerifyBody,
    VerifyResultName,
};
use crate::server::ReloadReport;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Harim (pooya-harim)",
        description = "The Central Bank's router between payment gateways and the issuing banks: \
            POST /v1/otp-requests and POST /v1/verify are routed by the card's BIN prefix to the \
            bank that issued it and answered with that bank's answer, unchanged (docs/harim.md). \
            A card of a BIN no bank owns gets the answer a bank gives a card it does not know.",
        version = "1",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::http::otp_requests,
        crate::http::verify,
        crate::http::reload,
        crate::http::healthz,
        crate::http::metrics,
        crate::http::openapi_json
    ),
    components(schemas(
        OtpRequest, OtpRequestAnswer, VerifyBody, VerifyAnswer, ErrorBody, ReloadReport,
        TxTypeName, PinKindName, VerifyResultName, crate::http::Health
    )),
    modifiers(&Security),
    tags(
        (name = "routed", description = "Routed to the card's issuer by BIN (gateway token)"),
        (name = "operations", description = "Reload, health, metrics")
    )
)]
pub struct HarimApi;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "gateway",
                "A payment gateway's token (settings: gateways[].token)",
            ),
            ("admin", "Harim's admin token (settings: admin_token)"),
            ("ops", "Harim's monitoring token (settings: ops_token)"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// The document as pretty JSON with a final newline (what
/// docs/openapi/harim.json holds).
pub fn document() -> String {
    let mut text = HarimApi::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| String::from("{}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The committed document is the code's; `POOYA_BLESS_OPENAPI=1`
    /// rewrites it.
    #[test]
    fn the_committed_document_is_the_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi/harim.json");
        let now = document();
        if std::env::var("POOYA_BLESS_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == now,
            "docs/openapi/harim.json differs from the code: run with POOYA_BLESS_OPENAPI=1 and commit it"
        );
    }

    #[test]
    fn every_operation_has_its_auth_and_error_codes() {
        let v: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        let paths = v["paths"].as_object().unwrap();
        for (path, method, security, statuses) in [
            (
                "/v1/otp-requests",
                "post",
                Some("gateway"),
                &[
                    "202", "400", "401", "403", "408", "413", "415", "422", "429", "503",
                ][..],
            ),
            (
                "/v1/verify",
                "post",
                Some("gateway"),
                &[
                    "200", "400", "401", "403", "408", "413", "415", "429", "503",
                ][..],
            ),
            (
                "/v1/admin/reload",
                "post",
                Some("admin"),
                &["200", "401", "403", "422"][..],
            ),
            ("/metrics", "get", Some("ops"), &["200", "401", "403"][..]),
            ("/healthz", "get", None, &["200"][..]),
            ("/openapi.json", "get", None, &["200"][..]),
        ] {
            let op = &paths[path][method];
            assert!(op.is_object(), "{path} {method}");
            for s in statuses {
                assert!(op["responses"][s].is_object(), "{path} {s}");
            }
            if let Some(sec) = security {
                assert!(
                    op["security"].to_string().contains(sec),
                    "{path}: {}",
                    op["security"]
                );
            }
        }
        let text = document();
        for code in [
            "unauthorized",
            "forbidden",
            "rate_limited",
            "issuer_unavailable",
            "invalid_pan",
            "invalid_settings",
            "unknown_payee",
            "payload_too_large",
            "unsupported_media_type",
            "request_timeout",
        ] {
            assert!(text.contains(code), "{code}");
        }
    }
}
