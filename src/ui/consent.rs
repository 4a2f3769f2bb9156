//! The consent page: names the client and the scopes; allow records the grant, deny
//! returns access_denied to the client (RFC 6749 §4.1.2.1).

use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::State;
use crate::error::{Error, OAuthError};
use crate::http::pages::{ClientView, ConsentPage, render};
use crate::http::params::form_body;
use crate::oauth::authorize::{
    InteractionQuery, load_interaction, page_error, redirect_error, response,
};
use crate::oauth::scopes;
use crate::store::{grants, sessions};
use crate::ui::session as browser;

/// The session the consent is for: the one that logged in during this interaction, or
/// the browser's existing one.
async fn consenting_user(
    state: &State,
    headers: &HeaderMap,
    i: &sessions::Interaction,
) -> Result<Option<crate::store::users::User>, Error> {
    let Some((s, u)) = browser::current(state, headers).await? else {
        return Ok(None);
    };
    if i.login_done && i.session_sid.as_deref() != Some(s.sid.as_str()) {
        return Ok(None);
    }
    Ok(Some(u))
}

pub async fn show(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Query(q): Query<InteractionQuery>,
) -> Response {
    let (i, req, client, bid) =
        match load_interaction(&state, &headers, q.interaction.as_deref()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let user = match consenting_user(&state, &headers, &i).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return page_error(
                &state,
                &OAuthError::invalid_request(
                    "you are not signed in; start again from the application",
                ),
            );
        }
        Err(e) => return e.into_response(),
    };
    let csrf = browser::csrf_token(&state, "consent", &i.id, &bid);
    let base = state.config.issuer_path();
    let described: Vec<&'static str> = req.scopes.iter().map(|s| scopes::describe(s)).collect();
    let mut unique: Vec<&'static str> = Vec::new();
    for d in described {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    render(
        StatusCode::OK,
        &ConsentPage {
            lang: "en",
            base: &base,
            client: ClientView::of(&client),
            interaction: &i.id,
            csrf_token: &csrf,
            user_email: &user.email,
            scopes: unique,
        },
    )
}

pub async fn submit(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match form_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return page_error(&state, &e),
    };
    let (i, req, _client, bid) =
        match load_interaction(&state, &headers, p.get("interaction")).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    if !browser::check_csrf(
        &state,
        "consent",
        &i.id,
        &bid,
        p.get("csrf_token").unwrap_or(""),
    ) {
        return page_error(
            &state,
            &OAuthError::invalid_request(
                "the form expired or was not sent by this page; go back and try again",
            ),
        );
    }
    let user = match consenting_user(&state, &headers, &i).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return page_error(
                &state,
                &OAuthError::invalid_request(
                    "you are not signed in; start again from the application",
                ),
            );
        }
        Err(e) => return e.into_response(),
    };
    let now = state.clock.now();
    match p.get("decision") {
        Some("allow") => {
            let r = async {
                grants::upsert(&state.db, &user.id, &req.client_id, &req.scopes, now).await?;
                sessions::interaction_consented(&state.db, &i.id).await?;
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = r {
                return e.into_response();
            }
            response::redirect(&format!(
                "{}/authorize/resume?interaction={}",
                state.config.issuer_path(),
                i.id
            ))
        }
        Some("deny") => {
            match sessions::complete_interaction(&state.db, &i.id, now).await {
                Ok(true) => {}
                Ok(false) => {
                    return page_error(
                        &state,
                        &OAuthError::invalid_request("this sign-in request was already completed"),
                    );
                }
                Err(e) => return Error::from(e).into_response(),
            }
            redirect_error(
                &state,
                &req,
                OAuthError::access_denied("the user denied the request"),
            )
        }
        _ => page_error(
            &state,
            &OAuthError::invalid_request("decision must be `allow` or `deny`"),
        ),
    }
}
