-- Single-use, expiring tokens sent by mail (email verification, password reset, email
-- change and its revert, account deletion). Only the SHA-256 of a token is stored; a
-- token is spent by a conditional UPDATE of used_at, so it works once even under races.
-- data is a JSON document owned by the purpose (e.g. the new address of a change).

CREATE TABLE verification_tokens (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX verification_tokens_user ON verification_tokens(user_id, purpose);
