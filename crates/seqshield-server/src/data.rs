//! The data API: the object store over HTTP, and read access in GA4GH DRS
//! 1.5 shape.
//!
//! | route | scope | what |
//! |---|---|---|
//! | `POST /api/v1/objects` | `data:write` | register an upload; returns the sealed header and data key |
//! | `POST /api/v1/objects/{id}/upload` | `data:write` | resume: the same, plus the parts received |
//! | `PUT /api/v1/objects/{id}/parts/{n}` | `data:write` | one part, checked at its position as it arrives |
//! | `POST /api/v1/objects/{id}/commit` | `data:write` | atomic commit once the Merkle root matches |
//! | `GET /api/v1/objects` | `data:read` | list (within the caller's clearance) |
//! | `GET /api/v1/objects/{id}` | `data:read` | metadata |
//! | `POST /api/v1/objects/{id}/read` | `data:read` | open for reading: header, key, trailer, part roots |
//! | `GET /api/v1/objects/{id}/parts/{n}` | `data:read` | one part's stored bytes |
//! | `POST /api/v1/objects/{id}/verify` | `data:read` | re-check the stored object |
//! | `DELETE /api/v1/objects/{id}` | `data:write` | crypto-shred |
//! | `POST /api/v1/sync` | `data:admin` | replicate to a configured store; NDJSON progress |
//! | `GET /ga4gh/drs/v1/service-info`, `GET /ga4gh/drs/v1/objects/{id}`, `GET /ga4gh/drs/v1/objects/{id}/access/{access_id}` | `data:read` | DRS |
//!
//! Every route also checks the token's clearance against the object's
//! classification, and every decision is an audit event (in the store).
//! Data keys travel only in response bodies over the gateway's TLS 1.3, to
//! a caller allowed to read (or upload) the object, with `no-store`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http_body_util::BodyExt;
use seqshield_auth::http::Authenticated;
use seqshield_store::store::{NewObject, Principal, Store};
use seqshield_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

/// The header carrying a part's Merkle subtree root (hex), on uploads
/// (declared by the sender) and downloads (recorded by the store).
pub const PART_ROOT_HEADER: &str = "seqshield-part-root";

/// The data routes, with the store attached. `max_part_bytes` bounds a
/// part body before the store checks its exact length.
pub fn router(store: Arc<Store>, max_part_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/objects", post(create).get(list))
        .route("/api/v1/objects/{id}", get(info).delete(delete))
        .route("/api/v1/objects/{id}/upload", post(resume))
        .route(
            "/api/v1/objects/{id}/parts/{part}",
            put(put_part).get(get_part).layer(DefaultBodyLimit::max(max_part_bytes)),
        )
        .route("/api/v1/objects/{id}/commit", post(commit))
        .route("/api/v1/objects/{id}/read", post(open_read))
        .route("/api/v1/objects/{id}/verify", post(verify))
        .route("/api/v1/sync", post(sync))
        .route("/ga4gh/drs/v1/service-info", get(drs_service_info))
        .route("/ga4gh/drs/v1/objects/{id}", get(drs_object))
        .route("/ga4gh/drs/v1/objects/{id}/access/{access_id}", get(drs_access))
        .layer(Extension(store))
        .layer(Extension(MaxPart(max_part_bytes)))
}

#[derive(Clone, Copy)]
struct MaxPart(usize);

/// The client's address, when the server provides it.
pub(crate) struct Peer(pub(crate) Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

fn principal(auth: &Authenticated, peer: Option<SocketAddr>) -> Principal {
    let c = auth.claims();
    Principal {
        subject: c.sub.clone(),
        client: c.client_id.clone(),
        scopes: c.scope.iter().map(str::to_owned).collect(),
        clearance: c.clearance,
        source: peer.map(|p| p.ip()),
        task: c.tsk.clone(),
    }
}

/// A store error as a JSON response: `{"error": code, "error_description": …}`.
struct ApiError(StoreError);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = if self.0.is_client_facing() {
            json!({ "error": self.0.code(), "error_description": self.0.to_string() })
        } else {
            tracing::error!(target: "seqshield", "data request failed: {}", self.0);
            json!({ "error": self.0.code() })
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn ticket_json(t: &seqshield_store::UploadTicket) -> Value {
    json!({
        "object": t.info,
        "header": b64(&t.header),
        "data_key": b64(t.data_key.expose_secret()),
        "received": t.received,
        "part_window": seqshield_store::store::PART_WINDOW,
    })
}

async fn create(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    body: Result<Json<NewObject>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let p = principal(&auth, peer);
    let Json(req) = body.map_err(|e| StoreError::Invalid { field: "body", why: e.body_text() })?;
    let t = store.create_upload(&p, req).await?;
    Ok((StatusCode::CREATED, Json(ticket_json(&t))).into_response())
}

async fn resume(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = store.resume_upload(&principal(&auth, peer), &id).await?;
    Ok(Json(ticket_json(&t)))
}

fn parse_root(v: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).ok().map(|()| out)
}

fn parse_part(s: &str) -> Result<u64, StoreError> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Invalid { field: "part", why: "must be a decimal part number".into() });
    }
    s.parse().map_err(|_| StoreError::Invalid { field: "part", why: "must be a decimal part number".into() })
}

