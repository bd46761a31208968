-- devicetrust schema v4: cards and online enrolment, recovery, account changes.

-- A login is any step-by-step proof in progress: a sign-in (enrolment,
-- second factor), a password recovery, or a contact change waiting for the
-- code sent to the new address. SQLite cannot alter a CHECK constraint, so
-- the table is rebuilt (the documented 12-step way; foreign keys are off on
-- the migration connection, and `otps` keeps referring to `logins` by name).
CREATE TABLE logins_v4 (
    login_id       TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    device_id      TEXT,
    stage          TEXT NOT NULL
                   CHECK (stage IN ('enrolment', 'second_factor', 'recovery', 'contact_change')),
    amr            TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    otp_sends      INTEGER NOT NULL DEFAULT 0,
    last_send_at   INTEGER,
    created_at     INTEGER NOT NULL,
    pending_mobile INTEGER NOT NULL DEFAULT 0,
    -- contact_change: the new address the code went to.
    change_email   TEXT,
    change_mobile  TEXT
);
INSERT INTO logins_v4 (login_id, user_id, device_id, stage, amr, expires_at, otp_sends,
                       last_send_at, created_at, pending_mobile)
    SELECT login_id, user_id, device_id, stage, amr, expires_at, otp_sends,
           last_send_at, created_at, pending_mobile FROM logins;
DROP TABLE logins;
ALTER TABLE logins_v4 RENAME TO logins;
CREATE INDEX logins_by_user ON logins (user_id, stage);

-- Cards the bank feeds in. Neither the number nor the card ID is stored in
-- clear: keyed hashes under a key derived from the server key, and the last
-- four digits for display.
CREATE TABLE cards (
    card_ref       TEXT PRIMARY KEY,
    number_hash    BLOB NOT NULL UNIQUE,     -- HMAC(card key, number)
    card_id_hash   BLOB NOT NULL,            -- HMAC(card key, number ‖ ':' ‖ card ID)
    last4          TEXT NOT NULL,
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    mobile         TEXT,
    primary_market TEXT NOT NULL,
    activated_at   INTEGER,
    created_at     INTEGER NOT NULL,
    user_id        TEXT REFERENCES users (user_id),
    linked_at      INTEGER
);
CREATE INDEX cards_by_user ON cards (user_id);

-- Searching users by e-mail (user-ID recovery).
CREATE INDEX users_by_email ON users (email COLLATE NOCASE);
