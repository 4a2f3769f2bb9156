//! JOSE: signing keys, the JWKS, and signing/verifying JWTs.

pub mod jwt;
pub mod keys;
