//! Request bodies a handler left unread, settled before the response leaves.
//!
//! A handler may answer from the request head alone: a 401, 403, 405, 413
//! or 429 never looks at the body. hyper then tries once to drain the rest
//! and, if it has not all arrived, closes the HTTP/1.1 connection after the
//! response. By then it may already have written the response head without
//! `Connection: close` (it notices the dropped body only after the head), so
//! a client that reuses the connection, as HTTP/1.1 allows, sends its next
//! request into a socket that is closing: "remote end closed connection
//! without response", or a TLS EOF.
//!
//! This layer watches the body. If the handler did not read it to the end,
//! the rest is read and dropped here, before the response is returned to
//! hyper, when it is small ([`DRAIN_LIMIT`]) and arrives in time
//! ([`DRAIN_TIMEOUT`]): the connection stays usable. Otherwise the response
//! says `Connection: close` (RFC 9112 §9.6), so the client opens a new one,
//! and the rest of the body is read and dropped in the background for a
//! while ([`LINGER_TIME`], [`LINGER_IDLE`], [`LINGER_LIMIT`]), the
//! "lingering close" of RFC 9112 §9.6: a client still sending a large body
//! (an upload refused for its token, a 413) can finish writing and read the
//! answer instead of hitting a reset. HTTP/2 has no such problem (a stream
//! is reset on its own) and is left alone, as are requests without a body.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

/// The most unread bytes drained to keep a connection open.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// How long the rest of an unread body may take to arrive.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes of a body read and dropped after a `Connection: close`
/// answer.
pub const LINGER_LIMIT: u64 = 64 * 1024 * 1024;

/// How long a body is read and dropped after a `Connection: close` answer.
pub const LINGER_TIME: Duration = Duration::from_secs(30);

/// How long the lingering read waits for the next piece of the body.
pub const LINGER_IDLE: Duration = Duration::from_secs(5);

/// Axum middleware; see the module docs.
pub(crate) async fn middleware(req: Request, next: Next) -> Response {
    if req.version() != Version::HTTP_11 || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let declared = content_length(req.headers());
    let (parts, body) = req.into_parts();
    let (tx, mut rx) = oneshot::channel();
    let watched = Watched { inner: Some(body), read: 0, done: false, leftover: Some(tx) };
    let mut res = next.run(Request::from_parts(parts, Body::new(watched))).await;
    // Closed: read to the end. Empty: something still holds the body and
    // may yet read it; it is not ours to settle.
    if let Ok(Leftover { mut body, read }) = rx.try_recv() {
        let remaining = declared.map(|n| n.saturating_sub(read));
        let outcome = match remaining {
            Some(n) if n > DRAIN_LIMIT => Drained::TooLarge,
            _ => drain(&mut body, DRAIN_LIMIT, DRAIN_TIMEOUT, DRAIN_TIMEOUT).await,
        };
        if outcome != Drained::Ended {
            tracing::debug!(remaining, ?outcome, "request body left unread: closing the connection after the response");
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            if outcome != Drained::Failed {
                // hyper keeps reading the connection for as long as the
                // body is wanted, and closes it once the body is dropped.
                tokio::spawn(async move {
                    let _ = drain(&mut body, LINGER_LIMIT, LINGER_TIME, LINGER_IDLE).await;
                });
            }
        }
    }
    res
}

/// How reading the rest of a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// To its end.
    Ended,
    /// Over the byte limit.
    TooLarge,
    /// Out of time.
    TimedOut,
    /// The body failed (a broken connection).
    Failed,
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Reads and drops the rest of `body`, up to `limit` bytes, for at most
/// `time` in all and `idle` between frames.
async fn drain(body: &mut Body, limit: u64, time: Duration, idle: Duration) -> Drained {
    let rest = async {
        let mut seen = 0u64;
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Drained::TimedOut,
                Ok(None) => return Drained::Ended,
                Ok(Some(Err(_))) => return Drained::Failed,
                Ok(Some(Ok(frame))) => frame,
            };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len() as u64);
                if seen > limit {
                    return Drained::TooLarge;
                }
            }
        }
    };
    tokio::time::timeout(time, rest).await.unwrap_or(Drained::TimedOut)
}

