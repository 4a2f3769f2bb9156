//! `/admin/users/{id}/lockout` (GET: is the account locked, until when, failures so
//! far) and `/admin/users/{id}/unlock` (POST: lift the lock, `account.unlocked` with
//! actor `admin:<client_id>`).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Admin;
use crate::app::State;
use crate::error::Error;
use crate::http::request_meta::RequestMeta;
use crate::store::users;

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": "no user with this id"})),
    )
        .into_response()
}

/// `GET /admin/users/{id}/lockout` → `{locked, locked_until, failures}`
/// (`locked_until` -1: until unlocked, 0: never locked).
pub async fn lockout_status(
    _admin: Admin,
    AxState(state): AxState<State>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let Some(u) = users::by_id(&state.db, &id).await? else {
        return Ok(not_found());
    };
    let (locked, until, failures) = crate::lockout::unlock::status(&state, &u).await?;
    Ok(axum::Json(json!({
        "user_id": u.id,
        "locked": locked,
        "locked_until": until,
        "failures": failures,
    }))
    .into_response())
}

/// `POST /admin/users/{id}/unlock` → `{user_id, was_locked}`.
pub async fn unlock(
    admin: Admin,
    AxState(state): AxState<State>,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let Some(u) = users::by_id(&state.db, &id).await? else {
        return Ok(not_found());
    };
    let was = crate::lockout::unlock::unlock(&state, &meta, &u, admin.actor()).await?;
    Ok(axum::Json(json!({"user_id": u.id, "was_locked": was})).into_response())
}
