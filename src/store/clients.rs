//! Registered OAuth clients. The metadata document is RFC 7591 §2 plus our own
//! `first_party` and `access_token_audience`; the secret and the registration access
//! token are stored only as SHA-256 hashes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Db;
use crate::audit::{self, Pending};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub application_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    pub access_token_signed_response_alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_token_audience: Vec<String>,
    pub first_party: bool,
}

impl ClientMetadata {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    pub fn is_native(&self) -> bool {
        self.application_type == "native"
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub secret_expires_at: i64,
    pub metadata: ClientMetadata,
    pub registration_token_hash: Option<String>,
    /// `config`, `cli` or `dynamic`.
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: &AnyRow) -> Result<Client, sqlx::Error> {
    let meta: String = r.try_get("metadata")?;
    Ok(Client {
        client_id: r.try_get("client_id")?,
        secret_hash: r.try_get("secret_hash")?,
        secret_expires_at: r.try_get("secret_expires_at")?,
        metadata: serde_json::from_str(&meta).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        registration_token_hash: r.try_get("registration_token_hash")?,
        source: r.try_get("source")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn meta_json(c: &Client) -> String {
    serde_json::to_string(&c.metadata).unwrap_or_else(|_| "{}".into())
}

pub async fn insert(db: &Db, c: &Client) -> Result<(), sqlx::Error> {
    insert_on(&mut *db.pool.acquire().await?, c).await
}

/// [`insert`] with its audit event, in one transaction.
pub async fn insert_recorded(db: &Db, c: &Client, event: Pending) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    insert_on(&mut tx, c).await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await
}

async fn insert_on(conn: &mut AnyConnection, c: &Client) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, secret_expires_at, metadata,
            registration_token_hash, source, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.client_id)
    .bind(&c.secret_hash)
    .bind(c.secret_expires_at)
    .bind(meta_json(c))
    .bind(&c.registration_token_hash)
    .bind(&c.source)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts or replaces (config-declared clients are re-applied at every start).
pub async fn upsert(db: &Db, c: &Client) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, secret_expires_at, metadata,
            registration_token_hash, source, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
            secret_expires_at = excluded.secret_expires_at, metadata = excluded.metadata,
            source = excluded.source, updated_at = excluded.updated_at",
    )
    .bind(&c.client_id)
    .bind(&c.secret_hash)
    .bind(c.secret_expires_at)
    .bind(meta_json(c))
    .bind(&c.registration_token_hash)
    .bind(&c.source)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Replaces the client's metadata and secrets; `event` in the same transaction.
pub async fn update(db: &Db, c: &Client, event: Pending) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE clients SET secret_hash = $2, secret_expires_at = $3, metadata = $4,
            registration_token_hash = $5, updated_at = $6 WHERE client_id = $1",
    )
    .bind(&c.client_id)
    .bind(&c.secret_hash)
    .bind(c.secret_expires_at)
    .bind(meta_json(c))
    .bind(&c.registration_token_hash)
    .bind(c.updated_at)
    .execute(&mut *tx)
    .await?;
    audit::write(&mut tx, event).await?;
    tx.commit().await
}

pub async fn get(db: &Db, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Client>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes the client and everything issued to it; `event` is written in the same
/// transaction when there was such a client.
pub async fn delete(
    db: &Db,
    client_id: &str,
    now: i64,
    event: Pending,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let n = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
    )
    .bind(client_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for sql in [
        "DELETE FROM auth_codes WHERE client_id = $1",
        "DELETE FROM token_families WHERE client_id = $1",
        "DELETE FROM grants WHERE client_id = $1",
        "DELETE FROM interactions WHERE client_id = $1",
    ] {
        sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
    }
    if n > 0 {
        audit::write(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}
