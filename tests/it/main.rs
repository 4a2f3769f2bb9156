//! The one integration-test binary. Every test starts its own server on a free port
//! with its own database: a fresh SQLite file, or a fresh PostgreSQL database.
//! `db_tests!` runs each listed test on both.

#[macro_use]
mod support;

mod account_page;
mod admin_scope;
mod api_account;
mod api_auth;
mod api_change_email;
mod api_compat;
mod api_delete_user;
mod api_openapi;
mod api_reset;
mod api_rest;
mod api_sessions;
mod api_sign_up_policy;
mod api_verify;
mod attack;
mod audit_chain;
mod audit_events;
mod audit_pg_role;
mod authorize;
mod backchannel;
mod breach;
mod captcha;
mod cli;
mod flows;
mod lockout;
mod mail;
mod rate_limit;
mod registration_logout;
mod request_id;
mod smtp;
