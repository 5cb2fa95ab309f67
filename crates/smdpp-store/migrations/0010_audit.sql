-- smdpp-store schema, version 10: the audit trail (issue #13). Same placeholders as 0001
-- ({{BLOB}}, {{AUTO_ID}}); this file needs none.

-- An append-only, hash-chained log of every operator and CLI action and every profile state
-- change. `seq` is the record's position in the chain (1, 2, 3, ... without gaps), `at` its
-- time (ms since the Unix epoch), `actor` who did it (`es2:<operator>`, `cli:<unix user>`,
-- `console:<user>`, `es9plus` (the device), `system`, ...), `action` what (`profile.state`,
-- `order.confirm`, `operator.add`, ...), `subject` on what (an ICCID, an operator id, ...;
-- empty when none), `reason` why (empty when none) and `details` a JSON object without any
-- secret. `prev_hash` is the `hash` of record `seq - 1` (64 zeros for record 1) and `hash`
-- the SHA-256 (lower-case hex) of the record's canonical encoding (see the store's `audit`
-- module and docs/OPERATIONS.md). No code path updates or deletes a row.
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    CONSTRAINT audit_log_pk PRIMARY KEY (seq)
);

CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The head of the chain: the last record's seq and hash. One row (`id = 1`). A writer takes
-- the next seq with `UPDATE audit_head SET seq = seq + 1 ... RETURNING`, which row-locks the
-- head until its transaction ends (PostgreSQL; SQLite has a single writer), so the chain
-- stays linear with any number of writers and nodes.
CREATE TABLE audit_head (
    id   BIGINT NOT NULL,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL,
    CONSTRAINT audit_head_pk PRIMARY KEY (id)
);

INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
