-- devicetrust schema v2: hardening after the attack review.

-- When the count last moved: a count left at the limit by an attempt that
-- never finished (a crash) still has an end, and idle counts are forgotten.
ALTER TABLE attempts ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX attempts_by_age ON attempts (updated_at);

-- A mobile given at enrolment proves only the password: it is not an OTP
-- channel until the same sign-in completes with a code sent to the e-mail on
-- file. Mobiles the bank provisioned are verified.
ALTER TABLE users ADD COLUMN mobile_verified INTEGER NOT NULL DEFAULT 1;
ALTER TABLE logins ADD COLUMN pending_mobile INTEGER NOT NULL DEFAULT 0;

-- Every OTP handed to a carrier, for the per-user and per-destination caps
-- across logins (SMS pumping). Rows older than the window are purged.
CREATE TABLE otp_sends (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    destination BLOB NOT NULL,                   -- HMAC of the address, not the address
    at          INTEGER NOT NULL
);
CREATE INDEX otp_sends_by_user ON otp_sends (user_id, at);
CREATE INDEX otp_sends_by_destination ON otp_sends (destination, at);

-- Sessions end at an absolute time, whatever their refreshes.
ALTER TABLE sessions ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET expires_at = created_at + 43200;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Retention of the audit trail.
CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX logins_by_user ON logins (user_id, stage);
