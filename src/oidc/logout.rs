//! RP-Initiated Logout 1.0. With a valid `id_token_hint` for the current session the
//! user is logged out at once; without one (or for another session) the OP MUST ask the
//! user (§2), so a CSRF-protected confirmation page is shown. A post_logout_redirect_uri
//! is used only if registered for the identified client (§3); otherwise nothing redirects.

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::State;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::cookies;
use crate::http::pages::{LoggedOutPage, LogoutConfirmPage, error_page, render};
use crate::http::params::{Params, form_body};
use crate::oauth::authorize::response;
use crate::oidc::id_token;
use crate::store::clients;
use crate::ui::session as browser;

/// What to do once the user is logged out.
#[derive(Debug, Default, Serialize, Deserialize)]
struct After {
    redirect: Option<String>,
    state: Option<String>,
    client_name: Option<String>,
}

pub async fn get(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    run(&state, &headers, &p)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn post(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match form_body(&headers, &body) {
        Ok(p) => run(&state, &headers, &p)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => bad(&state, &e),
    }
}

fn bad(state: &State, e: &OAuthError) -> Response {
    error_page(
        &state.config.issuer_path(),
        StatusCode::BAD_REQUEST,
        e.error,
        &e.description,
    )
}

async fn run(state: &State, headers: &HeaderMap, p: &Params) -> Result<Response, Error> {
    if let Err(e) = p.reject_duplicates() {
        return Ok(bad(state, &e));
    }
    let hint = match p.get("id_token_hint") {
        Some(t) => match id_token::verify_hint(state, t).await {
            Some(c) => Some(c),
            None => {
                return Ok(bad(
                    state,
                    &OAuthError::invalid_request(
                        "id_token_hint is not a valid ID token of this server",
                    ),
                ));
            }
        },
        None => None,
    };
    let hint_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(|a| match a {
            Value::String(s) => Some(s.clone()),
            Value::Array(v) => v.first().and_then(Value::as_str).map(String::from),
            _ => None,
        });
    let client_id = match (hint_client, p.get("client_id")) {
        (Some(h), Some(c)) if h != c => {
            return Ok(bad(
                state,
                &OAuthError::invalid_request("client_id does not match the id_token_hint audience"),
            ));
        }
        (Some(h), _) => Some(h),
        (None, c) => c.map(String::from),
    };
    let client = match &client_id {
        Some(id) => clients::get(&state.db, id).await?,
        None => None,
    };
    if client_id.is_some() && client.is_none() {
        return Ok(bad(state, &OAuthError::invalid_request("unknown client")));
    }
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(u) => match &client {
            Some(c) if c.metadata.post_logout_redirect_uris.iter().any(|r| r == u) => {
                Some(u.to_string())
            }
            Some(_) => {
                return Ok(bad(
                    state,
                    &OAuthError::invalid_request(
                        "post_logout_redirect_uri is not registered for this client",
                    ),
                ));
            }
            None => {
                return Ok(bad(
                    state,
                    &OAuthError::invalid_request(
                        "post_logout_redirect_uri needs id_token_hint or client_id",
                    ),
                ));
            }
        },
    };
    let after = After {
        redirect,
        state: p.get("state").map(String::from),
        client_name: client.as_ref().map(|c| {
            c.metadata
                .client_name
                .clone()
                .unwrap_or_else(|| c.client_id.clone())
        }),
    };
    let session = browser::current(state, headers).await?;
    let Some((s, u)) = session else {
        // Nobody is logged in here: the outcome the RP wants already holds.
        return Ok(finish(state, &after));
    };
    let hint_matches = hint.as_ref().is_some_and(|c| {
        c.get("sid").and_then(Value::as_str) == Some(s.sid.as_str())
            || (c.get("sid").is_none()
                && c.get("sub").and_then(Value::as_str) == Some(u.id.as_str()))
    });
    if hint_matches {
        crate::ui::session::end(state, &s.user_id, &s.sid, "end_session").await?;
        return Ok(with_cleared_cookie(state, finish(state, &after)));
    }
    confirm_page(state, headers, &after)
}

fn confirm_page(state: &State, headers: &HeaderMap, after: &After) -> Result<Response, Error> {
    let (bid, set_cookie) = browser::browser_id(state, headers);
    let blob = crypto::b64url(
        serde_json::to_string(after)
            .map_err(Error::internal)?
            .as_bytes(),
    );
    let csrf = browser::csrf_token(state, "logout", &blob, &bid);
    let base = state.config.issuer_path();
    let mut r = render(
        StatusCode::OK,
        &LogoutConfirmPage {
            lang: "en",
            base: &base,
            client_name: after.client_name.clone(),
            csrf_token: &csrf,
            logout: &blob,
        },
    );
    if let Some(c) = set_cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// The confirmation form's target.
pub async fn confirm(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        let p = form_body(&headers, &body)?;
        let blob = p.get("logout").unwrap_or("");
        let (bid, _) = browser::browser_id(&state, &headers);
        if !browser::check_csrf(
            &state,
            "logout",
            blob,
            &bid,
            p.get("csrf_token").unwrap_or(""),
        ) {
            return Ok(bad(
                &state,
                &OAuthError::invalid_request("the form expired or was not sent by this page"),
            ));
        }
        let after: After = crypto::b64url_decode(blob)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if p.get("decision") != Some("logout") {
            return Ok(error_page(
                &state.config.issuer_path(),
                StatusCode::OK,
                "logout_cancelled",
                "You are still signed in.",
            ));
        }
        if let Some((s, _)) = browser::current(&state, &headers).await? {
            crate::ui::session::end(&state, &s.user_id, &s.sid, "end_session").await?;
        }
        Ok::<_, Error>(with_cleared_cookie(&state, finish(&state, &after)))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

fn finish(state: &State, after: &After) -> Response {
    match &after.redirect {
        Some(uri) => {
            let mut params = Vec::new();
            if let Some(s) = &after.state {
                params.push(("state".to_string(), s.clone()));
            }
            response::deliver(uri, "query", params)
        }
        None => render(
            StatusCode::OK,
            &LoggedOutPage {
                lang: "en",
                base: &state.config.issuer_path(),
            },
        ),
    }
}

fn with_cleared_cookie(state: &State, mut r: Response) -> Response {
    r.headers_mut().append(
        header::SET_COOKIE,
        cookies::clear(&state.config, cookies::SESSION),
    );
    r
}
