//! Request ids: every request gets one, every log line about it carries it.
//!
//! A client's `X-Request-Id` is kept when it is 1 to
//! [`MAX_REQUEST_ID_LEN`] characters of `[A-Za-z0-9._-]` (so a caller can
//! follow its request through our logs); anything else, a second copy of
//! the header included, is replaced by 128 random bits in hex. The id in
//! force replaces the header on the request (handlers and anything they
//! call see it), is available as the [`RequestId`] extension, and is
//! echoed on the response. The rest of the request runs inside a
//! `request` tracing span with a `request_id` field, which the JSON log
//! format prints with every event (see [`crate::logging`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::Next;
use tracing::Instrument;

/// The header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied id kept.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The id of the request being handled (a request extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True for 1 to [`MAX_REQUEST_ID_LEN`] characters of `[A-Za-z0-9._-]`.
pub fn is_valid(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 128 random bits as 32 hex digits.
pub fn generate() -> String {
    let mut raw = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut raw).is_err() {
        // Never seen; an id must still be unique enough to follow a request.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        raw = (t ^ u128::from(n)).to_be_bytes();
    }
    hex::encode(raw)
}

/// The middleware (see the module docs).
pub async fn middleware(mut req: Request, next: Next) -> Response<Body> {
    let mut given = req.headers().get_all(&X_REQUEST_ID).iter();
    let id = match (given.next(), given.next()) {
        (Some(v), None) => v.to_str().ok().filter(|s| is_valid(s)).map(str::to_owned),
        _ => None,
    }
    .unwrap_or_else(generate);
    let value = HeaderValue::from_str(&id).expect("a valid id is a valid header value");
    req.headers_mut().insert(&X_REQUEST_ID, value.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = next.run(req).instrument(span).await;
    res.headers_mut().insert(&X_REQUEST_ID, value);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        for ok in ["a", "req-1.2_3", &"x".repeat(64), "0123456789abcdef"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", &"x".repeat(65), "a b", "a/b", "ä", "a\u{0}", "id;drop"] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        let g = generate();
        assert_eq!(g.len(), 32);
        assert!(is_valid(&g));
        assert_ne!(g, generate());
    }
}
