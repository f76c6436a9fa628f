//! Streamed bodies: one `Bytes` per line, each sent at its deadline, with a guard that
//! tells whether the client stayed to the end.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use crate::state::FakeState;

/// Counts a stream as completed when its last line is handed to the server, or as
/// cancelled when it is dropped before that (the client went away, so hyper dropped the
/// body or the handler future).
pub(crate) struct StreamGuard {
    state: FakeState,
    finished: bool,
}

impl StreamGuard {
    pub(crate) fn new(state: FakeState) -> Self {
        Self {
            state,
            finished: false,
        }
    }

    fn complete(&mut self) {
        if !self.finished {
            self.finished = true;
            self.state.stream_completed();
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.state.stream_cancelled();
        }
    }
}

/// When each line is due. Line `i` is due at `start + offset + i * gap`, plus `stall` for
/// lines at or after `stall_at`. Deadlines are absolute, so time spent producing one line
/// does not push the next ones back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    pub(crate) start: Instant,
    /// Before line 0: the head delay of `fail-slow` plus the configured first-token delay.
    pub(crate) offset: Duration,
    pub(crate) gap: Duration,
    pub(crate) stall_at: usize,
    pub(crate) stall: Duration,
}

impl Schedule {
    pub(crate) fn due(&self, index: usize) -> Instant {
        let steps = u32::try_from(index).unwrap_or(u32::MAX);
        let mut due = self.start + self.offset + self.gap.saturating_mul(steps);
        if index >= self.stall_at {
            due += self.stall;
        }
        due
    }

    /// Sleep until line `index` is due (returns at once when it already is).
    pub(crate) async fn wait_for(&self, index: usize) {
        let due = self.due(index);
        if due > Instant::now() {
            sleep_until(due).await;
        }
    }
}

struct Feed {
    lines: std::vec::IntoIter<Bytes>,
    index: usize,
    /// Index of the last non-empty line: sending it completes the stream.
    last: usize,
    schedule: Schedule,
    guard: StreamGuard,
}

/// A body sending `lines` on `schedule`, one HTTP chunk per line. Empty entries keep their
/// time slot but send nothing.
pub(crate) fn scheduled_body(
    lines: Vec<Bytes>,
    schedule: Schedule,
    mut guard: StreamGuard,
) -> Body {
    let Some(last) = lines.iter().rposition(|line| !line.is_empty()) else {
        guard.complete();
        return Body::empty();
    };
    let feed = Feed {
        lines: lines.into_iter(),
        index: 0,
        last,
        schedule,
        guard,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.index > feed.last {
                return None;
            }
            let line = feed.lines.next()?;
            feed.schedule.wait_for(feed.index).await;
            feed.guard.state.while_hung().await;
            if feed.index == feed.last {
                feed.guard.complete();
            }
            feed.index += 1;
            if !line.is_empty() {
                return Some((Ok::<_, Infallible>(line), feed));
            }
        }
    });
    Body::from_stream(stream)
}
