//! Account services shared by the CLI, the tests and the /api/auth door.

use serde_json::{Map, Value};

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::oidc::claims::PROFILE;
use crate::store::users::{self, User};

/// Claims a user document may set besides email/password.
const SETTABLE: [&str; 3] = ["address", "phone_number", "phone_number_verified"];

/// Creates a user from a JSON document: email (required), password, email_verified,
/// the OIDC standard claims, and `fields`: the custom user fields of `sign_up.fields`
/// (typed as at sign-up; as an administrator's tool it may set `input = false` fields
/// and need not give required ones; defaults apply). The password must follow the
/// password policy, as on every other route.
/// Recorded as done by the command line (`user create`, the tests' fixtures).
pub async fn create_user(state: &State, doc: Value) -> Result<User, String> {
    create_user_by(state, doc, Actor::Cli).await
}

/// [`create_user`] on behalf of `actor`; the account and its `user.registered` event are
/// written in one transaction.
pub async fn create_user_by(state: &State, doc: Value, actor: Actor) -> Result<User, String> {
    let m = doc.as_object().ok_or("the user must be a JSON object")?;
    let email = m
        .get("email")
        .and_then(Value::as_str)
        .ok_or("`email` is required")?;
    if !email.contains('@') || email.len() > 254 {
        return Err("`email` is not an email address".into());
    }
    if users::by_email(&state.db, email)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!("a user with email {email} already exists"));
    }
    let password_hash = match m.get("password").and_then(Value::as_str) {
        Some(p) => {
            crate::password_policy::check(&state.config.password_policy, p, Some(email))
                .map_err(|e| format!("`password`: {e}"))?;
            crate::breach::check(state, p)
                .await
                .map_err(|e| format!("`password`: {e}"))?;
            Some(state.hasher.hash(p).await.map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let given = match m.get("fields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(f)) => f.clone(),
        Some(_) => return Err("`fields` must be a JSON object".into()),
    };
    let fields = crate::user_fields::for_create(&state.config.sign_up.fields, &given, true)
        .map_err(|e| format!("`fields.{}`: {}", e.field, e.message))?;
    let mut claims = Map::new();
    for k in PROFILE.iter().chain(SETTABLE.iter()) {
        if *k == "updated_at" {
            continue;
        }
        if let Some(v) = m.get(*k) {
            claims.insert(k.to_string(), v.clone());
        }
    }
    let now = state.clock.now();
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: users::normalize_email(email),
        email_verified: m
            .get("email_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        password_hash,
        claims,
        created_at: now,
        updated_at: now,
        fields,
        terms_version: None,
        terms_accepted_at: None,
    };
    let event = Event::here(kind::REGISTERED)
        .actor(actor)
        .user(&user.id)
        .with("email", user.email.clone());
    let write = async {
        let mut tx = state.db.pool.begin().await?;
        users::insert_with(&mut *tx, &user).await?;
        audit::append(&mut tx, state, event).await?;
        tx.commit().await?;
        Ok::<_, audit::AuditError>(())
    };
    write.await.map_err(|e| e.to_string())?;
    Ok(user)
}
