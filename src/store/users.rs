//! Users: a stable `sub` (a UUID, never reused), an email, a password hash and the
//! OIDC standard claims (OIDC Core §5.1) as a JSON document.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, b2i};
use crate::audit::{self, Pending};

#[derive(Debug, Clone, Default)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    /// Standard claims other than sub/email/email_verified/updated_at.
    pub claims: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Custom user fields (`sign_up.fields`), validated by `user_fields`.
    pub fields: Map<String, Value>,
    /// The terms-of-service version accepted at sign-up, and when.
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    let claims: String = r.try_get("claims")?;
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        password_hash: r.try_get("password_hash")?,
        claims: serde_json::from_str(&claims).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        fields: serde_json::from_str(&r.try_get::<String, _>("fields")?).unwrap_or_default(),
        terms_version: r.try_get("terms_version")?,
        terms_accepted_at: r.try_get("terms_accepted_at")?,
    })
}

/// Emails are compared case-insensitively; we store them lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn insert(db: &Db, u: &User) -> Result<(), sqlx::Error> {
    insert_with(&db.pool, u).await
}

/// `insert` on any executor, e.g. the transaction that also spends an invite.
pub async fn insert_with<'e, E>(ex: E, u: &User) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO users (id, email, email_verified, password_hash, claims, created_at, updated_at,
                            fields, terms_version, terms_accepted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(normalize_email(&u.email))
    .bind(b2i(u.email_verified))
    .bind(&u.password_hash)
    .bind(Value::Object(u.claims.clone()).to_string())
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(Value::Object(u.fields.clone()).to_string())
    .bind(&u.terms_version)
    .bind(u.terms_accepted_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE email = $1")
        .bind(normalize_email(email))
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, email")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Replaces the user's standard claims (name, picture, ...) and sets `updated_at`, the
/// OIDC `updated_at` claim.
pub async fn update_profile(
    db: &Db,
    id: &str,
    claims: &Map<String, Value>,
    now: i64,
    event: Pending,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE users SET claims = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(Value::Object(claims.clone()).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await
}

/// Replaces the user's standard claims and custom fields in one statement
/// (`update-user`) and sets `updated_at`.
pub async fn update_profile_and_fields(
    db: &Db,
    id: &str,
    claims: &Map<String, Value>,
    fields: &Map<String, Value>,
    now: i64,
    event: Pending,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE users SET claims = $2, fields = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(Value::Object(claims.clone()).to_string())
        .bind(Value::Object(fields.clone()).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await
}

/// Sets a new password hash and `updated_at`.
pub async fn update_password(
    db: &Db,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}
