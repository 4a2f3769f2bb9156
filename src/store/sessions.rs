//! Login sessions (one per browser or app) and interactions (authorization requests
//! paused for login or consent).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Db, b2i};
use crate::audit::{self, Pending};

#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value; the value itself is never stored.
    pub id_hash: String,
    /// The public session id carried in ID tokens as `sid` (OIDC Front/Back-Channel Logout).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen: i64,
    /// The sliding limit: min(last renewal + idle timeout, `absolute_expires_at`).
    pub expires_at: i64,
    /// The absolute limit, which activity never extends.
    pub absolute_expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The device name the user gave this session (`deviceName`).
    pub name: Option<String>,
}

impl Session {
    /// Not revoked and within both stored limits. `ui::session::is_live` adds the
    /// configured idle timeout on top (it may have been shortened since the row was
    /// written).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.absolute_expires_at > now
    }
}

fn session_from_row(r: &AnyRow) -> Result<Session, sqlx::Error> {
    let amr: String = r.try_get("amr")?;
    Ok(Session {
        id_hash: r.try_get("id_hash")?,
        sid: r.try_get("sid")?,
        user_id: r.try_get("user_id")?,
        auth_time: r.try_get("auth_time")?,
        amr: serde_json::from_str(&amr).unwrap_or_default(),
        acr: r.try_get("acr")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
        expires_at: r.try_get("expires_at")?,
        absolute_expires_at: r
            .try_get::<Option<i64>, _>("absolute_expires_at")?
            .unwrap_or(r.try_get("expires_at")?),
        revoked_at: r.try_get("revoked_at")?,
        name: r.try_get("name")?,
    })
}

pub async fn insert(db: &Db, s: &Session) -> Result<(), sqlx::Error> {
    insert_on(&mut *db.pool.acquire().await?, s).await
}

/// [`insert`] with its audit event, in one transaction.
pub async fn insert_recorded(db: &Db, s: &Session, event: Pending) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    insert_on(&mut tx, s).await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await
}

async fn insert_on(conn: &mut AnyConnection, s: &Session) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, acr, ip, user_agent,
            created_at, last_seen, expires_at, revoked_at, absolute_expires_at, name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13)",
    )
    .bind(&s.id_hash)
    .bind(&s.sid)
    .bind(&s.user_id)
    .bind(s.auth_time)
    .bind(serde_json::to_string(&s.amr).unwrap_or_else(|_| "[]".into()))
    .bind(&s.acr)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.created_at)
    .bind(s.last_seen)
    .bind(s.expires_at)
    .bind(s.absolute_expires_at)
    .bind(&s.name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn by_hash(db: &Db, id_hash: &str) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn by_sid(db: &Db, sid: &str) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM sessions WHERE sid = $1")
        .bind(sid)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(session_from_row).transpose()
}

/// Sliding renewal: records activity at `now` and moves the sliding limit to
/// `expires_at`. Conditional on the row still holding the renewal we read
/// (`seen_before`), so concurrent requests renew once and never move it backwards.
pub async fn renew(
    db: &Db,
    id_hash: &str,
    seen_before: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET last_seen = $2, expires_at = $3
         WHERE id_hash = $1 AND last_seen = $4 AND revoked_at IS NULL",
    )
    .bind(id_hash)
    .bind(now)
    .bind(expires_at)
    .bind(seen_before)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Sets the device name of one of `user_id`'s sessions (by sid); false when the user has
/// no such session.
pub async fn rename(
    db: &Db,
    user_id: &str,
    sid: &str,
    name: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE sessions SET name = $3 WHERE sid = $1 AND user_id = $2")
        .bind(sid)
        .bind(user_id)
        .bind(name)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// [`revoke`] with its audit event, in one transaction; the event is written only when
/// the session was still live. True if it was.
pub async fn revoke_recorded(
    db: &Db,
    sid: &str,
    now: i64,
    event: Pending,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let n =
        sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL")
            .bind(sid)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if n > 0 {
        audit::write(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// [`revoke_all_for_user`] with one audit event carrying the count, in one transaction
/// (none when nothing was revoked).
pub async fn revoke_all_recorded(
    db: &Db,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    event: Pending,
) -> Result<u64, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND sid <> $3",
    )
    .bind(user_id)
    .bind(now)
    .bind(keep.unwrap_or(""))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n > 0 {
        audit::write(&mut tx, event.with("count", n)).await?;
    }
    tx.commit().await?;
    Ok(n)
}

pub async fn revoke(db: &Db, sid: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL")
        .bind(sid)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The user's sessions that are neither revoked nor expired, oldest first.
pub async fn active_for_user(
    db: &Db,
    user_id: &str,
    now: i64,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
         ORDER BY created_at, sid",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(session_from_row).collect()
}

/// Revokes every active session of the user except `keep` (a sid), if given; returns
/// how many were revoked.
pub async fn revoke_all_for_user(
    db: &Db,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND sid <> $3",
    )
    .bind(user_id)
    .bind(now)
    // No sid is empty, so "" keeps nothing.
    .bind(keep.unwrap_or(""))
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n)
}

#[derive(Debug, Clone)]
pub struct Interaction {
    pub id: String,
    /// SHA-256 of the browser-binding cookie set when the interaction began.
    pub browser_hash: String,
    pub client_id: String,
    /// The validated authorization request, JSON.
    pub request: String,
    pub session_sid: Option<String>,
    pub login_done: bool,
    pub consent_done: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
}

fn interaction_from_row(r: &AnyRow) -> Result<Interaction, sqlx::Error> {
    Ok(Interaction {
        id: r.try_get("id")?,
        browser_hash: r.try_get("browser_hash")?,
        client_id: r.try_get("client_id")?,
        request: r.try_get("request")?,
        session_sid: r.try_get("session_sid")?,
        login_done: r.try_get::<i64, _>("login_done")? != 0,
        consent_done: r.try_get::<i64, _>("consent_done")? != 0,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        completed_at: r.try_get("completed_at")?,
    })
}

pub async fn insert_interaction(db: &Db, i: &Interaction) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO interactions (id, browser_hash, client_id, request, session_sid,
            login_done, consent_done, created_at, expires_at, completed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
    )
    .bind(&i.id)
    .bind(&i.browser_hash)
    .bind(&i.client_id)
    .bind(&i.request)
    .bind(&i.session_sid)
    .bind(b2i(i.login_done))
    .bind(b2i(i.consent_done))
    .bind(i.created_at)
    .bind(i.expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn interaction(db: &Db, id: &str) -> Result<Option<Interaction>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM interactions WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(interaction_from_row).transpose()
}

pub async fn interaction_logged_in(db: &Db, id: &str, sid: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE interactions SET login_done = 1, session_sid = $2 WHERE id = $1")
        .bind(id)
        .bind(sid)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn interaction_consented(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE interactions SET consent_done = 1 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Marks the interaction finished; false if it already was (a replayed form).
pub async fn complete_interaction(db: &Db, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE interactions SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}
