//! RFC 8693 token exchange: a token for another audience whose scopes and
//! clearance are the intersection of what was asked for, what the subject
//! token holds and what policy allows for that audience — never wider —
//! and whose lifetime ends no later than the subject token's.
//!
//! Subject tokens are our own access tokens, or tokens of a trusted external
//! issuer (federation), which are accepted here and nowhere else.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::mint::{Grant, TokenResponse, TOKEN_TYPE_ACCESS};
use super::token::{AuthenticatedClient, TokenParams};
use super::{AuthService, Origin};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{ErrorCode, OAuthError};
use crate::jwt::{self, Actor};
use crate::policy::Stage;
use crate::{Clearance, ScopeSet};

/// RFC 8693 §3: a JWT from another issuer.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §3: an OIDC ID token from another issuer.
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// `acr` of a token whose subject signed in at a trusted external issuer.
pub const ACR_FEDERATED: &str = "urn:seqshield:acr:federated";
/// seqshield: a task manifest signed by this gateway, exchanged by the
/// worker that runs the task for a token bound to the task's objects.
pub const TOKEN_TYPE_TASK_MANIFEST: &str = "urn:seqshield:params:oauth:token-type:task-manifest";
/// The `typ` of a signed task manifest.
pub const TYP_TASK_MANIFEST: &str = "seqshield-manifest+jwt";
/// The audience of compute workers' tokens (and of task manifests).
pub const WORKER_AUDIENCE: &str = "seqshield-worker";

/// What the token service reads from a task manifest (the job service
/// writes more; other members are ignored here).
#[derive(serde::Deserialize)]
struct ManifestSubject {
    sub: String,
    exp: u64,
    jti: String,
    scope: ScopeSet,
    clearance: Clearance,
    amr: Vec<String>,
    acr: String,
    tsk: jwt::TaskBinding,
}

/// The verified subject of an exchange.
struct Subject {
    sub: String,
    scope: ScopeSet,
    clearance: Clearance,
    amr: Vec<String>,
    acr: String,
    exp: u64,
    act: Option<Actor>,
    jti: Option<String>,
    issuer: String,
    task: Option<jwt::TaskBinding>,
}

