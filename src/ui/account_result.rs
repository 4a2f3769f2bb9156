//! The page shown at the end of an account action (a mailed link opened in a browser,
//! a hosted form sent): what happened, or why not.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::State;
use crate::http::pages::render;

#[derive(Template)]
#[template(path = "account_result.html")]
pub struct ResultPage<'a> {
    pub lang: &'a str,
    pub base: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    /// A machine-readable outcome (`data-code`), the API's error code on failure.
    pub code: &'a str,
    pub is_error: bool,
}

/// Renders the result page; a status of 400 and above shows the message as an error.
pub fn page(
    state: &State,
    status: StatusCode,
    code: &str,
    title: &str,
    message: &str,
    hint: Option<&str>,
) -> Response {
    let base = state.config.issuer_path();
    render(
        status,
        &ResultPage {
            lang: "en",
            base: &base,
            title,
            message,
            hint,
            code,
            is_error: status.as_u16() >= 400,
        },
    )
}
