//! OAuth 2.0 endpoints and the rules they share.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod introspect;
pub mod mint;
pub mod pkce;
pub mod redirect_uri;
pub mod registration;
pub mod revoke;
pub mod scopes;
pub mod token;
