-- The network (risk::network_of) a sign-in started from: completing it with
-- an OTP teaches the risk engine that network only, and the device method
-- of a password sign-in must be used from it.
ALTER TABLE logins ADD COLUMN network TEXT;
