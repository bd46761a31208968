-- The SQLite migrations 0005 to 0007 in one step: the risk engine's
-- per-user habits, what attestation verified of a device's key, and the
-- network a sign-in started from.
CREATE TABLE risk_profiles (
    user_id    TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
ALTER TABLE devices ADD COLUMN attestation_format TEXT;
ALTER TABLE devices ADD COLUMN attestation_level TEXT;
ALTER TABLE devices ADD COLUMN attestation_verified_at BIGINT;
ALTER TABLE logins ADD COLUMN network TEXT;
