//! The authorization_code grant (RFC 6749 §4.1.3, OIDC Core §3.1.3).

use axum::response::Response;

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::params::Params;
use crate::oauth::{mint, pkce};
use crate::oidc::id_token;
use crate::store::clients::Client;
use crate::store::tokens::{self, CodeUse, Family};
use crate::store::{grants, users};

/// OIDC Core §11: a refresh token only with offline_access (or for first-party clients
/// when configured), and only for clients allowed the refresh_token grant.
pub fn issues_refresh(state: &State, client: &Client, scope: &str) -> bool {
    client.metadata.allows_grant("refresh_token")
        && (scope.split(' ').any(|s| s == "offline_access")
            || (client.metadata.first_party
                && state
                    .config
                    .tokens
                    .first_party_refresh_without_offline_access))
}

pub async fn exchange(state: &State, client: &Client, p: &Params) -> Result<Response, Error> {
    let code = p.require("code")?;
    let now = state.clock.now();
    let hash = crypto::hash_secret(code);
    let row = match tokens::use_code(&state.db, &hash, now).await? {
        CodeUse::First(r) => r,
        CodeUse::Reused(r) => {
            // RFC 6749 §4.1.2: a second use fails, and what the code yielded is revoked.
            if r.client_id == client.client_id {
                let (family, jti) = tokens::mark_code_reused(&state.db, &hash, now).await?;
                let event = Event::here(kind::CODE_REUSED)
                    .actor(Actor::Client(client.client_id.clone()))
                    .user(&r.user_id)
                    .client(Some(&client.client_id))
                    .with("family", family.clone());
                let event = audit::pending(state, event);
                let reason = "authorization code reused";
                match &family {
                    Some(f) => {
                        tokens::revoke_family_recorded(&state.db, f, reason, now, Some(event))
                            .await?
                    }
                    None => {
                        audit::record_pending(state, event).await?;
                    }
                }
                if let Some(j) = &jti {
                    tokens::revoke_access(&state.db, j, now).await?;
                }
                tracing::warn!(client_id = %client.client_id, "authorization code reuse; tokens revoked");
            }
            return Err(
                OAuthError::invalid_grant("the authorization code was already used").into(),
            );
        }
        CodeUse::Unknown => {
            return Err(OAuthError::invalid_grant("the authorization code is invalid").into());
        }
    };
    // Bound to the client it was issued to (RFC 6749 §4.1.3).
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )
        .into());
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code has expired").into());
    }
    // RFC 6749 §4.1.3: redirect_uri must be identical if it was in the authorization request.
    match p.get("redirect_uri") {
        Some(u) if u != row.data.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            )
            .into());
        }
        None if row.data.redirect_uri_sent => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required (it was in the authorization request)",
            )
            .into());
        }
        _ => {}
    }
    pkce::verify(
        row.data.code_challenge.as_deref(),
        row.data.code_challenge_method.as_deref(),
        p.get("code_verifier"),
    )?;
    if !grants::is_active(&state.db, &row.grant_id).await? {
        return Err(OAuthError::invalid_grant("the grant behind this code was revoked").into());
    }
    let user = users::by_id(&state.db, &row.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let ctx = row.data.ctx.clone();
    let refresh = issues_refresh(state, client, &ctx.scope);
    let family_id = refresh.then(|| uuid::Uuid::now_v7().to_string());
    let access =
        mint::access_token(state, client, Some(&user.id), &ctx, family_id.as_deref()).await?;
    let id_token = if ctx.scope.split(' ').any(|s| s == "openid") {
        Some(id_token::issue(state, client, &user, &ctx, Some(&access.jwt), true).await?)
    } else {
        None
    };
    let refresh_token = match &family_id {
        Some(fid) => {
            let (t, h) = mint::refresh_token();
            let family = Family {
                id: fid.clone(),
                client_id: client.client_id.clone(),
                user_id: user.id.clone(),
                grant_id: row.grant_id.clone(),
                session_sid: ctx.sid.clone(),
                revoked_at: None,
            };
            tokens::start_family(
                &state.db,
                &family,
                &h,
                &ctx,
                &access.record,
                now,
                now + state.config.tokens.refresh_token_ttl,
            )
            .await?;
            Some(t)
        }
        None => {
            tokens::record_access(&state.db, &access.record).await?;
            None
        }
    };
    if tokens::link_code(&state.db, &hash, family_id.as_deref(), &access.record.jti).await? {
        // A replay arrived while this exchange was running, before these tokens were
        // linked to the code: revoke them now (RFC 6749 §4.1.2) and fail this exchange too.
        if let Some(f) = &family_id {
            tokens::revoke_family(&state.db, f, "authorization code reused", now).await?;
        }
        tokens::revoke_access(&state.db, &access.record.jti, now).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was used twice; its tokens are revoked",
        )
        .into());
    }
    Ok(mint::token_response(
        &access,
        &ctx.scope,
        id_token,
        refresh_token,
    ))
}
