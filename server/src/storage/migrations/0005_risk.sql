-- Per-user sign-in habits for the risk engine (`risk::habits`): one JSON
-- document a user, bounded in size by the engine, updated in a transaction.
CREATE TABLE risk_profiles (
    user_id    TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
