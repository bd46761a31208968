-- devicetrust on PostgreSQL, schema v1: the SQLite schema after its
-- migration 0004, in PostgreSQL's types. Times are Unix seconds (BIGINT);
-- secrets are stored hashed; flags are BOOLEAN; hashes and keys BYTEA.
-- Append new migrations (0002_…); never edit one that has shipped.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE users (
    user_id            TEXT PRIMARY KEY,          -- lower-cased
    name               TEXT NOT NULL,
    email              TEXT NOT NULL,
    mobile             TEXT,                      -- E.164
    primary_market     TEXT NOT NULL,             -- ISO 3166-1 alpha-2
    password_hash      TEXT NOT NULL,             -- argon2id PHC
    security_code_hash TEXT,
    enrolled_at        BIGINT,
    created_at         BIGINT NOT NULL,
    mobile_verified    BOOLEAN NOT NULL DEFAULT TRUE
);
-- User-ID recovery searches by e-mail, case-insensitively.
CREATE INDEX users_by_email ON users (lower(email));

CREATE TABLE markets (
    market        TEXT PRIMARY KEY,
    second_factor TEXT NOT NULL CHECK (second_factor IN ('required', 'off'))
);

-- Failed password/OTP attempts per key (lower-cased user id, recovery keys).
CREATE TABLE attempts (
    user_key     TEXT PRIMARY KEY,
    count        BIGINT NOT NULL,
    locked_until BIGINT,
    updated_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX attempts_by_age ON attempts (updated_at);

CREATE TABLE logins (
    login_id       TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    device_id      TEXT,
    stage          TEXT NOT NULL
                   CHECK (stage IN ('enrolment', 'second_factor', 'recovery', 'contact_change')),
    amr            TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    otp_sends      BIGINT NOT NULL DEFAULT 0,
    last_send_at   BIGINT,
    created_at     BIGINT NOT NULL,
    pending_mobile BOOLEAN NOT NULL DEFAULT FALSE,
    change_email   TEXT,
    change_mobile  TEXT
);
CREATE INDEX logins_by_user ON logins (user_id, stage);
CREATE INDEX logins_by_expiry ON logins (expires_at);

CREATE TABLE otps (
    login_id   TEXT PRIMARY KEY REFERENCES logins (login_id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    mac        BYTEA NOT NULL,                   -- HMAC-SHA256(OTP key, login_id || code)
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);

-- Every OTP handed to a carrier, for the hourly caps across logins (and
-- across instances: the caps live here, not in a process).
CREATE TABLE otp_sends (
    id          BIGSERIAL PRIMARY KEY,
    user_id     TEXT NOT NULL,
    destination BYTEA NOT NULL,                  -- HMAC of the address
    at          BIGINT NOT NULL
);
CREATE INDEX otp_sends_by_user ON otp_sends (user_id, at);
CREATE INDEX otp_sends_by_destination ON otp_sends (destination, at);
CREATE INDEX otp_sends_by_time ON otp_sends (at);

CREATE TABLE devices (
    device_id         TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (user_id),
    name              TEXT NOT NULL,
    platform          TEXT NOT NULL,
    key_storage       TEXT NOT NULL,
    user_verification TEXT NOT NULL,
    public_key        BYTEA NOT NULL,             -- uncompressed SEC1 P-256 point
    created_at        BIGINT NOT NULL,
    last_used_at      BIGINT,
    trusted_until     BIGINT NOT NULL,
    removed_at        BIGINT,
    registered_by     TEXT
);
CREATE INDEX devices_by_user ON devices (user_id, removed_at);
CREATE INDEX devices_by_parent ON devices (registered_by);

CREATE TABLE challenges (
    challenge_id TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    challenge    TEXT NOT NULL,
    login_id     TEXT,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX challenges_by_device ON challenges (device_id);
CREATE INDEX challenges_by_expiry ON challenges (expires_at);

CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    challenge       TEXT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- A session is a refresh-token family.
CREATE TABLE sessions (
    session_id     TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    device_id      TEXT,
    amr            TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT,
    expires_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE access_tokens (
    token_hash BYTEA PRIMARY KEY,                 -- SHA-256 of the token
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    expires_at BIGINT NOT NULL
);
-- PostgreSQL does not index a foreign key's referencing side; the purge
-- deletes tokens by session.
CREATE INDEX access_tokens_by_session ON access_tokens (session_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,                 -- SHA-256 of the token
    session_id TEXT NOT NULL REFERENCES sessions (session_id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Cards the bank feeds in: number and card ID only as keyed hashes.
CREATE TABLE cards (
    card_ref       TEXT PRIMARY KEY,
    number_hash    BYTEA NOT NULL UNIQUE,
    card_id_hash   BYTEA NOT NULL,
    last4          TEXT NOT NULL,
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    mobile         TEXT,
    primary_market TEXT NOT NULL,
    activated_at   BIGINT,
    created_at     BIGINT NOT NULL,
    user_id        TEXT REFERENCES users (user_id),
    linked_at      BIGINT
);
CREATE INDEX cards_by_user ON cards (user_id);

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    device_id TEXT,
    ip        TEXT,
    reason    TEXT
);
CREATE INDEX audit_by_user ON audit (user_id, id);
CREATE INDEX audit_by_time ON audit (at);
