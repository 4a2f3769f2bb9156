//! Account services shared by the CLI, the tests and the /api/auth door.

use serde_json::{Map, Value};

use crate::app::State;
use crate::oidc::claims::PROFILE;
use crate::store::users::{self, User};

/// Claims a user document may set besides email/password.
const SETTABLE: [&str; 3] = ["address", "phone_number", "phone_number_verified"];

/// Creates a user from a JSON document: email (required), password, email_verified and
/// the OIDC standard claims.
pub async fn create_user(state: &State, doc: Value) -> Result<User, String> {
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
        Some(p) if p.len() >= 8 => Some(state.hasher.hash(p).await.map_err(|e| e.to_string())?),
        Some(_) => return Err("`password` must be at least 8 characters".into()),
        None => None,
    };
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
    };
    users::insert(&state.db, &user)
        .await
        .map_err(|e| e.to_string())?;
    Ok(user)
}
