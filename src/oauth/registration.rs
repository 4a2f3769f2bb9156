//! Dynamic client registration (RFC 7591) and the client configuration endpoint
//! (RFC 7592: read, update, delete with the registration access token).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::config::RegistrationMode;
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::oauth::clients::{new_client, validate_metadata};
use crate::store::clients::{self, Client};

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn invalid_token(desc: &str) -> Error {
    OAuthError::invalid_token(desc)
        .with_www_authenticate(format!(
            "Bearer error=\"invalid_token\", error_description=\"{desc}\""
        ))
        .into()
}

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Error> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(OAuthError::invalid_client_metadata(
            "the request body must be application/json",
        )
        .into());
    }
    serde_json::from_slice(body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("the request body is not valid JSON: {e}"))
            .into()
    })
}

/// The client information response (RFC 7591 §3.2.1).
fn client_information(
    state: &State,
    c: &Client,
    secret: Option<&str>,
    reg_token: Option<&str>,
) -> Value {
    let mut v = serde_json::to_value(&c.metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("first_party");
        m.remove("access_token_audience");
        m.insert("client_id".into(), json!(c.client_id));
        m.insert("client_id_issued_at".into(), json!(c.created_at));
        if let Some(s) = secret {
            m.insert("client_secret".into(), json!(s));
        }
        if c.secret_hash.is_some() {
            // REQUIRED whenever a secret was issued; 0 = never expires.
            m.insert(
                "client_secret_expires_at".into(),
                json!(c.secret_expires_at),
            );
        }
        if let Some(t) = reg_token {
            m.insert("registration_access_token".into(), json!(t));
        }
        if c.registration_token_hash.is_some() {
            m.insert(
                "registration_client_uri".into(),
                json!(state.config.url(&format!("/register/{}", c.client_id))),
            );
        }
    }
    v
}

