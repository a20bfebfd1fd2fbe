//! The token service's flows through its HTTP router, in process: every
//! grant, every refusal the issue names, conditional access and federation
//! with a pinned key set. Time is a `ManualClock`, so expiry, TOTP windows
//! and replays are exact.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use seqshield_auth::audit::{MemorySink, Outcome};
use seqshield_auth::config::AuthConfig;
use seqshield_auth::service::AuthService;
use seqshield_auth::store::{NewClient, NewUser};
use seqshield_auth::totp::{self, TotpSecret};
use seqshield_auth::{password, pkce, Clearance, ManualClock, ScopeSet};
use seqshield_keys::file::FileKek;
use serde_json::Value;
use tower::ServiceExt as _;

const ISSUER: &str = "https://gateway.test";
const PW: &str = "correct horse battery staple";
const SECRET: &str = "pipeline-secret-0123456789abcdefghijklmnop";
const T0: u64 = 1_900_000_020;

fn kek() -> &'static (tempfile::TempDir, FileKek) {
    static K: OnceLock<(tempfile::TempDir, FileKek)> = OnceLock::new();
    K.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let k = FileKek::init(&d.path().join("kek"), b"flows test").unwrap();
        (d, k)
    })
}

struct H {
    _dir: tempfile::TempDir,
    svc: Arc<AuthService>,
    app: Router,
    clock: Arc<ManualClock>,
    audit: Arc<MemorySink>,
    totp: TotpSecret,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn location(&self) -> String {
        self.headers.get(header::LOCATION).unwrap().to_str().unwrap().to_owned()
    }
}

fn harness_with(cfg: impl FnOnce(&mut AuthConfig, &std::path::Path)) -> H {
    let dir = tempfile::tempdir().unwrap();
    let mut c = AuthConfig { issuer: ISSUER.to_owned(), ..AuthConfig::default() };
    cfg(&mut c, dir.path());
    let clock = Arc::new(ManualClock::new(T0));
    let audit = Arc::new(MemorySink::new());
    let svc = AuthService::open(c, dir.path(), &kek().1, audit.clone(), clock.clone()).unwrap();
    let totp = TotpSecret::generate().unwrap();
    let store = svc.store();
    store
        .add_user(&NewUser {
            name: "alice".into(),
            password_hash: password::hash_password(PW.as_bytes()).unwrap(),
            totp_secret: TotpSecret::from_bytes(totp.expose_bytes()).unwrap(),
            scopes: ScopeSet::parse("openid data:read data:write jobs:submit").unwrap(),
            clearance: Clearance::Restricted,
        })
        .unwrap();
    store
        .add_client(&NewClient {
            id: "cli".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            secret_hash: None,
            jwks: None,
            scopes: ScopeSet::parse("openid data:read data:write jobs:submit").unwrap(),
            clearance: Clearance::Controlled,
        })
        .unwrap();
    store
        .add_client(&NewClient {
            id: "pipeline".into(),
            redirect_uris: vec![],
            secret_hash: Some(password::hash_password(SECRET.as_bytes()).unwrap()),
            jwks: None,
            scopes: ScopeSet::parse("data:read jobs:submit").unwrap(),
            clearance: Clearance::Internal,
        })
        .unwrap();
    let app = seqshield_auth::http::router(svc.clone());
    H { _dir: dir, svc, app, clock, audit, totp }
}

fn harness() -> H {
    harness_with(|_, _| {})
}

