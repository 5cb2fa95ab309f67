-- smdpp-store schema, version 9: users and sessions of the operators' web console
-- (issue #14). Same placeholders as 0001 ({{BLOB}}, {{AUTO_ID}}).

-- A console user. `password_hash` is an argon2id PHC string (never the password).
-- `role` is `admin` (every operator, every action), `operator` (the orders of one operator)
-- or `viewer` (read only). `operator_id` scopes the user to one operator; NULL means all
-- operators and is only allowed for `admin` and `viewer`.
CREATE TABLE console_users (
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    operator_id   TEXT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT console_users_pk PRIMARY KEY (username)
);

-- A logged-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of the database does not let anyone log in. `csrf` is the session's anti-CSRF token,
-- echoed by every form. A session ends at `expires_at` or at log-out (row deleted).
CREATE TABLE console_sessions (
    token_sha256 TEXT NOT NULL,
    username     TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    CONSTRAINT console_sessions_pk PRIMARY KEY (token_sha256)
);

CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
CREATE INDEX profile_events_at_idx ON profile_events (at);
