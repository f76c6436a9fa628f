//! The upstream body as it is read: chunks, each within the upstream timeout of the one before,
//! until the body ends, breaks off, stalls or the shutdown grace period is over.
//!
//! Poll-based on purpose: the response bodies that read it ([`NativeLines`](super::NativeLines)
//! and the native passthrough) are polled by hyper directly, and an open stream holds only
//! this struct, one pinned timer and the shutdown watch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::Body;
use tokio::time::{Instant, Sleep};

use super::Scrubber;
use crate::error::GatewayError;
use crate::shutdown::Shutdown;

/// The upstream body, type-erased once per stream.
pub type UpstreamBody =
    Pin<Box<dyn Body<Data = Bytes, Error = Box<dyn std::error::Error + Send + Sync>> + Send>>;

/// Chunks of an upstream body; see the module documentation.
pub struct UpstreamChunks {
    body: UpstreamBody,
    /// Deadline for the next chunk.
    idle: Pin<Box<Sleep>>,
    timeout: Duration,
    expired: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// For error text read from this body.
    scrubber: Arc<Scrubber>,
}

impl std::fmt::Debug for UpstreamChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamChunks")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl UpstreamChunks {
    /// Chunks of `body`, each expected within `timeout`; `shutdown` ends them early.
    pub fn new(
        body: UpstreamBody,
        timeout: Duration,
        shutdown: &Shutdown,
        scrubber: Arc<Scrubber>,
    ) -> Self {
        Self {
            body,
            idle: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            expired: Box::pin(shutdown.expired()),
            scrubber,
        }
    }

    /// What takes the upstream's addresses out of error text read from this body.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// The next chunk; `None` when the body ended. After an error the caller stops polling.
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, GatewayError>>> {
        if self.expired.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(GatewayError::ShuttingDown)));
        }
        loop {
            match self.body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Ollama sends no trailers; any other frame is skipped.
                    if let Ok(mut data) = frame.into_data() {
                        self.idle.as_mut().reset(Instant::now() + self.timeout);
                        return Poll::Ready(Some(Ok(data.copy_to_bytes(data.remaining()))));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::warn!(error = %err, "upstream stream broke off");
                    return Poll::Ready(Some(Err(GatewayError::UpstreamInterrupted)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    return match self.idle.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            Poll::Ready(Some(Err(GatewayError::UpstreamTimeout(self.timeout))))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}
