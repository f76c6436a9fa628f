//! Stored responses: what `store: true` keeps for `GET`/`DELETE /v1/responses/{id}` and
//! `previous_response_id`, written off the request path.
//!
//! A finished response is handed to [`StoredResponses::keep`], which never waits: the response
//! goes into an in-memory table of responses not yet written, and onto a queue that one writer
//! task empties into the database (in batches, in one transaction each). Only when the write
//! has landed does the response leave the table. Reads ([`get`](StoredResponses::get)) look in
//! the table first, so a client that creates a response and at once continues from it finds it
//! whether or not the database has caught up, even while the database is locked or slow.
//! Deletes go through the same queue, so a delete always comes after the write it deletes.
//!
//! Every response belongs to the caller that made it (a stored key's id, or `config:<name>`):
//! another caller is told it does not exist. Responses older than `GATEWAY_RESPONSES_TTL` are
//! not answered any more and are deleted at start and every hour. A write that keeps failing
//! is tried again for [`GIVE_UP_AFTER`], then dropped with an error in the log and
//! `gateway_responses_store_failed_total`; one the queue has no room for is dropped with a
//! warning and `gateway_responses_dropped_total`. The table holds one gateway's writes: with
//! several gateways on one database, a response is visible to the others once written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::store::{Store, StoreError, StoredResponse, millis};
use crate::usage::clock::Clock;

/// Writes and deletes waiting for the writer at most; beyond that a response is not stored.
const QUEUE: usize = 10_000;
/// Most responses written in one transaction.
const MAX_BATCH: usize = 200;
/// A failed write is tried again after this long.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// How long a failing write is tried before its responses are given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// How often expired responses are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How long a delete waits for the writer (and the database) before answering 503.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long the last writes may take.
const FINAL_WRITE: Duration = Duration::from_secs(10);

/// A stored response as the routes use it.
#[derive(Clone, Debug)]
pub struct Kept {
    /// The conversation before the response's output, as Responses input items.
    pub input: Vec<Map<String, Value>>,
    /// The response object as the create returned it.
    pub response: Value,
}

impl Kept {
    /// The items a follow-up continues from: the input, then the response's output items.
    pub fn conversation(self) -> Vec<Map<String, Value>> {
        let mut items = self.input;
        if let Value::Array(output) = self.response.get("output").cloned().unwrap_or_default() {
            items.extend(output.into_iter().filter_map(|item| match item {
                Value::Object(map) => Some(map),
                _ => None,
            }));
        }
        items
    }

    fn from_row(row: &StoredResponse) -> Option<Self> {
        let input: Vec<Map<String, Value>> = serde_json::from_str(&row.input).ok()?;
        let response: Value = serde_json::from_str(&row.response).ok()?;
        Some(Self { input, response })
    }
}

