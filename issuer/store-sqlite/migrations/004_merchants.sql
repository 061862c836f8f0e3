-- 004: the merchant registry. The name a Harim SMS shows comes from here,
-- registered by the bank's operations team (PUT /v1/merchants/{payee_id}),
-- never from the payment gateway (docs/security.md, "Merchant names").

-- payee_id: the plain ASCII identifier bound into transaction PINs
-- (pooya_protocol::pin::normalize_payee); name: NFC, one script's letters
-- and digits, space, ZWNJ and . - ' & only (issuer/src/merchants.rs).
CREATE TABLE merchants (
    payee_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