/// What a handler left of the body: the body itself and how much it read.
struct Leftover {
    body: Body,
    read: u64,
}

/// The request body as the handler sees it; hands the body back through
/// `leftover` when dropped before its end.
struct Watched {
    inner: Option<Body>,
    read: u64,
    done: bool,
    leftover: Option<oneshot::Sender<Leftover>>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.done = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len() as u64);
                }
                this.done = inner.is_end_stream();
            }
            // An error ends the body for the handler; hyper closes the
            // connection on a broken body itself.
            Poll::Ready(Some(Err(_))) => this.done = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(http_body::Body::size_hint).unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let (Some(body), Some(tx)) = (self.inner.take(), self.leftover.take()) {
            if !body.is_end_stream() {
                let _ = tx.send(Leftover { body, read: self.read });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route("/read", post(|b: Bytes| async move { b.len().to_string() }))
            .route("/ignore", post(|| async { "ignored" }))
            .layer(axum::middleware::from_fn(middleware))
    }

    fn request(path: &str, body: Body, len: Option<usize>) -> Request {
        let mut b = Request::post(path).version(Version::HTTP_11);
        if let Some(n) = len {
            b = b.header(header::CONTENT_LENGTH, n);
        }
        b.body(body).unwrap()
    }

    /// A body that yields `chunks`, then `tail` (pending forever if `None`).
    fn slow(chunks: Vec<&'static [u8]>, tail: Option<&'static [u8]>) -> Body {
        use futures::SinkExt;
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
        tokio::spawn(async move {
            for c in chunks {
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(c)))).await;
            }
            match tail {
                Some(t) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tx.send(Ok(Frame::data(Bytes::from_static(t)))).await;
                }
                None => std::future::pending::<()>().await,
            }
        });
        Body::new(http_body_util::StreamBody::new(rx))
    }

    #[tokio::test]
    async fn a_read_body_keeps_the_connection() {
        let res = app().oneshot(request("/read", Body::from("abcd"), Some(4))).await.unwrap();
        assert!(res.headers().get(header::CONNECTION).is_none());
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "4");
    }

    #[tokio::test]
    async fn a_small_unread_body_is_drained_and_the_connection_kept() {
        let res = app().oneshot(request("/ignore", slow(vec![b"ab"], Some(b"cd")), Some(4))).await.unwrap();
        assert!(res.headers().get(header::CONNECTION).is_none(), "{:?}", res.headers());
        // Without a length, up to the limit.
        let res = app().oneshot(request("/ignore", slow(vec![b"ab"], Some(b"cd")), None)).await.unwrap();
        assert!(res.headers().get(header::CONNECTION).is_none(), "{:?}", res.headers());
    }

    #[tokio::test]
    async fn a_large_unread_body_closes_the_connection() {
        let n = usize::try_from(DRAIN_LIMIT).unwrap() + 1;
        let res = app().oneshot(request("/ignore", slow(vec![b"ab"], None), Some(n))).await.unwrap();
        assert_eq!(res.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_body_that_never_arrives_closes_the_connection() {
        let res = app().oneshot(request("/ignore", slow(vec![b"ab"], None), Some(4))).await.unwrap();
        assert_eq!(res.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn http2_and_bodyless_requests_are_left_alone() {
        let mut req = request("/ignore", slow(vec![b"ab"], None), Some(4));
        *req.version_mut() = Version::HTTP_2;
        let res = app().oneshot(req).await.unwrap();
        assert!(res.headers().get(header::CONNECTION).is_none());
        let res = app().oneshot(request("/ignore", Body::empty(), Some(0))).await.unwrap();
        assert!(res.headers().get(header::CONNECTION).is_none());
    }
}
