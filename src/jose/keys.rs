//! The key ring: one active signing key per algorithm (RS256 by default; ES256 and EdDSA
//! for clients that ask), rotation with publish-ahead and grace, and private keys
//! encrypted at rest.

use std::collections::HashMap;
use std::sync::Arc;

use josekit::jwe::{self, Dir, JweHeader};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsSigner, JwsVerifier};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::clock::Clock;
use crate::crypto;
use crate::store::keys::{self as store, KeyRow};
use crate::store::{Db, StoreError};

/// Algorithms we can sign with, RS256 first (OIDC Core §15.1 makes it mandatory).
pub const SIGNING_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("storage: {0}")]
    Store(#[from] sqlx::Error),
    #[error("jose: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("no active signing key for {0}")]
    NoKey(String),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlg(String),
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        StoreError::Sqlx(sqlx::Error::Protocol(e.to_string()))
    }
}

pub struct LoadedKey {
    pub kid: String,
    pub alg: String,
    pub public: Jwk,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub drop_at: Option<i64>,
    pub created_at: i64,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
}

impl LoadedKey {
    pub fn signer(&self) -> &dyn JwsSigner {
        self.signer.as_ref()
    }
    pub fn verifier(&self) -> &dyn JwsVerifier {
        self.verifier.as_ref()
    }
    pub fn is_published(&self, now: i64) -> bool {
        self.drop_at.is_none_or(|d| now < d)
    }
    pub fn can_sign(&self, now: i64) -> bool {
        self.activates_at <= now && self.retires_at.is_none_or(|r| now < r)
    }
}

struct Cache {
    keys: Vec<Arc<LoadedKey>>,
    loaded_at: i64,
}

/// Shared key ring. Reloads from the database every few seconds so that a `keys rotate`
/// run by the CLI against the same database reaches a running server.
#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    clock: Clock,
    enc_key: Arc<Vec<u8>>,
    rsa_bits: u32,
    cache: Arc<RwLock<Cache>>,
}

/// Seconds between reloads, so a rotation by the CLI reaches running servers quickly.
const RELOAD_EVERY: i64 = 2;

impl KeyRing {
    pub fn new(db: Db, clock: Clock, secret: &str, rsa_bits: u32) -> KeyRing {
        // A dedicated key for encryption at rest, derived from the server secret.
        let enc_key =
            crypto::hmac_raw(secret.as_bytes(), &["klard-auth signing-key encryption v1"]);
        KeyRing {
            db,
            clock,
            enc_key: Arc::new(enc_key),
            rsa_bits,
            cache: Arc::new(RwLock::new(Cache {
                keys: Vec::new(),
                loaded_at: i64::MIN,
            })),
        }
    }

    /// Generates the first key of every algorithm that has none (first start).
    pub async fn ensure_keys(&self) -> Result<Vec<String>, KeyError> {
        let rows = store::all(&self.db).await?;
        let mut created = Vec::new();
        for alg in SIGNING_ALGS {
            if !rows.iter().any(|r| r.alg == alg && r.retires_at.is_none()) {
                let now = self.clock.now();
                let row = self.generate(alg, now, now)?;
                store::rotate_in(&self.db, &row, 0, None).await?;
                created.push(row.kid);
            }
        }
        self.reload().await?;
        Ok(created)
    }

    /// `keys rotate`: a new key per algorithm, published now, signing after
    /// `publish_ahead` seconds; the old one stays in the JWKS `grace` seconds after that.
    pub async fn rotate(&self, publish_ahead: i64, grace: i64) -> Result<Vec<String>, KeyError> {
        self.rotate_recorded(publish_ahead, grace, &|_, _| None)
            .await
    }

    /// [`KeyRing::rotate`], each new key stored in one transaction with the audit event
    /// `event(kid, alg)` gives.
    pub async fn rotate_recorded(
        &self,
        publish_ahead: i64,
        grace: i64,
        event: &(dyn Fn(&str, &str) -> Option<crate::audit::Pending> + Sync),
    ) -> Result<Vec<String>, KeyError> {
        let now = self.clock.now();
        let mut kids = Vec::new();
        for alg in SIGNING_ALGS {
            let row = self.generate(alg, now, now + publish_ahead)?;
            store::rotate_in(&self.db, &row, grace, event(&row.kid, alg)).await?;
            kids.push(row.kid);
        }
        store::purge(&self.db, now).await?;
        self.reload().await?;
        Ok(kids)
    }

