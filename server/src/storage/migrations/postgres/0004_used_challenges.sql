-- The SQLite migration 0009: device sign-in challenges are authenticated
-- tokens, issued without a write; a redeemed token's hash is kept here
-- until it expires, so it cannot be redeemed twice (the purge job deletes
-- expired rows).
CREATE TABLE used_challenges (
    token_hash BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_challenges_by_expiry ON used_challenges (expires_at);
