-- Several accounts on one phone, and sessions that survive a restart.

-- Every account that signed in on this phone (the account picker). The name
-- and e-mail are those `profile()` last returned: personal data, no secret.
CREATE TABLE accounts (
    user_id         TEXT PRIMARY KEY,
    name            TEXT,
    email           TEXT,
    last_sign_in_at INTEGER
);

-- One sealed session per account, only when the app gave a SessionSealer.
-- `sealed` is the sealer's output: the refresh token never appears in clear.
-- `expires_at` (the session's absolute end, as the server said) is kept in
-- clear so a dead session is dropped without opening it.
CREATE TABLE sealed_sessions (
    user_id    TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    expires_at INTEGER,
    sealed_at  INTEGER NOT NULL
);

-- Small settings: `active_user`, the account calls act for.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
