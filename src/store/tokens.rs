//! Authorization codes, token families, refresh tokens, access-token records and the
//! client-assertion `jti` replay cache. Codes and refresh tokens are stored only as
//! SHA-256 hashes; access tokens are JWTs, recorded by `jti` so they can be revoked.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Db;

/// What an authorization code or refresh token carries forward into the tokens it yields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenContext {
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    pub nonce: Option<String>,
    /// The `claims` request parameter (OIDC Core §5.5), if any.
    pub claims: Option<Value>,
    /// `aud` of the access tokens (RFC 8707 resources or the client's configured audience).
    pub audience: Vec<String>,
    /// max_age was sent, so auth_time is REQUIRED in the ID token (OIDC Core §2).
    pub auth_time_required: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CodeData {
    pub redirect_uri: String,
    /// The authorization request carried redirect_uri, so the token request must repeat
    /// it (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub ctx: TokenContext,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub data: CodeData,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_id: Option<String>,
    pub access_jti: Option<String>,
}

fn code_from_row(r: &AnyRow) -> Result<CodeRow, sqlx::Error> {
    let data: String = r.try_get("data")?;
    Ok(CodeRow {
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        grant_id: r.try_get("grant_id")?,
        data: serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        family_id: r.try_get("family_id")?,
        access_jti: r.try_get("access_jti")?,
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_code(
    db: &Db,
    code_hash: &str,
    client_id: &str,
    user_id: &str,
    grant_id: &str,
    data: &CodeData,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, user_id, grant_id, data, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code_hash)
    .bind(client_id)
    .bind(user_id)
    .bind(grant_id)
    .bind(serde_json::to_string(data).unwrap_or_default())
    .bind(now)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub enum CodeUse {
    /// First use: this caller owns the code now.
    First(CodeRow),
    /// The code was already used (RFC 6749 §4.1.2: revoke what it yielded).
    Reused(CodeRow),
    Unknown,
}

/// Marks the code used atomically; of two concurrent redemptions only one gets `First`.
pub async fn use_code(db: &Db, code_hash: &str, now: i64) -> Result<CodeUse, sqlx::Error> {
    let n =
        sqlx::query("UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
            .bind(code_hash)
            .bind(now)
            .execute(&db.pool)
            .await?
            .rows_affected();
    let row = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match (row.as_ref().map(code_from_row).transpose()?, n) {
        (Some(c), 1) => CodeUse::First(c),
        (Some(c), _) => CodeUse::Reused(c),
        (None, _) => CodeUse::Unknown,
    })
}

/// Remembers what a code yielded, so a replay can revoke it. Returns true if a replay
/// was recorded before this link (it could not revoke tokens not linked yet, so the
/// caller must). Link and check are one statement, so no replay falls between them.
pub async fn link_code(
    db: &Db,
    code_hash: &str,
    family_id: Option<&str>,
    access_jti: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE auth_codes SET family_id = $2, access_jti = $3 WHERE code_hash = $1 RETURNING reused_at",
    )
    .bind(code_hash)
    .bind(family_id)
    .bind(access_jti)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>("reused_at")?.is_some(),
        None => false,
    })
}

