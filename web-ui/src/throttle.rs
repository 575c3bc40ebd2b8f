//! Login throttling: wrong credentials (the `/login` form's token, a bearer token, a basic-auth
//! password) are counted per client address; after `max_failures` within `window` the address
//! is locked out for `backoff`, doubling with each further lockout up to `max_backoff`. While
//! locked, every credential from that address is answered 429 with `Retry-After` without being
//! checked, so guessing costs real time. A success forgets the address.
//!
//! The address is the connection's peer (`ConnectInfo<SocketAddr>`, which `web-ui` serves
//! with); IPv6 addresses count by their /64, which one client usually owns whole. A request
//! without a peer address (a router driven directly) counts in one shared bucket. Behind a
//! reverse proxy every client has the proxy's address and they share one bucket.
//!
//! The state is bounded: at most `max_clients` addresses are tracked; quiet ones are dropped
//! first, then the longest quiet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::Extensions;

/// Where the throttle reads the time (tests move a [`ManualClock`] instead of sleeping).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now, monotonic.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Instant>);

impl ManualClock {
    /// A clock that reads the current instant until advanced.
    pub fn new() -> Self {
        Self(Mutex::new(Instant::now()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Settings of the login throttle.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Wrong credentials allowed within `window` before a lockout.
    pub max_failures: u32,
    /// Failures older than this (counted from the first of a run) are forgotten.
    pub window: Duration,
    /// The first lockout; each further one doubles it.
    pub backoff: Duration,
    /// The longest lockout; an address quiet for this long starts again from `backoff`.
    pub max_backoff: Duration,
    /// Most addresses tracked at once.
    pub max_clients: usize,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            max_clients: 10_000,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Whom failures are counted against: an IPv4 address, an IPv6 /64, or the shared bucket of
/// requests without a known peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 included).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
    /// No peer address known.
    Unknown,
}

impl ClientKey {
    /// The key of this peer address.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&v6.octets()[..8]);
                    ClientKey::V6Prefix(p)
                }
            },
        }
    }

    /// The key of a request, from its `ConnectInfo`.
    pub fn from_extensions(ext: &Extensions) -> Self {
        ext.get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| Self::from_ip(a.ip()))
            .unwrap_or(ClientKey::Unknown)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_extensions(&parts.extensions))
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(*o)),
            ClientKey::V6Prefix(p) => {
                let mut o = [0u8; 16];
                o[..8].copy_from_slice(p);
                write!(f, "{}/64", std::net::Ipv6Addr::from(o))
            }
            ClientKey::Unknown => f.write_str("unknown"),
        }
    }
}

