-- smdpp-store schema, version 3: ES2+ (operators as tenants, function-call replay records).
-- Same placeholders as 0001 ({{BLOB}}).

-- Operators (tenants). An ES2+ caller is identified by its TLS client certificate
-- (SGP.22 section 6.1, mutual authentication on ES2+): `cert_sha256` is the lower-case hex
-- SHA-256 of the certificate DER. `callback_url` is where ES2+.HandleDownloadProgressInfo
-- notifications will go (section 5.3.5; delivered by a later outbox).
CREATE TABLE operators (
    id           TEXT NOT NULL,
    cert_sha256  TEXT NULL,
    cert_subject TEXT NULL,
    callback_url TEXT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT operators_pk PRIMARY KEY (id),
    CONSTRAINT operators_cert_sha256_uq UNIQUE (cert_sha256)
);

-- ES2+ function calls already answered, per operator and functionCallIdentifier
-- (section 6.5.1.3): a replay with the same request body gets the stored response.
CREATE TABLE es2_calls (
    operator_id      TEXT NOT NULL,
    function_call_id TEXT NOT NULL,
    function_name    TEXT NOT NULL,
    request_sha256   {{BLOB}} NOT NULL,
    response         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    CONSTRAINT es2_calls_pk PRIMARY KEY (operator_id, function_call_id)
);

CREATE INDEX es2_calls_created_idx ON es2_calls (created_at);
