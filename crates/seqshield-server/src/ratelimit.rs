//! Adaptive rate limiting: one global token bucket and one per client,
//! tightened for clients that keep failing authentication.
//!
//! # Buckets
//!
//! Every request except `GET /healthz` takes one token from its client's
//! bucket and one from the global bucket; an empty bucket answers 429
//! `{"error":"rate_limited",…}` with `Retry-After` (seconds, rounded up)
//! and takes nothing from the other bucket. A client is the peer address
//! of the TCP connection (`ConnectInfo`); `X-Forwarded-For` is ignored
//! because no proxy is trusted. IPv4 addresses (IPv4-mapped IPv6 ones
//! included) count one by one; IPv6 addresses count per /64
//! ([`IPV6_CLIENT_PREFIX`]), since one host owns a whole /64 and could
//! otherwise rotate through it. Requests without a peer address (tests
//! calling the router directly) share the bucket of `0.0.0.0`.
//!
//! # Penalties
//!
//! A 401 or 403 answer adds 1 to its client's penalty score, which halves
//! every `failure_half_life_secs`. The client's rate and burst are the
//! configured ones divided by `1 + score`, never below `min_client_rps`:
//! ten failures in a row cut 1,000 requests/s to about 91, and a minute
//! later (default half-life) to about 167. Other clients are unaffected.
//!
//! # Audit
//!
//! Each party (the global bucket, a client, the overflow bucket below) is
//! either allowed or in a trip episode. The first rejection opens an
//! episode and writes one `ratelimit.trip` event (scope, client address,
//! penalty score, rate and burst in force). Later rejections are only
//! counted. An episode ends after [`EPISODE_QUIET`] without a rejection:
//! its count goes into a `ratelimit.recovered` event, written at the
//! party's next allowed request or the next sweep, or into the next trip
//! event (`previous_rejected`) if it trips again first. So a client
//! hammering the gateway costs the audit log at most two events per quiet
//! period, however many requests it sends. Events are written off the
//! request path (see `audit`'s [`MAX_QUEUED_AUDIT_EVENTS`]).
//!
//! # Memory
//!
//! At most `max_clients` clients are tracked (default 100,000: some tens
//! of MB at most). Every [`SWEEP_INTERVAL`], and when a new client finds
//! the table full (at most once per [`FULL_SWEEP_GAP`]), entries that are
//! as good as new are dropped: bucket full, penalty below 0.01, no open
//! episode. When the table is still full, new clients share one overflow
//! bucket with the per-client limits, so a flood of addresses can neither
//! grow memory nor evict (and so pardon) a penalised client.
//!
//! ```toml
//! [server.rate_limit]
//! global_rps = 20000
//! global_burst = 40000
//! client_rps = 1000          # a Slurm cluster behind one NAT is one client
//! client_burst = 2000
//! failure_half_life_secs = 60
//! min_client_rps = 1
//! max_clients = 100000
//! ```

mod audit;
mod clock;
mod state;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use seqshield_auth::audit::AuditSink;
use serde::{Deserialize, Serialize};

pub use self::audit::MAX_QUEUED_AUDIT_EVENTS;
pub use self::clock::{Clock, ManualClock, MonotonicClock};
pub use self::state::EPISODE_QUIET;

use self::audit::{AuditQueue, Note};
use self::state::{Bucket, Episode, Penalty, Rejection, PENALTY_FORGET};
use crate::config::ConfigError;
use crate::metrics::Metrics;

