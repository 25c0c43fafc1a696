//! What one caller may cost the server: calls in flight, each call's deadline, a rate per
//! credential, what a made-up credential costs, and watches per token.
//!
//! The auth layer asks it before and around every call. It decides from memory alone: a call
//! it refuses has cost no database read, and no value a request carries grows its memory
//! without bound.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    config::Limits,
    ids::TokenId,
    metrics,
    store::{Credential, Role, TOKEN_USE_PRECISION},
};

/// The largest request the `Comments` service takes, in bytes: a reply whose every field is
/// as long as validation allows, or a count of as many articles as one call may name, fits
/// with room to spare (`tests/limits.rs` builds both).
pub const COMMENTS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The largest request the `Moderation` service takes, in bytes: a policy whose every list
/// is as long as validation allows fits with room to spare.
pub const MODERATION_MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

/// How long a token that authenticated a call is exempt from its address's bar for unknown
/// credentials, counted from the first call it authenticated since it was last exempt. Its
/// calls still read it again as often as ever, so a revocation takes effect as before.
const PROVEN_FOR: Duration = Duration::from_secs(600);

/// At most this many proven tokens are remembered; a deployment has a few per site.
const MAX_PROVEN: usize = 4_096;

/// At most this many addresses are barred at once; past it, an address over its budget is
/// not barred, and its calls cost a read each as before.
const MAX_BARRED: usize = 16_384;

/// After this many checks of the per-address budget, addresses idle long enough to have
/// their whole burst back are forgotten.
const FORGET_ADDRESSES_EVERY: u64 = 4_096;

/// The client's address as the budget for unproven credentials counts it: an IPv6 client
/// owns a whole /64, so its addresses share one budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    Unknown,
}

impl Peer {
    pub fn of(addr: Option<IpAddr>) -> Peer {
        match addr.map(|addr| addr.to_canonical()) {
            Some(IpAddr::V4(v4)) => Peer::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Peer::V6Prefix(prefix)
            }
            None => Peer::Unknown,
        }
    }
}

/// Why a call was refused before it reached a handler, as the metric counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    WrongService,
    Throttled,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::WrongService => "wrong_service",
            AuthFailure::Throttled => "throttled",
        }
    }
}

/// The server's limits, with what they have counted so far.
pub struct Guard {
    limits: Limits,
    in_flight: Arc<Semaphore>,
    host_rate: Option<DefaultKeyedRateLimiter<TokenId>>,
    moderator_rate: Option<DefaultKeyedRateLimiter<TokenId>>,
    unknown_rate: DefaultKeyedRateLimiter<Peer>,
    unknown_checks: AtomicU64,
    /// Addresses over their budget of unknown credentials, until when.
    barred: Mutex<HashMap<Peer, Instant>>,
    proven: DigestMemory,
    watches: Mutex<HashMap<TokenId, u32>>,
    /// When this server last recorded each token's use.
    uses: Mutex<HashMap<TokenId, Instant>>,
}

impl Guard {
    pub fn new(limits: &Limits) -> Arc<Guard> {
        Arc::new(Guard {
            in_flight: Arc::new(Semaphore::new(limits.max_calls_in_flight as usize)),
            host_rate: keyed(limits.host_rate),
            moderator_rate: keyed(limits.moderator_rate),
            unknown_rate: RateLimiter::keyed(quota(
                NonZeroU32::new(limits.auth_failure_rate).unwrap_or(NonZeroU32::MIN),
            )),
            unknown_checks: AtomicU64::new(0),
            barred: Mutex::new(HashMap::new()),
            proven: DigestMemory::new(PROVEN_FOR, MAX_PROVEN),
            watches: Mutex::new(HashMap::new()),
            uses: Mutex::new(HashMap::new()),
            limits: limits.clone(),
        })
    }

