-- devicetrust schema v8: the support console (docs/CONSOLE.md): operators,
-- their browser sessions, and the operator behind an audit line.
CREATE TABLE operators (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('support', 'admin')),
    password_hash  TEXT NOT NULL,             -- argon2id
    totp_sealed    BLOB,                      -- AES-256-GCM under a server-key-derived key
    totp_enrolled  INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    disabled_at    INTEGER,
    created_at     INTEGER NOT NULL,
    -- The one-time enrolment code an admin hands over with the password
    -- (`operator add`, "reset second factor"): SHA-256 of 120 random bits.
    enrolment_code_hash  BLOB,
    enrolment_expires_at INTEGER
);

CREATE TABLE console_sessions (
    session_hash BLOB PRIMARY KEY,            -- SHA-256 of the cookie's value
    operator     TEXT NOT NULL REFERENCES operators (name),
    stage        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator, created_at);

ALTER TABLE audit ADD COLUMN actor TEXT;
CREATE INDEX audit_by_actor ON audit (actor, id);
CREATE INDEX audit_by_event ON audit (event, id);
CREATE INDEX cards_by_last4 ON cards (last4);
