-- Sessions per device (issue 3): a name the user gives the device, and the absolute
-- limit of the session. expires_at becomes the sliding limit, min(last renewal + idle
-- timeout, absolute_expires_at); rows from before this migration keep their expires_at
-- as both.

ALTER TABLE sessions ADD COLUMN name TEXT;
ALTER TABLE sessions ADD COLUMN absolute_expires_at BIGINT;
UPDATE sessions SET absolute_expires_at = expires_at;
