//! The limiter's policy, on a manual clock: no sleeps.

use std::sync::Mutex;

use seqshield_auth::audit::{AuditError, AuditEvent, Outcome};

use super::*;

/// Collects events; plain `#[test]`s have no runtime, so the queue drains
/// inline and the events are here when `check` returns.
#[derive(Default)]
struct Sink(Mutex<Vec<AuditEvent>>);

impl AuditSink for Sink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Sink {
    fn kinds(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|e| e.kind).collect()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn settings(client_rps: u32, client_burst: u32) -> RateLimitSettings {
    RateLimitSettings { client_rps, client_burst, ..Default::default() }
}

fn limiter(s: RateLimitSettings) -> (RateLimiter, Arc<ManualClock>, Arc<Sink>) {
    let clock = Arc::new(ManualClock::new());
    let sink = Arc::new(Sink::default());
    let l = RateLimiter::new(s, clock.clone()).with_audit(sink.clone());
    (l, clock, sink)
}

/// Requests `peer` gets through right now, up to `max`.
fn admitted(l: &RateLimiter, peer: IpAddr, max: usize) -> usize {
    (0..max).take_while(|_| l.check(peer).is_ok()).count()
}

#[test]
fn client_limit_trips_at_its_burst_then_refills_at_its_rate() {
    let (l, clock, _) = limiter(settings(10, 20));
    let a = ip("192.0.2.1");
    assert_eq!(admitted(&l, a, 100), 20, "the burst");
    assert_eq!(l.check(a).unwrap_err().scope, Scope::Client);
    clock.advance(Duration::from_millis(100));
    assert_eq!(admitted(&l, a, 100), 1, "one token per 100 ms at 10/s");
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&l, a, 100), 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted(&l, a, 100), 20, "never more than the burst");
    assert_eq!(admitted(&l, ip("192.0.2.2"), 100), 20, "another client has its own bucket");
}

#[test]
fn global_limit_trips_across_clients_and_spares_their_buckets() {
    let s = RateLimitSettings { global_rps: 5, global_burst: 5, ..settings(100, 3) };
    let (l, clock, _) = limiter(s);
    for i in 1..=5 {
        l.check(ip(&format!("192.0.2.{i}"))).unwrap();
    }
    let last = ip("192.0.2.9");
    let err = l.check(last).unwrap_err();
    assert_eq!(err.scope, Scope::Global);
    assert_eq!(err.retry_after, Duration::from_millis(200));
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&l, last, 100), 3, "the global refusal took no token from the client");
}

#[test]
fn failures_tighten_one_client_and_not_another() {
    let (l, _, _) = limiter(settings(100, 100));
    let (bad, good) = (ip("198.51.100.7"), ip("198.51.100.8"));
    for _ in 0..9 {
        l.record_failure(bad);
    }
    let (rate, burst) = l.client_limits(bad);
    assert!((rate - 10.0).abs() < 1e-9 && (burst - 10.0).abs() < 1e-9, "{rate} {burst}");
    assert_eq!(l.client_limits(good), (100.0, 100.0));
    assert_eq!(admitted(&l, bad, 1000), 10);
    assert_eq!(admitted(&l, good, 1000), 100);
}

#[test]
fn limits_relax_as_the_score_decays() {
    let s = RateLimitSettings { failure_half_life_secs: 60, ..settings(100, 100) };
    let (l, clock, _) = limiter(s);
    let a = ip("203.0.113.5");
    for _ in 0..9 {
        l.record_failure(a);
    }
    assert!((l.client_limits(a).0 - 10.0).abs() < 1e-9);
    clock.advance(Duration::from_secs(60));
    assert!((l.client_limits(a).0 - 100.0 / 5.5).abs() < 1e-6, "score 9 halved to 4.5");
    clock.advance(Duration::from_secs(600));
    let (rate, burst) = l.client_limits(a);
    assert!(rate > 99.0 && burst > 99.0, "{rate} {burst}");
    // The score is below 0.01: the sweep forgot the client, a fresh entry has the full burst.
    assert_eq!(admitted(&l, a, 1000), 100);
    assert_eq!(l.client_limits(a), (100.0, 100.0));
}

