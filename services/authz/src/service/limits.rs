//! Login rate limits: attempts per account and per client address, the client address taken
//! from `X-Forwarded-For` only when the peer is a trusted proxy, and key maps of bounded size.
//!
//! The client address: the peer's own address, unless the peer is a trusted proxy (the
//! ingress); then the right-most address of `X-Forwarded-For` that no trusted proxy added
//! (each proxy appends the address it saw, so addresses on the left are the client's own
//! claims and cannot be believed). IPv6 clients are counted per /64, the block a single host
//! usually holds.
//!
//! The bound: each limiter tracks at most `max_tracked_keys` keys. Every minute (and at most
//! once a second when a limiter is full) the keys whose bucket is full again, i.e. that made
//! no attempt in the last minute, are forgotten (`retain_recent`). While a limiter is full of
//! keys that are all still counting, attempts are refused (429): memory stays bounded and a
//! flood of fresh keys cannot reset anyone's count.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::AuthzError;
use crate::settings::LoginSettings;

/// How long a full limiter asks to wait.
const FULL_WAIT: Duration = Duration::from_secs(60);
/// A full limiter is swept at most this often on demand (a sweep walks every key).
const SWEEP_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// A trusted proxy configuration entry was not an address or a CIDR block.
#[derive(Debug, thiserror::Error)]
#[error("login.trusted_proxies: {0:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8)")]
pub struct InvalidProxy(String);

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, InvalidProxy> {
        let invalid = || InvalidProxy(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(bits) => bits.parse::<u8>().ok().filter(|bits| *bits <= max).ok_or_else(invalid)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                prefix_matches(u128::from(u32::from(network)), u128::from(u32::from(address)), 32, self.prefix)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                prefix_matches(u128::from(network), u128::from(address), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of the `width` bits of `a` and `b` agree.
fn prefix_matches(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

/// Where a request came from, as the HTTP edge saw it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The address of the TCP peer.
    pub peer: Option<IpAddr>,
    /// Every `X-Forwarded-For` value, in order (several headers count as one list).
    pub forwarded_for: Vec<String>,
}

/// The client's address: the peer's own, or behind trusted proxies the right-most address of
/// `X-Forwarded-For` that none of them added.
pub fn client_address(origin: &Origin, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = origin.peer?.to_canonical();
    let is_trusted = |address: IpAddr| trusted.iter().any(|cidr| cidr.contains(address));
    let mut client = peer;
    let chain = origin.forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim);
    for hop in chain.collect::<Vec<_>>().into_iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match hop.parse::<IpAddr>() {
            Ok(address) => client = address.to_canonical(),
            // Not an address: what a trusted hop passed on is garbage, so the hop counts.
            Err(_) => break,
        }
    }
    Some(client)
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// A keyed limiter that tracks at most `max_keys` keys.
struct Bounded<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    max_keys: usize,
    last_sweep: Mutex<Instant>,
}

impl<K: std::hash::Hash + Eq + Clone> Bounded<K> {
    fn new(quota: Quota, max_keys: usize) -> Self {
        Self { limiter: RateLimiter::keyed(quota), max_keys: max_keys.max(1), last_sweep: Mutex::new(Instant::now()) }
    }

    /// Count one attempt of `key`; the wait when it is over its quota, or the limiter is full.
    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.limiter.len() >= self.max_keys {
            let due = self.last_sweep.lock().map(|last| last.elapsed() >= SWEEP_AT_MOST_EVERY).unwrap_or(true);
            if due {
                self.sweep();
            }
            if self.limiter.len() >= self.max_keys {
                return Err(FULL_WAIT);
            }
        }
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forget the keys that made no attempt for a full quota period.
    fn sweep(&self) {
        if let Ok(mut last) = self.last_sweep.lock() {
            *last = Instant::now();
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// Login attempts per account (`tenant/username`) and per client address.
pub struct Limiters {
    per_account: Bounded<String>,
    per_address: Bounded<IpAddr>,
    trusted_proxies: Vec<Cidr>,
}

impl Limiters {
    /// Empty limiters with the configured quotas (at least one attempt per minute); an entry
    /// of `trusted_proxies` that is not a CIDR block is refused.
    pub fn new(settings: &LoginSettings) -> Result<Self, InvalidProxy> {
        let trusted_proxies =
            settings.trusted_proxies.iter().map(|text| Cidr::parse(text)).collect::<Result<_, _>>()?;
        Ok(Self {
            per_account: Bounded::new(per_minute(settings.per_account_per_minute), settings.max_tracked_keys),
            per_address: Bounded::new(per_minute(settings.per_address_per_minute), settings.max_tracked_keys),
            trusted_proxies,
        })
    }

    /// The client address of a request from `origin`.
    pub fn client(&self, origin: &Origin) -> Option<IpAddr> {
        client_address(origin, &self.trusted_proxies)
    }

    /// Count one attempt for `account` from `client`; `RateLimited` with the wait when either
    /// is over its quota (the address first).
    pub(super) fn check(&self, client: Option<IpAddr>, account: String) -> Result<(), AuthzError> {
        if let Some(address) = client {
            self.per_address.check(&address_key(address)).map_err(AuthzError::RateLimited)?;
        }
        self.per_account.check(&account).map_err(AuthzError::RateLimited)
    }

    /// Forget the keys idle for a minute (run every minute).
    pub fn sweep(&self) {
        self.per_account.sweep();
        self.per_address.sweep();
    }

    /// How many keys the limiters track (accounts, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        (self.per_account.len(), self.per_address.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_account: u32, per_address: u32, trusted: &[&str], max_keys: usize) -> LoginSettings {
        LoginSettings {
            per_account_per_minute: per_account,
            per_address_per_minute: per_address,
            trusted_proxies: trusted.iter().map(|s| (*s).to_owned()).collect(),
            max_tracked_keys: max_keys,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn origin(peer: &str, chain: &[&str]) -> Origin {
        Origin { peer: Some(ip(peer)), forwarded_for: chain.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")) && !block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6 peers are IPv4");
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "ingress", "::/129", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_is_the_right_most_address_no_trusted_proxy_added() {
        let trusted = [Cidr::parse("127.0.0.1/32").unwrap(), Cidr::parse("10.1.0.0/16").unwrap()];
        let client = |peer, chain: &[&str]| client_address(&origin(peer, chain), &trusted);
        assert_eq!(client("127.0.0.1", &["198.51.100.7"]), Some(ip("198.51.100.7")));
        // Several hops, several headers: trusted hops are skipped from the right.
        assert_eq!(client("127.0.0.1", &["203.0.113.1, 198.51.100.7", "10.1.2.3"]), Some(ip("198.51.100.7")));
        // An untrusted peer's header is ignored.
        assert_eq!(client("192.0.2.9", &["198.51.100.7"]), Some(ip("192.0.2.9")));
        // No header, or garbage passed on by a trusted hop: the nearest trusted hop counts.
        assert_eq!(client("127.0.0.1", &[]), Some(ip("127.0.0.1")));
        assert_eq!(client("127.0.0.1", &["unknown"]), Some(ip("127.0.0.1")));
        assert_eq!(client("127.0.0.1", &["not-an-ip, 10.1.0.5"]), Some(ip("10.1.0.5")));
        // Every hop trusted: the left-most one is the client.
        assert_eq!(client("127.0.0.1", &["10.1.0.7, 10.1.0.5"]), Some(ip("10.1.0.7")));
        assert_eq!(client_address(&Origin::default(), &trusted), None);
        // Nothing trusted: the peer, whatever the header says.
        assert_eq!(client_address(&origin("127.0.0.1", &["198.51.100.7"]), &[]), Some(ip("127.0.0.1")));
    }

    #[test]
    fn the_address_limit_applies_before_the_account_limit() {
        let limiters = Limiters::new(&settings(2, 1, &[], 100)).unwrap();
        let client: Option<IpAddr> = Some([10, 0, 0, 1].into());
        assert!(limiters.check(client, "acme/bob".into()).is_ok());
        assert!(matches!(limiters.check(client, "acme/carol".into()), Err(AuthzError::RateLimited(_))));
        // Without an address only the account counts: bob has one attempt left.
        assert!(limiters.check(None, "acme/bob".into()).is_ok());
        assert!(
            matches!(limiters.check(None, "acme/bob".into()), Err(AuthzError::RateLimited(wait)) if wait.as_secs() <= 60)
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_block() {
        let limiters = Limiters::new(&settings(100, 1, &[], 100)).unwrap();
        assert!(limiters.check(Some(ip("2001:db8:1:2::1")), "acme/a".into()).is_ok());
        let same_block = limiters.check(Some(ip("2001:db8:1:2:ffff::9")), "acme/b".into());
        assert!(matches!(same_block, Err(AuthzError::RateLimited(_))));
        assert!(limiters.check(Some(ip("2001:db8:1:3::1")), "acme/c".into()).is_ok());
    }

    #[test]
    fn the_key_maps_are_bounded_and_a_full_one_refuses() {
        let limiters = Limiters::new(&settings(100, 100, &[], 3)).unwrap();
        for i in 0..3u8 {
            assert!(limiters.check(Some(IpAddr::from([10, 0, 0, i])), format!("acme/u{i}")).is_ok());
        }
        assert_eq!(limiters.tracked(), (3, 3));
        // Every tracked key is still counting (its bucket is not full again): nothing can be
        // forgotten, so a new key waits instead of growing the map.
        let refused = limiters.check(Some(IpAddr::from([10, 0, 0, 9])), "acme/u9".into());
        assert!(matches!(refused, Err(AuthzError::RateLimited(wait)) if wait == FULL_WAIT), "{refused:?}");
        assert_eq!(limiters.tracked(), (3, 3));
    }

    #[test]
    fn idle_keys_are_forgotten_by_a_sweep() {
        // With 120 attempts a minute, one attempt is given back after half a second, and a key
        // whose bucket has been full again for that long is forgotten.
        let limiters = Limiters::new(&settings(120, 120, &[], 2)).unwrap();
        assert!(limiters.check(Some(IpAddr::from([10, 0, 0, 1])), "acme/a".into()).is_ok());
        assert!(limiters.check(Some(IpAddr::from([10, 0, 0, 2])), "acme/b".into()).is_ok());
        std::thread::sleep(Duration::from_millis(1100));
        limiters.sweep();
        assert_eq!(limiters.tracked(), (0, 0));
        assert!(limiters.check(Some(IpAddr::from([10, 0, 0, 3])), "acme/c".into()).is_ok());
    }
}
