-- The mail outbox: a request only inserts a row; the worker (`mail::spawn_worker`)
-- claims due rows with a conditional UPDATE, sends them and records the outcome.
-- status: pending | sending | sent | failed. Times are Unix seconds (BIGINT).
-- claim_token identifies the worker that claimed a row; last_error never holds secrets.

CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    html             TEXT NOT NULL,
    text             TEXT NOT NULL,
    locale           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claim_token      TEXT,
    claimed_at       BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
