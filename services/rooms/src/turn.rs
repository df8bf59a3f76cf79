//! The STUN and TURN servers a call participant is handed (`RTCPeerConnection`'s `iceServers`),
//! with time-limited TURN credentials.
//!
//! The credentials follow the TURN REST API scheme coturn checks with `use-auth-secret` and
//! `static-auth-secret`: the username is `<expiry unix time>:<user id>`, the credential
//! base64(HMAC-SHA1(secret, username)). The engine and the TURN server share the secret and
//! nothing else: coturn recomputes the credential from the username, refuses a username whose
//! expiry has passed, and counts its per-user quota by the user id after the colon. See
//! `k8s/README.md` ("Calls: running coturn") and `docs/operations.md` ("Calls and TURN").

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chat_protocol::call::IceServer;
use chat_protocol::UserId;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use sha1::Sha1;

use crate::settings::CallSettings;

type HmacSha1 = Hmac<Sha1>;

/// The ICE servers this node hands out, built once from `[calls]`. Its `Debug` shows the URLs
/// and the credential lifetime, never the secret.
#[derive(Clone)]
pub struct Turn {
    /// One server without credentials (`stun:` URLs), when any are configured.
    stun: Option<IceServer>,
    /// `turn:` URLs with the shared secret, when both are configured.
    relay: Option<Relay>,
}

/// The TURN side: its URLs and the HMAC keyed with the shared secret.
#[derive(Clone)]
struct Relay {
    urls: Vec<String>,
    /// HMAC-SHA1 keyed with the secret (cloned for each credential; never printed).
    keyed_mac: HmacSha1,
    /// How long a credential is valid from the moment it is made.
    ttl_secs: u64,
}

impl Turn {
    /// The servers of `[calls]`. Without a secret (absent or empty) or without `turn_urls`, no
    /// TURN server is handed out (clients then connect directly or through STUN only); a half
    /// configuration, or credentials that would expire within a minute, are logged (never the
    /// secret).
    pub fn new(settings: &CallSettings) -> Turn {
        let stun = (!settings.stun_urls.is_empty()).then(|| IceServer {
            urls: settings.stun_urls.clone(),
            username: None,
            credential: None,
        });
        let shared_secret =
            settings.turn_secret.as_ref().map(|secret| secret.expose_secret()).filter(|secret| !secret.is_empty());
        let relay = match (shared_secret, settings.turn_urls.is_empty()) {
            (Some(secret), false) => match HmacSha1::new_from_slice(secret.as_bytes()) {
                Ok(keyed_mac) => {
                    if settings.turn_ttl_secs < 60 {
                        tracing::warn!(
                            turn_ttl_secs = settings.turn_ttl_secs,
                            "turn credentials expire within a minute, clients may fail to allocate"
                        );
                    }
                    Some(Relay { urls: settings.turn_urls.clone(), keyed_mac, ttl_secs: settings.turn_ttl_secs })
                }
                // HMAC takes keys of any length: not reached, but no TURN rather than a panic.
                Err(_) => {
                    tracing::error!("turn secret refused as an hmac key, no turn server handed out");
                    None
                }
            },
            (None, false) => {
                tracing::warn!(
                    turn_urls = settings.turn_urls.len(),
                    "turn urls configured without a turn secret, no turn server handed out"
                );
                None
            }
            (Some(_), true) => {
                tracing::warn!("turn secret configured without turn urls, no turn server handed out");
                None
            }
            (None, true) => None,
        };
        Turn { stun, relay }
    }

    /// Whether a TURN server (with credentials) is handed out.
    pub fn relays(&self) -> bool {
        self.relay.is_some()
    }

    /// The servers for `user` at `now_unix_secs`: the STUN URLs as one server without
    /// credentials, then the TURN URLs as one server whose credentials expire at
    /// `now_unix_secs + turn_ttl_secs`. Empty when neither is configured.
    pub fn ice_servers(&self, user: &UserId, now_unix_secs: u64) -> Vec<IceServer> {
        let turn = self.relay.as_ref().map(|relay| {
            let (username, credential) = relay.credentials(user, now_unix_secs);
            IceServer { urls: relay.urls.clone(), username: Some(username), credential: Some(credential) }
        });
        self.stun.iter().cloned().chain(turn).collect()
    }
}

impl Relay {
    /// `(username, credential)`: `<expiry>:<user id>` and base64(HMAC-SHA1(secret, username)),
    /// standard alphabet with padding, as coturn computes it.
    fn credentials(&self, user: &UserId, now_unix_secs: u64) -> (String, String) {
        let expires_at = now_unix_secs.saturating_add(self.ttl_secs);
        let username = format!("{expires_at}:{user}");
        let mut mac = self.keyed_mac.clone();
        mac.update(username.as_bytes());
        let credential = BASE64.encode(mac.finalize().into_bytes());
        (username, credential)
    }
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Turn");
        debug.field("stun_urls", &self.stun.as_ref().map(|server| &server.urls));
        match &self.relay {
            Some(relay) => debug
                .field("turn_urls", &relay.urls)
                .field("turn_ttl_secs", &relay.ttl_secs)
                .field("turn_secret", &"[redacted]"),
            None => debug.field("turn_urls", &None::<Vec<String>>),
        };
        debug.finish()
    }
}