impl H {
    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Resp { status, headers, body }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, uri: &str, form: &[(&str, &str)], extra: &[(&str, &str)]) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Resp {
        self.post_form("/token", form, &[]).await
    }

    fn code_now(&self) -> String {
        totp::code_at(&self.totp, self.clock.now_step())
    }

    /// Runs the browser part of the code flow; returns (code, verifier).
    async fn login(&self, redirect_uri: &str, scope: &str) -> (String, String) {
        let verifier = "v".repeat(20) + &URL_SAFE_NO_PAD.encode([7u8; 24]);
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", "cli"),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("state", "st4te"),
                ("nonce", "n0nce"),
                ("code_challenge", &pkce::s256(&verifier)),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let page = self.get(&format!("/authorize?{q}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookie =
            page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
        let login = between(&page.body, "name=\"login\" value=\"", "\"");
        let r = self
            .post_form(
                "/authorize/password",
                &[("login", &login), ("username", "alice"), ("password", PW)],
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let code = self.code_now();
        let r = self.post_form("/authorize/totp", &[("login", &login), ("code", &code)], &[("cookie", &cookie)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let loc = url::Url::parse(&r.location()).unwrap();
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["iss"], ISSUER);
        // Each login uses a TOTP step; move to the next so the next login has a fresh code.
        self.clock.advance(30);
        (q["code"].clone(), verifier)
    }

    /// Authorization request and password step; returns (login id, cookie).
    async fn begin(&self) -> (String, String) {
        let ch = pkce::s256(&"a".repeat(43));
        let uri = format!("/authorize?response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256");
        let page = self.get(&uri).await;
        let cookie =
            page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
        let login = between(&page.body, "name=\"login\" value=\"", "\"");
        let r = self
            .post_form(
                "/authorize/password",
                &[("login", &login), ("username", "alice"), ("password", PW)],
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (login, cookie)
    }

    async fn tokens(&self) -> Value {
        let (code, verifier) = self.login("http://127.0.0.1:5555/callback", "openid data:read").await;
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:5555/callback"),
                ("code_verifier", &verifier),
                ("client_id", "cli"),
            ])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()
    }

    async fn whoami(&self, token: &str) -> Resp {
        self.send(
            Request::get("/api/v1/whoami")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

trait Step {
    fn now_step(&self) -> u64;
}
impl Step for ManualClock {
    fn now_step(&self) -> u64 {
        use seqshield_auth::Clock as _;
        self.now() / 30
    }
}

fn between(s: &str, a: &str, b: &str) -> String {
    let i = s.find(a).unwrap_or_else(|| panic!("{a} not in {s}")) + a.len();
    s[i..].split(b).next().unwrap().to_owned()
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn discovery_and_jwks_describe_an_rs256_s256_only_issuer() {
    let h = harness();
    let d = h.get("/.well-known/openid-configuration").await.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    let jwks = h.get("/jwks").await.json();
    let k = &jwks["keys"][0];
    assert_eq!(k["kty"], "RSA");
    assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
    // 3072-bit by default.
    assert_eq!(URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap().len(), 384);
}

#[tokio::test]
async fn code_flow_issues_bound_short_lived_tokens_with_every_claim() {
    let h = harness();
    let t = h.tokens().await;
    let at = payload(t["access_token"].as_str().unwrap());
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "amr", "acr", "clearance"] {
        assert!(at.get(claim).is_some(), "missing {claim} in {at}");
    }
    assert_eq!(at["iss"], ISSUER);
    assert_eq!(at["aud"], "seqshield");
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["clearance"], "restricted");
    assert!(at["exp"].as_u64().unwrap() - at["iat"].as_u64().unwrap() <= 3600);
    assert!(at["amr"].as_array().unwrap().iter().any(|m| m == "mfa"));
    let id = payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "cli");
    assert_eq!(id["nonce"], "n0nce");
    let who = h.whoami(t["access_token"].as_str().unwrap()).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert_eq!(who.json()["sub"], "alice");
    // Expired an hour later (plus the 60 s skew).
    h.clock.advance(3600 + 61);
    let who = h.whoami(t["access_token"].as_str().unwrap()).await;
    assert_eq!(who.status, StatusCode::UNAUTHORIZED);
    assert_eq!(who.json()["error"], "invalid_token");
    assert!(who
        .headers
        .get(header::WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_what_it_produced() {
    let h = harness();
    let (code, verifier) = h.login("http://127.0.0.1/callback", "openid data:read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("code_verifier", verifier.as_str()),
        ("client_id", "cli"),
    ];
    let first = h.token(&form).await.json();
    let again = h.token(&form).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");
    // The refresh token and the access token from the first use are dead.
    let r = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", "cli"),
        ])
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(h.whoami(first["access_token"].as_str().unwrap()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_pkce_verifier_wrong_redirect_and_expired_code_are_refused() {
    let h = harness();
    let (code, verifier) = h.login("http://127.0.0.1/callback", "openid").await;
    let bad = "w".repeat(43);
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", &bad),
            ("client_id", "cli"),
        ])
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let (code, verifier2) = h.login("http://127.0.0.1/callback", "openid").await;
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/other"),
            ("code_verifier", &verifier2),
            ("client_id", "cli"),
        ])
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let (code, verifier3) = h.login("http://127.0.0.1/callback", "openid").await;
    h.clock.advance(61);
    let r = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", &verifier3),
            ("client_id", "cli"),
        ])
        .await;
    assert_eq!(r.json()["error"], "invalid_grant", "a code lives at most 60 s");
    let _ = verifier;
}

#[tokio::test]
async fn authorization_requests_without_s256_state_or_nonce_are_refused() {
    let h = harness();
    let ch = pkce::s256(&"a".repeat(43));
    let base = |extra: &str| {
        format!("/authorize?response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid{extra}")
    };
    for (extra, want) in [
        (format!("&state=s&nonce=n&code_challenge={ch}&code_challenge_method=plain"), "invalid_request"),
        (format!("&state=s&nonce=n&code_challenge={ch}"), "invalid_request"),
        ("&state=s&nonce=n".to_owned(), "invalid_request"),
        (format!("&nonce=n&code_challenge={ch}&code_challenge_method=S256"), "invalid_request"),
        (format!("&state=s&code_challenge={ch}&code_challenge_method=S256"), "invalid_request"),
        (format!("&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256&scope=admin"), "invalid_request"),
    ] {
        let r = h.get(&base(&extra)).await;
        if r.status == StatusCode::SEE_OTHER {
            let loc = r.location();
            assert!(loc.starts_with("http://127.0.0.1/callback?"), "{loc}");
            assert!(loc.contains(&format!("error={want}")), "{extra}: {loc}");
        } else {
            // A repeated parameter makes the request malformed before any redirect.
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra}: {}", r.body);
        }
    }
    // Unknown client or unregistered redirect URI: an error page, never a redirect.
    let r = h.get(&format!("/authorize?response_type=code&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::LOCATION).is_none());
    let r = h.get(&format!("/authorize?response_type=code&client_id=cli&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::LOCATION).is_none());
    assert!(!r.body.contains("evil.example"));
}

#[tokio::test]
async fn used_totp_code_is_refused_and_window_is_one_step() {
    let h = harness();
    let (login, cookie) = h.begin().await;
    let code = h.code_now();
    let r = h.post_form("/authorize/totp", &[("login", &login), ("code", &code)], &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The same code again, in a new login within the same step: refused.
    let (login, cookie) = h.begin().await;
    let r = h.post_form("/authorize/totp", &[("login", &login), ("code", &code)], &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("already used"), "{}", r.body);
    // The previous step's code is accepted once we move on (±1 step) ...
    h.clock.advance(30);
    let prev = totp::code_at(&h.totp, h.clock.now_step() - 1);
    let next = totp::code_at(&h.totp, h.clock.now_step());
    let r = h.post_form("/authorize/totp", &[("login", &login), ("code", &next)], &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let _ = prev;
    // ... but a code two steps old is not.
    let (login, cookie) = h.begin().await;
    h.clock.advance(60);
    let old = totp::code_at(&h.totp, h.clock.now_step() - 2);
    let r = h.post_form("/authorize/totp", &[("login", &login), ("code", &old)], &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("not right"), "{}", r.body);
}

#[tokio::test]
async fn login_form_bound_to_its_cookie() {
    let h = harness();
    let ch = pkce::s256(&"a".repeat(43));
    let page = h.get(&format!("/authorize?response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256")).await;
    assert!(!page.body.to_lowercase().contains("<script"));
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'"));
    let login = between(&page.body, "name=\"login\" value=\"", "\"");
    let r =
        h.post_form("/authorize/password", &[("login", &login), ("username", "alice"), ("password", PW)], &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a login id without its cookie is refused");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer_and_are_throttled() {
    let h = harness();
    let ch = pkce::s256(&"a".repeat(43));
    let mut bodies = Vec::new();
    for user in ["alice", "mallory"] {
        let page = h.get(&format!("/authorize?response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256")).await;
        let cookie =
            page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
        let login = between(&page.body, "name=\"login\" value=\"", "\"");
        let r = h
            .post_form(
                "/authorize/password",
                &[("login", &login), ("username", user), ("password", "wrong password!!")],
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        bodies.push(r.body.replace(&login, "LOGIN"));
    }
    assert_eq!(bodies[0], bodies[1], "responses must not reveal whether the user exists");
    // After repeated failures the account is slowed down, whether or not it exists.
    for user in ["alice", "nobody-at-all"] {
        let mut last = StatusCode::OK;
        for _ in 0..8 {
            let page = h.get(&format!("/authorize?response_type=code&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={ch}&code_challenge_method=S256")).await;
            let cookie =
                page.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
            let login = between(&page.body, "name=\"login\" value=\"", "\"");
            last = h
                .post_form(
                    "/authorize/password",
                    &[("login", &login), ("username", user), ("password", "wrong password!!")],
                    &[("cookie", &cookie)],
                )
                .await
                .status;
        }
        assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "{user}");
    }
    assert!(h.audit.events().iter().any(|e| e.kind == "login.throttled"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness();
    let t = h.tokens().await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let n = h.token(&[("grant_type", "refresh_token"), ("refresh_token", r1), ("client_id", "cli")]).await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    let n = n.json();
    let r2 = n["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    // Reusing r1 revokes the family: r2 and the access tokens die too.
    let reuse = h.token(&[("grant_type", "refresh_token"), ("refresh_token", r1), ("client_id", "cli")]).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    let r = h.token(&[("grant_type", "refresh_token"), ("refresh_token", r2), ("client_id", "cli")]).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(h.whoami(n["access_token"].as_str().unwrap()).await.status, StatusCode::UNAUTHORIZED);
    assert!(h.audit.events().iter().any(|e| e.kind == "token.refresh_reuse" && e.outcome == Outcome::Deny));
}

#[tokio::test]
async fn client_credentials_with_hashed_secret_capped_scopes() {
    let h = harness();
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("pipeline:{SECRET}")));
    let r = h.post_form("/token", &[("grant_type", "client_credentials")], &[("authorization", &basic)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let at = payload(r.json()["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], "pipeline");
    assert_eq!(at["scope"], "data:read jobs:submit");
    assert_eq!(at["clearance"], "internal");
    assert!(r.json().get("refresh_token").is_none());
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pipeline"),
            ("client_secret", SECRET),
            ("scope", "data:read"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pipeline"),
            ("client_secret", SECRET),
            ("scope", "data:write"),
        ])
        .await;
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pipeline"),
            ("client_secret", "wrong-secret-wrong-secret-wrong-secret"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_client");
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("pipeline:nope"));
    let r = h.post_form("/token", &[("grant_type", "client_credentials")], &[("authorization", &wrong)]).await;
    assert!(r.headers.get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap().starts_with("Basic"));
    let r = h.token(&[("grant_type", "client_credentials"), ("client_id", "cli")]).await;
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = h.token(&[("grant_type", "client_credentials"), ("client_id", "ghost"), ("client_secret", SECRET)]).await;
    assert_eq!(r.json()["error"], "invalid_client");
}

#[tokio::test]
async fn private_key_jwt_client_authentication_and_assertion_replay() {
    let h = harness();
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let (jwks, enc) = test_keys::jwks_and_encoding_key(&kp, "svc-key-1");
    h.svc
        .store()
        .add_client(&NewClient {
            id: "svc".into(),
            redirect_uris: vec![],
            secret_hash: None,
            jwks: Some(jwks),
            scopes: ScopeSet::parse("jobs:submit").unwrap(),
            clearance: Clearance::Internal,
        })
        .unwrap();
    use seqshield_auth::Clock as _;
    let now = h.clock.now();
    let claims = serde_json::json!({"iss": "svc", "sub": "svc", "aud": format!("{ISSUER}/token"), "exp": now + 120, "iat": now, "jti": "a-1"});
    let mut hdr = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    hdr.kid = Some("svc-key-1".into());
    let assertion = jsonwebtoken::encode(&hdr, &claims, &enc).unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let r = h.token(&form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(payload(r.json()["access_token"].as_str().unwrap())["sub"], "svc");
    let r = h.token(&form).await;
    assert_eq!(r.json()["error"], "invalid_client", "an assertion is single-use");
}

#[tokio::test]
async fn token_exchange_downscopes_to_the_intersection_and_records_the_actor() {
    let h = harness();
    let t = h.tokens().await; // alice: openid data:read, restricted
    let subject = t["access_token"].as_str().unwrap();
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("pipeline:{SECRET}")));
    let r = h
        .post_form(
            "/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("audience", "seqshield-worker"),
                ("scope", "data:read data:write admin"),
            ],
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let ex = payload(v["access_token"].as_str().unwrap());
    let st = payload(subject);
    assert_eq!(ex["aud"], "seqshield-worker");
    assert_eq!(ex["sub"], "alice");
    assert_eq!(ex["scope"], "data:read", "requested ∩ subject ∩ audience policy ∩ client");
    // The pipeline client is registered up to `internal`.
    assert_eq!(ex["clearance"], "internal");
    assert!(ex["exp"].as_u64() <= st["exp"].as_u64());
    assert_eq!(ex["act"]["sub"], "pipeline");
    // Valid for its own audience, not for the gateway.
    assert!(h.svc.verify_access_for(v["access_token"].as_str().unwrap(), "seqshield-worker").is_ok());
    assert_eq!(h.whoami(v["access_token"].as_str().unwrap()).await.status, StatusCode::UNAUTHORIZED);
    // Unknown audiences are refused.
    let r = h
        .post_form(
            "/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("audience", "https://elsewhere.example"),
            ],
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_target");
    // A subject token near its end gives an exchanged token no longer than that.
    h.clock.advance(3500);
    let r = h
        .post_form(
            "/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("audience", "seqshield-worker"),
            ],
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.json()["expires_in"].as_u64().unwrap() <= 100);
    assert!(h.audit.events().iter().any(|e| e.kind == "token.exchange"));
}

#[tokio::test]
async fn malformed_requests_get_rfc6749_json_errors() {
    let h = harness();
    for (form, want) in [
        (vec![], "invalid_request"),
        (vec![("grant_type", "password"), ("client_id", "cli")], "unsupported_grant_type"),
        (vec![("grant_type", "authorization_code"), ("client_id", "cli")], "invalid_request"),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "cli"),
                ("code", "x"),
                ("redirect_uri", "http://127.0.0.1/callback"),
                ("code_verifier", &"a".repeat(43)),
            ],
            "invalid_grant",
        ),
        (vec![("grant_type", "refresh_token"), ("client_id", "cli"), ("refresh_token", "nope")], "invalid_grant"),
        (vec![("grant_type", "client_credentials"), ("client_id", "cli"), ("client_id", "cli")], "invalid_request"),
    ] {
        let r = h.token(&form).await;
        assert!(r.status.is_client_error(), "{form:?}: {}", r.status);
        assert_eq!(r.json()["error"], want, "{form:?}");
        assert!(r.json()["error_description"].is_string());
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }
    let r = h
        .send(Request::post("/token").header(header::CONTENT_TYPE, "application/json").body(Body::from("{}")).unwrap())
        .await;
    assert_eq!(r.json()["error"], "invalid_request");
    // Bearer problems.
    let r = h.send(Request::get("/api/v1/whoami").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let huge = "a".repeat(20_000);
    let r = h.whoami(&huge).await;
    assert_eq!(r.json()["error"], "invalid_token");
    assert_eq!(r.json()["error_description"], "the access token is too large");
}

#[tokio::test]
async fn conditional_access_decisions_are_audited_with_rule_and_reason() {
    let h = harness_with(|c, dir| {
        let p = dir.join("policy.toml");
        std::fs::write(
            &p,
            r#"
default = { effect = "allow", reason = "no rule matched" }

[[rule]]
id = "no-write-for-pipelines"
effect = "deny"
reason = "pipelines never write through client credentials"
stages = ["issue"]
clients = ["pipeline"]
scopes_any = ["jobs:submit"]

[[audience]]
name = "seqshield"
scopes = ["openid", "data:read", "data:write", "jobs:submit"]
max_clearance = "controlled"

[[audience]]
name = "seqshield-worker"
scopes = ["data:read"]
max_clearance = "restricted"
"#,
        )
        .unwrap();
        c.policy_file = Some(p);
    });
    let r =
        h.token(&[("grant_type", "client_credentials"), ("client_id", "pipeline"), ("client_secret", SECRET)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.json()["error"], "access_denied");
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pipeline"),
            ("client_secret", SECRET),
            ("scope", "data:read"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = h.audit.events();
    let deny = ev.iter().find(|e| e.kind == "policy.decision" && e.outcome == Outcome::Deny).unwrap();
    assert_eq!(deny.rule.as_deref(), Some("no-write-for-pipelines"));
    assert_eq!(deny.reason, "pipelines never write through client credentials");
    assert!(ev.iter().any(|e| e.kind == "policy.decision" && e.outcome == Outcome::Allow));
}

#[tokio::test]
async fn federated_token_is_accepted_only_at_exchange_and_mapped() {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let (jwks, enc) = test_keys::jwks_and_encoding_key(&kp, "entra-1");
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let h = harness_with(|c, dir| {
        let f = dir.join("entra-jwks.json");
        std::fs::write(&f, &jwks).unwrap();
        let toml = format!(
            r#"
issuer = "https://login.microsoftonline.com/{TENANT}/v2.0"
audience = "api://seqshield"
jwks_file = "{}"
tenant = "{TENANT}"
[[mappings]]
group = "g-analysts"
scopes = ["data:read", "jobs:submit"]
clearance = "restricted"
"#,
            f.display()
        );
        c.federation = vec![toml::from_str(&toml).unwrap()];
    });
    use seqshield_auth::Clock as _;
    let now = h.clock.now();
    let mint = |tid: &str, groups: &[&str]| {
        let claims = serde_json::json!({
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "aud": "api://seqshield",
            "exp": now + 600, "iat": now, "nbf": now, "tid": tid, "oid": "oid-123", "groups": groups, "amr": ["pwd", "mfa"]
        });
        let mut hdr = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        hdr.kid = Some("entra-1".into());
        jsonwebtoken::encode(&hdr, &claims, &enc).unwrap()
    };
    let ext = mint(TENANT, &["g-analysts", "other"]);
    assert_eq!(h.whoami(&ext).await.status, StatusCode::UNAUTHORIZED, "external tokens are not bearer tokens here");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("pipeline:{SECRET}")));
    let exchange = |tok: String| {
        let basic = basic.clone();
        let h = &h;
        async move {
            h.post_form(
                "/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("subject_token", &tok),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                    ("audience", "seqshield"),
                ],
                &[("authorization", &basic)],
            )
            .await
        }
    };
    let r = exchange(ext).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let at = payload(r.json()["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], format!("fed:{TENANT}/oid-123"));
    assert_eq!(at["scope"], "data:read jobs:submit");
    // Capped by the pipeline client's registration (internal).
    assert_eq!(at["clearance"], "internal");
    assert_eq!(exchange(mint("another-tenant", &["g-analysts"])).await.json()["error"], "invalid_grant");
    assert_eq!(exchange(mint(TENANT, &["nobody"])).await.json()["error"], "invalid_grant");
}

mod test_keys {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// A JWKS for `kp`'s public key and a jsonwebtoken key for signing: the
    /// independent implementation plays the external party.
    pub(crate) fn jwks_and_encoding_key(
        kp: &aws_lc_rs::rsa::KeyPair,
        kid: &str,
    ) -> (String, jsonwebtoken::EncodingKey) {
        let pkcs8 = kp.as_der().unwrap();
        let enc = jsonwebtoken::EncodingKey::from_rsa_der(&rsa_der_from_pkcs8(pkcs8.as_ref()));
        let pk = kp.public_key();
        let n = URL_SAFE_NO_PAD.encode(strip(pk.modulus().big_endian_without_leading_zero()));
        let e = URL_SAFE_NO_PAD.encode(strip(pk.exponent().big_endian_without_leading_zero()));
        let jwks =
            serde_json::json!({"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": n, "e": e}]});
        (jwks.to_string(), enc)
    }

    fn strip(b: &[u8]) -> &[u8] {
        b
    }

    /// PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo.
    fn rsa_der_from_pkcs8(der: &[u8]) -> Vec<u8> {
        use pkcs8::der::Decode as _;
        let info = pkcs8::PrivateKeyInfo::from_der(der).unwrap();
        info.private_key.to_vec()
    }
}

#[tokio::test]
async fn rotated_key_stays_published_until_its_last_token_expires() {
    let h = harness();
    let before = h.tokens().await;
    let old_token = before["access_token"].as_str().unwrap().to_owned();
    let old_kid = h.get("/jwks").await.json()["keys"][0]["kid"].as_str().unwrap().to_owned();
    let new_kid = h.svc.rotate_signing_key(&kek().1).unwrap();
    assert_ne!(old_kid, new_kid);
    let jwks = h.get("/jwks").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    // Tokens signed before the rotation still verify; new ones use the new key.
    assert_eq!(h.whoami(&old_token).await.status, StatusCode::OK);
    let after = h.tokens().await;
    let hdr: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(after["access_token"].as_str().unwrap().split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(hdr["kid"], new_kid.as_str());
    // Once the last token the old key signed has expired, upkeep unpublishes it.
    h.clock.advance(3600 + 61);
    h.svc.maintain(&kek().1).unwrap();
    let jwks = h.get("/jwks").await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new_kid.as_str()]);
}

#[tokio::test]
async fn upkeep_rotates_a_key_older_than_its_rotation_period() {
    let h = harness();
    let kid = h.get("/jwks").await.json()["keys"][0]["kid"].as_str().unwrap().to_owned();
    h.clock.advance(31 * 24 * 3600);
    h.svc.maintain(&kek().1).unwrap();
    let jwks = h.get("/jwks").await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.iter().any(|k| *k != kid), "a new key is active: {kids:?}");
    assert!(h.audit.events().iter().any(|e| e.kind == "signing.rotate"));
}

#[tokio::test]
async fn one_source_flooding_authorize_cannot_evict_other_logins() {
    use seqshield_auth::service::authorize::{AuthorizeParams, MAX_PENDING_LOGINS_PER_SOURCE};
    use seqshield_auth::service::Origin;
    let h = harness();
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
    let victim = Origin { ip: Some([192, 168, 1, 7].into()) };
    let attacker = Origin { ip: Some([203, 0, 113, 9].into()) };
    let theirs = h.svc.start_authorization(&params, victim).unwrap();
    let first_flood = h.svc.start_authorization(&params, attacker).unwrap();
    for _ in 0..MAX_PENDING_LOGINS_PER_SOURCE * 4 {
        h.svc.start_authorization(&params, attacker).unwrap();
    }
    assert!(h.svc.pending_client(&theirs).is_some(), "the victim's login survives the flood");
    assert!(h.svc.pending_client(&first_flood).is_none(), "the flooder loses its own oldest login");
}
