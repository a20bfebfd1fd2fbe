//! `POST /annotate`: variant annotation behind validation, adaptive limits
//! and output filtering.
//!
//! | request | body |
//! |---|---|
//! | `Content-Type: text/vcf` (or `text/x-vcf`) | a VCF 4.x file; sample columns are accepted and dropped |
//! | `Content-Type: application/json` | `{"variants": ["NC_005816:1234:A:G", "NC_005816.1:g.1234A>G", …]}` |
//!
//! Query: `genome=NAME` (needed when several genomes are configured),
//! `evidence=K` (1 to 20 PMIDs per variant; needs `annotate:evidence`).
//!
//! Scope `annotate`. The fields returned depend on the token's scopes and
//! clearance (`seqshield_annotate::service`). Every request is an audit
//! event (`annotate.request`: counts, genome, outcome; never a position or
//! an allele), and so is every tightening and the first refusal of each
//! episode (`annotate.limit.tighten`, `annotate.limit.trip`).
//!
//! Errors: `{"error": CODE, "error_description": …}` plus `line`/`item` and
//! `field` for input errors. 400 malformed, 413 too large, 415 content
//! type, 422 variant does not fit the reference, 429 limited (with
//! `Retry-After`), 503 not configured.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use seqshield_annotate::guard::{Guard, Limits, Verdict};
use seqshield_annotate::input::{InputError, Source, MAX_BODY_BYTES};
use seqshield_annotate::service::{Annotator, ServiceError, View, MAX_EVIDENCE_K};
use seqshield_auth::audit::{AuditEvent, AuditSink, Outcome};
use seqshield_auth::error::OAuthError;
use seqshield_auth::http::Authenticated;
use seqshield_auth::Clearance;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::data::Peer;

/// The scope every annotation request needs.
pub const SCOPE: &str = "annotate";
/// The scope literature evidence needs.
pub const EVIDENCE_SCOPE: &str = "annotate:evidence";

/// The annotation service as the route sees it.
pub struct AnnotateState {
    annotator: Arc<Annotator>,
    guard: Mutex<Guard>,
    audit: Arc<dyn AuditSink>,
}

impl AnnotateState {
    /// The route's state: the annotator, the per-caller limits and the audit sink.
    pub fn new(annotator: Arc<Annotator>, limits: Limits, audit: Arc<dyn AuditSink>) -> Self {
        Self { annotator, guard: Mutex::new(Guard::new(limits)), audit }
    }
}

/// The route, with its state attached.
pub fn router(state: Arc<AnnotateState>) -> Router {
    Router::new()
        .route("/annotate", post(annotate).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)))
        .layer(Extension(state))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    genome: Option<String>,
    evidence: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListBody {
    variants: Vec<String>,
}

