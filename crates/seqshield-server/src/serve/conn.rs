//! Per-connection guards, applied before TLS: a cap on open connections
//! and an idle timeout.
//!
//! Without them a client could hold connections that never finish a
//! request (hyper's HTTP/1 header timeout does not cover a TLS connection
//! that stays silent before its first byte, nor HTTP/2), until the cap is
//! reached and nobody else gets in.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Seconds between two "connection limit reached" warnings.
const WARN_EVERY_SECS: u64 = 60;

/// Admits a connection only while fewer than the cap are open, and wraps
/// it in a [`GuardedStream`].
#[derive(Clone, Debug)]
pub(crate) struct GuardAcceptor {
    permits: Arc<Semaphore>,
    idle: Duration,
    last_warning: Arc<AtomicU64>,
}

impl GuardAcceptor {
    pub(crate) fn new(max_connections: usize, idle: Duration) -> Self {
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(max)), idle, last_warning: Arc::new(AtomicU64::new(0)) }
    }

    fn warn_full(&self) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last.saturating_add(WARN_EVERY_SECS)
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!("connection limit (server.max_connections) reached: refusing new connections");
        }
    }
}

impl<I, S> Accept<I, S> for GuardAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = GuardedStream<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(GuardedStream<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => std::future::ready(Ok((GuardedStream::new(stream, permit, self.idle), service))),
            Err(_) => {
                self.warn_full();
                // Dropping `stream` closes the connection.
                std::future::ready(Err(io::Error::other("connection limit reached")))
            }
        }
    }
}

/// A connection that holds one permit of the cap for its lifetime and
/// fails with `TimedOut` once no byte has moved for the idle period.
#[derive(Debug)]
pub(crate) struct GuardedStream<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<I> GuardedStream<I> {
    fn new(inner: I, permit: OwnedSemaphorePermit, idle: Duration) -> Self {
        Self { inner, _permit: permit, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// Called when the inner stream is not ready: has the idle period run out?
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<I: AsyncRead + Unpin> AsyncRead for GuardedStream<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for GuardedStream<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.touch();
                }
                Poll::Ready(r)
            }
            // A client that stops reading our response is idle too.
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn accept(a: &GuardAcceptor) -> io::Result<(GuardedStream<tokio::io::DuplexStream>, tokio::io::DuplexStream)> {
        let (server, client) = tokio::io::duplex(64);
        let fut = Accept::<_, ()>::accept(a, server, ());
        let (stream, ()) = fut.into_inner()?;
        Ok((stream, client))
    }

    #[tokio::test]
    async fn cap_refuses_then_frees() {
        let a = GuardAcceptor::new(1, Duration::from_secs(60));
        let first = accept(&a).unwrap();
        assert!(accept(&a).is_err(), "second connection over the cap");
        drop(first);
        assert!(accept(&a).is_ok(), "permit returned when the connection closes");
    }

    #[tokio::test]
    async fn traffic_passes_and_silence_times_out() {
        let a = GuardAcceptor::new(4, Duration::from_millis(200));
        let (mut server, mut client) = accept(&a).unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
