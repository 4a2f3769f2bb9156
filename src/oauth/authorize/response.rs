//! Authorization responses: query, fragment or form_post, always with `iss` (RFC 9207 §2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::crypto;
use crate::error::OAuthError;
use crate::http::pages::{FormPostPage, render_with_csp};

/// Sends `params` to `redirect_uri` in `mode`. Query parameters already in the
/// registered URI are kept (RFC 6749 §3.1.2).
pub fn deliver(redirect_uri: &str, mode: &str, params: Vec<(String, String)>) -> Response {
    if params.is_empty() {
        return redirect(redirect_uri);
    }
    match mode {
        "form_post" => form_post(redirect_uri, params),
        "fragment" => {
            let frag: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            redirect(&format!("{redirect_uri}#{frag}"))
        }
        _ => match Url::parse(redirect_uri) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in &params {
                        q.append_pair(k, v);
                    }
                }
                redirect(u.as_str())
            }
            // Only registered URIs reach here, and they were parsed at registration.
            Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
        },
    }
}

pub fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// OAuth 2.0 Form Post Response Mode §2: an auto-submitting form, allowed to run only
/// its own script (CSP nonce).
fn form_post(action: &str, fields: Vec<(String, String)>) -> Response {
    let nonce = crypto::random_token(16);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'"
    );
    render_with_csp(
        StatusCode::OK,
        &FormPostPage {
            action,
            fields,
            nonce: &nonce,
        },
        &csp,
    )
}

/// An error delivered to the client (RFC 6749 §4.1.2.1, RFC 9207).
pub fn error(
    issuer: &str,
    redirect_uri: &str,
    mode: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> Response {
    let mut params = vec![
        ("error".to_string(), err.error.to_string()),
        ("error_description".to_string(), err.description.clone()),
    ];
    if let Some(s) = state {
        params.push(("state".into(), s.into()));
    }
    params.push(("iss".into(), issuer.into()));
    deliver(redirect_uri, mode, params)
}
