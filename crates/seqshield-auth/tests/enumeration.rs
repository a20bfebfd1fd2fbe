//! Usernames cannot be enumerated by timing: a login with a wrong password
//! for an existing user takes as long as a login for a name that does not
//! exist (both cost one argon2id verification). Statistical test: many
//! interleaved samples of each, compared by median and by a rank-sum test.
//! A real difference reproduces; a burst of load on a shared CI machine does
//! not, so a failing round is measured again (up to [`ROUNDS`] in all) and
//! the test fails only when every round shows a difference.
//!
//! Alone in its own test binary so no other test competes for the CPU.

use std::sync::Arc;
use std::time::Instant;

use seqshield_auth::audit::MemorySink;
use seqshield_auth::config::AuthConfig;
use seqshield_auth::service::authorize::{AuthorizeParams, LoginStep};
use seqshield_auth::service::{AuthService, Origin};
use seqshield_auth::store::{NewClient, NewUser};
use seqshield_auth::totp::TotpSecret;
use seqshield_auth::{password, pkce, Clearance, ScopeSet, SystemClock};
use seqshield_keys::file::FileKek;
use zeroize::Zeroizing;

const SAMPLES: usize = 30;
/// Rounds of [`SAMPLES`] pairs before a difference counts as real.
const ROUNDS: usize = 3;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2] + v[(v.len() - 1) / 2]) / 2.0
}

/// Mann–Whitney U, normal approximation: |z| for "the two samples come from
/// the same distribution".
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, usize)> = a.iter().map(|&x| (x, 0)).chain(b.iter().map(|&x| (x, 1))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let rank_a: f64 = all.iter().enumerate().filter(|(_, (_, g))| *g == 0).map(|(i, _)| (i + 1) as f64).sum();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    ((u - mean) / sd).abs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_take_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let kek = FileKek::init(&dir.path().join("kek"), b"enumeration").unwrap();
    let cfg = AuthConfig { issuer: "https://gateway.test".into(), ..AuthConfig::default() };
    let svc: Arc<AuthService> =
        AuthService::open(cfg, dir.path(), &kek, Arc::new(MemorySink::new()), Arc::new(SystemClock)).unwrap();
    svc.store()
        .add_client(&NewClient {
            id: "cli".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            secret_hash: None,
            jwks: None,
            scopes: ScopeSet::parse("openid").unwrap(),
            clearance: Clearance::Internal,
        })
        .unwrap();
    // One real user per sample and round, so per-account throttling never kicks in.
    for i in 0..SAMPLES * ROUNDS {
        svc.store()
            .add_user(&NewUser {
                name: format!("user{i}"),
                password_hash: password::hash_password(b"the right password").unwrap(),
                totp_secret: TotpSecret::generate().unwrap(),
                scopes: ScopeSet::parse("openid").unwrap(),
                clearance: Clearance::Internal,
            })
            .unwrap();
    }
    let params = AuthorizeParams {
        response_type: Some("code".into()),
        client_id: Some("cli".into()),
        redirect_uri: Some("http://127.0.0.1/callback".into()),
        scope: Some("openid".into()),
        state: Some("s".into()),
        nonce: Some("n".into()),
        code_challenge: Some(pkce::s256(&"a".repeat(43))),
        code_challenge_method: Some("S256".into()),
    };
    let attempt = |name: String, round: u8, ip: u8| {
        let svc = svc.clone();
        let params = params.clone();
        async move {
            // A distinct source per attempt: per-address throttling stays out of the way.
            let origin = Origin { ip: Some(std::net::IpAddr::from([10, round, ip, 1])) };
            let login = svc.start_authorization(&params, origin).unwrap();
            let t = Instant::now();
            let step = svc.login_password(&login, &name, Zeroizing::new("a wrong password!".into()), origin).await;
            let secs = t.elapsed().as_secs_f64();
            let LoginStep::Password { message, status, .. } = step else { panic!("unexpected step {step:?}") };
            assert_eq!(status, 401);
            (secs, message)
        }
    };
    // Warm up both paths (the dummy hash is computed on first use).
    attempt("warm-a".into(), 200, 250).await;
    attempt("user0".into(), 200, 251).await;
    let (mut verdicts, mut passed) = (Vec::new(), false);
    for round in 0..ROUNDS {
        let (mut existing, mut missing) = (Vec::new(), Vec::new());
        for i in 0..SAMPLES {
            // Alternate the order so drift in machine load hits both equally.
            let user = round * SAMPLES + i;
            let a = attempt(format!("user{user}"), round as u8, i as u8);
            let b = attempt(format!("nobody{user}"), round as u8, 100 + i as u8);
            let ((ta, ma), (tb, mb)) = if i % 2 == 0 {
                let ra = a.await;
                (ra, b.await)
            } else {
                let rb = b.await;
                (a.await, rb)
            };
            assert_eq!(ma, mb, "same message either way");
            existing.push(ta);
            missing.push(tb);
        }
        let z = mann_whitney_z(&existing, &missing);
        let (me, mm) = (median(&mut existing), median(&mut missing));
        let ratio = me / mm;
        eprintln!(
            "round {round}: median existing {:.2} ms, missing {:.2} ms, ratio {ratio:.3}, |z| {z:.2}",
            me * 1e3,
            mm * 1e3
        );
        // A 10 % difference in medians would already be visible to an
        // attacker with enough samples; argon2id dominates both paths, so we
        // expect ~1. |z| > 4 would mean the distributions differ with p < 1e-4.
        let same = (0.9..=1.1).contains(&ratio) && z < 4.0;
        verdicts.push(format!("ratio {ratio:.3}, |z| {z:.2}"));
        if same {
            passed = true;
            break;
        }
    }
    assert!(passed, "timing reveals whether a user exists in every round: {verdicts:?}");
    the_statistic_detects_a_leaky_implementation();
}

/// The statistic is able to fail: a path that skips the password hash for
/// unknown users (the classic bug) is caught by the same checks. Called from
/// the test above, so the two never run at the same time.
fn the_statistic_detects_a_leaky_implementation() {
    let leaky = |exists: bool| {
        let t = Instant::now();
        if exists {
            password::dummy_verify(b"some password");
        }
        t.elapsed().as_secs_f64()
    };
    password::dummy_verify(b"warm");
    let (mut a, mut b): (Vec<f64>, Vec<f64>) = (0..12).map(|_| (leaky(true), leaky(false))).unzip();
    let z = mann_whitney_z(&a, &b);
    let ratio = median(&mut a) / median(&mut b);
    assert!(z >= 4.0 && ratio > 10.0, "z {z:.2} ratio {ratio:.1}");
}
