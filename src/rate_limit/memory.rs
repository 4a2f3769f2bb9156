//! Counters in this process (`rate_limit.storage = "memory"`): right for one instance,
//! wrong for several (each would grant the whole budget).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Counts, roll, window_start};

/// Seconds between two sweeps of expired counters.
const SWEEP_EVERY: i64 = 60;

/// Keys held before a sweep runs early (a flood of new addresses or paths).
const SWEEP_ABOVE: usize = 1_000_000;

#[derive(Default)]
pub struct Memory {
    counters: Mutex<HashMap<String, Entry>>,
    last_sweep: AtomicI64,
}

struct Entry {
    counts: Counts,
    expires_at: i64,
}

impl Memory {
    /// Counts one request against `key` and returns the counts after it.
    pub fn hit(&self, key: &str, window: u64, now: i64) -> Counts {
        let ws = window_start(now, window);
        // A panic elsewhere while holding the lock leaves counters that are still
        // usable numbers; keep limiting rather than fail every request.
        let mut map = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Early sweeps too at most once a second, so a full map costs no scan per hit.
        let since = now - self.last_sweep.load(Ordering::Relaxed);
        if since >= SWEEP_EVERY || (map.len() >= SWEEP_ABOVE && since >= 1) {
            self.last_sweep.store(now, Ordering::Relaxed);
            map.retain(|_, e| e.expires_at > now);
        }
        let entry = map.entry(key.to_string()).or_insert(Entry {
            counts: Counts {
                window_start: ws,
                count: 0,
                prev: 0,
            },
            expires_at: 0,
        });
        let mut c = roll(entry.counts, ws, window);
        c.count += 1;
        entry.counts = c;
        // Kept through the next window, whose estimate still weighs this one.
        entry.expires_at = c.window_start + 2 * window as i64;
        c
    }

    /// How many keys are held (for tests of the sweep).
    pub fn len(&self) -> usize {
        self.counters.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_roll_into_the_previous_window_and_expire() {
        let m = Memory::default();
        assert_eq!(m.hit("a", 10, 100).count, 1);
        assert_eq!(m.hit("a", 10, 105).count, 2);
        let next = m.hit("a", 10, 112);
        assert_eq!((next.window_start, next.count, next.prev), (110, 1, 2));
        let later = m.hit("a", 10, 135);
        assert_eq!((later.count, later.prev), (1, 0));
        m.hit("b", 10, 135);
        assert_eq!(m.len(), 2);
        // A sweep a minute later drops both (they expired after two windows).
        m.hit("c", 10, 200);
        assert_eq!(m.len(), 1);
    }
}
