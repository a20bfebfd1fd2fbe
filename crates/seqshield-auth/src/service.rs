//! The token service: every OAuth 2.0 / OIDC flow as plain methods, so the
//! HTTP layer ([`crate::http`]) only translates requests and responses.
//!
//! - [`authorize`]: the authorization request, the password step and the
//!   TOTP step of the login, ending in a single-use code.
//! - [`token`]: the token endpoint's grants (code + PKCE, refresh,
//!   client credentials) and client authentication.
//! - [`exchange`]: RFC 8693 token exchange with downscoping.
//! - [`mint`]: building and signing access and ID tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use seqshield_keys::Kek;

use crate::audit::{AuditEvent, AuditSink, Outcome};
use crate::config::AuthConfig;
use crate::error::{AuthError, OAuthError};
use crate::federation::Federation;
use crate::jwt::{self, AccessClaims, JwtError, KeySet, RevocationList, Validation};
use crate::policy::{self, Decision, Policy};
use crate::signing::KeyRing;
use crate::store::Store;
use crate::throttle::{Throttle, ThrottleConfig};
use crate::Clock;

pub mod authorize;
pub mod exchange;
pub mod mint;
pub mod token;

/// Most logins in progress at once (between the authorization request and
/// the TOTP step); the oldest is dropped beyond this.
pub const MAX_PENDING_LOGINS: usize = 10_000;
/// How long a login may stay between steps, in seconds.
pub const PENDING_LOGIN_TTL_SECS: u64 = 600;

/// The token service.
pub struct AuthService {
    cfg: AuthConfig,
    store: Store,
    keys: RwLock<KeyRing>,
    keyset: RwLock<Arc<KeySet>>,
    policy: Policy,
    throttle: Throttle,
    federation: Federation,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    pending: Mutex<HashMap<String, authorize::Pending>>,
    secret_cache: Mutex<HashMap<String, [u8; 32]>>,
    tasks: OnceLock<Arc<dyn TaskGate>>,
}

/// The job service's answer to "may this task still act?", asked when a
/// task manifest is exchanged for a worker token and whenever such a token
/// is used: a cancelled or finished task's token stops working at once.
pub trait TaskGate: Send + Sync {
    /// `Ok` while the task may run; otherwise why not.
    fn may_run(&self, task_id: &str) -> Result<(), String>;
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("issuer", &self.cfg.issuer).finish_non_exhaustive()
    }
}

impl AuthService {
    /// Opens the service's state under `data_dir` (`auth.db`, `signing/`),
    /// creating what is missing. The signing keys are sealed under `kek`.
    pub fn open(
        cfg: AuthConfig,
        data_dir: &Path,
        kek: &dyn Kek,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, AuthError> {
        cfg.validate()?;
        let now = clock.now();
        let store = Store::open(&data_dir.join("auth.db"))?;
        store.prune(now)?;
        let keys = KeyRing::open_or_create(&data_dir.join("signing"), kek, cfg.signing.clone(), now)?;
        let keyset = Arc::new(keys.keyset());
        let policy = match &cfg.policy_file {
            Some(path) => Policy::load(path)?,
            None => Policy::embedded_default(),
        };
        let federation = Federation::new(&cfg.federation)?;
        Ok(Arc::new(Self {
            cfg,
            store,
            keys: RwLock::new(keys),
            keyset: RwLock::new(keyset),
            policy,
            throttle: Throttle::new(ThrottleConfig::default()),
            federation,
            audit,
            clock,
            pending: Mutex::new(HashMap::new()),
            secret_cache: Mutex::new(HashMap::new()),
            tasks: OnceLock::new(),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The conditional-access policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The published JWKS (active and recently retired keys).
    pub fn jwks(&self) -> serde_json::Value {
        read(&self.keys).jwks()
    }

    /// Rotates the signing key: new tokens are signed with a new key; the old
    /// one stays published until the last token it signed has expired.
    pub fn rotate_signing_key(&self, kek: &dyn Kek) -> Result<String, AuthError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let kid = keys.rotate(kek, self.clock.now())?;
        *self.keyset.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys.keyset());
        self.audit_best_effort(
            AuditEvent::new(self.now(), "signing.rotate", Outcome::Allow, "signing key rotated")
                .with("kid", kid.as_str()),
        );
        Ok(kid)
    }

    /// Periodic upkeep, for the server to call every few minutes: rotates
    /// the signing key when it is due (RSA key generation: seconds, so call
    /// it off the async workers), stops publishing retired keys whose last
    /// token has expired, deletes expired codes and tokens, forgets stale
    /// logins, and picks up revocations made by other processes.
    pub fn maintain(&self, kek: &dyn Kek) -> Result<(), AuthError> {
        let now = self.clock.now();
        let due = read(&self.keys).needs_rotation(now);
        if due {
            self.rotate_signing_key(kek)?;
        }
        {
            let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
            if keys.prune(now)? > 0 {
                *self.keyset.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys.keyset());
            }
        }
        self.store.prune(now)?;
        self.store.reload_revoked()?;
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, v| v.fresh(now));
        Ok(())
    }

    /// Verifies one of our access tokens for our own audience: RS256 with a
    /// published key, issuer, audience, lifetime, `typ` and revocation.
    ///
    /// A worker's token (audience [`exchange::WORKER_AUDIENCE`]) is accepted
    /// too, but only when it is bound to a task (`tsk`) that may still run:
    /// the routes then allow nothing outside that task.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, JwtError> {
        match self.verify_access_for(token, &self.cfg.audience) {
            Err(JwtError::WrongAudience)
                if exchange::unverified_aud(token).as_deref() == Some(exchange::WORKER_AUDIENCE) =>
            {
                let claims = self.verify_access_for(token, exchange::WORKER_AUDIENCE)?;
                let task = claims.tsk.as_ref().ok_or(JwtError::WrongAudience)?;
                match self.tasks.get().map(|g| g.may_run(&task.id)) {
                    Some(Ok(())) => Ok(claims),
                    _ => Err(JwtError::Revoked),
                }
            }
            r => r,
        }
    }

