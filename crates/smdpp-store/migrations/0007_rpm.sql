-- smdpp-store schema, version 7: SGP.22 v3 Remote Profile Management orders (issue #10).
-- Same placeholders as 0001 ({{BLOB}}).
--
-- One row per RPM package an operator ordered (ES2+ RpmOrder, `smdpp orders rpm`,
-- deactivation, metadata updates). Life: pending -> delivered (handed to the LPA in an
-- authenticateClientOkRpm; `transaction_id` and the eUICC's public key recorded so that the
-- signed result can be verified in a later connection) -> executed (every command succeeded)
-- or failed (a command failed, or the package was refused); pending/delivered -> cancelled.
-- A delivered package whose session ended without a result (postponed, timed out) goes back
-- to pending.
CREATE TABLE rpm_orders (
    id              TEXT NOT NULL,
    operator_id     TEXT NOT NULL,
    iccid           TEXT NOT NULL REFERENCES profiles (iccid),
    eid             TEXT NOT NULL,
    package         {{BLOB}} NOT NULL,
    commands        TEXT NOT NULL,
    origin          TEXT NOT NULL,
    state           TEXT NOT NULL,
    transaction_id  TEXT NULL,
    euicc_curve     TEXT NULL,
    euicc_key       {{BLOB}} NULL,
    result          {{BLOB}} NULL,
    result_summary  TEXT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT rpm_orders_pk PRIMARY KEY (id)
);

CREATE INDEX rpm_orders_eid_idx ON rpm_orders (eid, state, created_at);
CREATE INDEX rpm_orders_iccid_idx ON rpm_orders (iccid, created_at);
CREATE INDEX rpm_orders_tid_idx ON rpm_orders (transaction_id);
