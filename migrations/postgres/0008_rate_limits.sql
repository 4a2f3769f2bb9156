-- Rate-limit counters shared by every instance (rate_limit.storage = "database").
-- `key` is the rule's name and a SHA-256 of what it counts by (never a raw address or
-- email); `count` is the current fixed window's, `prev_count` the one before, for the
-- sliding-window estimate; `window_start` is Unix seconds.
CREATE TABLE rate_limit_counters (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    prev_count BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_limit_counters_expires_at ON rate_limit_counters (expires_at);