    /// Installs the job service's [`TaskGate`]; without one, task manifests
    /// are refused. Only the first call has an effect.
    pub fn set_task_gate(&self, gate: Arc<dyn TaskGate>) {
        let _ = self.tasks.set(gate);
    }

    pub(crate) fn task_gate(&self) -> Option<&Arc<dyn TaskGate>> {
        self.tasks.get()
    }

    /// Signs a document other than a token (e.g. a task manifest) with the
    /// active token-signing key, as a compact RS256 JWS of type `typ`.
    pub fn sign_document<T: serde::Serialize + ?Sized>(&self, typ: &str, claims: &T) -> Result<String, JwtError> {
        self.keys().sign(typ, claims)
    }

    /// Verifies a document signed by [`Self::sign_document`]: a published
    /// key, `typ`, our issuer, `audience` and lifetime.
    pub fn verify_document<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &'static str,
        audience: &str,
    ) -> Result<T, JwtError> {
        let keyset = read(&self.keyset).clone();
        let v = Validation {
            issuer: self.cfg.issuer.clone(),
            audience: audience.to_owned(),
            leeway_secs: jwt::MAX_CLOCK_SKEW_SECS,
            typ: Some(typ),
        };
        jwt::verify(token, &keyset, &v, self.clock.now())
    }

    /// Like [`Self::verify_access`] for another audience (a service that
    /// received an exchanged token).
    pub fn verify_access_for(&self, token: &str, audience: &str) -> Result<AccessClaims, JwtError> {
        let keyset = read(&self.keyset).clone();
        let v = Validation {
            issuer: self.cfg.issuer.clone(),
            audience: audience.to_owned(),
            leeway_secs: jwt::MAX_CLOCK_SKEW_SECS,
            typ: Some(jwt::TYP_ACCESS),
        };
        let claims: AccessClaims = jwt::verify(token, &keyset, &v, self.clock.now())?;
        if self.store.is_revoked(&claims.jti) {
            return Err(JwtError::Revoked);
        }
        Ok(claims)
    }

    /// Evaluates the policy and records the decision; a sink failure denies.
    pub(crate) fn decide(&self, req: &policy::Request<'_>) -> Result<Decision, OAuthError> {
        blocking(|| self.policy.evaluate_audited(req, self.audit.as_ref())).map_err(|e| {
            tracing::error!(error = %e, "audit sink failed; refusing");
            OAuthError::server_error()
        })
    }

    /// Records an event; a sink failure fails the operation (fail closed).
    pub(crate) fn audit(&self, event: AuditEvent) -> Result<(), OAuthError> {
        blocking(|| self.audit.record(&event)).map_err(|e| {
            tracing::error!(error = %e, "audit sink failed; refusing");
            OAuthError::server_error()
        })
    }

    /// Records an event where the operation has already happened and cannot
    /// be refused any more (the failure is logged).
    pub(crate) fn audit_best_effort(&self, event: AuditEvent) {
        if let Err(e) = blocking(|| self.audit.record(&event)) {
            tracing::error!(error = %e, kind = event.kind, "audit sink failed");
        }
    }

    pub(crate) fn federation(&self) -> &Federation {
        &self.federation
    }

    pub(crate) fn keys(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        read(&self.keys)
    }

    /// The URL of an endpoint under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base_url())
    }
}

impl RevocationList for AuthService {
    fn is_revoked(&self, jti: &str) -> bool {
        self.store.is_revoked(jti)
    }
}

/// Runs `f`, which may wait on the disk (an audit record is durable before
/// it returns). On a multi-threaded tokio runtime the worker first hands its
/// other tasks away (`block_in_place`), so requests keep flowing and their
/// audit records share syncs; elsewhere `f` simply runs.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// A fresh random token: 32 bytes, base64url.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    URL_SAFE_NO_PAD.encode(b)
}

pub(crate) use crate::store::token_hash;

/// Who is asking, for throttling, policy and audit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin {
    /// The client's address, if known.
    pub ip: Option<IpAddr>,
}

impl Origin {
    /// The address, or the unspecified address when unknown (throttling
    /// then lumps unknown sources together).
    pub fn ip_or_unspecified(&self) -> IpAddr {
        self.ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}
