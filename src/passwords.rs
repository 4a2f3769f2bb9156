//! Password hashing with argon2id (PHC strings), on the blocking pool so that hashing
//! never stalls the async workers.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordConfig;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// Argon2 runs so far (hashes and verifications, the dummy included): the attack
    /// tests compare the work of unknown, locked and wrong-password sign-ins with it.
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// A hash of a random password, verified against when the user does not exist, so
    /// unknown and known accounts cost the same.
    dummy: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("hashing task failed")]
    Join,
}

impl Hasher {
    pub fn new(cfg: &PasswordConfig) -> Result<Hasher, PasswordError> {
        let params = Params::new(
            cfg.argon2_m_cost,
            cfg.argon2_t_cost,
            cfg.argon2_p_cost,
            None,
        )
        .map_err(|e| PasswordError::Argon2(e.to_string()))?;
        let mut h = Hasher {
            params,
            calls: Default::default(),
            dummy: String::new(),
        };
        h.dummy = h.hash_sync(&crate::crypto::random_token(16))?;
        Ok(h)
    }

    /// How many argon2 operations this hasher (and its clones) has run.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn argon(&self) -> Argon2<'static> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_sync(&self, password: &str) -> Result<String, PasswordError> {
        let salt = crate::crypto::random_bytes::<16>();
        self.argon()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Argon2(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let this = self.clone();
        let pw = password.to_string();
        tokio::task::spawn_blocking(move || this.hash_sync(&pw))
            .await
            .map_err(|_| PasswordError::Join)?
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is no
    /// user, so the work done does not reveal whether the account exists.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let this = self.clone();
        let pw = password.to_string();
        let (h, real) = match hash {
            Some(h) => (h.to_string(), true),
            None => (self.dummy.clone(), false),
        };
        let ok = tokio::task::spawn_blocking(move || {
            this.argon()
                .verify_password(pw.as_bytes(), h.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}
