-- devicetrust schema v3: after the outside review of the hardening.

-- The device whose session registered this one. A key thief who signs in
-- with a stolen phone's key and registers a device of their own must lose
-- it when the owner removes the stolen phone: removal takes a device's
-- offspring with it.
ALTER TABLE devices ADD COLUMN registered_by TEXT;
CREATE INDEX devices_by_parent ON devices (registered_by);
