//! `GET /api/auth/error` (better-auth `routes/error.ts`): the page Better Auth sends
//! people to when a browser flow fails (`/error?error=CODE`). Only code-like values are
//! shown: anything else (markup, prose, a phishing message in the query) is replaced by
//! `UNKNOWN`, so the page cannot be used to put text in our name.

use askama::Template;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;

use crate::http::pages::render;

#[derive(Template)]
#[template(path = "api_error.html")]
struct ApiErrorPage<'a> {
    lang: &'a str,
    base: &'a str,
    code: &'a str,
}

/// A code as Better Auth and OAuth write them: 1–64 of `A-Z a-z 0-9 _ - .`.
pub fn is_code_like(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub async fn show(
    axum::extract::State(state): axum::extract::State<crate::app::State>,
    RawQuery(q): RawQuery,
) -> Response {
    // Read leniently: a malformed query is shown as UNKNOWN, not rejected.
    let raw = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let code = if is_code_like(&raw) {
        raw.as_str()
    } else {
        "UNKNOWN"
    };
    let base = state.config.issuer_path();
    render(
        StatusCode::OK,
        &ApiErrorPage {
            lang: "en",
            base: &base,
            code,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::is_code_like;

    #[test]
    fn only_code_like_values_are_shown() {
        for ok in ["INVALID_TOKEN", "access_denied", "state-mismatch", "a.b"] {
            assert!(is_code_like(ok), "{ok}");
        }
        for bad in ["", "<script>", "a b", "Call 555 now!", &"A".repeat(65), "é"] {
            assert!(!is_code_like(bad), "{bad}");
        }
    }
}