async fn put_part(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Extension(MaxPart(max)): Extension<MaxPart>,
    Path((id, part)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Json<Value>> {
    let p = principal(&auth, peer);
    let part = parse_part(&part)?;
    let declared = match headers.get(PART_ROOT_HEADER) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(parse_root)
                .ok_or(StoreError::Invalid { field: PART_ROOT_HEADER, why: "must be 64 hex digits".into() })?,
        ),
        None => None,
    };
    let declared_len =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > max as u64) {
        return Err(StoreError::PartTooLarge { part, limit: max as u64 }.into());
    }
    let body = read_bounded(req.into_body(), max).await.map_err(|e| match e {
        BodyError::TooLarge => StoreError::PartTooLarge { part, limit: max as u64 },
        BodyError::Broken(why) => StoreError::Invalid { field: "body", why },
    })?;
    let receipt = store.put_part(&p, &id, part, body, declared).await?;
    Ok(Json(json!(receipt)))
}

enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a body of at most `max` bytes (the length header may be absent or lie).
async fn read_bounded(body: Body, max: usize) -> Result<Bytes, BodyError> {
    let limited = http_body_util::Limited::new(body, max);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(e) => {
            // axum's own limit error also counts as too large.
            if e.to_string().contains("length limit") {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Broken("the request body could not be read".into()))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    merkle_root: String,
}

async fn commit(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
    body: Result<Json<CommitBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(b) = body.map_err(|e| StoreError::Invalid { field: "body", why: e.body_text() })?;
    let root = parse_root(&b.merkle_root)
        .ok_or(StoreError::Invalid { field: "merkle_root", why: "must be 64 hex digits".into() })?;
    let info = store.commit(&principal(&auth, peer), &id, root).await?;
    Ok(Json(json!(info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    dataset: Option<String>,
}

async fn list(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| StoreError::Invalid { field: "query", why: e.body_text() })?;
    let objects = store.list(&principal(&auth, peer), q.dataset.as_deref()).await?;
    Ok(Json(json!({ "objects": objects })))
}

async fn info(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let p = principal(&auth, peer);
    let info = store.info(&p, &id).await?;
    let replicas: Vec<Value> = store
        .replicas_of(&id)
        .await?
        .into_iter()
        .map(|r| json!({ "store": r.store, "merkle_root": r.merkle_root, "synced_at": r.synced_at, "rewrapped_for": r.key_ids }))
        .collect();
    let mut v = json!(info);
    v["replicas"] = json!(replicas);
    Ok(Json(v))
}

async fn open_read(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = store.open_read(&principal(&auth, peer), &id).await?;
    Ok(Json(json!({
        "object": t.info,
        "header": b64(&t.header),
        "data_key": b64(t.data_key.expose_secret()),
        "trailer": b64(&t.trailer),
        "part_roots": t.part_roots.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

async fn get_part(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path((id, part)): Path<(String, String)>,
) -> ApiResult<Response> {
    let part = parse_part(&part)?;
    let bytes = store.read_part(&principal(&auth, peer), &id, part).await?;
    let mut res = Response::new(Body::from(bytes));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(res)
}

async fn verify(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let report = store.verify(&principal(&auth, peer), &id).await?;
    Ok(Json(json!(report)))
}

async fn delete(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let report = store.delete(&principal(&auth, peer), &id).await?;
    Ok(Json(json!(report)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    to: String,
}

/// Streams one JSON object per line: the store's [`seqshield_store::SyncEvent`]s,
/// then `{"event":"summary",…}` or `{"event":"error",…}`.
async fn sync(
    auth: Authenticated,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    body: Result<Json<SyncBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body.map_err(|e| StoreError::Invalid { field: "body", why: e.body_text() })?;
    let p = principal(&auth, peer);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    tokio::spawn(async move {
        let line = |v: Value| Bytes::from(format!("{v}\n"));
        let tx2 = tx.clone();
        let progress = move |ev: seqshield_store::SyncEvent| {
            let _ = tx2.send(Ok(line(json!(ev))));
        };
        let end = match store.sync(&p, &b.to, &progress).await {
            Ok(s) => {
                let mut v = json!(s);
                v["event"] = json!("summary");
                v
            }
            Err(e) => json!({ "event": "error", "error": e.code(), "error_description": e.to_string() }),
        };
        let _ = tx.send(Ok(line(end)));
    });
    let mut rx = rx;
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(res)
}

// ---- GA4GH DRS 1.5 ---------------------------------------------------------

/// The one DRS access method: the gateway's own part API over HTTPS. The
/// bytes are the seqshield object's parts; a client opens them with the
/// key from `POST /api/v1/objects/{id}/read`.
pub const DRS_ACCESS_ID: &str = "seqshield-parts";

fn drs_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "msg": msg, "status_code": status.as_u16() }))).into_response()
}

fn drs_from(e: StoreError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if e.is_client_facing() {
        drs_error(status, &e.to_string())
    } else {
        tracing::error!(target: "seqshield", "DRS request failed: {e}");
        drs_error(status, e.code())
    }
}

fn rfc3339(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", t.hour(), t.minute(), t.second())
}

fn host_of(headers: &HeaderMap) -> String {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned()
}

async fn drs_service_info() -> Json<Value> {
    Json(json!({
        "id": "org.seqshield.drs",
        "name": "seqshield DRS",
        "type": { "group": "org.ga4gh", "artifact": "drs", "version": "1.5.0" },
        "description": "Read access to seqshield's encrypted object store in GA4GH DRS shape",
        "organization": { "name": "seqshield", "url": "https://example.invalid/seqshield" },
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn drs_object(
    auth: Result<Authenticated, seqshield_auth::error::OAuthError>,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return drs_auth_error(e),
    };
    let info = match store.info(&principal(&auth, peer), &id).await {
        Ok(i) if i.state == "available" => i,
        Ok(_) => return drs_error(StatusCode::NOT_FOUND, "the object is not committed yet"),
        Err(e) => return drs_from(e),
    };
    let host = host_of(&headers);
    Json(json!({
        "id": info.id,
        "name": info.name,
        "self_uri": format!("drs://{host}/{}", info.id),
        "size": info.size,
        "created_time": rfc3339(info.created_at),
        "updated_time": rfc3339(info.committed_at.unwrap_or(info.created_at)),
        "version": info.merkle_root,
        "mime_type": info.content_type,
        "checksums": [{ "checksum": info.merkle_root, "type": "seqshield-merkle-sha256" }],
        "description": format!("{} object in dataset {}, {}", info.classification, info.dataset,
            if info.encrypted { "AES-256-GCM encrypted" } else { "stored in the clear with integrity tags" }),
        "access_methods": [{
            "type": "https",
            "access_id": DRS_ACCESS_ID,
            "region": "on-premises",
            "authorizations": { "supported_types": ["BearerAuth"], "bearer_auth_issuers": [] }
        }]
    }))
    .into_response()
}

async fn drs_access(
    auth: Result<Authenticated, seqshield_auth::error::OAuthError>,
    Peer(peer): Peer,
    Extension(store): Extension<Arc<Store>>,
    Path((id, access_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return drs_auth_error(e),
    };
    if access_id != DRS_ACCESS_ID {
        return drs_error(StatusCode::NOT_FOUND, "unknown access_id");
    }
    match store.info(&principal(&auth, peer), &id).await {
        Ok(i) if i.state == "available" => {}
        Ok(_) => return drs_error(StatusCode::NOT_FOUND, "the object is not committed yet"),
        Err(e) => return drs_from(e),
    }
    let host = host_of(&headers);
    Json(json!({
        "url": format!("https://{host}/api/v1/objects/{id}/read"),
        "headers": ["Authorization: Bearer <your token>"],
    }))
    .into_response()
}

fn drs_auth_error(e: seqshield_auth::error::OAuthError) -> Response {
    let mut res = e.into_response();
    let status = res.status();
    let msg =
        json!({ "msg": "a valid Bearer token with the data:read scope is required", "status_code": status.as_u16() });
    *res.body_mut() = Body::from(msg.to_string());
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}
