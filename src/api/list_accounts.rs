//! `GET /api/auth/list-accounts` (Better Auth `routes/account.ts` `listUserAccounts`).

use axum::response::Response;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::Authed;
use super::{iso8601, json_response};
use crate::store::users::User;

/// Better Auth's account entry. We have no account table: a user's only account is the
/// `credential` one (email and password), which Better Auth keys by the user id
/// (`accountId` = `userId`); its `id` is the user id too, stable and unique.
pub fn credential_account(u: &User) -> Value {
    json!({
        "id": u.id,
        "providerId": "credential",
        "accountId": u.id,
        "userId": u.id,
        "scopes": [],
        "createdAt": iso8601(u.created_at),
        "updatedAt": iso8601(u.updated_at),
    })
}

/// → 200 `[Account]`: the credential account when the user has a password, else `[]`;
/// 401 `UNAUTHORIZED` without a session.
pub async fn list_accounts(a: Authed) -> Result<Response, ApiError> {
    let accounts: Vec<Value> = a
        .user
        .password_hash
        .as_ref()
        .map(|_| credential_account(&a.user))
        .into_iter()
        .collect();
    Ok(json_response(Value::Array(accounts)))
}
