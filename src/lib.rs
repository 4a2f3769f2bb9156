//! klard-auth: a standards-first OpenID Connect provider.
//!
//! See ARCHITECTURE.md for the map. The library is what the binary, the
//! integration tests and the conformance harness build on.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod http;
pub mod jose;
pub mod oauth;
pub mod oidc;
pub mod passwords;
pub mod store;
pub mod tls;
pub mod ui;
