//! `GET /admin/audit-events` (filters and paging over the trail) and
//! `GET /admin/audit-events/verify` (the chain check). Reading changes nothing, so it
//! is not itself recorded.

use axum::Json;
use axum::extract::{RawQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Admin;
use crate::app::State;
use crate::audit::{chain, query};
use crate::error::{Error, OAuthError};
use crate::store::audit as store;

/// `GET /admin/audit-events?user=&type=&ip=&since=&until=&before=&limit=`: newest
/// first; `next` is the `before` of the following page, null on the last one.
pub async fn list(_: Admin, AxState(state): AxState<State>, RawQuery(q): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let f = match query::filter(&pairs) {
        Ok(f) => f,
        Err(e) => return OAuthError::invalid_request(e).into_response(),
    };
    match store::query(&state.db, &f).await {
        Ok(rows) => Json(json!({
            "events": rows.iter().map(query::admin_json).collect::<Vec<_>>(),
            "next": query::next_cursor(&rows, f.limit),
        }))
        .into_response(),
        Err(e) => Error::from(e).into_response(),
    }
}

/// `GET /admin/audit-events/verify`: the [`chain::Report`] of the whole trail.
pub async fn verify(_: Admin, AxState(state): AxState<State>) -> Response {
    match chain::verify(&state.db, &chain::key(&state.secret)).await {
        Ok(r) => Json(report_json(&r)).into_response(),
        Err(e) => Error::from(e).into_response(),
    }
}

/// The report with `ok` spelled out, as the CLI prints it with `--json`.
pub fn report_json(r: &chain::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    v["ok"] = json!(r.ok());
    v
}
