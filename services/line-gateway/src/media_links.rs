//! Signed links to stored media, for LINE (pure, no I/O).
//!
//! LINE cannot present a member's token: an image or file a member sends to LINE users goes
//! out as a link that carries its own proof, `<line_base_url>/line/media/<id>?expires=<unix
//! seconds>&signature=<base64url HMAC-SHA256 of "<id>.<expires>">` (and `.../preview` for an
//! image's preview). LINE's apps fetch media lazily, when a LINE user first opens the chat,
//! so a link lives for days (`media.link_ttl_days`, 180 by default), not minutes. The key is
//! derived from `line.secrets_key` (see `SecretsKey::media_links_key`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::media::MEDIA_ROUTE;

/// The route prefix of signed links.
pub const LINK_ROUTE: &str = "/line/media";

/// The suffix of an image's preview link.
pub const PREVIEW_SUFFIX: &str = "/preview";

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not signed by this engine (or altered).
    Invalid,
    /// Signed, but past its expiry.
    Expired,
}

/// The links of one medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub original: String,
    pub preview: String,
}

/// Signs and checks media links.
#[derive(Clone)]
pub struct MediaLinks {
    key: [u8; 32],
    base_url: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks").field("base_url", &self.base_url).field("ttl_secs", &self.ttl_secs).finish()
    }
}

impl MediaLinks {
    pub fn new(key: [u8; 32], base_url: &str, ttl_days: u64) -> Self {
        Self { key, base_url: base_url.trim_end_matches('/').to_owned(), ttl_secs: ttl_days.saturating_mul(86_400) }
    }

    /// True when LINE can fetch the links (LINE takes https media URLs only).
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The links of `media_id`, valid from `now_secs` for the configured time.
    pub fn sign(&self, media_id: &str, now_secs: u64) -> Link {
        let expires = now_secs.saturating_add(self.ttl_secs);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(media_id, expires).finalize().into_bytes());
        let query = format!("?expires={expires}&signature={signature}");
        let base = format!("{}{LINK_ROUTE}/{media_id}", self.base_url);
        Link { original: format!("{base}{query}"), preview: format!("{base}{PREVIEW_SUFFIX}{query}") }
    }

    /// Whether a link's `expires` and `signature` were signed for `media_id` and still hold.
    /// The signature is checked first, in constant time.
    pub fn verify(&self, media_id: &str, expires: u64, signature: &str, now_secs: u64) -> Result<(), LinkRefusal> {
        let given = URL_SAFE_NO_PAD.decode(signature).map_err(|_| LinkRefusal::Invalid)?;
        self.mac(media_id, expires).verify_slice(&given).map_err(|_| LinkRefusal::Invalid)?;
        if expires < now_secs {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }

    fn mac(&self, media_id: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(media_id.as_bytes());
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

/// The media id of an engine media URL (`<public_base_url>/v1/line/media/<id>`), if `url` is
/// one: a URL elsewhere, or with anything after the id, is not.
pub fn engine_media_id<'a>(public_base_url: &str, url: &'a str) -> Option<&'a str> {
    let prefix = format!("{}{MEDIA_ROUTE}/", public_base_url.trim_end_matches('/'));
    let id = url.strip_prefix(&prefix)?;
    let plain = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plain.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> MediaLinks {
        MediaLinks::new([9; 32], "https://chat.example/", 180)
    }

    fn parts(url: &str) -> (String, u64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", value) => expires = value.parse().unwrap(),
                ("signature", value) => signature = value.to_owned(),
                other => panic!("unexpected {other:?}"),
            }
        }
        (path.to_owned(), expires, signature)
    }

    #[test]
    fn a_signed_link_holds_for_its_medium_until_it_expires() {
        let link = links().sign("m-1", 1_000);
        let (path, expires, signature) = parts(&link.original);
        assert_eq!(path, "https://chat.example/line/media/m-1");
        assert_eq!(expires, 1_000 + 180 * 86_400);
        assert!(link.preview.starts_with("https://chat.example/line/media/m-1/preview?"));
        assert_eq!(parts(&link.preview).2, signature, "one signature for the medium and its preview");
        assert_eq!(links().verify("m-1", expires, &signature, 1_000), Ok(()));
        assert_eq!(links().verify("m-1", expires, &signature, expires), Ok(()));
        assert_eq!(links().verify("m-1", expires, &signature, expires + 1), Err(LinkRefusal::Expired));
    }

    #[test]
    fn an_altered_link_or_another_key_is_refused() {
        let (_, expires, signature) = parts(&links().sign("m-1", 1_000).original);
        assert_eq!(links().verify("m-2", expires, &signature, 1_000), Err(LinkRefusal::Invalid));
        assert_eq!(links().verify("m-1", expires + 1, &signature, 1_000), Err(LinkRefusal::Invalid));
        assert_eq!(links().verify("m-1", expires, "not base64!", 1_000), Err(LinkRefusal::Invalid));
        assert_eq!(links().verify("m-1", expires, "", 1_000), Err(LinkRefusal::Invalid));
        let other = MediaLinks::new([8; 32], "https://chat.example", 180);
        assert_eq!(other.verify("m-1", expires, &signature, 1_000), Err(LinkRefusal::Invalid));
        assert!(!format!("{:?}", links()).contains("9, 9"), "the key is never printed");
    }

    #[test]
    fn only_the_engines_own_media_urls_name_a_medium() {
        let base = "https://chat.example/";
        assert_eq!(engine_media_id(base, "https://chat.example/v1/line/media/3f2a-b1"), Some("3f2a-b1"));
        assert_eq!(engine_media_id(base, "https://chat.example/v1/line/media/"), None);
        assert_eq!(engine_media_id(base, "https://chat.example/v1/line/media/a/../b"), None);
        assert_eq!(engine_media_id(base, "https://chat.example/v1/line/media/a?x=1"), None);
        assert_eq!(engine_media_id(base, "https://elsewhere.example/v1/line/media/a"), None);
        assert_eq!(engine_media_id(base, "https://chat.example.evil/v1/line/media/a"), None);
        assert!(links().is_https());
        assert!(!MediaLinks::new([0; 32], "http://127.0.0.1:8083", 1).is_https());
    }
}
