//! Retention: events older than `audit.retention_days` are pruned behind an anchor
//! (`store::audit::prune_before`), so the rest of the chain stays verifiable.

use std::sync::Arc;
use std::time::Duration;

use crate::app::State;
use crate::store::audit as store;

/// Prunes the events older than `days` days; returns how many went. 0 days prunes
/// nothing (keep forever).
pub async fn prune(state: &State, days: u32) -> Result<u64, sqlx::Error> {
    if days == 0 {
        return Ok(0);
    }
    let now = state.clock.now();
    store::prune_before(&state.db, now - i64::from(days) * 86_400, now).await
}

/// A refusal of the DELETE by the database's permissions (PostgreSQL 42501), as with
/// the restricted app role the README sets up.
fn is_permission_denied(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("42501"))
}

/// Starts the periodic pruner (`audit.prune_interval`), if `audit.prune_in_server`.
/// Like the account purger it holds the state weakly and stops when the state is gone.
pub fn spawn_pruner(state: State) {
    if !state.config.audit.prune_in_server || state.config.audit.retention_days == 0 {
        return;
    }
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else {
                return;
            };
            match prune(&state, state.config.audit.retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "audit events past retention pruned"),
                Err(e) if is_permission_denied(&e) => tracing::warn!(
                    error = %e,
                    "audit prune refused by the database: run `klard-auth audit prune` as the \
                     owner role, or set audit.prune_in_server = false"
                ),
                Err(e) => tracing::warn!(error = %e, "audit prune failed; retrying later"),
            }
            let wait = state.config.audit.prune_interval;
            drop(state);
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    });
}
