//! Self-service registration, the one core behind `POST /api/auth/sign-up/email` and
//! the hosted `/sign-up` page (issue 3): registration mode, invite codes, password
//! policy, custom fields, terms of service, and no user enumeration.
//!
//! Order of the checks (Better Auth's sign-up.ts checks `disableSignUp` first, then the
//! body): the mode, the presence of an invite code, the input (email, password, name,
//! image, custom fields, terms), the breached-password check, the invite code itself; only then is the address
//! looked up. Nothing is written before every check passed, and the account and the
//! invite it spends are written in one transaction.
//!
//! No enumeration: unless the caller asks for the address to be revealed (Better
//! Auth's `autoSignIn`, see `api::sign`), an address that already has an account gets
//! the same outcome as a new one, a synthetic user, after the same argon2 work, and its
//! invite is spent the same way; so neither the answer, the time nor the invite's state
//! afterwards tells the two apart.

use serde_json::{Map, Value, json};

use crate::app::State;
use crate::audit::{self, Event, kind};
use crate::config::SignUpMode;
use crate::password_policy::{self, PolicyViolation};
use crate::store::{invites, users};
use crate::user_fields::{self, FieldError};

/// What a client asked for. `body` holds the whole request, where custom fields are
/// looked up by name (undeclared keys are ignored).
#[derive(Debug, Default)]
pub struct Request {
    pub name: String,
    pub email: String,
    pub password: String,
    pub image: Option<String>,
    pub body: Map<String, Value>,
    pub accept_terms: bool,
    pub invite_code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("sign-up is disabled")]
    Disabled,
    #[error("an invite code is required")]
    InviteRequired,
    #[error("the invite code is not valid")]
    InvalidInvite,
    #[error("invalid email")]
    InvalidEmail,
    #[error(transparent)]
    Password(#[from] PolicyViolation),
    /// The breached-password check refused the password (`breach::check`).
    #[error(transparent)]
    Breach(#[from] crate::breach::BreachError),
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A built-in value out of bounds; the message names it (`[body.name] ...`).
    #[error("{0}")]
    Invalid(String),
    #[error("the terms of service were not accepted")]
    TermsNotAccepted,
    /// Only when the caller asked for it (`reveal_existing`).
    #[error("a user with this email already exists")]
    AlreadyExists,
    #[error("the user could not be created: {0}")]
    Failed(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What happened. Callers that must not enumerate treat both the same.
#[derive(Debug)]
pub enum Outcome {
    /// A new account.
    Created(users::User),
    /// The address already had an account; nothing was changed. The user is built from
    /// the request with a fresh id, never stored.
    Existing(users::User),
}

impl Outcome {
    pub fn user(&self) -> &users::User {
        match self {
            Outcome::Created(u) | Outcome::Existing(u) => u,
        }
    }
}

/// Better Auth validates with zod's `z.email()`; this is the same idea, loosely: one
/// `@`, a non-empty local part, a dotted domain, no spaces, at most 254 characters.
pub fn is_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// Registers `req`. With `reveal_existing`, an address that has an account is
/// `AlreadyExists`; otherwise it is `Outcome::Existing`.
pub async fn sign_up(
    state: &State,
    req: &Request,
    reveal_existing: bool,
) -> Result<Outcome, SignUpError> {
    let cfg = &state.config.sign_up;
    let invite_code = match cfg.mode {
        SignUpMode::Disabled => return Err(SignUpError::Disabled),
        SignUpMode::InviteOnly => Some(
            req.invite_code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or(SignUpError::InviteRequired)?,
        ),
        SignUpMode::Open => None,
    };
    let fields = check_input(state, req)?;
    // Before any lookup, so new and existing addresses alike make the request.
    crate::breach::check(state, &req.password).await?;
    if let Some(code) = invite_code {
        check_invite(state, code, &req.email).await?;
    }
    if users::by_email(&state.db, &req.email).await?.is_some() {
        return existing(state, req, fields, invite_code, reveal_existing).await;
    }
    let hash = state
        .hasher
        .hash(&req.password)
        .await
        .map_err(|e| SignUpError::Failed(e.to_string()))?;
    let user = new_user(state, req, fields.clone(), Some(hash));
    let mut tx = state.db.pool.begin().await?;
    if let Err(e) = users::insert_with(&mut *tx, &user).await {
        drop(tx);
        // A concurrent sign-up with the same address won the insert.
        if users::by_email(&state.db, &req.email).await?.is_some() {
            return existing(state, req, fields, invite_code, reveal_existing).await;
        }
        return Err(SignUpError::Failed(e.to_string()));
    }
    // After the user, whom `used_by` references; dropping the transaction undoes both.
    if let Some(code) = invite_code
        && !invites::spend(&mut *tx, code, Some(&user.id), state.clock.now()).await?
    {
        // Another sign-up spent it between the check and now.
        return Err(SignUpError::InvalidInvite);
    }
    let event = Event::here(kind::REGISTERED)
        .user(&user.id)
        .with("invite", invite_code.is_some());
    audit::append(&mut tx, state, event)
        .await
        .map_err(|e| SignUpError::Failed(e.to_string()))?;
    tx.commit().await?;
    Ok(Outcome::Created(user))
}

/// Everything that needs no database: email, password policy, name, image, custom
/// fields, terms. Returns the custom fields to store.
fn check_input(state: &State, req: &Request) -> Result<Map<String, Value>, SignUpError> {
    if !is_email(&req.email) {
        return Err(SignUpError::InvalidEmail);
    }
    password_policy::check(
        &state.config.password_policy,
        &req.password,
        Some(&req.email),
    )?;
    if req.name.chars().count() > 256 {
        return Err(SignUpError::Invalid(
            "[body.name] at most 256 characters".into(),
        ));
    }
    if req.image.as_ref().is_some_and(|i| i.len() > 2048) {
        return Err(SignUpError::Invalid(
            "[body.image] at most 2048 characters".into(),
        ));
    }
    let fields = user_fields::for_create(&state.config.sign_up.fields, &req.body, false)?;
    if state.config.sign_up.terms_version.is_some() && !req.accept_terms {
        return Err(SignUpError::TermsNotAccepted);
    }
    Ok(fields)
}

/// An invite that can be spent by `email`: known, unused, unexpired, and bound to no
/// address or to this one. All failures are the same `InvalidInvite`.
async fn check_invite(state: &State, code: &str, email: &str) -> Result<(), SignUpError> {
    let Some(inv) = invites::by_code(&state.db, code).await? else {
        return Err(SignUpError::InvalidInvite);
    };
    let usable = inv.status(state.clock.now()) == "unused"
        && inv
            .email
            .as_deref()
            .is_none_or(|e| e == users::normalize_email(email));
    if usable {
        Ok(())
    } else {
        Err(SignUpError::InvalidInvite)
    }
}

/// The address has an account: the same work as creating one (argon2, spending the
/// invite), the account untouched, a synthetic user as the answer.
async fn existing(
    state: &State,
    req: &Request,
    fields: Map<String, Value>,
    invite_code: Option<&str>,
    reveal: bool,
) -> Result<Outcome, SignUpError> {
    if reveal {
        return Err(SignUpError::AlreadyExists);
    }
    let _ = state.hasher.hash(&req.password).await;
    if let Some(code) = invite_code
        && !invites::spend(&state.db.pool, code, None, state.clock.now()).await?
    {
        return Err(SignUpError::InvalidInvite);
    }
    Ok(Outcome::Existing(new_user(state, req, fields, None)))
}

fn new_user(
    state: &State,
    req: &Request,
    fields: Map<String, Value>,
    password_hash: Option<String>,
) -> users::User {
    let now = state.clock.now();
    let mut claims = Map::new();
    claims.insert("name".into(), json!(req.name));
    if let Some(i) = &req.image {
        claims.insert("picture".into(), json!(i));
    }
    let terms = state.config.sign_up.terms_version.clone();
    users::User {
        id: uuid::Uuid::new_v4().to_string(),
        email: users::normalize_email(&req.email),
        email_verified: false,
        password_hash,
        claims,
        created_at: now,
        updated_at: now,
        fields,
        terms_accepted_at: terms.as_ref().map(|_| now),
        terms_version: terms,
    }
}
