//! klard-auth: a standards-first OpenID Connect provider.
//!
//! See ARCHITECTURE.md for the map. The library is what the binary, the
//! integration tests and the conformance harness build on.

// Handlers return a ready `Response` as their error value on purpose (an error page or
// a redirect is the answer); boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod account_deletion;
pub mod accounts;
pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod breach;
pub mod captcha;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod email_change;
pub mod email_verification;
pub mod error;
pub mod http;
pub mod jose;
pub mod lockout;
pub mod mail;
pub mod oauth;
pub mod oidc;
pub mod password_change;
pub mod password_policy;
pub mod passwords;
pub mod rate_limit;
pub mod signup;
pub mod store;
pub mod tls;
pub mod ui;
pub mod user_fields;
