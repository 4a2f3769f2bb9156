//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2): validate the request,
//! decide whether the user must log in or consent, pause in an interaction if so, and
//! finish by issuing a code.

pub mod request;
pub mod response;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::State;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::pages::error_page;
use crate::http::params::{Params, form_body};
use crate::store::clients::{self, Client};
use crate::store::grants;
use crate::store::sessions::{self, Interaction, Session};
use crate::store::tokens::{self, CodeData, TokenContext};
use crate::store::users::User;
use crate::ui::session as browser;
use request::{AuthzRequest, Failure};

pub async fn get(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    run(&state, &headers, p).await
}

/// OIDC Core §3.1.2.1: POST with form serialization is supported too.
pub async fn post(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    match form_body(&headers, &body) {
        Ok(p) => run(&state, &headers, p).await,
        Err(e) => page_error(&state, &e),
    }
}

fn base(state: &State) -> String {
    state.config.issuer_path()
}

pub fn page_error(state: &State, e: &OAuthError) -> Response {
    let status = if e.status == StatusCode::INTERNAL_SERVER_ERROR {
        e.status
    } else {
        StatusCode::BAD_REQUEST
    };
    error_page(&base(state), status, e.error, &e.description)
}

async fn run(state: &State, headers: &HeaderMap, p: Params) -> Response {
    match request::validate(state, &p).await {
        Err(Failure::Page(e)) => page_error(state, &e),
        Err(Failure::Redirect {
            err,
            redirect_uri,
            response_mode,
            state: st,
        }) => response::error(
            &state.config.issuer,
            &redirect_uri,
            &response_mode,
            st.as_deref(),
            &err,
        ),
        Ok((client, req)) => match decide(state, headers, &client, &req, None).await {
            Ok(r) => r,
            Err(e) => internal(state, &client, &req, e),
        },
    }
}

/// A storage failure after the redirect URI is known still goes back to the client
/// as `server_error` (RFC 6749 §4.1.2.1).
fn internal(state: &State, _client: &Client, req: &AuthzRequest, e: Error) -> Response {
    let err = match e {
        Error::OAuth(o) => o,
        other => {
            tracing::error!(error = %other, "authorization failed");
            OAuthError::server_error("the server could not complete the request")
        }
    };
    redirect_error(state, req, err)
}

pub fn redirect_error(state: &State, req: &AuthzRequest, err: OAuthError) -> Response {
    response::error(
        &state.config.issuer,
        &req.redirect_uri,
        &req.response_mode,
        req.state.as_deref(),
        &err,
    )
}

/// OIDC Core §3.1.2.3: must the user authenticate (again)?
fn needs_login(
    now: i64,
    req: &AuthzRequest,
    session: Option<&(Session, User)>,
    interaction: Option<&Interaction>,
) -> bool {
    let Some((s, u)) = session else { return true };
    if let Some(i) = interaction
        && i.login_done
        && i.session_sid.as_deref() == Some(s.sid.as_str())
    {
        return false;
    }
    req.has_prompt("login")
        || req.has_prompt("select_account")
        // OIDC Core §3.1.2.1: re-authenticate when the elapsed time is greater than
        // max_age; "max_age=0 is equivalent to prompt=login".
        || req.max_age.is_some_and(|m| m == 0 || now - s.auth_time > m)
        || req.hint_sub.as_deref().is_some_and(|h| h != u.id)
}

/// Consent is remembered per grant; asked again when scopes grow or prompt=consent.
/// First-party clients skip it.
async fn needs_consent(
    state: &State,
    client: &Client,
    user: &User,
    req: &AuthzRequest,
    interaction: Option<&Interaction>,
) -> Result<bool, Error> {
    if client.metadata.first_party || interaction.is_some_and(|i| i.consent_done) {
        return Ok(false);
    }
    if req.has_prompt("consent") {
        return Ok(true);
    }
    let grant = grants::find(&state.db, &user.id, &client.client_id).await?;
    Ok(!grant.is_some_and(|g| g.covers(&req.scopes)))
}

/// The heart of the endpoint, also used when an interaction resumes.
pub async fn decide(
    state: &State,
    headers: &HeaderMap,
    client: &Client,
    req: &AuthzRequest,
    interaction: Option<Interaction>,
) -> Result<Response, Error> {
    let now = state.clock.now();
    let session = browser::current(state, headers).await?;
    if needs_login(now, req, session.as_ref(), interaction.as_ref()) {
        if req.has_prompt("none") {
            return Ok(redirect_error(
                state,
                req,
                OAuthError::login_required("the user is not logged in"),
            ));
        }
        return pause(state, headers, req, interaction, "login").await;
    }
    let Some((session, user)) = session else {
        return pause(state, headers, req, interaction, "login").await;
    };
    if needs_consent(state, client, &user, req, interaction.as_ref()).await? {
        if req.has_prompt("none") {
            return Ok(redirect_error(
                state,
                req,
                OAuthError::consent_required("the user has not consented to this client"),
            ));
        }
        return pause(state, headers, req, interaction, "consent").await;
    }
    if let Some(i) = &interaction
        && !sessions::complete_interaction(&state.db, &i.id, now).await?
    {
        return Ok(page_error(
            state,
            &OAuthError::invalid_request(
                "this sign-in request was already completed; start again from the application",
            ),
        ));
    }
    issue_code(state, client, req, &session, &user).await
}