/// What the throttle says about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Credentials may be checked; this many wrong ones are left before a lockout.
    Allowed {
        /// Wrong credentials left.
        attempts_left: u32,
    },
    /// Locked out for this much longer.
    Locked {
        /// Time until credentials are checked again.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    /// Failures in the current run.
    failures: u32,
    /// First failure of the current run.
    run_start: Instant,
    /// Lockouts so far (sets the next backoff).
    lockouts: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

/// Failed-credential counts per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<ClientKey, Entry>>,
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether credentials from `client` may be checked now.
    pub fn check(&self, client: ClientKey) -> Verdict {
        let now = self.config.clock.now();
        let entries = self.entries();
        match entries.get(&client) {
            Some(e) => match e.locked_until.filter(|&t| t > now) {
                Some(t) => Verdict::Locked {
                    retry_after: t - now,
                },
                None => Verdict::Allowed {
                    attempts_left: self
                        .config
                        .max_failures
                        .saturating_sub(self.live_failures(e, now)),
                },
            },
            None => Verdict::Allowed {
                attempts_left: self.config.max_failures,
            },
        }
    }

    fn live_failures(&self, e: &Entry, now: Instant) -> u32 {
        if now.saturating_duration_since(e.run_start) > self.config.window {
            0
        } else {
            e.failures
        }
    }

    /// Counts a wrong credential from `client`; says whether the address is now locked out.
    pub fn record_failure(&self, client: ClientKey) -> Verdict {
        let now = self.config.clock.now();
        let c = &self.config;
        let mut entries = self.entries();
        if !entries.contains_key(&client) && entries.len() >= c.max_clients {
            self.make_room(&mut entries, now);
        }
        let e = entries.entry(client).or_insert(Entry {
            failures: 0,
            run_start: now,
            lockouts: 0,
            locked_until: None,
            last_failure: now,
        });
        if let Some(t) = e.locked_until.filter(|&t| t > now) {
            // Not checked while locked; does not extend the lockout.
            return Verdict::Locked {
                retry_after: t - now,
            };
        }
        if now.saturating_duration_since(e.last_failure) > c.max_backoff {
            e.lockouts = 0;
        }
        if e.failures == 0 || now.saturating_duration_since(e.run_start) > c.window {
            e.failures = 0;
            e.run_start = now;
        }
        e.failures += 1;
        e.last_failure = now;
        if e.failures < c.max_failures {
            return Verdict::Allowed {
                attempts_left: c.max_failures - e.failures,
            };
        }
        let factor = 1u32 << e.lockouts.min(16);
        let backoff = c.backoff.saturating_mul(factor).min(c.max_backoff);
        e.lockouts = e.lockouts.saturating_add(1);
        e.failures = 0;
        e.locked_until = Some(now + backoff);
        Verdict::Locked {
            retry_after: backoff,
        }
    }

    /// Forgets `client` after a successful login.
    pub fn record_success(&self, client: ClientKey) {
        self.entries().remove(&client);
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.entries().len()
    }

    /// Drops addresses that are neither locked nor recently failing; if none is, the one
    /// quiet for longest, unlocked ones first.
    fn make_room(&self, entries: &mut HashMap<ClientKey, Entry>, now: Instant) {
        let keep_for = self.config.window.max(self.config.max_backoff);
        entries.retain(|_, e| {
            e.locked_until.is_some_and(|t| t > now)
                || now.saturating_duration_since(e.last_failure) <= keep_for
        });
        if entries.len() >= self.config.max_clients {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| (e.locked_until.is_some_and(|t| t > now), e.last_failure))
                .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up (at least 1).
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(clock: &Arc<ManualClock>, max_clients: usize) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(35),
            max_clients,
            clock: clock.clone(),
        })
    }

    fn ip(s: &str) -> ClientKey {
        ClientKey::from_ip(s.parse().unwrap())
    }

    #[test]
    fn locks_after_the_limit_and_backs_off_exponentially() {
        let clock = Arc::new(ManualClock::new());
        let t = throttle(&clock, 100);
        let a = ip("192.0.2.1");
        assert_eq!(t.record_failure(a), Verdict::Allowed { attempts_left: 2 });
        assert_eq!(t.record_failure(a), Verdict::Allowed { attempts_left: 1 });
        let ten = Duration::from_secs(10);
        assert_eq!(t.record_failure(a), Verdict::Locked { retry_after: ten });
        clock.advance(Duration::from_secs(4));
        let six = Duration::from_secs(6);
        assert_eq!(t.check(a), Verdict::Locked { retry_after: six });
        assert_eq!(t.record_failure(a), Verdict::Locked { retry_after: six });
        assert_eq!(
            t.check(ip("192.0.2.2")),
            Verdict::Allowed { attempts_left: 3 }
        );
        clock.advance(six);
        assert_eq!(t.check(a), Verdict::Allowed { attempts_left: 3 });
        for _ in 0..2 {
            t.record_failure(a);
        }
        let twenty = Duration::from_secs(20);
        assert_eq!(
            t.record_failure(a),
            Verdict::Locked {
                retry_after: twenty
            }
        );
        clock.advance(twenty);
        for _ in 0..2 {
            t.record_failure(a);
        }
        let capped = Duration::from_secs(35);
        assert_eq!(
            t.record_failure(a),
            Verdict::Locked {
                retry_after: capped
            }
        );
        clock.advance(capped);
        t.record_success(a);
        assert_eq!(t.check(a), Verdict::Allowed { attempts_left: 3 });
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let clock = Arc::new(ManualClock::new());
        let t = throttle(&clock, 100);
        let a = ip("192.0.2.1");
        t.record_failure(a);
        t.record_failure(a);
        clock.advance(Duration::from_secs(61));
        assert_eq!(t.check(a), Verdict::Allowed { attempts_left: 3 });
        assert_eq!(t.record_failure(a), Verdict::Allowed { attempts_left: 2 });
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(ip("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn memory_stays_bounded() {
        let clock = Arc::new(ManualClock::new());
        let t = throttle(&clock, 50);
        let locked = ip("198.51.100.1");
        for _ in 0..3 {
            t.record_failure(locked);
        }
        for i in 0..1000u32 {
            let [_, _, b, c] = i.to_be_bytes();
            t.record_failure(ClientKey::V4([10, 0, b, c]));
            clock.advance(Duration::from_millis(1));
        }
        assert!(t.tracked() <= 50, "{}", t.tracked());
        assert!(
            matches!(t.check(locked), Verdict::Locked { .. }),
            "a locked address is kept"
        );
        // Quiet entries go first once they are past the window.
        clock.advance(Duration::from_secs(120));
        t.record_failure(ip("203.0.113.9"));
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
    }
}
