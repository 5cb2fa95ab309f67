-- smdpp-store schema, version 1.
--
-- Portable between SQLite and PostgreSQL. The only differences are written as
-- placeholders that the store replaces before running the migration:
--   {{BLOB}}     BLOB on SQLite, BYTEA on PostgreSQL
--   {{AUTO_ID}}  an auto-assigned 64-bit integer primary key
-- All integers are BIGINT (decoded as i64); all times are epoch milliseconds.
-- Profile states are not CHECK-constrained so that new states can be added
-- without rebuilding the table on SQLite; the Rust enum is the gatekeeper.

CREATE TABLE profiles (
    iccid                  TEXT NOT NULL,
    operator_id            TEXT NULL,
    profile_type           TEXT NULL,
    state                  TEXT NOT NULL,
    matching_id            TEXT NULL,
    eid                    TEXT NULL,
    cc_hash                {{BLOB}} NULL,
    cc_attempts            BIGINT NOT NULL DEFAULT 0,
    cc_attempt_limit       BIGINT NULL,
    download_attempts      BIGINT NOT NULL DEFAULT 0,
    download_attempt_limit BIGINT NULL,
    upp                    {{BLOB}} NULL,
    error_cause            TEXT NULL,
    smds_address           TEXT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    expires_at             BIGINT NULL,
    version                BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT profiles_iccid_pk PRIMARY KEY (iccid),
    CONSTRAINT profiles_matching_id_uq UNIQUE (matching_id)
);

CREATE INDEX profiles_state_type_idx ON profiles (state, profile_type, created_at);
CREATE INDEX profiles_eid_idx ON profiles (eid);
CREATE INDEX profiles_operator_idx ON profiles (operator_id, state);

CREATE TABLE profile_events (
    id          {{AUTO_ID}},
    iccid       TEXT NOT NULL REFERENCES profiles (iccid),
    at          BIGINT NOT NULL,
    from_state  TEXT NULL,
    to_state    TEXT NOT NULL,
    cause       TEXT NULL,
    detail      TEXT NULL,
    actor       TEXT NOT NULL
);

CREATE INDEX profile_events_iccid_idx ON profile_events (iccid, id);

CREATE TABLE rsp_sessions (
    transaction_id TEXT NOT NULL,
    state          TEXT NOT NULL,
    eid            TEXT NULL,
    iccid          TEXT NULL,
    data           {{BLOB}} NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT rsp_sessions_transaction_id_pk PRIMARY KEY (transaction_id)
);

CREATE INDEX rsp_sessions_expires_idx ON rsp_sessions (expires_at);
CREATE INDEX rsp_sessions_eid_idx ON rsp_sessions (eid);

CREATE TABLE notifications (
    id          {{AUTO_ID}},
    eid         TEXT NOT NULL,
    seq_number  BIGINT NOT NULL,
    iccid       TEXT NULL,
    event       TEXT NOT NULL,
    raw         {{BLOB}} NOT NULL,
    received_at BIGINT NOT NULL,
    CONSTRAINT notifications_eid_seq_number_uq UNIQUE (eid, seq_number)
);

CREATE INDEX notifications_iccid_idx ON notifications (iccid);
