//! Channel secrets and access tokens at rest: AES-256-GCM with the key of `line.secrets_key`,
//! a random 96-bit nonce per value, stored as base64(nonce || ciphertext). Decrypted values
//! live only in `SecretString`s; nothing here prints a key, a secret or a token.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// The length of a nonce, in bytes (96 bits, GCM's standard).
const NONCE_BYTES: usize = 12;

/// Why the configured key is refused. Names the setting, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsKeyError {
    #[error("line.secrets_key (CHAT__LINE__SECRETS_KEY) is required: base64 of 32 random bytes")]
    Missing,
    #[error("line.secrets_key (CHAT__LINE__SECRETS_KEY) must be base64 of exactly 32 bytes")]
    Invalid,
}

/// A stored value that does not decrypt under this key (another key, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("a stored channel credential does not decrypt with line.secrets_key")]
pub struct Undecryptable;

/// The label the media links' key is derived under.
const MEDIA_LINKS_LABEL: &[u8] = b"chat/line-gateway/media-links/v1";

/// HMAC-SHA256(`key`, `label`): a key for another use, independent of `key`'s own use.
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The key of channel credentials at rest.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: Aes256Gcm,
    /// The key of the media links LINE fetches (see `media_links_key`).
    links: [u8; 32],
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey([redacted])")
    }
}

impl SecretsKey {
    /// The key from its configured base64 form.
    pub fn from_base64(configured: &SecretString) -> Result<Self, SecretsKeyError> {
        let text = configured.expose_secret().trim();
        if text.is_empty() {
            return Err(SecretsKeyError::Missing);
        }
        let bytes = BASE64.decode(text).map_err(|_| SecretsKeyError::Invalid)?;
        if bytes.len() != 32 {
            return Err(SecretsKeyError::Invalid);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretsKeyError::Invalid)?;
        let links = derive(&bytes, MEDIA_LINKS_LABEL);
        Ok(Self { cipher, links })
    }

    /// The HMAC key of the signed media links LINE fetches, derived from this key (HMAC-SHA256
    /// of a fixed label), so that it is never the key that encrypts credentials.
    pub fn media_links_key(&self) -> [u8; 32] {
        self.links
    }

    /// base64(nonce || ciphertext) of `plain`, with a fresh random nonce.
    pub fn encrypt(&self, plain: &SecretString) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption fails only past 64 GiB of plaintext"));
        let mut stored = Vec::with_capacity(NONCE_BYTES + sealed.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        BASE64.encode(stored)
    }

    /// The value `encrypt` stored.
    pub fn decrypt(&self, stored: &str) -> Result<SecretString, Undecryptable> {
        let bytes = BASE64.decode(stored).map_err(|_| Undecryptable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Undecryptable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| Undecryptable)?;
        let plain = self.cipher.decrypt(&Nonce::from(nonce), sealed).map_err(|_| Undecryptable)?;
        let text = String::from_utf8(plain).map_err(|_| Undecryptable)?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed test key (base64 of 32 bytes).
    pub(crate) const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    pub(crate) fn test_key() -> SecretsKey {
        SecretsKey::from_base64(&SecretString::from(TEST_KEY)).unwrap()
    }

    #[test]
    fn a_value_round_trips_and_each_encryption_differs() {
        let key = test_key();
        let secret = SecretString::from("0123456789abcdef0123456789abcdef");
        let first = key.encrypt(&secret);
        let second = key.encrypt(&secret);
        assert_ne!(first, second, "a fresh nonce per value");
        assert!(!first.contains("0123456789abcdef"));
        assert_eq!(key.decrypt(&first).unwrap().expose_secret(), secret.expose_secret());
        assert_eq!(key.decrypt(&second).unwrap().expose_secret(), secret.expose_secret());
    }

    #[test]
    fn another_key_or_a_damaged_value_does_not_decrypt() {
        let key = test_key();
        let stored = key.encrypt(&SecretString::from("token"));
        let other = SecretsKey::from_base64(&SecretString::from(BASE64.encode([7u8; 32]))).unwrap();
        assert!(other.decrypt(&stored).is_err());
        let mut damaged = BASE64.decode(&stored).unwrap();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(key.decrypt(&BASE64.encode(damaged)).is_err());
        assert!(key.decrypt("not base64!").is_err());
        assert!(key.decrypt("AAAA").is_err());
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64_and_is_never_printed() {
        assert!(matches!(SecretsKey::from_base64(&SecretString::from("")), Err(SecretsKeyError::Missing)));
        let short = BASE64.encode([1u8; 16]);
        let refused = SecretsKey::from_base64(&SecretString::from(short.clone())).unwrap_err();
        assert!(matches!(refused, SecretsKeyError::Invalid));
        assert!(!refused.to_string().contains(&short));
        assert!(refused.to_string().contains("line.secrets_key"));
        assert!(SecretsKey::from_base64(&SecretString::from("not base64 at all")).is_err());
        assert_eq!(format!("{:?}", test_key()), "SecretsKey([redacted])");
    }

    #[test]
    fn the_media_links_key_is_derived_and_differs_from_the_key() {
        let key = test_key();
        let raw = BASE64.decode(TEST_KEY).unwrap();
        assert_eq!(key.media_links_key(), test_key().media_links_key());
        assert_ne!(key.media_links_key().as_slice(), raw.as_slice());
        let other = SecretsKey::from_base64(&SecretString::from(BASE64.encode([7u8; 32]))).unwrap();
        assert_ne!(key.media_links_key(), other.media_links_key());
    }
}
