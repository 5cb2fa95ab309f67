-- smdpp-store schema, version 4: the durable outbox of outbound calls (ES2+.HandleDownloadProgressInfo
-- to operators, ES12.RegisterEvent/DeleteEvent to SM-DSs). Same placeholders as 0001.
--
-- A row is inserted in the same transaction as the profile transition that causes it, and
-- deleted never: it moves pending -> delivered, or pending -> failed after the last attempt.
-- `id` is the stable identifier sent as functionCallIdentifier (at-least-once delivery: a
-- retry repeats the same id). `seq` orders rows by insertion. A worker leases due rows
-- (`lease_until`, `lease_token`) before sending them, so two workers never send one row at
-- the same time; a crashed worker's lease simply runs out.
CREATE TABLE outbox (
    seq             {{AUTO_ID}},
    id              TEXT NOT NULL,
    operator_id     TEXT NULL,
    kind            TEXT NOT NULL,
    iccid           TEXT NULL,
    target          TEXT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NULL,
    lease_token     TEXT NULL,
    finished_at     BIGINT NULL,
    CONSTRAINT outbox_id_uq UNIQUE (id)
);

CREATE INDEX outbox_due_idx ON outbox (state, next_attempt_at);