/// `[calls] stun_urls`: a list of `stun:`/`stuns:` URLs, or one string of them separated by
/// commas (`CHAT__CALLS__STUN_URLS=stun:a:3478,stun:b:3478`). Another scheme stops the boot.
pub(crate) fn deserialize_stun_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(UrlList { schemes: &["stun:", "stuns:"] })
}

/// `[calls] turn_urls`: a list of `turn:`/`turns:` URLs, or one string of them separated by
/// commas (`CHAT__CALLS__TURN_URLS=turn:a:3478?transport=udp,turn:a:3478?transport=tcp`).
/// Another scheme stops the boot.
pub(crate) fn deserialize_turn_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(UrlList { schemes: &["turn:", "turns:"] })
}

/// `[calls] turn_secret`: text only. The environment loader reads a value that looks like a
/// number or a boolean as one, and turning it back into text would change the secret (leading
/// zeros, exponents, `True`): such a value stops the boot, and the error does not show it.
pub(crate) fn deserialize_turn_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    deserializer.deserialize_any(SecretText)
}

/// The refusal of a secret that is not text (it names no value).
const SECRET_NOT_TEXT: &str = "the turn secret reads as a number or a boolean, which the settings loader would \
     alter; use a value with letters (e.g. `openssl rand -hex 32`)";

/// A secret given as text; every other kind is refused without echoing the value (serde's
/// default refusals quote it).
struct SecretText;

impl<'de> Visitor<'de> for SecretText {
    type Value = Option<SecretString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the turn secret as text")
    }

    fn visit_str<E: de::Error>(self, secret: &str) -> Result<Self::Value, E> {
        Ok(Some(SecretString::from(secret.to_owned())))
    }

    fn visit_string<E: de::Error>(self, secret: String) -> Result<Self::Value, E> {
        Ok(Some(SecretString::from(secret)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }
}

/// ICE server URLs (RFC 7064, RFC 7065) of the given schemes, from a list or from a
/// comma-separated string (the environment has no lists).
struct UrlList {
    schemes: &'static [&'static str],
}

impl UrlList {
    fn check<E: de::Error>(&self, url: &str) -> Result<String, E> {
        let well_formed = self.schemes.iter().any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
            && !url.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',');
        if !well_formed {
            return Err(E::invalid_value(de::Unexpected::Str(url), self));
        }
        Ok(url.to_owned())
    }
}

