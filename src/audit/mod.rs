//! The audit trail: security events, each chained to the one before it.
//!
//! An event is written with [`append`] inside the transaction of the change it records
//! (so neither exists without the other), or with [`record`] in its own transaction
//! when there is no change, such as a failed sign-in. [`chain::verify`] checks the
//! whole chain and names the first broken link.

pub mod chain;
pub mod history;
pub mod query;
pub mod retention;

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::app::State;
use crate::http::request_meta::RequestMeta;
use crate::store::audit::{self as store, AuditRow};

/// Event types (the seed's section 7). Stored as these strings; never renamed, since
/// queries and SIEM rules match on them.
pub mod kind {
    pub const SIGN_IN: &str = "user.sign_in";
    pub const SIGN_IN_FAILED: &str = "user.sign_in_failed";
    pub const REGISTERED: &str = "user.registered";
    pub const EMAIL_VERIFIED: &str = "user.email_verified";
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    pub const PASSWORD_RESET: &str = "user.password_reset";
    pub const EMAIL_CHANGE_REQUESTED: &str = "user.email_change_requested";
    pub const EMAIL_CHANGED: &str = "user.email_changed";
    pub const EMAIL_CHANGE_REVERTED: &str = "user.email_change_reverted";
    pub const DELETION_SCHEDULED: &str = "user.deletion_scheduled";
    pub const DELETION_CANCELLED: &str = "user.deletion_cancelled";
    pub const DELETED: &str = "user.deleted";
    pub const UPDATED: &str = "user.updated";
    pub const MFA_ENROLLED: &str = "user.mfa_enrolled";
    pub const MFA_REMOVED: &str = "user.mfa_removed";
    pub const SESSION_CREATED: &str = "session.created";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const ACCOUNT_LOCKED: &str = "account.locked";
    pub const ACCOUNT_UNLOCKED: &str = "account.unlocked";
    pub const IP_BLOCKED: &str = "ip.blocked";
    pub const CLIENT_REGISTERED: &str = "client.registered";
    pub const CLIENT_UPDATED: &str = "client.updated";
    pub const CLIENT_DELETED: &str = "client.deleted";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const REFRESH_TOKEN_REUSED: &str = "token.refresh_reuse_detected";
    pub const CODE_REUSED: &str = "token.code_reuse_detected";
    pub const ADMIN_ACTION: &str = "admin.action";
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The user acting on their own account (or attempting to).
    User(String),
    /// An OAuth client acting with its own credentials.
    Client(String),
    /// The admin API, authenticated as this client.
    Admin(String),
    /// The command line (whoever has the server's configuration).
    Cli,
    /// The server itself (purges, expiries).
    System,
    /// Nobody authenticated (a failed sign-in, a registration request).
    Anonymous,
}

impl Actor {
    pub fn as_string(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Client(id) => format!("client:{id}"),
            Actor::Admin(id) => format!("admin:{id}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// One event about to be written.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub success: bool,
    pub actor: Actor,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub data: Map<String, Value>,
}

impl Event {
    /// A successful event of `kind` seen in the request `meta`.
    pub fn new(kind: &'static str, meta: &RequestMeta) -> Event {
        Event {
            kind,
            success: true,
            actor: Actor::Anonymous,
            subject: None,
            client_id: None,
            ip: meta.ip_string(),
            user_agent: meta.user_agent.clone(),
            request_id: (!meta.request_id.is_empty()).then(|| meta.request_id.clone()),
            data: Map::new(),
        }
    }

    /// [`Event::new`] with the metadata of the request being handled
    /// ([`RequestMeta::current`]), for cores that are not handed a `RequestMeta`.
    pub fn here(kind: &'static str) -> Event {
        Event::new(kind, &RequestMeta::current())
    }

    pub fn failed(mut self) -> Event {
        self.success = false;
        self
    }

    pub fn actor(mut self, a: Actor) -> Event {
        self.actor = a;
        self
    }

    /// The user the event is about; a user acting on themselves is also the actor.
    pub fn user(mut self, user_id: &str) -> Event {
        self.subject = Some(user_id.to_string());
        if self.actor == Actor::Anonymous {
            self.actor = Actor::User(user_id.to_string());
        }
        self
    }

    pub fn subject(mut self, s: Option<&str>) -> Event {
        self.subject = s.map(str::to_string);
        self
    }

    pub fn client(mut self, client_id: Option<&str>) -> Event {
        self.client_id = client_id.map(str::to_string);
        self
    }

    /// A detail. Never pass a password, a token or a secret here: the trail is read by
    /// admins and by the user.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.data.insert(key.to_string(), value.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<AuditError> for crate::error::Error {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Db(e) => e.into(),
        }
    }
}

/// An event with what writing it needs (chain key, time), for store functions that run
/// their own transaction and so cannot take the `State`.
#[derive(Clone)]
pub struct Pending {
    key: Vec<u8>,
    at: i64,
    event: Event,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The chain key stays out of logs.
        f.debug_struct("Pending")
            .field("at", &self.at)
            .field("event", &self.event)
            .finish()
    }
}

impl Pending {
    /// A detail known only inside the store's transaction (a count of revoked rows).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Pending {
        self.event = self.event.with(key, value);
        self
    }

    pub fn kind(&self) -> &'static str {
        self.event.kind
    }
}

/// Writes every pending event, in order, inside the caller's transaction.
pub async fn write_all(conn: &mut AnyConnection, events: &[Pending]) -> Result<(), sqlx::Error> {
    for p in events {
        write(conn, p.clone()).await?;
    }
    Ok(())
}

pub fn pending(state: &State, event: Event) -> Pending {
    Pending {
        key: chain::key(&state.secret),
        at: state.clock.now(),
        event,
    }
}

/// Writes `e` as the next link of the chain, inside the caller's transaction. Call it
/// last before the commit: it locks the chain's head until the transaction ends.
pub async fn append(conn: &mut AnyConnection, state: &State, e: Event) -> Result<i64, AuditError> {
    Ok(write(conn, pending(state, e)).await?)
}

/// [`append`] for a [`Pending`] event.
pub async fn write(conn: &mut AnyConnection, p: Pending) -> Result<i64, sqlx::Error> {
    let e = p.event;
    let (seq, prev_hash) = store::claim_next(conn).await?;
    let mut row = AuditRow {
        seq,
        at: p.at,
        event_type: e.kind.to_string(),
        outcome: if e.success { "success" } else { "failure" }.to_string(),
        actor: e.actor.as_string(),
        subject: e.subject,
        client_id: e.client_id,
        ip: e.ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
        data: Value::Object(e.data).to_string(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = chain::link_hash(&p.key, &row);
    store::insert(conn, &row).await?;
    Ok(seq)
}

/// [`record`] for a [`Pending`] event.
pub async fn record_pending(state: &State, p: Pending) -> Result<i64, AuditError> {
    let mut tx = state.db.pool.begin().await?;
    let seq = write(&mut tx, p).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Writes `e` in a transaction of its own: for events that record no other change.
pub async fn record(state: &State, e: Event) -> Result<i64, AuditError> {
    let mut tx = state.db.pool.begin().await?;
    let seq = append(&mut tx, state, e).await?;
    tx.commit().await?;
    Ok(seq)
}