/// Stores (or reuses) the interaction and sends the browser to the login or consent page.
async fn pause(
    state: &State,
    headers: &HeaderMap,
    req: &AuthzRequest,
    interaction: Option<Interaction>,
    page: &str,
) -> Result<Response, Error> {
    let (bid, set_cookie) = browser::browser_id(state, headers);
    let id = match interaction {
        Some(i) => i.id,
        None => {
            let now = state.clock.now();
            let i = Interaction {
                id: crypto::random_token(24),
                browser_hash: crypto::hash_secret(&bid),
                client_id: req.client_id.clone(),
                request: serde_json::to_string(req).map_err(Error::internal)?,
                session_sid: None,
                login_done: false,
                consent_done: false,
                created_at: now,
                expires_at: now + state.config.session.interaction_ttl,
                completed_at: None,
            };
            sessions::insert_interaction(&state.db, &i).await?;
            i.id
        }
    };
    let mut resp = response::redirect(&format!("{}/{page}?interaction={id}", base(state)));
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// OIDC Core §11: offline_access is honoured only with consent for it (or for a
/// first-party client), and only for clients allowed to refresh.
fn effective_scopes(
    client: &Client,
    req: &AuthzRequest,
    consented: Option<&grants::Grant>,
) -> Vec<String> {
    req.scopes
        .iter()
        .filter(|s| {
            s.as_str() != "offline_access"
                || (client.metadata.allows_grant("refresh_token")
                    && (client.metadata.first_party
                        || consented.is_some_and(|g| g.covers(&[s.to_string()]))))
        })
        .cloned()
        .collect()
}

async fn issue_code(
    state: &State,
    client: &Client,
    req: &AuthzRequest,
    session: &Session,
    user: &User,
) -> Result<Response, Error> {
    let now = state.clock.now();
    let existing = grants::find(&state.db, &user.id, &client.client_id).await?;
    let scopes = effective_scopes(client, req, existing.as_ref());
    let grant_id = grants::upsert(&state.db, &user.id, &client.client_id, &scopes, now).await?;
    let code = crypto::random_token(32);
    let data = CodeData {
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_sent: req.redirect_uri_sent,
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        ctx: TokenContext {
            scope: scopes.join(" "),
            auth_time: session.auth_time,
            acr: session.acr.clone(),
            amr: session.amr.clone(),
            sid: Some(session.sid.clone()),
            nonce: req.nonce.clone(),
            claims: req.claims.clone(),
            audience: req.resource.clone(),
            auth_time_required: req.max_age.is_some(),
        },
    };
    tokens::insert_code(
        &state.db,
        &crypto::hash_secret(&code),
        &client.client_id,
        &user.id,
        &grant_id,
        &data,
        now,
        now + state.config.tokens.code_ttl,
    )
    .await?;
    let mut params = vec![("code".to_string(), code)];
    if let Some(s) = &req.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), state.config.issuer.clone()));
    Ok(response::deliver(
        &req.redirect_uri,
        &req.response_mode,
        params,
    ))
}

#[derive(Deserialize)]
pub struct InteractionQuery {
    pub interaction: Option<String>,
}

/// Loads an interaction for this browser, or explains why it cannot continue.
pub async fn load_interaction(
    state: &State,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(Interaction, AuthzRequest, Client, String), Response> {
    let fail = |msg: &str| Err(page_error(state, &OAuthError::invalid_request(msg)));
    let Some(id) = id else {
        return fail("the interaction parameter is missing");
    };
    let i = match sessions::interaction(&state.db, id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return fail("this sign-in request is unknown; start again from the application");
        }
        Err(e) => return Err(Error::from(e).into_response()),
    };
    let (bid, _) = browser::browser_id(state, headers);
    if !crypto::ct_eq(
        crypto::hash_secret(&bid).as_bytes(),
        i.browser_hash.as_bytes(),
    ) {
        return fail("this sign-in request was started in another browser");
    }
    if i.expires_at <= state.clock.now() {
        return fail("this sign-in request has expired; start again from the application");
    }
    if i.completed_at.is_some() {
        return fail(
            "this sign-in request was already completed; start again from the application",
        );
    }
    let Ok(req) = serde_json::from_str::<AuthzRequest>(&i.request) else {
        return fail("this sign-in request cannot be read");
    };
    let client = match clients::get(&state.db, &i.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return fail("the application of this sign-in request no longer exists"),
        Err(e) => return Err(Error::from(e).into_response()),
    };
    Ok((i, req, client, bid))
}

/// Continues a paused request after login or consent.
pub async fn resume(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Query(q): Query<InteractionQuery>,
) -> Response {
    let (i, req, client, _) =
        match load_interaction(&state, &headers, q.interaction.as_deref()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    match decide(&state, &headers, &client, &req, Some(i)).await {
        Ok(r) => r,
        Err(e) => internal(&state, &client, &req, e),
    }
}

pub fn with_cookie(mut resp: Response, cookie: HeaderValue) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}