/// What the writer is asked to do.
enum Op {
    Insert(Arc<StoredResponse>),
    Delete {
        id: String,
        owner: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// The stored responses of this gateway.
#[derive(Debug)]
pub struct StoredResponses {
    ttl: Duration,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Responses handed to the writer and not yet written, by id.
    pending: Arc<Mutex<HashMap<String, Arc<StoredResponse>>>>,
    tx: Option<mpsc::Sender<Op>>,
    stop: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl StoredResponses {
    /// Start the writer on `store`; a `ttl` of zero stores nothing (and starts nothing).
    pub fn start(store: Store, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let pending = Arc::new(Mutex::new(HashMap::new()));
        let (tx, writer) = if ttl.is_zero() {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel(QUEUE);
            let writer = Writer {
                store: store.clone(),
                rx,
                stop: stop_rx,
                pending: pending.clone(),
                clock: clock.clone(),
            };
            (Some(tx), Some(tokio::spawn(writer.run())))
        };
        Self {
            ttl,
            store,
            clock,
            pending,
            tx,
            stop,
            writer: Mutex::new(writer),
        }
    }

    /// Whether responses are stored at all (`GATEWAY_RESPONSES_TTL` is not 0).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    fn now(&self) -> i64 {
        millis(self.clock.now())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StoredResponse>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `response` (made by `owner` from the conversation `input`). Never waits; readable
    /// at once through [`get`](Self::get).
    pub fn keep(&self, owner: &str, input: &[Map<String, Value>], response: &Value) {
        let Some(tx) = &self.tx else { return };
        let Some(id) = response.get("id").and_then(Value::as_str) else {
            return;
        };
        let now = self.now();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let row = Arc::new(StoredResponse {
            id: id.to_owned(),
            owner: owner.to_owned(),
            created: now,
            expires: now.saturating_add(ttl),
            input: serde_json::to_string(input).unwrap_or_else(|_| "[]".into()),
            response: response.to_string(),
        });
        self.pending().insert(row.id.clone(), row.clone());
        if tx.try_send(Op::Insert(row)).is_err() {
            self.pending().remove(id);
            metrics::counter!("gateway_responses_dropped_total").increment(1);
            tracing::warn!(
                response = id,
                "the stored-responses queue is full (is the database slow or unavailable?): response not stored"
            );
        }
    }

    /// The response `id` made by `owner`, if it is kept and not expired. Responses not yet
    /// written are found too.
    pub async fn get(&self, id: &str, owner: &str) -> Result<Option<Kept>, StoreError> {
        if !self.enabled() {
            return Ok(None);
        }
        let now = self.now();
        let waiting = self.pending().get(id).cloned();
        if let Some(row) = waiting {
            return Ok((row.owner == owner && row.expires > now)
                .then(|| Kept::from_row(&row))
                .flatten());
        }
        let row = self.store.response(id, owner, now).await?;
        Ok(row.as_ref().and_then(Kept::from_row))
    }

    /// Delete the response `id` made by `owner`; whether there was one (a response not yet
    /// written is deleted once it is).
    pub async fn delete(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let Some(tx) = &self.tx else { return Ok(false) };
        let (done, answer) = oneshot::channel();
        let op = Op::Delete {
            id: id.to_owned(),
            owner: owner.to_owned(),
            done,
        };
        let unavailable = || StoreError::Unavailable("the stored-responses writer is busy".into());
        tokio::time::timeout(DELETE_TIMEOUT, async {
            tx.send(op).await.map_err(|_| unavailable())?;
            answer.await.map_err(|_| unavailable())?
        })
        .await
        .map_err(|_| unavailable())?
    }

    /// Responses handed over and not yet written.
    pub fn unwritten(&self) -> usize {
        self.pending().len()
    }

    /// Write out what is queued and stop the writer (on shutdown).
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && tokio::time::timeout(FINAL_WRITE + Duration::from_secs(1), writer)
                .await
                .is_err()
        {
            tracing::warn!("stored responses could not all be written before exit");
        }
    }
}

/// The task that writes.
struct Writer {
    store: Store,
    rx: mpsc::Receiver<Op>,
    stop: watch::Receiver<bool>,
    pending: Arc<Mutex<HashMap<String, Arc<StoredResponse>>>>,
    clock: Arc<dyn Clock>,
}

impl Writer {
    async fn run(mut self) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next: Option<Op> = None;
        loop {
            let op = match next.take() {
                Some(op) => op,
                None => tokio::select! {
                    biased;
                    _ = self.stop.changed() => break,
                    op = self.rx.recv() => match op {
                        Some(op) => op,
                        None => break,
                    },
                    _ = sweep.tick() => {
                        self.sweep().await;
                        continue;
                    }
                },
            };
            next = self.handle(op, Some(Instant::now() + GIVE_UP_AFTER)).await;
        }
        // Shutting down: what is queued is written (within FINAL_WRITE), then the task ends.
        let deadline = Instant::now() + FINAL_WRITE;
        while let Some(op) = match next.take() {
            Some(op) => Some(op),
            None => self.rx.try_recv().ok(),
        } {
            next = self.handle(op, Some(deadline)).await;
        }
    }

    /// Carry out `op` (an insert together with the inserts queued behind it); returns the
    /// operation taken off the queue that is not part of the batch.
    async fn handle(&mut self, op: Op, give_up: Option<Instant>) -> Option<Op> {
        match op {
            Op::Delete { id, owner, done } => {
                let now = millis(self.clock.now());
                let _ = done.send(self.store.delete_response(&id, &owner, now).await);
                None
            }
            Op::Insert(first) => {
                let mut batch = vec![first];
                let mut rest = None;
                while batch.len() < MAX_BATCH {
                    match self.rx.try_recv() {
                        Ok(Op::Insert(row)) => batch.push(row),
                        Ok(other) => {
                            rest = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                self.write(&batch, give_up).await;
                rest
            }
        }
    }

    /// Write `batch`, trying again until `give_up`; then the responses leave the table of
    /// unwritten ones.
    async fn write(&self, batch: &[Arc<StoredResponse>], give_up: Option<Instant>) {
        let rows: Vec<StoredResponse> = batch.iter().map(|r| (**r).clone()).collect();
        let mut warned = false;
        loop {
            match self.store.insert_responses(&rows).await {
                Ok(()) => {
                    if warned {
                        tracing::info!("stored responses are being written again");
                    }
                    break;
                }
                Err(err) if give_up.is_some_and(|at| Instant::now() >= at) => {
                    metrics::counter!("gateway_responses_store_failed_total")
                        .increment(rows.len() as u64);
                    tracing::error!(error = %err, lost = rows.len(), "stored responses could not be written and are dropped");
                    break;
                }
                Err(err) => {
                    if !warned {
                        tracing::warn!(error = %err, pending = rows.len(), "cannot write stored responses; keeping them and retrying");
                        warned = true;
                    }
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for row in batch {
            pending.remove(&row.id);
        }
    }

    async fn sweep(&self) {
        match self.store.prune_responses(millis(self.clock.now())).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "deleted stored responses past GATEWAY_RESPONSES_TTL"
            ),
            Err(err) => tracing::warn!(error = %err, "cannot delete expired stored responses"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_follow_up_continues_from_the_input_and_the_output() {
        let kept = Kept {
            input: vec![
                json!({"role": "user", "content": "hi"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ],
            response: json!({"id": "resp_1", "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
            ]}),
        };
        let items: Vec<Value> = kept.conversation().into_iter().map(Value::Object).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["content"], "hi");
        assert_eq!(items[1]["content"][0]["text"], "hello");
        assert_eq!(items[2]["type"], "function_call");
    }
}