#[test]
fn the_floor_holds_however_many_failures() {
    let s = RateLimitSettings { min_client_rps: 2, ..settings(1000, 2000) };
    let (l, clock, _) = limiter(s);
    let a = ip("203.0.113.9");
    for _ in 0..100_000 {
        l.record_failure(a);
    }
    assert_eq!(l.client_limits(a), (2.0, 2.0));
    assert_eq!(admitted(&l, a, 100), 2);
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&l, a, 100), 2, "still 2 requests/s");
}

/// An attacker hammering the gateway must not flood the audit log: one
/// event when the episode begins, one with the count when it ends.
#[test]
fn one_audit_event_per_trip_episode_with_the_count() {
    let (l, clock, sink) = limiter(settings(1, 2));
    let a = ip("192.0.2.50");
    assert_eq!(admitted(&l, a, 10), 2);
    for _ in 0..999 {
        clock.advance(Duration::from_millis(1));
        assert!(l.check(a).is_err());
    }
    assert_eq!(sink.kinds(), ["ratelimit.trip"]);
    {
        let events = sink.0.lock().unwrap();
        let trip = &events[0];
        assert_eq!(trip.outcome, Outcome::Deny);
        assert_eq!(trip.source, Some(a));
        assert_eq!(trip.detail["scope"], "client");
        assert_eq!(trip.detail["penalty"], "0.00");
        assert_eq!(trip.detail["rate_per_sec"], "1.00");
        assert_eq!(trip.detail["burst"], "2.00");
    }
    // Quiet for longer than EPISODE_QUIET: the next request passes and closes it.
    clock.advance(EPISODE_QUIET);
    l.check(a).unwrap();
    assert_eq!(sink.kinds(), ["ratelimit.trip", "ratelimit.recovered"]);
    let recovered = sink.0.lock().unwrap()[1].clone();
    assert_eq!(recovered.outcome, Outcome::Allow);
    assert_eq!(recovered.detail["rejected"], 1000);
    assert_eq!(recovered.detail["scope"], "client");
    // A new episode is a new trip.
    while l.check(a).is_ok() {}
    assert_eq!(sink.kinds(), ["ratelimit.trip", "ratelimit.recovered", "ratelimit.trip"]);
}

#[test]
fn global_trips_are_audited_once_too() {
    let s = RateLimitSettings { global_rps: 1, global_burst: 1, ..Default::default() };
    let (l, clock, sink) = limiter(s);
    l.check(ip("192.0.2.1")).unwrap();
    for i in 0..50 {
        assert_eq!(l.check(ip(&format!("192.0.2.{}", i + 2))).unwrap_err().scope, Scope::Global);
    }
    assert_eq!(sink.kinds(), ["ratelimit.trip"]);
    assert_eq!(sink.0.lock().unwrap()[0].detail["scope"], "global");
    // No more traffic: the periodic sweep closes the episode.
    clock.advance(SWEEP_INTERVAL + EPISODE_QUIET);
    l.check(ip("192.0.2.1")).unwrap();
    assert_eq!(sink.kinds(), ["ratelimit.trip", "ratelimit.recovered"]);
    assert_eq!(sink.0.lock().unwrap()[1].detail["rejected"], 50);
}