/// Records a replay of a code and returns what the code has yielded so far
/// (family id, access-token jti), read in the same statement: either the first exchange
/// linked its tokens before this, and the caller revokes them, or it links after and
/// sees the mark.
pub async fn mark_code_reused(
    db: &Db,
    code_hash: &str,
    now: i64,
) -> Result<(Option<String>, Option<String>), sqlx::Error> {
    let row = sqlx::query(
        "UPDATE auth_codes SET reused_at = $2 WHERE code_hash = $1 RETURNING family_id, access_jti",
    )
    .bind(code_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(r) => (r.try_get("family_id")?, r.try_get("access_jti")?),
        None => (None, None),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Family {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub session_sid: Option<String>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub token_hash: String,
    pub family: Family,
    pub ctx: TokenContext,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
}

/// An access-token record: the `jti` of a JWT we signed, so it can be revoked.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub family_id: Option<String>,
    /// The `claims` request parameter, for the userinfo endpoint (OIDC Core §5.5).
    pub claims: Option<Value>,
    pub expires_at: i64,
}

async fn insert_access<'e, E>(ex: E, a: &AccessRecord) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO access_tokens (jti, client_id, user_id, family_id, claims, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&a.jti)
    .bind(&a.client_id)
    .bind(&a.user_id)
    .bind(&a.family_id)
    .bind(a.claims.as_ref().map(Value::to_string))
    .bind(a.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn record_access(db: &Db, a: &AccessRecord) -> Result<(), sqlx::Error> {
    insert_access(&db.pool, a).await
}

async fn insert_refresh<'e, E>(
    ex: E,
    token_hash: &str,
    family_id: &str,
    ctx: &TokenContext,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, data, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(serde_json::to_string(ctx).unwrap_or_default())
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Starts a token family with its first refresh token, and records the access token,
/// in one transaction.
pub async fn start_family(
    db: &Db,
    family: &Family,
    refresh_hash: &str,
    ctx: &TokenContext,
    access: &AccessRecord,
    now: i64,
    refresh_expires_at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO token_families (id, client_id, user_id, grant_id, session_sid, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&family.id)
    .bind(&family.client_id)
    .bind(&family.user_id)
    .bind(&family.grant_id)
    .bind(&family.session_sid)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_refresh(
        &mut *tx,
        refresh_hash,
        &family.id,
        ctx,
        now,
        refresh_expires_at,
    )
    .await?;
    insert_access(&mut *tx, access).await?;
    tx.commit().await
}

pub async fn refresh_by_hash(db: &Db, token_hash: &str) -> Result<Option<RefreshRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT r.token_hash, r.data, r.expires_at, r.rotated_at, f.id, f.client_id, f.user_id,
                f.grant_id, f.session_sid, f.revoked_at
         FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id
         WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let data: String = r.try_get("data")?;
    Ok(Some(RefreshRow {
        token_hash: r.try_get("token_hash")?,
        family: Family {
            id: r.try_get("id")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            grant_id: r.try_get("grant_id")?,
            session_sid: r.try_get("session_sid")?,
            revoked_at: r.try_get("revoked_at")?,
        },
        ctx: serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        expires_at: r.try_get("expires_at")?,
        rotated_at: r.try_get("rotated_at")?,
    }))
}

pub enum Rotation {
    /// The old token is now rotated and the new one stored.
    Rotated,
    /// The old token had already been rotated (by a concurrent or earlier request).
    AlreadyRotated,
}

/// Rotates a refresh token: in one transaction, mark the old one rotated (only if it was
/// not already), store its successor and record the new access token. Two concurrent
/// uses cannot both get `Rotated`: the conditional UPDATE serialises them.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_refresh(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    family_id: &str,
    ctx: &TokenContext,
    access: &AccessRecord,
    now: i64,
    expires_at: i64,
    grace_reissue: bool,
) -> Result<Rotation, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    if !grace_reissue {
        let n = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL",
        )
        .bind(old_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(Rotation::AlreadyRotated);
        }
    }
    insert_refresh(&mut *tx, new_hash, family_id, ctx, now, expires_at).await?;
    insert_access(&mut *tx, access).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated)
}

/// Revokes a whole family: its refresh tokens stop working and the access tokens it
/// issued are marked revoked.
pub async fn revoke_family(
    db: &Db,
    family_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    revoke_family_recorded(db, family_id, reason, now, None).await
}

/// [`revoke_family`] with the audit event of why, in the same transaction.
pub async fn revoke_family_recorded(
    db: &Db,
    family_id: &str,
    reason: &str,
    now: i64,
    event: Option<crate::audit::Pending>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE token_families SET revoked_at = $2, revoked_reason = $3
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some(e) = event {
        crate::audit::write(&mut tx, e).await?;
    }
    tx.commit().await
}

pub async fn revoke_access(db: &Db, jti: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE access_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL")
        .bind(jti)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// State of a signed access token's record.
#[derive(Debug, Clone)]
pub struct AccessState {
    pub client_id: String,
    pub revoked: bool,
}

pub async fn access_state(db: &Db, jti: &str) -> Result<Option<AccessState>, sqlx::Error> {
    let row = sqlx::query("SELECT client_id, revoked_at FROM access_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| {
        Ok(AccessState {
            client_id: r.try_get("client_id")?,
            revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        })
    })
    .transpose()
}

/// Remembers a client-assertion `jti` until it expires (RFC 7523 §3 item 7). False if it
/// was seen before: a replay.
pub async fn remember_assertion_jti(
    db: &Db,
    client_id: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM assertion_jtis WHERE expires_at < $1")
        .bind(now)
        .execute(&db.pool)
        .await?;
    let n = sqlx::query(
        "INSERT INTO assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (client_id, jti) DO NOTHING",
    )
    .bind(client_id)
    .bind(jti)
    .bind(expires_at)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The `claims` request recorded with an access token.
pub async fn access_claims_request(db: &Db, jti: &str) -> Result<Option<Value>, sqlx::Error> {
    let row = sqlx::query("SELECT claims FROM access_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => r
            .try_get::<Option<String>, _>("claims")?
            .and_then(|s| serde_json::from_str(&s).ok()),
        None => None,
    })
}
