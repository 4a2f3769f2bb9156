//! The hosted pages: login and consent resume a paused authorization request.

pub mod consent;
pub mod login;
pub mod recovery;
pub mod session;