impl<'de> Visitor<'de> for UrlList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {} URLs, or one string of them separated by commas", self.schemes.join(" or "))
    }

    fn visit_str<E: de::Error>(self, urls: &str) -> Result<Self::Value, E> {
        urls.split(',').map(str::trim).filter(|url| !url.is_empty()).map(|url| self.check(url)).collect()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut urls = Vec::new();
        while let Some(url) = seq.next_element::<String>()? {
            urls.push(self.check(url.trim())?);
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Settings, DEFAULTS};

    const TURN_URLS: [&str; 2] =
        ["turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp"];

    fn settings(secret: Option<&str>) -> CallSettings {
        CallSettings {
            ring_timeout_secs: 30,
            stun_urls: vec!["stun:turn.example.com:3478".into()],
            turn_urls: TURN_URLS.iter().map(|url| url.to_string()).collect(),
            turn_secret: secret.map(|s| SecretString::from(s.to_owned())),
            turn_ttl_secs: 86_400,
        }
    }

    #[test]
    fn the_credential_is_the_one_coturn_computes() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"secret",
        //   b"1700000000:alice@acme",hashlib.sha1).digest()).decode())'
        // (and `openssl dgst -sha1 -hmac secret -binary | base64`) print this:
        let expected = "domaPTN3w4gAwRAA4kP5yfJ+lUI=";
        let turn = Turn::new(&settings(Some("secret")));
        let servers = turn.ice_servers(&UserId::new("alice@acme"), 1_700_000_000 - 86_400);
        let relay = &servers[1];
        assert_eq!(relay.urls, TURN_URLS);
        assert_eq!(relay.username.as_deref(), Some("1700000000:alice@acme"));
        assert_eq!(relay.credential.as_deref(), Some(expected));
    }

    #[test]
    fn stun_comes_first_without_credentials_then_turn_expiring_after_the_ttl() {
        let mut call_settings = settings(Some("another secret"));
        call_settings.turn_ttl_secs = 600;
        let turn = Turn::new(&call_settings);
        assert!(turn.relays());
        let servers = turn.ice_servers(&UserId::new("u-42@acme"), 1_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0],
            IceServer { urls: vec!["stun:turn.example.com:3478".into()], username: None, credential: None }
        );
        assert_eq!(servers[1].username.as_deref(), Some("1600:u-42@acme"));
        let later = turn.ice_servers(&UserId::new("u-42@acme"), 2_000);
        assert_eq!(later[1].username.as_deref(), Some("2600:u-42@acme"));
        assert_ne!(later[1].credential, servers[1].credential, "a new expiry, a new credential");
        // Base64 of the 20 bytes of HMAC-SHA1, padded.
        assert_eq!(servers[1].credential.as_ref().map(String::len), Some(28));
    }

    #[test]
    fn no_turn_server_without_a_secret_or_without_urls() {
        for secret in [None, Some("")] {
            let turn = Turn::new(&settings(secret));
            assert!(!turn.relays());
            let servers = turn.ice_servers(&UserId::new("alice@acme"), 1_700_000_000);
            assert_eq!(servers.len(), 1, "{secret:?}");
            assert!(servers[0].urls.iter().all(|url| url.starts_with("stun:")));
            assert_eq!((servers[0].username.as_ref(), servers[0].credential.as_ref()), (None, None));
        }
        let mut without_urls = settings(Some("secret"));
        without_urls.turn_urls.clear();
        assert!(!Turn::new(&without_urls).relays());
        without_urls.stun_urls.clear();
        assert!(Turn::new(&without_urls).ice_servers(&UserId::new("alice@acme"), 0).is_empty());
    }

    #[test]
    fn the_secret_is_never_printed() {
        let secret = "s3cr3t-turn-value-0123456789abcdef";
        let call_settings = settings(Some(secret));
        let turn = Turn::new(&call_settings);
        for printed in [format!("{call_settings:?}"), format!("{turn:?}"), format!("{turn:#?}")] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!printed.contains("s3cr3t"), "{printed}");
        }
        assert!(format!("{turn:?}").contains("[redacted]"));
        assert!(format!("{turn:?}").contains("turn:turn.example.com:3478?transport=udp"));
    }

    #[test]
    fn urls_come_as_a_list_or_separated_by_commas_as_the_environment_gives_them() {
        let from_list = "[calls]\nturn_urls = [\"turns:turn.example.com:5349?transport=tcp\"]\n";
        let parsed: Settings = chat_kit::parse_layers(&[DEFAULTS, from_list]).unwrap();
        assert_eq!(parsed.calls.turn_urls, ["turns:turn.example.com:5349?transport=tcp"]);

        // What `CHAT__CALLS__TURN_URLS=...` gives the loader: one string.
        let from_string =
            format!("[calls]\nturn_urls = \" {} , {} ,\"\nstun_urls = \"stun:a:3478\"\n", TURN_URLS[0], TURN_URLS[1]);
        let parsed: Settings = chat_kit::parse_layers(&[DEFAULTS, &from_string]).unwrap();
        assert_eq!(parsed.calls.turn_urls, TURN_URLS);
        assert_eq!(parsed.calls.stun_urls, ["stun:a:3478"]);
        let empty: Settings = chat_kit::parse_layers(&[DEFAULTS, "[calls]\nturn_urls = \"\"\n"]).unwrap();
        assert!(empty.calls.turn_urls.is_empty());

        for bad in [
            "turn_urls = \"stun:a:3478\"",
            "turn_urls = [\"https://turn.example.com\"]",
            "stun_urls = \"stun:\"",
            "turn_urls = [\"turn:a b\"]",
        ] {
            let error = chat_kit::parse_layers::<Settings>(&[DEFAULTS, &format!("[calls]\n{bad}\n")]).unwrap_err();
            assert!(error.to_string().contains("URLs"), "{bad}: {error}");
        }
        assert!(chat_kit::parse_layers::<Settings>(&[DEFAULTS, "[calls]\nturn_secrets = \"x\"\n"]).is_err());
    }

    #[test]
    fn a_secret_the_loader_would_read_as_a_number_stops_the_boot_without_showing_it() {
        // `CHAT__CALLS__TURN_SECRET=0123456789012345` reaches serde as the integer
        // 123456789012345 (the loader tries numbers and booleans first): the leading zero would
        // be lost, and coturn would refuse every credential. TOML numbers stand in for it here.
        for value in ["123456789012345", "1.5e3", "true"] {
            let layer = format!("[calls]\nturn_secret = {value}\n");
            let error = chat_kit::parse_layers::<Settings>(&[DEFAULTS, &layer]).unwrap_err().to_string();
            assert!(error.contains("reads as a number or a boolean"), "{error}");
            assert!(!error.contains("123456789") && !error.contains("1.5") && !error.contains("1500"), "{error}");
        }
        let layer = "[calls]\nturn_secret = \"0123456789012345\"\n";
        let parsed: Settings = chat_kit::parse_layers(&[DEFAULTS, layer]).unwrap();
        let secret = parsed.calls.turn_secret.as_ref().map(|secret| secret.expose_secret().to_owned());
        assert_eq!(secret.as_deref(), Some("0123456789012345"));
    }
}
