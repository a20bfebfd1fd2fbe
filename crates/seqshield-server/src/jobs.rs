//! The GA4GH TES 1.1 API over the job service, and the workers' report
//! route.
//!
//! | route | scope | what |
//! |---|---|---|
//! | `GET /ga4gh/tes/v1/service-info` | — | service info |
//! | `POST /ga4gh/tes/v1/tasks` | `jobs:submit` | CreateTask |
//! | `GET /ga4gh/tes/v1/tasks` | `jobs:read` | ListTasks (`name_prefix`, `state`, `tag_key`/`tag_value`, `page_size`, `page_token`, `view`) |
//! | `GET /ga4gh/tes/v1/tasks/{id}` | `jobs:read` | GetTask (`view`) |
//! | `POST /ga4gh/tes/v1/tasks/{id}:cancel` | `jobs:submit` | CancelTask |
//! | `GET /ga4gh/tes/v1/openapi.json` | — | this API's OpenAPI 3 document |
//! | `POST /api/v1/jobs/{id}/report` | a worker's task-bound token | the worker's progress |
//!
//! A task is visible only to its owner and to `jobs:admin`; another's task
//! answers 404 like a missing one. Errors are JSON
//! `{"code": STATUS, "message": …, "error": CODE, "error_description": …}`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use seqshield_auth::error::OAuthError;
use seqshield_auth::http::Authenticated;
use seqshield_jobs::service::{Caller, JobError, JobService, Report};
use seqshield_jobs::tes::{self, TesState, View};
use serde_json::{json, Value};

use crate::data::Peer;

/// The OpenAPI document of the TES routes.
pub const OPENAPI: &str = include_str!("../openapi/tes.json");

/// The TES routes, with the job service attached.
pub fn router(jobs: Arc<JobService>) -> Router {
    Router::new()
        .route("/ga4gh/tes/v1/service-info", get(service_info))
        .route("/ga4gh/tes/v1/openapi.json", get(openapi))
        .route("/ga4gh/tes/v1/tasks", post(create).get(list))
        .route("/ga4gh/tes/v1/tasks/{id}", get(get_task).post(cancel))
        .route("/api/v1/jobs/{id}/report", post(report))
        .layer(Extension(jobs))
}

