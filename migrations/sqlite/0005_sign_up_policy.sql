-- Registration policy (issue 3): custom user fields declared in config (a JSON object
-- of validated values), the accepted terms-of-service version and time, and invite
-- codes for invite-only sign-up. Only the SHA-256 of an invite code is stored; a code
-- is spent by a conditional UPDATE of used_at in the transaction that creates the user.

ALTER TABLE users ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN terms_version TEXT;
ALTER TABLE users ADD COLUMN terms_accepted_at BIGINT;

CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    email       TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    used_by     TEXT REFERENCES users(id) ON DELETE SET NULL
);