/// Default requests per second admitted by the whole gateway.
pub const DEFAULT_GLOBAL_RPS: u32 = 20_000;
/// Default global burst.
pub const DEFAULT_GLOBAL_BURST: u32 = 40_000;
/// Default requests per second for one client (one address, or one IPv6 /64).
pub const DEFAULT_CLIENT_RPS: u32 = 1_000;
/// Default burst for one client.
pub const DEFAULT_CLIENT_BURST: u32 = 2_000;
/// Default half-life of a client's failure score, in seconds.
pub const DEFAULT_FAILURE_HALF_LIFE_SECS: u64 = 60;
/// Default floor of a penalised client's rate, in requests per second.
pub const DEFAULT_MIN_CLIENT_RPS: u32 = 1;
/// Default cap on tracked clients.
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;
/// Highest rate accepted in the settings.
pub const MAX_RPS: u32 = 10_000_000;
/// Highest burst accepted in the settings.
pub const MAX_BURST: u32 = 100_000_000;
/// Longest failure half-life accepted (one day).
pub const MAX_FAILURE_HALF_LIFE_SECS: u64 = 86_400;
/// Highest `max_clients` accepted (about a hundred bytes each, plus the
/// hash table's overhead).
pub const MAX_MAX_CLIENTS: usize = 1_000_000;
/// IPv6 clients are keyed by this prefix length.
pub const IPV6_CLIENT_PREFIX: u8 = 64;
/// How often the client table is swept of entries that are as good as new.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Least time between two sweeps forced by a full table.
pub const FULL_SWEEP_GAP: Duration = Duration::from_secs(1);
/// The key of requests without a peer address.
const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The `[server.rate_limit]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Requests per second the whole gateway admits, all clients together.
    pub global_rps: u32,
    /// Requests the whole gateway admits at once above `global_rps`
    /// (the global bucket's size).
    pub global_burst: u32,
    /// Requests per second one client admits (one IPv4 address or one IPv6
    /// /64; a cluster behind one NAT is one client) while it has no
    /// authentication failures.
    pub client_rps: u32,
    /// Requests one client may send at once (its bucket's size).
    pub client_burst: u32,
    /// Seconds after which half of a client's failure score is forgiven.
    /// Each 401 or 403 answer adds 1; the client's rate and burst are
    /// divided by 1 + score.
    pub failure_half_life_secs: u64,
    /// Requests per second a client keeps however many failures it has
    /// (at most `client_rps`).
    pub min_client_rps: u32,
    /// Most clients tracked at once; when full, new clients share one
    /// bucket with the per-client limits.
    pub max_clients: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            global_rps: DEFAULT_GLOBAL_RPS,
            global_burst: DEFAULT_GLOBAL_BURST,
            client_rps: DEFAULT_CLIENT_RPS,
            client_burst: DEFAULT_CLIENT_BURST,
            failure_half_life_secs: DEFAULT_FAILURE_HALF_LIFE_SECS,
            min_client_rps: DEFAULT_MIN_CLIENT_RPS,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

impl RateLimitSettings {
    /// Checks every bound; errors name the key (`server.rate_limit.…`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |field: &'static str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Invalid { field, reason: format!("{value} is out of range {min}..={max}") })
            }
        };
        range("rate_limit.global_rps", self.global_rps.into(), 1, MAX_RPS.into())?;
        range("rate_limit.global_burst", self.global_burst.into(), 1, MAX_BURST.into())?;
        range("rate_limit.client_rps", self.client_rps.into(), 1, MAX_RPS.into())?;
        range("rate_limit.client_burst", self.client_burst.into(), 1, MAX_BURST.into())?;
        range("rate_limit.failure_half_life_secs", self.failure_half_life_secs, 1, MAX_FAILURE_HALF_LIFE_SECS)?;
        range("rate_limit.max_clients", self.max_clients as u64, 1, MAX_MAX_CLIENTS as u64)?;
        if self.min_client_rps < 1 || self.min_client_rps > self.client_rps {
            return Err(ConfigError::Invalid {
                field: "rate_limit.min_client_rps",
                reason: format!(
                    "{} must be at least 1 and at most client_rps ({})",
                    self.min_client_rps, self.client_rps
                ),
            });
        }
        Ok(())
    }

    /// The settings brought into range, for a limiter built without
    /// [`RateLimitSettings::validate`].
    fn clamped(mut self) -> Self {
        self.global_rps = self.global_rps.clamp(1, MAX_RPS);
        self.global_burst = self.global_burst.clamp(1, MAX_BURST);
        self.client_rps = self.client_rps.clamp(1, MAX_RPS);
        self.client_burst = self.client_burst.clamp(1, MAX_BURST);
        self.failure_half_life_secs = self.failure_half_life_secs.clamp(1, MAX_FAILURE_HALF_LIFE_SECS);
        self.min_client_rps = self.min_client_rps.clamp(1, self.client_rps);
        self.max_clients = self.max_clients.clamp(1, MAX_MAX_CLIENTS);
        self
    }

    /// A client's rate and burst at penalty `score`.
    fn client_limits(&self, score: f64) -> (f64, f64) {
        let div = 1.0 + score;
        let floor = f64::from(self.min_client_rps);
        let rate = (f64::from(self.client_rps) / div).max(floor);
        let burst = (f64::from(self.client_burst) / div).max(floor.min(f64::from(self.client_burst))).max(1.0);
        (rate, burst)
    }
}

/// Which bucket refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// The whole gateway's.
    Global,
    /// One client's.
    Client,
    /// The one shared by new clients while the client table is full.
    Overflow,
}

impl Scope {
    /// `global`, `client` or `overflow`: the `scope` metric label and
    /// audit detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Client => "client",
            Scope::Overflow => "overflow",
        }
    }
}

/// A refused request: which bucket, and when a token will be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// The empty bucket.
    pub scope: Scope,
    /// Time until the bucket holds a token again.
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After` in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        s.max(1)
    }
}