/// A TES-shaped error: a refusal of the job service, or of the bearer
/// token (which keeps its `WWW-Authenticate` challenge).
enum TesError {
    /// Status, code, message.
    Job(u16, &'static str, String),
    /// The token was missing or refused.
    Auth(OAuthError),
}

impl From<OAuthError> for TesError {
    fn from(e: OAuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<JobError> for TesError {
    fn from(e: JobError) -> Self {
        let status = e.status();
        let msg = if status >= 500 && !matches!(e, JobError::Busy(_)) {
            tracing::error!(target: "seqshield", "task request failed: {e}");
            "the server failed; see its log".to_owned()
        } else {
            e.to_string()
        };
        Self::Job(status, e.code(), msg)
    }
}

fn bad(field: &str, why: impl Into<String>) -> TesError {
    TesError::from(JobError::Invalid(tes::Invalid { field: field.into(), why: why.into() }))
}

impl IntoResponse for TesError {
    fn into_response(self) -> Response {
        match self {
            Self::Job(status, code, msg) => {
                let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = json!({"code": status, "message": msg, "error": code, "error_description": msg});
                let mut resp = (s, Json(body)).into_response();
                if status == 405 {
                    resp.headers_mut().insert(axum::http::header::ALLOW, axum::http::HeaderValue::from_static("GET"));
                }
                resp
            }
            Self::Auth(e) => {
                let (code, msg) = (e.code.as_str(), e.description);
                let mut resp = e.into_response();
                let status = resp.status().as_u16();
                let body = json!({"code": status, "message": msg, "error": code, "error_description": msg});
                *resp.body_mut() = Body::from(body.to_string());
                resp.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
                resp
            }
        }
    }
}

fn caller(auth: &Authenticated, peer: Peer) -> Caller {
    let c = auth.claims();
    Caller {
        subject: c.sub.clone(),
        client: c.client_id.clone(),
        scopes: c.scope.clone(),
        clearance: c.clearance,
        amr: c.amr.clone(),
        acr: c.acr.clone(),
        source: peer.0.map(|p| p.ip()),
        task: c.tsk.clone(),
    }
}

async fn service_info(Extension(jobs): Extension<Arc<JobService>>) -> Json<Value> {
    let executor = jobs.executor_kind();
    Json(json!({
        "id": "org.seqshield.tes",
        "name": "seqshield TES",
        "type": { "group": "org.ga4gh", "artifact": "tes", "version": "1.1.0" },
        "description": format!("GA4GH TES 1.1 over seqshield ({executor} executor): inputs and outputs are encrypted store objects, executors run sandboxed on approved tool environments, placement between on-prem and cloud partitions is by policy"),
        "organization": { "name": "seqshield", "url": "https://example.invalid/seqshield" },
        "version": env!("CARGO_PKG_VERSION"),
        "storage": ["seqshield://"],
        "tesResources_backend_parameters": tes::BACKEND_PARAMETERS,
    }))
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn create(
    auth: Result<Authenticated, OAuthError>,
    peer: Peer,
    Extension(jobs): Extension<Arc<JobService>>,
    body: Body,
) -> Result<Json<Value>, TesError> {
    let auth = auth?;
    let c = caller(&auth, peer);
    let bytes = read_task(body).await?;
    let id = jobs.create(&c, &bytes).await?;
    Ok(Json(json!({ "id": id })))
}

/// Most bytes of an oversized body read and dropped before the 413, so
/// that an ordinary client (which sends its whole body before reading the
/// answer) gets to read it; a larger body has the connection cut.
const DRAIN_BYTES: usize = 16 << 20;

/// Reads a task body of at most [`tes::MAX_TASK_BYTES`].
async fn read_task(body: Body) -> Result<Bytes, TesError> {
    let too_large = || bad("body", format!("larger than {} bytes", tes::MAX_TASK_BYTES));
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| bad("body", "the request body could not be read"))?;
        seen += chunk.len();
        if seen > DRAIN_BYTES {
            return Err(too_large());
        }
        if seen <= tes::MAX_TASK_BYTES {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > tes::MAX_TASK_BYTES {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

fn parse_view(v: Option<&str>) -> Result<View, TesError> {
    match v {
        None => Ok(View::Minimal),
        Some(s) => View::parse(s).ok_or_else(|| bad("view", "must be MINIMAL, BASIC or FULL")),
    }
}

async fn list(
    auth: Result<Authenticated, OAuthError>,
    peer: Peer,
    Extension(jobs): Extension<Arc<JobService>>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, TesError> {
    let auth = auth?;
    let c = caller(&auth, peer);
    let (mut name_prefix, mut state, mut page_size, mut page_token, mut view) = (None, None, None, None, None);
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "name_prefix" => name_prefix = Some(v),
            "state" => {
                state = Some(TesState::parse(&v).ok_or_else(|| bad("state", format!("{v:?} is not a TES state")))?)
            }
            "tag_key" => keys.push(v),
            "tag_value" => values.push(v),
            "page_size" => {
                page_size = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| {
                            (1..=i64::try_from(seqshield_jobs::service::MAX_PAGE_SIZE).unwrap_or(2047)).contains(n)
                        })
                        .ok_or_else(|| bad("page_size", "must be a whole number from 1 to 2047"))?
                        as usize,
                )
            }
            "page_token" => page_token = Some(v),
            "view" => view = Some(v),
            other => return Err(bad(other, "is not a ListTasks parameter")),
        }
    }
    if values.len() > keys.len() {
        return Err(bad("tag_value", "each tag_value needs a tag_key before it"));
    }
    let tags: Vec<(String, String)> =
        keys.into_iter().enumerate().map(|(i, k)| (k, values.get(i).cloned().unwrap_or_default())).collect();
    let view = parse_view(view.as_deref())?;
    let (tasks, next) =
        jobs.list(&c, name_prefix.as_deref(), state, &tags, page_size, page_token.as_deref(), view).await?;
    let mut body = json!({ "tasks": tasks });
    if let Some(n) = next {
        body["next_page_token"] = n.into();
    }
    Ok(Json(body))
}

fn view_only(q: Option<String>) -> Result<View, TesError> {
    let mut view = None;
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "view" => view = Some(v.into_owned()),
            other => return Err(bad(other, "is not a GetTask parameter")),
        }
    }
    parse_view(view.as_deref())
}

async fn get_task(
    auth: Result<Authenticated, OAuthError>,
    peer: Peer,
    Extension(jobs): Extension<Arc<JobService>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, TesError> {
    let auth = auth?;
    let view = view_only(q)?;
    let t = jobs.get(&caller(&auth, peer), &id, view).await?;
    Ok(Json(json!(t)))
}

async fn cancel(
    auth: Result<Authenticated, OAuthError>,
    peer: Peer,
    Extension(jobs): Extension<Arc<JobService>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, TesError> {
    let auth = auth?;
    let Some(id) = id.strip_suffix(":cancel") else {
        return Err(TesError::Job(405, "method_not_allowed", "POST is for /tasks/{id}:cancel".into()));
    };
    jobs.cancel(&caller(&auth, peer), id).await?;
    Ok(Json(json!({})))
}

async fn report(
    auth: Result<Authenticated, OAuthError>,
    peer: Peer,
    Extension(jobs): Extension<Arc<JobService>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, TesError> {
    let auth = auth?;
    let bytes = read_task(body).await?;
    let r: Report = serde_json::from_slice(&bytes).map_err(|e| bad("body", format!("not a report: {e}")))?;
    jobs.report(&caller(&auth, peer), &id, r).await?;
    Ok(Json(json!({})))
}
