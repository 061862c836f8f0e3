//! The issuer's OpenAPI 3.1 contract (docs/issuer.md, "The OpenAPI
//! contract"), generated from the handlers' own types and annotations
//! (`#[utoipa::path]` next to each handler in [`crate::http`] and
//! [`crate::kannel`]), served at `GET /openapi.json` and committed at
//! `docs/openapi/issuer.json`.
//!
//! Roles are security schemes, one bearer scheme per role (RFC 6750 §2.1;
//! OpenAPI 3.1 §4.8.27), each operation naming the one it takes; every
//! error answer lists, per status, the stable codes the operation can
//! answer with (`error` is an enum of them), from the [`Refusals`] table
//! beside each handler.

use std::collections::BTreeMap;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    AllOfBuilder, ContentBuilder, ObjectBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder,
    Schema, Type,
};
use utoipa::{Modify, OpenApi};

use pooya_issuer_service::Role;

/// What an operation can be refused with: `(status, stable code)` pairs,
/// in groups.
pub(crate) type Refusals = &'static [&'static [(u16, &'static str)]];

/// A bearer-token route's refusals (RFC 6750 §3.1): no or an unknown
/// token, another role's token.
pub(crate) const AUTH: &[(u16, &str)] = &[(401, "unauthorized"), (403, "forbidden")];

/// A JSON body's refusals ([`crate::http::json_body`]).
pub(crate) const BODY: &[(u16, &str)] = &[
    (400, "invalid_body"),
    (400, "invalid_json"),
    (400, "unknown_field"),
    (400, "missing_field"),
    (400, "invalid_field"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
];

/// What any route can answer when the machinery fails
/// ([`crate::error::ApiError`]'s `From<IssuerError>`, the panic handler,
/// the whole-request timeout).
pub(crate) const ALWAYS: &[(u16, &str)] = &[
    (408, "request_timeout"),
    (500, "internal"),
    (500, "schema_too_new"),
    (500, "already_initialized"),
    (500, "not_initialized"),
    (500, "wrong_master_key"),
    (500, "key_file"),
    (500, "invalid_settings"),
    (500, "unsafe_data_dir"),
    (500, "server"),
    (500, "hsm_unavailable"),
    (500, "hsm_token_not_found"),
    (500, "hsm_pin_incorrect"),
    (500, "hsm_key_missing"),
    (500, "hsm_mechanism_unsupported"),
    (500, "hsm_failed"),
    (502, "sms_failed"),
    (503, "unavailable"),
];

/// The issuer's API, as utoipa derives it from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pooya issuer",
        description = "The bank side of Pooya's dynamic PINs: enrollment at ATMs, \
            activation of the phone, verification for payment gateways, the SMS \
            version, Harim one-time PINs, a card's life. docs/issuer.md describes \
            each route; docs/protocol.md the phone's side.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::http::enroll,
        crate::http::activate,
        crate::http::verify,
        crate::http::unblock,
        crate::http::sms_inbound,
        crate::http::otp_request,
        crate::http::outbox,
        crate::http::put_merchant,
        crate::http::get_merchant,
        crate::http::time_get,
        crate::http::time_post,
        crate::http::card_deactivate,
        crate::http::card_suspend,
        crate::http::card_resume,
        crate::http::card_revoke,
        crate::http::card_remove,
        crate::http::card_status,
        crate::kannel::dlr,
        crate::kannel::inbound,
        crate::http::healthz,
        crate::http::metrics,
        crate::http::openapi_json,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Roles, &Errors),
)]
struct IssuerApi;

/// One bearer scheme per role, named as the role.
struct Roles;

impl Modify for Roles {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        for role in Role::ALL {
            let who = match role {
                Role::Atm => "ATMs (enrollment, deactivation at the ATM)",
                Role::Gateway => "payment gateways and Harim (verification, Harim PIN requests)",
                Role::Sms => "the SMS centre (inbound messages)",
                Role::Ops => "the bank's operations team",
            };
            components.add_security_scheme(
                role.as_str(),
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(format!(
                            "The `{}` role's token (`Authorization: Bearer …`, RFC 6750 §2.1): {who}.",
                            role.as_str()
                        )))
                        .build(),
                ),
            );
        }
    }
}

/// Every operation's error answers, from the refusal tables.
struct Errors;

impl Modify for Errors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_errors(op);
            }
        }
    }
}

fn add_errors(op: &mut Operation) {
    let id = op.operation_id.clone().unwrap_or_default();
    let Some(refusals) = refusals(&id) else {
        return;
    };
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for group in refusals {
        for (status, code) in group.iter() {
            let codes = by_status.entry(*status).or_default();
            if !codes.contains(code) {
                codes.push(code);
            }
        }
    }
    for (status, codes) in by_status {
        let list = codes
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let only = ObjectBuilder::new()
            .property(
                "error",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes.clone())),
            )
            .build();
        let schema = Schema::AllOf(
            AllOfBuilder::new()
                .item(Ref::from_schema_name("ErrorBody"))
                .item(only)
                .build(),
        );
        let mut response = ResponseBuilder::new()
            .description(format!("Refused or failed; `error` is one of {list}."))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            );
        if status == 429 {
            response = response.header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some(
                        "Seconds until a retry can succeed (RFC 9110 §10.2.3).",
                    ))
                    .build(),
            );
        }
        op.responses
            .responses
            .insert(status.to_string(), RefOr::T(response.build()));
    }
}

/// The refusals of the operation `id` (the handler's name).
fn refusals(id: &str) -> Option<Refusals> {
    crate::http::REFUSALS
        .iter()
        .chain(crate::kannel::REFUSALS)
        .find(|(op, _)| *op == id)
        .map(|(_, r)| *r)
}

/// The whole document.
pub fn document() -> Document {
    IssuerApi::openapi()
}

/// The document as committed (`docs/openapi/issuer.json`): pretty JSON
/// with a final newline.
///
/// # Errors
/// Never in practice: serialising a document utoipa built.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&document())?;
    text.push('\n');
    Ok(text)
}

/// The document a running issuer serves: the Kannel routes only when
/// `sms.sender` is `kannel` (otherwise they do not exist).
pub(crate) fn served(kannel: bool) -> String {
    let mut doc = document();
    if !kannel {
        doc.paths
            .paths
            .retain(|path, _| !path.starts_with("/v1/sms/kannel/"));
    }
    serde_json::to_string(&doc).unwrap_or_default()
}