pub(crate) fn unverified_aud(token: &str) -> Option<String> {
    if token.len() > jwt::MAX_TOKEN_BYTES {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("aud")?.as_str().map(str::to_owned)
}

impl AuthService {
    /// Verifies one of our access tokens issued for any audience we serve.
    pub(crate) fn verify_own_any_audience(&self, token: &str) -> Result<jwt::AccessClaims, OAuthError> {
        let bad = || OAuthError::invalid_grant("the subject token is invalid, expired or revoked");
        let aud = unverified_aud(token).ok_or_else(bad)?;
        if aud != self.cfg.audience && self.policy.audience(&aud).is_none() {
            return Err(bad());
        }
        self.verify_access_for(token, &aud).map_err(|_| bad())
    }

    pub(crate) async fn grant_exchange(
        self: &Arc<Self>,
        p: &TokenParams,
        c: &AuthenticatedClient,
        origin: Origin,
    ) -> Result<TokenResponse, OAuthError> {
        let token = p.subject_token.as_deref().ok_or(OAuthError::invalid_request("subject_token is required"))?;
        let token_type =
            p.subject_token_type.as_deref().ok_or(OAuthError::invalid_request("subject_token_type is required"))?;
        let audience = match (p.audience.as_deref(), p.resource.as_deref()) {
            (Some(a), None) | (None, Some(a)) if !a.is_empty() => a.to_owned(),
            (Some(_), Some(_)) => return Err(OAuthError::invalid_request("give audience or resource, not both")),
            _ => return Err(OAuthError::invalid_request("audience is required")),
        };
        if p.requested_token_type.as_deref().is_some_and(|t| t != TOKEN_TYPE_ACCESS) {
            return Err(OAuthError::invalid_request("only access tokens can be requested"));
        }
        let Some(aud_policy) = self.policy.audience(&audience).cloned() else {
            return Err(OAuthError::new(ErrorCode::InvalidTarget, "the audience is not one this service issues for"));
        };
        let now = self.now();
        let subject = match token_type {
            TOKEN_TYPE_ACCESS => {
                let t = self.verify_own_any_audience(token)?;
                Subject {
                    sub: t.sub,
                    scope: t.scope,
                    clearance: t.clearance,
                    amr: t.amr,
                    acr: t.acr,
                    exp: t.exp,
                    act: t.act,
                    jti: Some(t.jti),
                    issuer: t.iss,
                    task: None,
                }
            }
            TOKEN_TYPE_TASK_MANIFEST => {
                let bad = |why: String| {
                    self.audit_best_effort(
                        AuditEvent::new(now, "task.manifest.verify", Outcome::Deny, why.as_str())
                            .client(&c.client.id)
                            .source(origin.ip),
                    );
                    OAuthError::invalid_grant("the task manifest is not one this gateway signed, or it was modified, has expired or its task may not run")
                };
                if audience != WORKER_AUDIENCE {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidTarget,
                        "a task manifest is exchanged only for a worker token",
                    ));
                }
                let m: ManifestSubject =
                    self.verify_document(token, TYP_TASK_MANIFEST, WORKER_AUDIENCE).map_err(|e| bad(e.to_string()))?;
                let gate = self.task_gate().ok_or_else(|| bad("no job service is running".to_owned()))?;
                gate.may_run(&m.tsk.id).map_err(|why| bad(format!("task {}: {why}", m.tsk.id)))?;
                Subject {
                    sub: m.sub,
                    scope: m.scope,
                    clearance: m.clearance,
                    amr: m.amr,
                    acr: m.acr,
                    exp: m.exp,
                    act: None,
                    jti: Some(m.jti),
                    issuer: self.cfg.issuer.clone(),
                    task: Some(m.tsk),
                }
            }
            TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN => {
                let id = self.federation().verify(token, now).await.map_err(|e| {
                    tracing::warn!(error = %e, client = %c.client.id, "external token refused");
                    self.audit_best_effort(
                        AuditEvent::new(now, "federation.verify", Outcome::Deny, e.to_string())
                            .client(&c.client.id)
                            .source(origin.ip),
                    );
                    OAuthError::invalid_grant("the external token is not from a trusted issuer or is invalid")
                })?;
                Subject {
                    sub: id.subject,
                    scope: id.scopes,
                    clearance: id.clearance,
                    amr: id.amr,
                    acr: ACR_FEDERATED.to_owned(),
                    exp: id.exp,
                    act: None,
                    jti: None,
                    issuer: id.issuer,
                    task: None,
                }
            }
            _ => return Err(OAuthError::invalid_request("unsupported subject_token_type")),
        };
        let actor = match (p.actor_token.as_deref(), p.actor_token_type.as_deref()) {
            (Some(a), Some(TOKEN_TYPE_ACCESS)) => {
                let t = self.verify_own_any_audience(a)?;
                Actor { sub: t.sub, client_id: Some(t.client_id), act: subject.act.clone().map(Box::new) }
            }
            (Some(_), _) => return Err(OAuthError::invalid_request("actor_token_type must be an access token")),
            (None, Some(_)) => return Err(OAuthError::invalid_request("actor_token_type without actor_token")),
            (None, None) => Actor {
                sub: c.client.id.clone(),
                client_id: Some(c.client.id.clone()),
                act: subject.act.clone().map(Box::new),
            },
        };
        let requested = match &p.scope {
            Some(s) => {
                ScopeSet::parse(s).map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?
            }
            None => subject.scope.clone(),
        };
        // The three sets of the issue, plus the client's own registration.
        let scope =
            requested.intersection(&subject.scope).intersection(&aud_policy.scopes).intersection(&c.client.scopes);
        if scope.is_empty() {
            return Err(OAuthError::new(ErrorCode::InvalidScope, "no requested scope is allowed for this audience"));
        }
        let asked_clearance = match &p.clearance {
            Some(s) => s.parse::<Clearance>().map_err(|_| OAuthError::invalid_request("unknown clearance"))?,
            None => subject.clearance,
        };
        let clearance = asked_clearance.min(subject.clearance).min(aud_policy.max_clearance).min(c.client.clearance);
        self.stage_decision(
            Stage::Exchange,
            &subject.sub,
            &c.client.id,
            &scope,
            clearance,
            &subject.amr,
            origin,
            &audience,
        )?;
        let grant = Grant {
            subject: subject.sub.clone(),
            audience: audience.clone(),
            scope,
            clearance,
            amr: subject.amr.clone(),
            acr: subject.acr.clone(),
            client_id: c.client.id.clone(),
            act: Some(actor.clone()),
            not_after: Some(subject.exp),
            family: None,
            task: subject.task.clone(),
        };
        let (access, claims) = self.mint_access(&grant)?;
        let mut ev = AuditEvent::new(now, "token.exchange", Outcome::Allow, "token exchanged")
            .subject(&claims.sub)
            .client(&c.client.id)
            .source(origin.ip)
            .with("jti", claims.jti.as_str())
            .with("aud", claims.aud.as_str())
            .with("scope", claims.scope.to_string())
            .with("clearance", claims.clearance.as_str())
            .with("actor", actor.sub.as_str())
            .with("subject_issuer", subject.issuer.as_str())
            .with("exp", claims.exp);
        if let Some(j) = &subject.jti {
            ev = ev.with("subject_jti", j.as_str());
        }
        if let Some(t) = &claims.tsk {
            ev = ev.with("task", t.id.as_str());
        }
        self.audit(ev)?;
        Ok(TokenResponse { issued_token_type: Some(TOKEN_TYPE_ACCESS), ..TokenResponse::bearer(access, &claims, now) })
    }
}
