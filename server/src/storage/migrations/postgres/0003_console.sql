-- The SQLite migration 0008: the support console (docs/CONSOLE.md):
-- operators, their browser sessions, the operator behind an audit line.
CREATE TABLE operators (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('support', 'admin')),
    password_hash  TEXT NOT NULL,
    totp_sealed    BYTEA,
    totp_enrolled  BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL,
    enrolment_code_hash  BYTEA,
    enrolment_expires_at BIGINT
);

CREATE TABLE console_sessions (
    session_hash BYTEA PRIMARY KEY,
    operator     TEXT NOT NULL REFERENCES operators (name),
    stage        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator, created_at);

ALTER TABLE audit ADD COLUMN actor TEXT;
CREATE INDEX audit_by_actor ON audit (actor, id);
CREATE INDEX audit_by_event ON audit (event, id);
CREATE INDEX cards_by_last4 ON cards (last4);
-- The console's user-ID prefix search is a byte-order range (COLLATE "C"):
-- the primary key's index follows the database's collation, which may be
-- a locale's. (SQLite compares bytes already: its primary key serves.)
CREATE INDEX users_by_user_id_c ON users (user_id COLLATE "C");