#[test]
fn metrics_count_trips_rejections_and_clients() {
    let clock = Arc::new(ManualClock::new());
    let m = Metrics::new();
    let l = RateLimiter::new(settings(1, 1), clock).with_metrics(&m);
    l.check(ip("192.0.2.1")).unwrap();
    l.check(ip("192.0.2.2")).unwrap();
    for _ in 0..3 {
        l.check(ip("192.0.2.1")).unwrap_err();
    }
    let text = m.encode().unwrap();
    for line in [
        "seqshield_rate_limit_trips_total{scope=\"client\"} 1",
        "seqshield_rate_limited_requests_total{scope=\"client\"} 3",
        "seqshield_rate_limit_clients 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

/// A flood of addresses must neither grow memory past `max_clients` nor
/// evict a penalised client (which would pardon it).
#[test]
fn client_table_is_bounded() {
    let s = RateLimitSettings { max_clients: 100, ..settings(10, 1) };
    let (l, clock, _) = limiter(s);
    let penalised = ip("10.0.0.1");
    for _ in 0..5 {
        l.record_failure(penalised);
    }
    for i in 0..10_000u32 {
        let _ = l.check(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)));
    }
    assert_eq!(l.tracked_clients(), 100);
    // New clients share the overflow bucket (burst 1 here).
    assert_eq!(l.check(ip("10.9.9.9")).unwrap_err().scope, Scope::Overflow);
    // Later, entries as good as new are swept; the penalised one stays.
    clock.advance(SWEEP_INTERVAL);
    l.check(ip("10.9.9.9")).unwrap();
    assert_eq!(l.tracked_clients(), 2, "the penalised client and the new one");
    assert!(l.client_limits(penalised).0 < 10.0);
}

#[test]
fn ipv6_clients_count_per_64() {
    assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
    assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
    let (l, _, _) = limiter(settings(1, 1));
    l.check(ip("2001:db8::1")).unwrap();
    assert!(l.check(ip("2001:db8::2")).is_err(), "same /64, same bucket");
    l.check(ip("2001:db8:0:1::1")).unwrap();
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    let l = |ms| Limited { scope: Scope::Client, retry_after: Duration::from_millis(ms) };
    assert_eq!(l(0).retry_after_secs(), 1);
    assert_eq!(l(200).retry_after_secs(), 1);
    assert_eq!(l(1000).retry_after_secs(), 1);
    assert_eq!(l(1001).retry_after_secs(), 2);
}

#[test]
fn defaults_let_a_site_work_and_bounds_are_checked() {
    let d = RateLimitSettings::default();
    d.validate().unwrap();
    assert_eq!((d.global_rps, d.global_burst, d.client_rps, d.client_burst), (20_000, 40_000, 1_000, 2_000));
    assert_eq!((d.failure_half_life_secs, d.min_client_rps, d.max_clients), (60, 1, 100_000));
    let bad = [
        RateLimitSettings { global_rps: 0, ..d.clone() },
        RateLimitSettings { client_burst: MAX_BURST + 1, ..d.clone() },
        RateLimitSettings { failure_half_life_secs: 0, ..d.clone() },
        RateLimitSettings { max_clients: MAX_MAX_CLIENTS + 1, ..d.clone() },
        RateLimitSettings { min_client_rps: 0, ..d.clone() },
        RateLimitSettings { min_client_rps: 2000, ..d.clone() },
    ];
    for s in bad {
        let err = s.validate().unwrap_err().to_string();
        assert!(err.starts_with("server.rate_limit."), "{err}");
    }
}

#[test]
fn settings_come_from_the_server_rate_limit_table() {
    use crate::config::{Config, ConfigError};
    let cfg = Config::from_toml("[server.rate_limit]\nclient_rps = 50\nclient_burst = 80\n").unwrap();
    assert_eq!(cfg.server.rate_limit.client_rps, 50);
    assert_eq!(cfg.server.rate_limit.client_burst, 80);
    assert_eq!(cfg.server.rate_limit.global_rps, DEFAULT_GLOBAL_RPS);
    cfg.validate().unwrap();
    let typo = Config::from_toml("[server.rate_limit]\nclient_rate = 50\n");
    assert!(matches!(typo, Err(ConfigError::Parse { .. })), "a typo must not fall back to a default");
    let cfg = Config::from_toml("[server.rate_limit]\nmin_client_rps = 5000\n").unwrap();
    assert!(cfg.validate().unwrap_err().to_string().contains("rate_limit.min_client_rps"));
}
