//! Failed-sign-in counters and known devices (migration 0009, see `lockout`). Every
//! change is one statement (an upsert with `RETURNING`, a conditional UPDATE), so
//! concurrent attempts on several instances never lose a count.

use sqlx::{AnyConnection, Row};

use super::Db;

/// A counter as stored. `locked_until`: 0 = not locked, -1 = until unlocked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: i64,
}

/// Locked forever (until someone unlocks it).
pub const UNTIL_UNLOCKED: i64 = -1;

impl Counter {
    pub fn locked_at(&self, now: i64) -> bool {
        self.locked_until == UNTIL_UNLOCKED || self.locked_until > now
    }

    /// The failures that still count at `now`: older windows are forgotten, unless
    /// the key is locked (a lock keeps its count until it ends).
    pub fn live_failures(&self, now: i64, window: i64) -> i64 {
        if self.window_start + window <= now && !self.locked_at(now) {
            0
        } else {
            self.failures
        }
    }
}

fn counter(r: &sqlx::any::AnyRow) -> Result<Counter, sqlx::Error> {
    Ok(Counter {
        failures: r.try_get("failures")?,
        window_start: r.try_get("window_start")?,
        locked_until: r.try_get("locked_until")?,
    })
}

pub async fn get(db: &Db, key: &str) -> Result<Option<Counter>, sqlx::Error> {
    let r = sqlx::query(
        "SELECT failures, window_start, locked_until FROM sign_in_counters WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(&db.pool)
    .await?;
    r.as_ref().map(counter).transpose()
}

/// Counts one failure for `key`: a new window when the last one is over (and the key
/// is not locked), else one more. Returns the counter after the change.
pub async fn add_failure(
    conn: &mut AnyConnection,
    key: &str,
    now: i64,
    window: i64,
) -> Result<Counter, sqlx::Error> {
    let fresh = "(sign_in_counters.window_start + $3 <= $2 AND sign_in_counters.locked_until <> -1 AND sign_in_counters.locked_until <= $2)";
    let sql = format!(
        "INSERT INTO sign_in_counters (key, failures, window_start, last_failure_at, locked_until)
         VALUES ($1, 1, $2, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN {fresh} THEN 1 ELSE sign_in_counters.failures + 1 END,
           window_start = CASE WHEN {fresh} THEN $2 ELSE sign_in_counters.window_start END,
           last_failure_at = $2
         RETURNING failures, window_start, locked_until"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .bind(now)
        .bind(window)
        .fetch_one(&mut *conn)
        .await?;
    counter(&r)
}

/// Locks `key` until `until` unless it is locked already; true when this call locked it
/// (so the lock is announced once).
pub async fn lock(
    conn: &mut AnyConnection,
    key: &str,
    until: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE sign_in_counters SET locked_until = $2
         WHERE key = $1 AND locked_until <> -1 AND locked_until <= $3",
    )
    .bind(key)
    .bind(until)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Forgets `key` (a successful sign-in, an unlock); true when there was a lock to end.
pub async fn reset(conn: &mut AnyConnection, key: &str, now: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM sign_in_counters WHERE key = $1 RETURNING locked_until")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    let until: Option<i64> = r.map(|r| r.try_get("locked_until")).transpose()?;
    Ok(until.is_some_and(|u| u == UNTIL_UNLOCKED || u > now))
}

/// A known device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    pub device_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

pub async fn device(db: &Db, device_hash: &str) -> Result<Option<KnownDevice>, sqlx::Error> {
    let r = sqlx::query(
        "SELECT device_hash, user_id, created_at, last_seen_at FROM known_devices WHERE device_hash = $1",
    )
    .bind(device_hash)
    .fetch_optional(&db.pool)
    .await?;
    r.map(|r| {
        Ok(KnownDevice {
            device_hash: r.try_get("device_hash")?,
            user_id: r.try_get("user_id")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
        })
    })
    .transpose()
}

pub async fn device_count(db: &Db, user_id: &str) -> Result<i64, sqlx::Error> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM known_devices WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&db.pool)
        .await?;
    r.try_get("n")
}

/// Records `device_hash` as the user's (a new device) or marks it seen.
pub async fn remember_device(
    conn: &mut AnyConnection,
    device_hash: &str,
    user_id: &str,
    user_agent: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO known_devices (device_hash, user_id, created_at, last_seen_at, user_agent)
         VALUES ($1, $2, $3, $3, $4)
         ON CONFLICT (device_hash) DO UPDATE SET last_seen_at = $3, user_agent = $4
         WHERE known_devices.user_id = $2",
    )
    .bind(device_hash)
    .bind(user_id)
    .bind(now)
    .bind(user_agent)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
