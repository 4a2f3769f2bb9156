//! The hosted pages: login and consent resume a paused authorization request.

pub mod account;
pub mod account_delete;
pub mod account_email;
pub mod account_login;
pub mod account_password;
pub mod account_result;
pub mod consent;
pub mod login;
pub mod recovery;
pub mod session;
pub mod signup;
