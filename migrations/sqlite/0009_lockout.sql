-- Brute-force protection (issue 4). Failure counters live in the database so that every
-- instance sees the same counts. Keys: `acct:<normalised identifier>` (also for
-- identifiers without an account, so unknown and existing accounts behave alike),
-- `ip:<address group>` and `dev:<device hash>` (the known-device budget). Times are Unix
-- seconds; locked_until 0 = not locked, -1 = locked until unlocked.
CREATE TABLE sign_in_counters (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL DEFAULT 0,
    window_start BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0
);

-- Devices a user signed in from: the SHA-256 of the random device cookie, never the
-- cookie itself.
CREATE TABLE known_devices (
    device_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    user_agent TEXT
);
CREATE INDEX known_devices_user ON known_devices (user_id);