fn respond(status: StatusCode, v: Value) -> Response {
    let mut r = (status, Json(v)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// RFC 7591 §3.1: open registration, or an initial access token.
fn check_may_register(state: &State, headers: &HeaderMap) -> Result<(), Error> {
    match state.config.registration.mode {
        RegistrationMode::Open => Ok(()),
        RegistrationMode::Closed => Err(OAuthError::access_denied(
            "dynamic client registration is disabled",
        )
        .with_status(StatusCode::FORBIDDEN)
        .into()),
        RegistrationMode::InitialAccessToken => {
            let Some(t) = bearer(headers) else {
                return Err(invalid_token("an initial access token is required"));
            };
            let h = crypto::hash_secret(t);
            let ok = state
                .config
                .registration
                .initial_access_tokens
                .iter()
                .any(|k| crypto::ct_eq(crypto::hash_secret(k).as_bytes(), h.as_bytes()));
            if ok {
                Ok(())
            } else {
                Err(invalid_token("the initial access token is invalid"))
            }
        }
    }
}

pub async fn create(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        check_may_register(&state, &headers)?;
        let doc = json_body(&headers, &body)?;
        let meta = validate_metadata(&doc, false)?;
        let now = state.clock.now();
        let (mut client, secret) = new_client(
            meta,
            None,
            None,
            "dynamic",
            now,
            state.config.registration.client_secret_ttl,
        );
        let reg_token = crypto::random_token(32);
        client.registration_token_hash = Some(crypto::hash_secret(&reg_token));
        // RFC 7591 §3: whoever holds the registration endpoint's door; no account.
        let event = Event::here(kind::CLIENT_REGISTERED)
            .client(Some(&client.client_id))
            .with("source", "dynamic");
        clients::insert_recorded(&state.db, &client, audit::pending(&state, event)).await?;
        tracing::info!(client_id = %client.client_id, "client registered");
        Ok::<_, Error>(respond(
            StatusCode::CREATED,
            client_information(&state, &client, secret.as_deref(), Some(&reg_token)),
        ))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// RFC 7592 §2: the registration access token authorises access to this one client; a
/// wrong token or unknown client is 401 either way.
async fn authorised(state: &State, headers: &HeaderMap, client_id: &str) -> Result<Client, Error> {
    let t = bearer(headers)
        .ok_or_else(|| invalid_token("the registration access token is required"))?;
    let client = clients::get(&state.db, client_id).await?;
    let presented = crypto::hash_secret(t);
    match client {
        Some(c)
            if c.registration_token_hash
                .as_deref()
                .is_some_and(|h| crypto::ct_eq(h.as_bytes(), presented.as_bytes())) =>
        {
            Ok(c)
        }
        _ => Err(invalid_token("the registration access token is invalid")),
    }
}

pub async fn read(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match authorised(&state, &headers, &id).await {
        // RFC 7592 §3: registration_access_token is REQUIRED in the client information
        // response; only its hash is stored, so return the (verified) token presented.
        Ok(c) => respond(
            StatusCode::OK,
            client_information(&state, &c, None, bearer(&headers)),
        ),
        Err(e) => e.into_response(),
    }
}

/// RFC 7592 §2.2: the request replaces the metadata; it must name the same client_id and,
/// if it includes client_secret, the current one.
pub async fn update(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let r = async {
        let mut c = authorised(&state, &headers, &id).await?;
        let mut doc = json_body(&headers, &body)?;
        let Some(m) = doc.as_object_mut() else {
            return Err(OAuthError::invalid_client_metadata(
                "the request body must be a JSON object",
            )
            .into());
        };
        if m.get("client_id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(OAuthError::invalid_request(
                "client_id must be present and match the client",
            )
            .into());
        }
        if let Some(s) = m.get("client_secret").and_then(Value::as_str) {
            let ok = c
                .secret_hash
                .as_deref()
                .is_some_and(|h| crypto::ct_eq(h.as_bytes(), crypto::hash_secret(s).as_bytes()));
            if !ok {
                return Err(OAuthError::invalid_request("client_secret does not match").into());
            }
        }
        for k in [
            "client_id",
            "client_secret",
            "registration_access_token",
            "registration_client_uri",
            "client_id_issued_at",
            "client_secret_expires_at",
        ] {
            m.remove(k);
        }
        let meta = validate_metadata(&doc, false)?;
        let mut new_secret = None;
        let needs_secret =
            !meta.is_public() && meta.token_endpoint_auth_method != "private_key_jwt";
        if needs_secret && c.secret_hash.is_none() {
            let s = crypto::random_token(32);
            c.secret_hash = Some(crypto::hash_secret(&s));
            new_secret = Some(s);
        } else if !needs_secret {
            c.secret_hash = None;
            c.secret_expires_at = 0;
        }
        c.metadata = meta;
        c.updated_at = state.clock.now();
        // RFC 7592 §2.2: the client itself, by its registration access token.
        let event = Event::here(kind::CLIENT_UPDATED)
            .actor(Actor::Client(c.client_id.clone()))
            .client(Some(&c.client_id))
            .with("secret_rotated", new_secret.is_some());
        clients::update(&state.db, &c, audit::pending(&state, event)).await?;
        Ok::<_, Error>(respond(
            StatusCode::OK,
            // RFC 7592 §3: the registration access token is REQUIRED here too.
            client_information(&state, &c, new_secret.as_deref(), bearer(&headers)),
        ))
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn delete(
    AxState(state): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let c = authorised(&state, &headers, &id).await?;
        let event = Event::here(kind::CLIENT_DELETED)
            .actor(Actor::Client(c.client_id.clone()))
            .client(Some(&c.client_id));
        let event = audit::pending(&state, event);
        clients::delete(&state.db, &c.client_id, state.clock.now(), event).await?;
        tracing::info!(client_id = %c.client_id, "client deleted through RFC 7592");
        Ok::<_, Error>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}
