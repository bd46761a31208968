-- Local state of the devicetrust SDK. No secret is stored here: keys live in
-- the platform key store, sessions only in memory.

-- This phone's trusted device, per user who enabled biometric sign-in here.
CREATE TABLE devices (
    user_id           TEXT PRIMARY KEY,
    device_id         TEXT NOT NULL,
    key_alias         TEXT NOT NULL,
    public_key        BLOB NOT NULL,
    name              TEXT NOT NULL,
    key_storage       TEXT NOT NULL,
    user_verification TEXT NOT NULL,
    trusted_until     INTEGER NOT NULL,
    registered_at     INTEGER NOT NULL
);

-- Devices to delete on the server at the next sign-in (their keys are gone).
CREATE TABLE pending_removals (
    device_id TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL,
    queued_at INTEGER NOT NULL
);
