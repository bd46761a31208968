-- Issue 14 (an outside review): a session's tokens had no index by
-- session, so deleting one session (the purge, every minute) scanned both
-- token tables for the foreign-key check, and the purge job's deletes by
-- expiry scanned them whole: ~47 ms per session at 500,000 tokens, with
-- the writer held. The PostgreSQL schema has had these four from the start.
CREATE INDEX access_tokens_by_session ON access_tokens (session_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
-- The purge's other deletes by time, as in the PostgreSQL schema.
CREATE INDEX IF NOT EXISTS challenges_by_expiry ON challenges (expires_at);
CREATE INDEX IF NOT EXISTS logins_by_expiry ON logins (expires_at);
CREATE INDEX IF NOT EXISTS otp_sends_by_time ON otp_sends (at);