impl IntoResponse for Limited {
    /// 429 with `Retry-After`, the gateway's JSON error body and its
    /// security headers (this answer never reaches the inner layers).
    fn into_response(self) -> Response<Body> {
        let mut res = crate::app::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some("too many requests: retry after the number of seconds in Retry-After"),
        );
        let headers = res.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after_secs()));
        crate::app::insert_security_headers(headers);
        res
    }
}

/// The key a client's requests are counted under: the IPv4 address, or
/// the IPv6 address cut to [`IPV6_CLIENT_PREFIX`] bits.
pub fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - u32::from(IPV6_CLIENT_PREFIX));
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// One limited party.
#[derive(Debug)]
struct Party {
    bucket: Bucket,
    penalty: Penalty,
    episode: Episode,
    /// The address last seen (an IPv6 key covers many).
    peer: IpAddr,
}

impl Party {
    fn new(peer: IpAddr, burst: u32, now: Duration) -> Self {
        Self {
            bucket: Bucket::full(f64::from(burst), now),
            penalty: Penalty::default(),
            episode: Episode::default(),
            peer,
        }
    }
}

#[derive(Debug)]
struct Table {
    global: Party,
    overflow: Party,
    clients: HashMap<IpAddr, Party>,
    last_sweep: Duration,
}

/// The limiter's state and policy; shared by every request (put it in an
/// `Arc` and hand it to [`middleware`]).
pub struct RateLimiter {
    settings: RateLimitSettings,
    half_life: f64,
    clock: Arc<dyn Clock>,
    audit: Option<Arc<AuditQueue>>,
    metrics: Option<Metrics>,
    table: Mutex<Table>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("settings", &self.settings)
            .field("audit", &self.audit.is_some())
            .field("tracked_clients", &self.tracked_clients())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter with `settings` (brought into range: call
    /// [`RateLimitSettings::validate`] first to get an error instead) and
    /// time from `clock`, without audit log or metrics.
    pub fn new(settings: RateLimitSettings, clock: Arc<dyn Clock>) -> Self {
        let settings = settings.clamped();
        let now = clock.now();
        let unknown = UNKNOWN_PEER;
        let table = Table {
            global: Party::new(unknown, settings.global_burst, now),
            overflow: Party::new(unknown, settings.client_burst, now),
            clients: HashMap::new(),
            last_sweep: now,
        };
        Self {
            half_life: settings.failure_half_life_secs as f64,
            settings,
            clock,
            audit: None,
            metrics: None,
            table: Mutex::new(table),
        }
    }

    /// Writes trip and recovery events to `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(AuditQueue::new(sink));
        self
    }

    /// Counts trips, rejections and tracked clients in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clients tracked now (at most `max_clients`).
    pub fn tracked_clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// The rate (requests/s) and burst in force for `peer`'s client now.
    pub fn client_limits(&self, peer: IpAddr) -> (f64, f64) {
        let now = self.clock.now();
        let t = self.lock();
        let score = t.clients.get(&client_key(peer)).map_or(0.0, |p| p.penalty.value(now, self.half_life));
        self.settings.client_limits(score)
    }

    /// Admits one request from `peer`, or says which bucket is empty.
    pub fn check(&self, peer: IpAddr) -> Result<(), Limited> {
        let now = self.clock.now();
        let mut notes = Vec::new();
        let result = self.check_at(peer, now, &mut notes);
        self.publish(&notes);
        result
    }

    fn check_at(&self, peer: IpAddr, now: Duration, notes: &mut Vec<Note>) -> Result<(), Limited> {
        let s = &self.settings;
        let key = client_key(peer);
        let mut t = self.lock();
        let since_sweep = now.saturating_sub(t.last_sweep);
        let full = t.clients.len() >= s.max_clients && !t.clients.contains_key(&key);
        if since_sweep >= SWEEP_INTERVAL || (full && since_sweep >= FULL_SWEEP_GAP) {
            self.sweep(&mut t, now, notes);
        }
        let Table { global, overflow, clients, .. } = &mut *t;
        let (party, scope) = party(clients, overflow, key, peer, s, now);
        party.peer = peer;
        let score = party.penalty.value(now, self.half_life);
        let (rate, burst) = s.client_limits(score);
        party.bucket.refill(now, rate, burst);
        if !party.bucket.has_token() {
            let limited = Limited { scope, retry_after: party.bucket.wait(rate) };
            let r = party.episode.reject(now);
            self.rejected(r, scope, peer, score, rate, burst, notes);
            self.count_clients(clients.len());
            return Err(limited);
        }
        let (grate, gburst) = (f64::from(s.global_rps), f64::from(s.global_burst));
        global.bucket.refill(now, grate, gburst);
        global.peer = peer;
        if !global.bucket.has_token() {
            let limited = Limited { scope: Scope::Global, retry_after: global.bucket.wait(grate) };
            let r = global.episode.reject(now);
            self.rejected(r, Scope::Global, peer, 0.0, grate, gburst, notes);
            self.count_clients(clients.len());
            return Err(limited);
        }
        party.bucket.take();
        global.bucket.take();
        if let Some(episode) = party.episode.close_if_quiet(now) {
            notes.push(Note::Recovered { scope, peer, episode });
        }
        if let Some(episode) = global.episode.close_if_quiet(now) {
            notes.push(Note::Recovered { scope: Scope::Global, peer, episode });
        }
        self.count_clients(clients.len());
        Ok(())
    }

