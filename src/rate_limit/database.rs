//! Counters in the `rate_limit_counters` table (`rate_limit.storage = "database"`), so
//! that every instance on the same database sees one count. One statement per hit: an
//! upsert that rolls the window and increments atomically (`INSERT ... ON CONFLICT DO
//! UPDATE ... RETURNING`, which SQLite and PostgreSQL both support).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::Row;

use super::{Counts, window_start};
use crate::store::Db;

/// Seconds between two deletions of expired rows (per instance).
const CLEANUP_EVERY: i64 = 300;

pub struct Database {
    db: Db,
    last_cleanup: Arc<AtomicI64>,
}

// A row whose window is the current one counts on; one from the window before becomes
// `prev_count`; anything older starts over. A row from a *later* window (an instance
// whose clock runs ahead wrote it) is treated as current, so skewed clocks cannot
// reset each other's counts. In both databases the right-hand sides of SET read the
// row as it was before the update.
const HIT: &str = "INSERT INTO rate_limit_counters (key, window_start, count, prev_count, expires_at) \
     VALUES ($1, $2, 1, 0, $4) \
     ON CONFLICT (key) DO UPDATE SET \
       prev_count = CASE \
         WHEN rate_limit_counters.window_start >= $2 THEN rate_limit_counters.prev_count \
         WHEN rate_limit_counters.window_start = $2 - $3 THEN rate_limit_counters.count \
         ELSE 0 END, \
       count = CASE \
         WHEN rate_limit_counters.window_start >= $2 THEN rate_limit_counters.count + 1 \
         ELSE 1 END, \
       window_start = CASE \
         WHEN rate_limit_counters.window_start >= $2 THEN rate_limit_counters.window_start \
         ELSE $2 END, \
       expires_at = $4 \
     RETURNING window_start, count, prev_count";

impl Database {
    pub fn new(db: Db) -> Database {
        Database {
            db,
            last_cleanup: Arc::default(),
        }
    }

    /// Counts one request against `key` and returns the counts after it.
    pub async fn hit(&self, key: &str, window: u64, now: i64) -> Result<Counts, sqlx::Error> {
        self.maybe_cleanup(now);
        let ws = window_start(now, window);
        let w = window as i64;
        let row = sqlx::query(HIT)
            .bind(key)
            .bind(ws)
            .bind(w)
            .bind(ws + 2 * w)
            .fetch_one(&self.db.pool)
            .await?;
        let get = |i: usize| row.try_get::<i64, _>(i);
        Ok(Counts {
            window_start: get(0)?,
            count: get(1)?.max(0) as u64,
            prev: get(2)?.max(0) as u64,
        })
    }

    /// Deletes expired rows now and then, off the request path.
    fn maybe_cleanup(&self, now: i64) {
        let last = self.last_cleanup.load(Ordering::Relaxed);
        if now - last < CLEANUP_EVERY
            || self
                .last_cleanup
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pool = self.db.pool.clone();
        tokio::spawn(async move {
            let r = sqlx::query("DELETE FROM rate_limit_counters WHERE expires_at <= $1")
                .bind(now)
                .execute(&pool)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "rate limit: deleting expired counters failed");
            }
        });
    }
}
