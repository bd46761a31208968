-- devicetrust schema v1. Times are Unix seconds; secrets are stored hashed.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE users (
    user_id            TEXT PRIMARY KEY,          -- lower-cased
    name               TEXT NOT NULL,
    email              TEXT NOT NULL,
    mobile             TEXT,                      -- E.164
    primary_market     TEXT NOT NULL,             -- ISO 3166-1 alpha-2
    password_hash      TEXT NOT NULL,             -- argon2id PHC
    security_code_hash TEXT,                      -- argon2id PHC, set at enrolment
    enrolled_at        INTEGER,
    created_at         INTEGER NOT NULL
);

CREATE TABLE markets (
    market        TEXT PRIMARY KEY,
    second_factor TEXT NOT NULL CHECK (second_factor IN ('required', 'off'))
);

-- Failed password/OTP attempts per lower-cased user-id string, existing or not.
CREATE TABLE attempts (
    user_key     TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    locked_until INTEGER
);

CREATE TABLE logins (
    login_id     TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    device_id    TEXT,
    stage        TEXT NOT NULL CHECK (stage IN ('enrolment', 'second_factor')),
    amr          TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    otp_sends    INTEGER NOT NULL DEFAULT 0,
    last_send_at INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE TABLE otps (
    login_id   TEXT PRIMARY KEY REFERENCES logins (login_id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    mac        BLOB NOT NULL,                    -- HMAC-SHA256(server key, login_id || code)
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL
);

CREATE TABLE devices (
    device_id         TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (user_id),
    name              TEXT NOT NULL,
    platform          TEXT NOT NULL,
    key_storage       TEXT NOT NULL,
    user_verification TEXT NOT NULL,
    public_key        BLOB NOT NULL,              -- uncompressed SEC1 P-256 point
    created_at        INTEGER NOT NULL,
    last_used_at      INTEGER,
    trusted_until     INTEGER NOT NULL,
    removed_at        INTEGER
);
CREATE INDEX devices_by_user ON devices (user_id, removed_at);

CREATE TABLE challenges (
    challenge_id TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    challenge    TEXT NOT NULL,
    login_id     TEXT,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX challenges_by_device ON challenges (device_id);

CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    challenge       TEXT NOT NULL,
    expires_at      INTEGER NOT NULL
);

-- A session is a refresh-token family.
CREATE TABLE sessions (
    session_id     TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    device_id      TEXT,
    amr            TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_by_device ON sessions (device_id);

CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY,                  -- SHA-256 of the token
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    expires_at INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,                  -- SHA-256 of the token
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    device_id TEXT,
    ip        TEXT,
    reason    TEXT
);
CREATE INDEX audit_by_user ON audit (user_id, id);