    fn generate(&self, alg: &str, now: i64, activates_at: i64) -> Result<KeyRow, KeyError> {
        let kid = crypto::random_token(16);
        let (mut private, mut public) = match alg {
            "RS256" => {
                let k = jws::RS256.generate_key_pair(self.rsa_bits)?;
                (k.to_jwk_private_key(), k.to_jwk_public_key())
            }
            "ES256" => {
                let k = jws::ES256.generate_key_pair()?;
                (k.to_jwk_private_key(), k.to_jwk_public_key())
            }
            "EdDSA" => {
                let k = jws::EdDSA.generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)?;
                (k.to_jwk_private_key(), k.to_jwk_public_key())
            }
            other => return Err(KeyError::UnsupportedAlg(other.into())),
        };
        for k in [&mut private, &mut public] {
            k.set_key_id(&kid);
            k.set_algorithm(alg);
            k.set_key_use("sig");
        }
        let public = public_of(&public)?;
        let private_json = serde_json::to_string(private.as_ref()).unwrap_or_default();
        Ok(KeyRow {
            kid,
            alg: alg.into(),
            private_jwe: self.encrypt(&private_json)?,
            public_jwk: serde_json::to_string(public.as_ref()).unwrap_or_default(),
            created_at: now,
            activates_at,
            retires_at: None,
            drop_at: None,
        })
    }

    fn encrypt(&self, plaintext: &str) -> Result<String, KeyError> {
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        let enc = Dir.encrypter_from_bytes(self.enc_key.as_slice())?;
        Ok(jwe::serialize_compact(plaintext.as_bytes(), &header, &enc)?)
    }

    fn decrypt(&self, token: &str) -> Result<Jwk, KeyError> {
        let dec = Dir.decrypter_from_bytes(self.enc_key.as_slice())?;
        let (bytes, _) = jwe::deserialize_compact(token, &dec)?;
        Ok(Jwk::from_bytes(&bytes)?)
    }

    pub async fn reload(&self) -> Result<(), KeyError> {
        let keys = self.load().await?;
        let mut c = self.cache.write().await;
        c.keys = keys;
        c.loaded_at = self.clock.now();
        Ok(())
    }

    async fn load(&self) -> Result<Vec<Arc<LoadedKey>>, KeyError> {
        let rows = store::all(&self.db).await?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            let private = self.decrypt(&r.private_jwe)?;
            let public = Jwk::from_bytes(r.public_jwk.as_bytes())?;
            let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) =
                match r.alg.as_str() {
                    "RS256" => (
                        Box::new(jws::RS256.signer_from_jwk(&private)?),
                        Box::new(jws::RS256.verifier_from_jwk(&public)?),
                    ),
                    "ES256" => (
                        Box::new(jws::ES256.signer_from_jwk(&private)?),
                        Box::new(jws::ES256.verifier_from_jwk(&public)?),
                    ),
                    "EdDSA" => (
                        Box::new(jws::EdDSA.signer_from_jwk(&private)?),
                        Box::new(jws::EdDSA.verifier_from_jwk(&public)?),
                    ),
                    other => return Err(KeyError::UnsupportedAlg(other.into())),
                };
            keys.push(Arc::new(LoadedKey {
                kid: r.kid,
                alg: r.alg,
                public,
                activates_at: r.activates_at,
                retires_at: r.retires_at,
                drop_at: r.drop_at,
                created_at: r.created_at,
                signer,
                verifier,
            }));
        }
        Ok(keys)
    }

    async fn keys(&self) -> Vec<Arc<LoadedKey>> {
        let now = self.clock.now();
        {
            let c = self.cache.read().await;
            if now - c.loaded_at < RELOAD_EVERY && !c.keys.is_empty() {
                return c.keys.clone();
            }
        }
        // One request reloads; the others wait for it instead of all querying at once.
        let mut c = self.cache.write().await;
        if now - c.loaded_at >= RELOAD_EVERY || c.keys.is_empty() {
            match self.load().await {
                Ok(k) => {
                    c.keys = k;
                    c.loaded_at = now;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reloading signing keys failed; using the cached ones")
                }
            }
        }
        c.keys.clone()
    }

    /// The key that signs for `alg` now: the most recently activated one.
    pub async fn signing_key(&self, alg: &str) -> Result<Arc<LoadedKey>, KeyError> {
        let now = self.clock.now();
        self.keys()
            .await
            .into_iter()
            .filter(|k| k.alg == alg && k.can_sign(now))
            .max_by_key(|k| (k.activates_at, k.created_at))
            .ok_or_else(|| KeyError::NoKey(alg.into()))
    }

    /// A published key by kid (for verifying our own tokens).
    pub async fn by_kid(&self, kid: &str) -> Option<Arc<LoadedKey>> {
        let now = self.clock.now();
        self.keys()
            .await
            .into_iter()
            .find(|k| k.kid == kid && k.is_published(now))
    }

    pub async fn published(&self) -> Vec<Arc<LoadedKey>> {
        let now = self.clock.now();
        let mut keys: Vec<_> = self
            .keys()
            .await
            .into_iter()
            .filter(|k| k.is_published(now))
            .collect();
        // RS256 first, newest first within an algorithm.
        keys.sort_by_key(|k| {
            (
                SIGNING_ALGS.iter().position(|a| *a == k.alg).unwrap_or(9),
                -k.activates_at,
            )
        });
        keys
    }

    /// The JWKS document (RFC 7517 §5): public keys only, each with kid, use and alg.
    pub async fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .published()
            .await
            .iter()
            .map(|k| Value::Object(k.public.as_ref().clone()))
            .collect();
        json!({ "keys": keys })
    }

    /// Summary rows for `keys list`.
    pub async fn describe(&self) -> Vec<HashMap<&'static str, Value>> {
        let now = self.clock.now();
        self.keys()
            .await
            .iter()
            .map(|k| {
                let state = if !k.is_published(now) {
                    "gone"
                } else if k.can_sign(now) {
                    "active"
                } else if k.activates_at > now {
                    "next"
                } else {
                    "retired"
                };
                HashMap::from([
                    ("kid", json!(k.kid)),
                    ("alg", json!(k.alg)),
                    ("state", json!(state)),
                    ("created_at", json!(k.created_at)),
                    ("activates_at", json!(k.activates_at)),
                    ("retires_at", json!(k.retires_at)),
                    ("drop_at", json!(k.drop_at)),
                ])
            })
            .collect()
    }
}

/// The public half of a private JWK: drop every private member.
fn public_of(private: &Jwk) -> Result<Jwk, KeyError> {
    let mut map = private.as_ref().clone();
    for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        map.remove(m);
    }
    Ok(Jwk::from_map(map)?)
}