    /// A place among the calls in flight, held until the call has answered; refused at once
    /// when every place is taken.
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                refused(
                    "in_flight",
                    Code::ResourceExhausted,
                    format!(
                        "the server is working on its limit of {} calls; retry shortly",
                        self.limits.max_calls_in_flight
                    ),
                    Duration::from_secs(1),
                )
            })
    }

    /// How long a call may take: the server's limit, or the caller's `grpc-timeout` when
    /// that is shorter.
    pub fn deadline(&self, headers: &http::HeaderMap) -> Duration {
        let limit = Duration::from_secs(u64::from(self.limits.request_timeout_seconds));
        headers
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(limit, |asked| asked.min(limit))
    }

    /// Whether `digest` authenticated a call lately.
    pub fn proven(&self, digest: &[u8; 32]) -> bool {
        self.proven.holds(digest, Instant::now())
    }

    pub fn remember_proven(&self, digest: [u8; 32]) {
        self.proven.put(digest, Instant::now());
    }

    /// Whether `peer` may have a credential this server has not seen succeed lately looked
    /// up: refused, without a read, while the address is over its budget of unknown ones.
    pub fn may_look_up(&self, peer: Peer) -> Result<(), Status> {
        let now = Instant::now();
        let Some(until) = self
            .lock_barred()
            .get(&peer)
            .copied()
            .filter(|until| *until > now)
        else {
            return Ok(());
        };
        metrics::record_auth_failure(AuthFailure::Throttled.as_str());
        Err(refused(
            "auth_rate",
            Code::ResourceExhausted,
            "too many calls from this address carried credentials this server does not know; \
             retry later with a valid token"
                .to_owned(),
            until - now,
        ))
    }

    /// Counts a credential from `peer` that was looked up and not found against the
    /// address's budget; past it, the address is barred from look-ups until the budget has
    /// room again.
    pub fn looked_up_in_vain(&self, peer: Peer) {
        if self
            .unknown_checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(FORGET_ADDRESSES_EVERY)
        {
            self.unknown_rate.retain_recent();
            self.unknown_rate.shrink_to_fit();
        }
        if let Err(not_until) = self.unknown_rate.check_key(&peer) {
            let now = Instant::now();
            let until = now + not_until.wait_time_from(DefaultClock::default().now());
            let mut barred = self.lock_barred();
            if barred.len() >= MAX_BARRED {
                barred.retain(|_, until| *until > now);
            }
            if barred.len() < MAX_BARRED {
                barred.insert(peer, until);
            }
        }
    }

    /// Spends one of the credential's calls this second.
    pub fn spend_call(&self, credential: &Credential) -> Result<(), Status> {
        let (limiter, rate) = match credential.role {
            Role::Host => (&self.host_rate, self.limits.host_rate),
            Role::Moderator => (&self.moderator_rate, self.limits.moderator_rate),
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&credential.id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            refused(
                "rate",
                Code::ResourceExhausted,
                format!("this token may make {rate} calls a second; wait and retry"),
                wait,
            )
        })
    }

    /// A place among the watches `token` holds open, given back when the slot is dropped.
    pub fn open_watch(self: &Arc<Self>, token: TokenId) -> Result<WatchSlot, Status> {
        let mut watches = self.lock_watches();
        let open = watches.entry(token).or_default();
        if *open >= self.limits.max_watches_per_token {
            let max = self.limits.max_watches_per_token;
            metrics::record_refused("watches");
            return Err(Status::resource_exhausted(format!(
                "this token holds {max} watches open on this server already, its limit; end \
                 one first"
            )));
        }
        *open += 1;
        Ok(WatchSlot {
            guard: Arc::clone(self),
            token,
        })
    }

    /// Whether this use of `token` is to be recorded: the first, and then one a
    /// [`TOKEN_USE_PRECISION`], so that a busy token costs no write per call.
    pub fn use_to_record(&self, token: TokenId) -> bool {
        let now = Instant::now();
        // Each change is one map operation, so a poisoned map is whole.
        let mut uses = self
            .uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match uses.get(&token) {
            Some(recorded) if now.duration_since(*recorded) < TOKEN_USE_PRECISION => false,
            _ => {
                uses.insert(token, now);
                true
            }
        }
    }

    fn lock_barred(&self) -> MutexGuard<'_, HashMap<Peer, Instant>> {
        // Each change is one map operation, so a poisoned map is whole.
        self.barred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_watches(&self) -> MutexGuard<'_, HashMap<TokenId, u32>> {
        // Each change is one counter, so a poisoned map is whole.
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One open watch, counted against its token while it lives.
pub struct WatchSlot {
    guard: Arc<Guard>,
    token: TokenId,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut watches = self.guard.lock_watches();
        if let Some(open) = watches.get_mut(&self.token) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                watches.remove(&self.token);
            }
        }
    }
}