    /// Counts a rejection; a trip becomes a note.
    #[allow(clippy::too_many_arguments)] // one call per scope, all values at hand
    fn rejected(
        &self,
        r: Rejection,
        scope: Scope,
        peer: IpAddr,
        penalty: f64,
        rate: f64,
        burst: f64,
        notes: &mut Vec<Note>,
    ) {
        if let Some(m) = &self.metrics {
            m.rate_limit_rejected(scope);
        }
        if let Rejection::Trip { previous } = r {
            notes.push(Note::Trip { scope, peer, penalty, rate, burst, previous });
        }
    }

    /// Adds one authentication or authorisation failure to `peer`'s client.
    pub fn record_failure(&self, peer: IpAddr) {
        let now = self.clock.now();
        let key = client_key(peer);
        let mut t = self.lock();
        let Table { overflow, clients, .. } = &mut *t;
        let (party, _) = party(clients, overflow, key, peer, &self.settings, now);
        party.penalty.add(now, self.half_life);
        self.count_clients(clients.len());
    }

    /// Closes quiet episodes and drops clients that are as good as new.
    fn sweep(&self, t: &mut Table, now: Duration, notes: &mut Vec<Note>) {
        t.last_sweep = now;
        let s = &self.settings;
        let half_life = self.half_life;
        t.clients.retain(|_, p| {
            if let Some(episode) = p.episode.close_if_quiet(now) {
                notes.push(Note::Recovered { scope: Scope::Client, peer: p.peer, episode });
            }
            let score = p.penalty.value(now, half_life);
            let (rate, burst) = s.client_limits(score);
            p.bucket.refill(now, rate, burst);
            score >= PENALTY_FORGET || p.episode.is_open() || !p.bucket.is_full(burst)
        });
        for (p, scope) in [(&mut t.global, Scope::Global), (&mut t.overflow, Scope::Overflow)] {
            if let Some(episode) = p.episode.close_if_quiet(now) {
                notes.push(Note::Recovered { scope, peer: p.peer, episode });
            }
        }
    }

    fn count_clients(&self, n: usize) {
        if let Some(m) = &self.metrics {
            m.rate_limit_clients(n);
        }
    }

    /// Logs the notes, counts trips, and queues the audit events.
    fn publish(&self, notes: &[Note]) {
        for note in notes {
            match *note {
                Note::Trip { scope, peer, penalty, rate, burst, .. } => {
                    if let Some(m) = &self.metrics {
                        m.rate_limit_tripped(scope);
                    }
                    tracing::warn!(
                        scope = scope.as_str(),
                        client_ip = %peer,
                        penalty,
                        rate_per_sec = rate,
                        burst,
                        "rate limit tripped"
                    );
                }
                Note::Recovered { scope, peer, episode } => {
                    tracing::info!(
                        scope = scope.as_str(),
                        client_ip = %peer,
                        rejected = episode.rejected,
                        "rate limit episode ended"
                    );
                }
            }
        }
        if let Some(q) = &self.audit {
            q.push(notes);
        }
    }
}

/// The client's entry (created if there is room), else the overflow one.
fn party<'a>(
    clients: &'a mut HashMap<IpAddr, Party>,
    overflow: &'a mut Party,
    key: IpAddr,
    peer: IpAddr,
    s: &RateLimitSettings,
    now: Duration,
) -> (&'a mut Party, Scope) {
    if clients.len() < s.max_clients || clients.contains_key(&key) {
        (clients.entry(key).or_insert_with(|| Party::new(peer, s.client_burst, now)), Scope::Client)
    } else {
        (overflow, Scope::Overflow)
    }
}

/// The middleware: admits or refuses each request (except `/healthz`),
/// then counts a 401 or 403 answer against the client.
pub async fn middleware(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response<Body> {
    if req.extensions().get::<MatchedPath>().is_some_and(|p| p.as_str() == crate::app::HEALTHZ_PATH) {
        return next.run(req).await;
    }
    let peer = crate::access::peer_ip(req.extensions()).unwrap_or(UNKNOWN_PEER);
    if let Err(limited) = limiter.check(peer) {
        return limited.into_response();
    }
    let res = next.run(req).await;
    if matches!(res.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        limiter.record_failure(peer);
    }
    res
}

#[cfg(test)]
mod tests;
