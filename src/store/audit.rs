//! The audit trail's tables (migration 0007): events, the chain head, and the anchors
//! left by retention. The chain itself (hashing, verification) is `crate::audit`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Db;

/// One stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub event_type: String,
    pub outcome: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// JSON object of details (a reason, an identifier, changed fields).
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "seq, at, event_type, outcome, actor, subject, client_id, ip, user_agent,
    request_id, data, prev_hash, hash";

fn row(r: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        event_type: r.try_get("event_type")?,
        outcome: r.try_get("outcome")?,
        actor: r.try_get("actor")?,
        subject: r.try_get("subject")?,
        client_id: r.try_get("client_id")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        request_id: r.try_get("request_id")?,
        data: r.try_get("data")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Takes the next sequence number and the previous hash, locking the head row until the
/// surrounding transaction ends (PostgreSQL: row lock; SQLite: the write lock).
pub async fn claim_next(conn: &mut AnyConnection) -> Result<(i64, String), sqlx::Error> {
    let r = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Writes `e` (whose seq came from `claim_next`) and moves the head to it.
pub async fn insert(conn: &mut AnyConnection, e: &AuditRow) -> Result<(), sqlx::Error> {
    // Built from constants only (COLUMNS); no input reaches the SQL text.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(e.seq)
    .bind(e.at)
    .bind(&e.event_type)
    .bind(&e.outcome)
    .bind(&e.actor)
    .bind(&e.subject)
    .bind(&e.client_id)
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.request_id)
    .bind(&e.data)
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2")
        .bind(&e.hash)
        .bind(e.seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The head: (last seq, last hash).
pub async fn head(db: &Db) -> Result<(i64, String), sqlx::Error> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Events with `seq > after`, oldest first, at most `limit` (for verification).
pub async fn after(db: &Db, after: i64, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(row).collect()
}

/// The newest retention anchor: (seq, hash).
pub async fn latest_anchor(db: &Db) -> Result<Option<(i64, String)>, sqlx::Error> {
    let r = sqlx::query("SELECT seq, hash FROM audit_anchors ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&db.pool)
        .await?;
    r.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
        .transpose()
}

/// Filters of the admin query and of a user's own history.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub subject: Option<String>,
    pub event_types: Vec<String>,
    pub ip: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Paging cursor: only events older than this seq.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Events matching `f`, newest first.
pub async fn query(db: &Db, f: &Filter) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.subject.is_some() {
        sql += &format!(" AND subject = {}", next());
    }
    if !f.event_types.is_empty() {
        let marks: Vec<String> = f.event_types.iter().map(|_| next()).collect();
        sql += &format!(" AND event_type IN ({})", marks.join(", "));
    }
    if f.ip.is_some() {
        sql += &format!(" AND ip = {}", next());
    }
    if f.since.is_some() {
        sql += &format!(" AND at >= {}", next());
    }
    if f.until.is_some() {
        sql += &format!(" AND at < {}", next());
    }
    if f.before_seq.is_some() {
        sql += &format!(" AND seq < {}", next());
    }
    sql += &format!(" ORDER BY seq DESC LIMIT {}", next());
    // The text holds constants and `$n` placeholders only; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(s) = &f.subject {
        q = q.bind(s);
    }
    for t in &f.event_types {
        q = q.bind(t);
    }
    if let Some(ip) = &f.ip {
        q = q.bind(ip);
    }
    if let Some(s) = f.since {
        q = q.bind(s);
    }
    if let Some(u) = f.until {
        q = q.bind(u);
    }
    if let Some(b) = f.before_seq {
        q = q.bind(b);
    }
    q = q.bind(f.limit);
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter().map(row).collect()
}

/// Retention: records the anchor (the last pruned event's seq and hash) and deletes the
/// events up to it, in one transaction, so the remaining chain is always verifiable.
/// Events older than `cutoff` go, but never the newest event, which the head names.
/// Returns how many were removed.
pub async fn prune_before(db: &Db, cutoff: i64, now: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    // Take the chain head's lock first (a write: on SQLite the database write lock), so
    // no append interleaves and SQLite never has to upgrade a read transaction (BUSY).
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let last = sqlx::query(
        "SELECT seq, hash, at FROM audit_events
         WHERE at < $1 AND seq < (SELECT seq FROM audit_head WHERE id = 1)
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(cutoff)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(last) = last else {
        return Ok(0);
    };
    let seq: i64 = last.try_get("seq")?;
    let hash: String = last.try_get("hash")?;
    let at: i64 = last.try_get("at")?;
    sqlx::query("INSERT INTO audit_anchors (seq, hash, at, created_at) VALUES ($1, $2, $3, $4)")
        .bind(seq)
        .bind(&hash)
        .bind(at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
        .bind(seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone)
}