/// The status of a call refused by a limit, counted under `limit`, telling the caller when
/// to retry.
fn refused(limit: &'static str, code: Code, message: String, retry_after: Duration) -> Status {
    metrics::record_refused(limit);
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(round_up_to_millis(retry_after)));
    Status::with_error_details(code, message, details)
}

fn round_up_to_millis(wait: Duration) -> Duration {
    let millis = wait.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A rate of `per_second` with bursts of twice as many; `None` for 0, no limit.
fn keyed<K: Clone + Eq + std::hash::Hash>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_second).map(|rate| RateLimiter::keyed(quota(rate)))
}

/// A burst may spend this many seconds' worth of calls at once.
const BURST_SECONDS: NonZeroU32 = match NonZeroU32::new(2) {
    Some(seconds) => seconds,
    None => NonZeroU32::MIN,
};

fn quota(per_second: NonZeroU32) -> Quota {
    Quota::per_second(per_second).allow_burst(per_second.saturating_mul(BURST_SECONDS))
}

/// A `grpc-timeout` value: at most eight digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match value.as_bytes().last()? {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Token digests seen lately, each for `ttl`, at most `cap` of them.
struct DigestMemory {
    ttl: Duration,
    cap: usize,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl DigestMemory {
    fn new(ttl: Duration, cap: usize) -> DigestMemory {
        DigestMemory {
            ttl,
            cap,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        // Each change is one map operation, so a poisoned map is whole.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn holds(&self, digest: &[u8; 32], now: Instant) -> bool {
        self.lock()
            .get(digest)
            .is_some_and(|seen| now.saturating_duration_since(*seen) < self.ttl)
    }

    fn put(&self, digest: [u8; 32], now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= self.cap && !entries.contains_key(&digest) {
            entries.retain(|_, seen| now.saturating_duration_since(*seen) < self.ttl);
            if entries.len() >= self.cap {
                return;
            }
        }
        entries.insert(digest, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
        for bad in [
            "",
            "S",
            "100",
            "123456789S",
            "1.5S",
            "-1S",
            "10s",
            "10 S",
            "é",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_shorter_grpc_timeout_wins_and_a_longer_one_does_not() {
        let guard = Guard::new(&Limits::DEFAULT);
        let mut headers = http::HeaderMap::new();
        assert_eq!(guard.deadline(&headers), Duration::from_secs(30));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("200m"));
        assert_eq!(guard.deadline(&headers), Duration::from_millis(200));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("5M"));
        assert_eq!(guard.deadline(&headers), Duration::from_secs(30));
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(Peer::of(Some(a)), Peer::of(Some(b)));
        assert_ne!(Peer::of(Some(a)), Peer::of(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(Peer::of(Some(mapped)), Peer::V4([192, 0, 2, 7]));
    }

    #[test]
    fn digest_memory_forgets_after_its_time_and_stays_bounded() {
        let memory = DigestMemory::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        memory.put([1; 32], now);
        memory.put([2; 32], now);
        memory.put([3; 32], now);
        assert!(memory.holds(&[1; 32], now));
        assert!(!memory.holds(&[3; 32], now), "full: not kept");
        let later = now + Duration::from_secs(61);
        assert!(!memory.holds(&[1; 32], later));
        memory.put([3; 32], later);
        assert!(memory.holds(&[3; 32], later), "the expired made room");
    }

    #[test]
    fn watches_per_token_are_bounded_and_given_back() {
        let guard = Guard::new(&Limits {
            max_watches_per_token: 2,
            ..Limits::DEFAULT
        });
        let token = TokenId::new();
        let first = guard.open_watch(token);
        let second = guard.open_watch(token);
        assert!(first.is_ok() && second.is_ok());
        assert!(guard.open_watch(token).is_err());
        assert!(guard.open_watch(TokenId::new()).is_ok(), "another token");
        drop(first);
        assert!(guard.open_watch(token).is_ok());
    }

    #[test]
    fn a_full_server_refuses_at_once_with_retry_info() {
        let guard = Guard::new(&Limits {
            max_calls_in_flight: 1,
            ..Limits::DEFAULT
        });
        let held = guard.enter();
        assert!(held.is_ok());
        let refused = guard
            .enter()
            .err()
            .map(|status| (status.code(), status.get_details_retry_info().is_some()));
        assert_eq!(refused, Some((Code::ResourceExhausted, true)));
        drop(held);
        assert!(guard.enter().is_ok());
    }
}
