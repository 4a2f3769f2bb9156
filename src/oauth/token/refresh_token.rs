//! The refresh_token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): each use rotates the token; presenting a rotated token again
//! revokes the family, except inside a short grace window where a retry or a parallel
//! refresh gets a fresh pair in the same family.

use axum::response::Response;

use crate::app::State;
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
        return Err(reuse_detected(state, &row.family.id, now).await);
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
            return Err(reuse_detected(state, &row.family.id, now).await);
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

async fn reuse_detected(state: &State, family_id: &str, now: i64) -> Error {
    tracing::warn!(family = %family_id, "refresh token reuse detected; family revoked");
    if let Err(e) = tokens::revoke_family(&state.db, family_id, "refresh token reuse", now).await {
        return e.into();
    }
    OAuthError::invalid_grant(
        "the refresh token was already used; the session's tokens are revoked",
    )
    .into()
}
