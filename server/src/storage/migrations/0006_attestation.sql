-- devicetrust schema: key attestation (issue 11). What the server verified
-- of a device's key at registration; all NULL for a device registered
-- without an attestation (or before this version).
-- Numbered 0006: 0005 belongs to the risk engine's change.
ALTER TABLE devices ADD COLUMN attestation_format TEXT;
ALTER TABLE devices ADD COLUMN attestation_level TEXT;
ALTER TABLE devices ADD COLUMN attestation_verified_at INTEGER;
