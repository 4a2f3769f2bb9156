-- Account deletion (issue 3): a deletion scheduled for the end of a grace period, and
-- the record of every deletion done. The record holds no personal data: only the
-- user's `sub` (a UUID never reused), when the deletion was asked for and when it was
-- done, so the audit trail can name the account without keeping anything about it.
-- notice_mail_id is the outbox row of the "account deleted" notice, removed (with the
-- column cleared) once that message has left, so no address outlives the account.

ALTER TABLE users ADD COLUMN deletion_requested_at BIGINT;
ALTER TABLE users ADD COLUMN deletion_due_at BIGINT;
CREATE INDEX users_deletion_due ON users(deletion_due_at);

CREATE TABLE account_deletions (
    sub             TEXT PRIMARY KEY,
    requested_at    BIGINT NOT NULL,
    deleted_at      BIGINT NOT NULL,
    notice_mail_id  TEXT
);
