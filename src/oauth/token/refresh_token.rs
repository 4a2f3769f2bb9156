//! The refresh_token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): each use rotates the token; presenting a rotated token again
//! revokes the family, except inside a short grace window where a retry or a parallel
//! refresh gets a fresh pair in the same family.

use axum::response::Response;

use crate::app::State;
use crate::audit::{self, Actor, Event, kind};
use crate::crypto;
use crate::error::{Error, OAuthError};
use crate::http::params::Params;
use crate::oauth::{mint, scopes};
use crate::oidc::id_token;
use crate::store::clients::Client;
use crate::store::tokens::{self, Rotation};
use crate::store::{grants, users};

pub async fn exchange(state: &State, client: &Client, p: &Params) -> Result<Response, Error> {
    let presented = p.require("refresh_token")?;
    let now = state.clock.now();
    let hash = crypto::hash_secret(presented);
    let Some(row) = tokens::refresh_by_hash(&state.db, &hash).await? else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid").into());
    };
    // RFC 6749 §6: bound to the client it was issued to.
    if row.family.client_id != client.client_id {
        return Err(
            OAuthError::invalid_grant("the refresh token was issued to another client").into(),
        );
    }
    if row.family.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked").into());
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired").into());
    }
    let grace = state.config.tokens.refresh_reuse_grace;
    let in_grace = |rotated_at: i64| grace > 0 && now - rotated_at <= grace;
    if let Some(at) = row.rotated_at
        && !in_grace(at)
    {
        return Err(reuse_detected(state, &row.family, now).await);
    }
    // RFC 6749 §6: a narrower scope may be requested, never a wider one.
    let mut ctx = row.ctx.clone();
    if let Some(s) = p.get("scope") {
        let requested = scopes::parse(s)?;
        let have: Vec<&str> = ctx.scope.split(' ').collect();
        if let Some(extra) = requested.iter().find(|r| !have.contains(&r.as_str())) {
            return Err(OAuthError::invalid_scope(format!(
                "scope `{extra}` was not granted originally"
            ))
            .into());
        }
        ctx.scope = requested.join(" ");
    }
    if !grants::is_active(&state.db, &row.family.grant_id).await? {
        return Err(
            OAuthError::invalid_grant("the grant behind this refresh token was revoked").into(),
        );
    }
    let user = users::by_id(&state.db, &row.family.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let access =
        mint::access_token(state, client, Some(&user.id), &ctx, Some(&row.family.id)).await?;
    let (new_token, new_hash) = mint::refresh_token();
    // The successor keeps the family's full scope, so a narrowed request now does not
    // shrink what later refreshes may ask for.
    let rotate = |grace_reissue: bool| {
        tokens::rotate_refresh(
            &state.db,
            &hash,
            &new_hash,
            &row.family.id,
            &row.ctx,
            &access.record,
            now,
            now + state.config.tokens.refresh_token_ttl,
            grace_reissue,
        )
    };
    if let Rotation::AlreadyRotated = rotate(row.rotated_at.is_some()).await? {
        // A concurrent request rotated it between our read and our write.
        let fresh = tokens::refresh_by_hash(&state.db, &hash).await?;
        let rotated_at = fresh.and_then(|r| r.rotated_at).unwrap_or(i64::MIN);
        if !in_grace(rotated_at) {
            return Err(reuse_detected(state, &row.family, now).await);
        }
        rotate(true).await?;
    }
    // OIDC Core §12.2: an ID token may accompany the refresh; same sub and auth_time,
    // no nonce.
    let id_token = if ctx.scope.split(' ').any(|s| s == "openid") {
        Some(id_token::issue(state, client, &user, &ctx, Some(&access.jwt), false).await?)
    } else {
        None
    };
    Ok(mint::token_response(
        &access,
        &ctx.scope,
        id_token,
        Some(new_token),
    ))
}

/// RFC 9700 §4.14.2: a rotated refresh token came back, so one of its two holders is
/// an attacker; the family ends, the event is recorded with it, and the owner is told.
async fn reuse_detected(state: &State, family: &tokens::Family, now: i64) -> Error {
    tracing::warn!(family = %family.id, "refresh token reuse detected; family revoked");
    let event = Event::here(kind::REFRESH_TOKEN_REUSED)
        .actor(Actor::Client(family.client_id.clone()))
        .user(&family.user_id)
        .client(Some(&family.client_id))
        .with("family", family.id.clone())
        .with("sid", family.session_sid.clone());
    let event = Some(audit::pending(state, event));
    let reason = "refresh token reuse";
    if let Err(e) = tokens::revoke_family_recorded(&state.db, &family.id, reason, now, event).await
    {
        return e.into();
    }
    if state.config.alerts.refresh_reuse {
        alert_reuse(state, family, now).await;
    }
    OAuthError::invalid_grant(
        "the refresh token was already used; the session's tokens are revoked",
    )
    .into()
}

/// The refresh-reuse alert mail (`alerts.refresh_reuse`); a failure is logged, never
/// turned into the token response.
async fn alert_reuse(state: &State, family: &tokens::Family, now: i64) {
    let Ok(Some(user)) = users::by_id(&state.db, &family.user_id).await else {
        return;
    };
    let app = match crate::store::clients::get(&state.db, &family.client_id).await {
        Ok(Some(c)) => c.metadata.client_name.unwrap_or(c.client_id),
        _ => family.client_id.clone(),
    };
    let locale = user
        .claims
        .get("locale")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let msg = match crate::mail::account_templates::refresh_reuse(
        &state.config.mail.branding,
        &user.email,
        locale,
        &app,
        now,
        &state.config.url("/account/password"),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "refresh reuse alert: cannot render the mail");
            return;
        }
    };
    if let Err(e) = crate::mail::enqueue(&state.db, &msg, now).await {
        tracing::error!(error = %e, "refresh reuse alert: cannot queue the mail");
    }
}
