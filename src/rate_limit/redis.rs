//! Counters in Redis (`rate_limit.storage = "redis"`), shared by every instance that
//! uses the same server and `redis_prefix`. One key per rule, subject and fixed window
//! (`{prefix}{rule:hash}:{window start}`); a Lua script increments the current window's
//! key, sets its expiry on the first hit, and reads the previous window's count, in one
//! atomic round trip. The braces are a Redis Cluster hash tag, so both keys of one
//! script live in the same slot.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Counts, window_start};

/// How long one Redis call may take before the request goes on without it
/// (`fail_open`) or is refused.
const TIMEOUT: Duration = Duration::from_millis(1000);

const HIT: &str = r"
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local p = tonumber(redis.call('GET', KEYS[2]) or '0')
return {c, p}
";

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {} ms", TIMEOUT.as_millis())]
    Timeout,
}

pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl Redis {
    /// A client that connects on first use (and reconnects after failures), so that a
    /// server whose Redis is down still starts and, with `fail_open`, serves.
    pub fn new(url: &str, prefix: &str) -> Result<Redis, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        Ok(Redis {
            conn: ConnectionManager::new_lazy_with_config(client, cfg)?,
            prefix: prefix.to_string(),
            script: redis::Script::new(HIT),
        })
    }

    /// Counts one request against `key` and returns the counts after it.
    pub async fn hit(&self, key: &str, window: u64, now: i64) -> Result<Counts, RedisError> {
        let ws = window_start(now, window);
        let current = format!("{}{{{key}}}:{ws}", self.prefix);
        let previous = format!("{}{{{key}}}:{}", self.prefix, ws - window as i64);
        let mut conn = self.conn.clone();
        // The key must outlive the next window, whose estimate still weighs it.
        let ttl = 2 * window + 1;
        let call = async {
            self.script
                .key(&current)
                .key(&previous)
                .arg(ttl)
                .invoke_async::<(i64, i64)>(&mut conn)
                .await
        };
        let (count, prev) = tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| RedisError::Timeout)??;
        Ok(Counts {
            window_start: ws,
            count: count.max(0) as u64,
            prev: prev.max(0) as u64,
        })
    }
}