/// An error answer.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    extra: Option<Value>,
    retry_after: Option<u64>,
    oauth: Option<Box<OAuthError>>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into(), extra: None, retry_after: None, oauth: None }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        Self { oauth: Some(Box::new(e)), ..Self::new(StatusCode::FORBIDDEN, "", "") }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        let code = match e.status {
            413 => "too_large",
            422 => "unfit_variant",
            _ => "invalid_input",
        };
        let mut extra = json!({ "field": e.field });
        match e.at {
            Some(Source::Line(n)) => extra["line"] = json!(n),
            Some(Source::Item(i)) => extra["item"] = json!(i),
            None => {}
        }
        Self { extra: Some(extra), ..Self::new(status, code, e.to_string()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(e) = self.oauth {
            return (*e).into_response();
        }
        let mut body = json!({ "error": self.code, "error_description": self.description });
        if let Some(Value::Object(extra)) = self.extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot
            // carry another request, so say so rather than let a client
            // reuse it and see it cut.
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

enum Input {
    Vcf(Bytes),
    List(Vec<String>),
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

async fn annotate(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(state): Extension<Arc<AnnotateState>>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let claims = auth.claims();
    let who = format!("{}\u{1f}{}", claims.sub, claims.client_id);
    let event = |outcome, reason: &str| {
        AuditEvent::new(now_secs(), "annotate.request", outcome, reason.to_owned())
            .subject(claims.sub.clone())
            .client(claims.client_id.clone())
            .source(peer.map(|p: SocketAddr| p.ip()))
    };
    let result = handle(&auth, &state, &who, params, &headers, body).await;
    let (outcome, reason, counts) = match &result {
        Ok((_, n, genome, k)) => (Outcome::Allow, "annotated".to_owned(), Some((*n, genome.clone(), *k))),
        Err(e) if e.oauth.is_some() => (Outcome::Deny, "insufficient scope".to_owned(), None),
        Err(e) => (Outcome::Deny, format!("{} {}", e.status.as_u16(), e.code), None),
    };
    let mut ev = event(outcome, &reason);
    if let Some((n, genome, k)) = counts {
        ev = ev.with("variants", n).with("genome", genome).with("evidence", k);
    }
    if let Err(e) = state.audit.record(&ev) {
        tracing::error!(target: "seqshield", "audit: {e}");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable", "the audit log refused the event")
            .into_response();
    }
    match result {
        Ok((report, ..)) => {
            let mut res = Json(report).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => e.into_response(),
    }
}

type Handled = (Value, usize, String, usize);

async fn handle(
    auth: &Authenticated,
    state: &Arc<AnnotateState>,
    who: &str,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Handled, ApiError> {
    auth.require_scope(SCOPE)?;
    if !state.annotator.is_enabled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "no genome is configured for annotation ([annotate] genomes)",
        ));
    }
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", clip(&e.body_text())))?;
    let k = params.evidence.unwrap_or(0);
    if k > MAX_EVIDENCE_K {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("evidence must be 1 to {MAX_EVIDENCE_K} PMIDs per variant"),
        ));
    }
    if k > 0 {
        auth.require_scope(EVIDENCE_SCOPE)?;
        if state.annotator.model().is_none() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_model",
                "literature evidence is not available: no model is loaded",
            ));
        }
    }
    // The bucket first: a caller already limited costs no parsing.
    let verdict = state.guard.lock().expect("guard lock").precheck(who, Instant::now());
    apply(state, auth, verdict)?;
    let input = match media_type(headers).as_deref() {
        Some("text/vcf" | "text/x-vcf") => Input::Vcf(body_bytes(body)?),
        Some("application/json") => {
            let bytes = body_bytes(body)?;
            let list: ListBody = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    format!("the JSON body: {}", clip(&e.to_string())),
                )
            })?;
            Input::List(list.variants)
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {:?} is not accepted; send text/vcf or application/json", clip(other)),
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "a Content-Type is needed: text/vcf or application/json",
            ))
        }
    };
    let annotator = state.annotator.clone();
    let genome_name = params.genome.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let (name, genome) = annotator.genome(genome_name.as_deref())?;
        let checked = match &input {
            Input::Vcf(b) => Annotator::parse_vcf(genome, b)?,
            Input::List(items) => Annotator::parse_list(genome, items)?,
        };
        Ok::<_, ServiceError>((name.to_owned(), checked))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server failed"))?;
    let (genome_name, checked) = match parsed {
        Ok(p) => p,
        Err(ServiceError::Input(e)) => {
            if e.is_reference_probe() {
                state.guard.lock().expect("guard lock").record_probes(who, 1, Instant::now());
            }
            return Err(e.into());
        }
        Err(ServiceError::Genome(why)) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "unknown_genome", why)),
        Err(e) => return Err(server_error(&e)),
    };
    let verdict = state.guard.lock().expect("guard lock").charge(
        who,
        checked.iter().map(|c| (c.variant.contig.as_str(), c.variant.pos, c.variant.alternate.as_str())),
        checked.len(),
        Instant::now(),
    );
    apply(state, auth, verdict)?;
    let view = view_for(auth);
    let n = checked.len();
    let annotator = state.annotator.clone();
    let report = tokio::task::spawn_blocking(move || {
        let (name, genome) = annotator.genome(Some(&genome_name))?;
        annotator.annotate(name, genome, &checked, view, k).map(|r| (r, name.to_owned()))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server failed"))?;
    let (report, genome) = report.map_err(|e| server_error(&e))?;
    let value = serde_json::to_value(&report).map_err(|e| server_error(&e))?;
    Ok((value, n, genome, k))
}

/// Acts on the guard's verdict: audits a tightening, refuses (and audits
/// the first refusal of an episode).
fn apply(state: &AnnotateState, auth: &Authenticated, verdict: Verdict) -> Result<(), ApiError> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Tightened { signals, rate_per_minute } => {
            let names: Vec<Value> = signals.iter().map(|s| json!(s)).collect();
            let ev = AuditEvent::new(
                now_secs(),
                "annotate.limit.tighten",
                Outcome::Allow,
                "extraction or enumeration pattern",
            )
            .subject(auth.claims().sub.clone())
            .client(auth.claims().client_id.clone())
            .with("signals", names)
            .with("variants_per_minute", rate_per_minute);
            if let Err(e) = state.audit.record(&ev) {
                tracing::error!(target: "seqshield", "audit: {e}");
            }
            Ok(())
        }
        Verdict::Refused { retry_after, signals, first } => {
            Err(refused(state, auth, retry_after.as_secs(), &signals, first))
        }
    }
}

fn refused(
    state: &AnnotateState,
    auth: &Authenticated,
    secs: u64,
    signals: &[seqshield_annotate::guard::Signal],
    first: bool,
) -> ApiError {
    if first {
        let names: Vec<Value> = signals.iter().map(|s| json!(s)).collect();
        let ev = AuditEvent::new(now_secs(), "annotate.limit.trip", Outcome::Deny, "annotation limit reached")
            .subject(auth.claims().sub.clone())
            .client(auth.claims().client_id.clone())
            .with("signals", names)
            .with("retry_after", secs);
        if let Err(e) = state.audit.record(&ev) {
            tracing::error!(target: "seqshield", "audit: {e}");
        }
    }
    ApiError {
        retry_after: Some(secs.max(1)),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many variants; slow down and retry later")
    }
}

fn server_error(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(target: "seqshield", "annotation failed: {e}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server failed; see its log")
}

fn body_bytes(body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", clip(&e.body_text()))
        }
    })
}

/// What a token may see (see `seqshield_annotate::service`).
fn view_for(auth: &Authenticated) -> View {
    let c = auth.claims();
    View {
        detail: c.clearance >= Clearance::Internal,
        evidence: c.scope.contains(EVIDENCE_SCOPE),
        context: c.clearance >= Clearance::Controlled,
    }
}

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}
