//! `GET /api/auth/security-events?limit=&before=`: the signed-in user's own audit
//! events (subject = the user), newest first, without the chain's hashes.

use axum::extract::{RawQuery, State as AxState};
use axum::response::Response;

use super::error::ApiError;
use super::extract::Authed;
use super::json_response;
use super::views::{SecurityEventView, SecurityEventsResponse};
use crate::app::State;
use crate::audit::history;

/// Page size when none is asked for, and the most one page may hold.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

pub async fn list(
    AxState(state): AxState<State>,
    a: Authed,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (limit, before) = paging(q.as_deref().unwrap_or(""))?;
    let rows = history::own(&state, &a.user.id, limit, before).await?;
    let next = (rows.len() as i64 >= limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let body = SecurityEventsResponse {
        events: rows.iter().map(SecurityEventView::from_row).collect(),
        next,
    };
    Ok(json_response(
        serde_json::to_value(body).unwrap_or_default(),
    ))
}

/// `limit` (1..=100, default 20) and `before` (a positive seq); 400 `VALIDATION_ERROR`
/// naming the parameter otherwise.
fn paging(q: &str) -> Result<(i64, Option<i64>), ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::validation(format!(
                            "[query.limit] must be an integer from 1 to {MAX_LIMIT}"
                        ))
                    })?
            }
            "before" => {
                before = Some(v.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    ApiError::validation("[query.before] must be a positive integer")
                })?)
            }
            _ => {}
        }
    }
    Ok((limit, before))
}
