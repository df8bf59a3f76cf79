//! Signing keys: Ed25519 (EdDSA JWTs), kept in the store so every authz replica signs with
//! the same newest key and publishes the same JWKS. Rotation adds a key that signs from then
//! on; the previous key stays in the JWKS until the tokens it signed have expired.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chat_auth::{Claims, KeyProvider};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::store::{KeyRow, Store, StoreError};

/// How often a replica re-reads the keys (another replica may have rotated).
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// A new key is in the JWKS this long before it signs anything, so every verifier has it (or
/// may refresh for it) before the first token with its `kid` arrives: rotation without a gap.
const PUBLISH_AHEAD_MS: i64 = 10_000;

/// A failure to create, store, read or use a signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding a new signing key as PKCS#8: {0}")]
    Encode(ed25519_dalek::pkcs8::Error),
    #[error("signing key {kid} is not valid base64: {source}")]
    Decode { kid: String, source: base64::DecodeError },
    #[error("there is no signing key")]
    NoKey,
    #[error("the key cache is poisoned (a thread panicked while holding it)")]
    Poisoned,
    #[error("signing with key {kid}: {source}")]
    Sign { kid: String, source: jsonwebtoken::errors::Error },
}

/// The signing keys, cached and re-read from the store.
#[derive(Clone)]
pub struct KeyRing {
    store: Store,
    /// When the keys were last read, and the unretired keys, newest first.
    cached: Arc<RwLock<(Instant, Vec<KeyRow>)>>,
}

fn generate() -> Result<KeyRow, KeyError> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let der = key.to_pkcs8_der().map_err(KeyError::Encode)?;
    Ok(KeyRow {
        kid: chat_protocol::new_id(),
        private_der: SecretString::from(STANDARD.encode(der.as_bytes())),
        public_x: URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        created_at_ms: chat_protocol::now_ms(),
    })
}

impl KeyRing {
    /// Load the keys, creating the first one if there is none.
    pub async fn load(store: Store) -> Result<Self, KeyError> {
        let mut keys = store.keys().await?;
        if keys.is_empty() {
            store.add_key(&generate()?, chat_protocol::now_ms()).await?;
            keys = store.keys().await?;
        }
        Ok(Self { store, cached: Arc::new(RwLock::new((Instant::now(), keys))) })
    }

    /// Add a new signing key; keep the previous one verifiable, retire the older ones.
    /// Returns the new key's `kid`.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let key = generate()?;
        let now = chat_protocol::now_ms();
        self.store.add_key(&key, now).await?;
        let keys = self.store.keys().await?;
        let keep: Vec<String> = keys.iter().take(2).map(|k| k.kid.clone()).collect();
        self.store.retire_keys_except(&keep, now).await?;
        self.reload().await?;
        Ok(key.kid)
    }

    /// Re-read the keys from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let keys = self.store.keys().await?;
        if let Ok(mut cached) = self.cached.write() {
            *cached = (Instant::now(), keys);
        }
        Ok(())
    }

    /// Re-read the keys if they are older than the reload interval.
    pub async fn refresh_if_stale(&self) {
        let stale = self.cached.read().map(|c| c.0.elapsed() > RELOAD_EVERY).unwrap_or(true);
        if stale {
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %err, "signing keys not reloaded");
            }
        }
    }

    /// A JWT of `claims`, signed with the newest key published long enough ago.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let cached = self.cached.read().map_err(|_| KeyError::Poisoned)?;
        // The newest key published long enough ago; the newest of all only at first start.
        let ripe = chat_protocol::now_ms() - PUBLISH_AHEAD_MS;
        let key =
            cached.1.iter().find(|k| k.created_at_ms <= ripe).or_else(|| cached.1.last()).ok_or(KeyError::NoKey)?;
        let der = STANDARD
            .decode(key.private_der.expose_secret())
            .map(SecretSlice::from)
            .map_err(|source| KeyError::Decode { kid: key.kid.clone(), source })?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.expose_secret()))
            .map_err(|source| KeyError::Sign { kid: key.kid.clone(), source })
    }
}

impl KeyProvider for KeyRing {
    fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .cached
            .read()
            .map(|c| {
                c.1.iter()
                    .map(|k| {
                        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": k.public_x, "kid": k.kid, "alg": "EdDSA", "use": "sig"})
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_generated_key_hides_its_private_half_from_debug() {
        use secrecy::ExposeSecret;

        let key = super::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(!key.private_der.expose_secret().is_empty());
        assert!(!shown.contains(key.private_der.expose_secret()), "{shown}");
        assert!(shown.contains(&key.kid) && shown.contains(&key.public_x), "{shown}");
    }
}
