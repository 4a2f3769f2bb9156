//! The hash chain over audit events.
//!
//! `hash = HMAC-SHA256(key, canonical(event))`, where the canonical form is the JSON
//! array of every stored field in a fixed order, `prev_hash` included. A plain SHA-256
//! chain could be recomputed end to end by anyone who can write the table; keying it with
//! a secret derived from the server secret (which is not in the database) means a
//! rewritten row cannot be re-chained without that secret.

use serde_json::json;

use crate::store::Db;
use crate::store::audit::{self as store, AuditRow};

/// The chain key, derived from the server secret for this purpose only.
pub fn key(secret: &str) -> Vec<u8> {
    crate::crypto::hmac_raw(secret.as_bytes(), &["klard-audit-chain-v1"])
}

/// A JSON array has one encoding per value (serde_json escapes deterministically), so
/// no two different events share a canonical form.
fn canonical(e: &AuditRow) -> String {
    json!([
        e.seq,
        e.at,
        e.event_type,
        e.outcome,
        e.actor,
        e.subject,
        e.client_id,
        e.ip,
        e.user_agent,
        e.request_id,
        e.data,
        e.prev_hash
    ])
    .to_string()
}

/// The hash event `e` must carry.
pub fn link_hash(key: &[u8], e: &AuditRow) -> String {
    hex(&crate::crypto::hmac_raw(key, &[&canonical(e)]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a link is broken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Break {
    /// A sequence number is missing: an event was removed.
    Gap { expected: i64 },
    /// `prev_hash` does not name the event before: removed, inserted or reordered.
    PrevMismatch,
    /// The stored hash is not the event's: the row was edited (or forged without the key).
    HashMismatch,
    /// The head names an event that is not there: the newest events were removed.
    HeadMismatch { head_seq: i64 },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Events checked.
    pub checked: u64,
    /// Where checking started: the retention anchor's seq, or 0.
    pub from_seq: i64,
    pub last_seq: i64,
    /// The first broken link, if any.
    pub broken: Option<(i64, Break)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Checks every event from the newest anchor (or the start) to the head.
pub async fn verify(db: &Db, key: &[u8]) -> Result<Report, sqlx::Error> {
    let (head_seq, head_hash) = store::head(db).await?;
    let (mut seq, mut hash) = store::latest_anchor(db)
        .await?
        .unwrap_or((0, String::new()));
    let from_seq = seq;
    let mut checked = 0u64;
    while seq < head_seq {
        let page = store::after(db, seq, 1000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            let broken = if e.seq != seq + 1 {
                Some(Break::Gap { expected: seq + 1 })
            } else if e.prev_hash != hash {
                Some(Break::PrevMismatch)
            } else if !crate::crypto::ct_eq(link_hash(key, &e).as_bytes(), e.hash.as_bytes()) {
                Some(Break::HashMismatch)
            } else {
                None
            };
            if let Some(b) = broken {
                let at = if let Break::Gap { expected } = b {
                    expected
                } else {
                    e.seq
                };
                return Ok(Report {
                    checked,
                    from_seq,
                    last_seq: seq,
                    broken: Some((at, b)),
                });
            }
            checked += 1;
            seq = e.seq;
            hash = e.hash;
        }
    }
    // Events appended while this ran may take `seq` past the head read at the start.
    let broken = (seq < head_seq || (seq == head_seq && hash != head_hash))
        .then_some((seq + 1, Break::HeadMismatch { head_seq }));
    Ok(Report {
        checked,
        from_seq,
        last_seq: seq,
        broken,
    })
}
