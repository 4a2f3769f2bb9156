-- The audit trail (issue 4): append-only, tamper-evident security events.
--
-- Each event carries `hash` = HMAC-SHA256(chain key, canonical encoding of the event
-- including `prev_hash`), so editing, removing or reordering a row breaks every later
-- link (audit/chain.rs). `seq` has no gaps: it is taken from `audit_head` inside the
-- writing transaction, so a rolled-back change leaves no number behind.
--
-- The application only ever INSERTs and SELECTs here; on PostgreSQL its role can be
-- denied UPDATE and DELETE on audit_events (README, "Audit trail").

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    client_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_type ON audit_events (event_type, seq);
CREATE INDEX audit_events_ip ON audit_events (ip, seq);
CREATE INDEX audit_events_at ON audit_events (at);

-- The chain's head: the last seq and hash. Updating this one row first in every
-- audit-writing transaction serialises appends, so two writers never chain onto the
-- same predecessor.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Retention: before events up to `seq` are pruned, the hash of event `seq` is recorded
-- here, and verification of the remaining chain starts from the newest anchor.
CREATE TABLE audit_anchors (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
