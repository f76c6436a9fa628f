//! The usage recorder: one record per finished request, written off the request path.
//!
//! A request hands its record to [`Usage::record`], which never waits: the record goes into a
//! bounded queue, or, if the queue is full (the database is slow or gone), it is counted in
//! `gateway_usage_dropped_total` and a warning is logged. A writer task takes the records in
//! batches (every 100 ms) and writes each batch (records, hourly totals, the keys' `last_used`)
//! in one transaction: at once when a batch is full, otherwise at least every second. A batch that fails stays and is tried again; while it
//! waits, the queue fills. On shutdown the queue is written out before the process exits.
//!
//! The same call adds the tokens to the in-memory quota counters ([`quota`]), so quotas keep
//! working while the database is away.

pub mod clock;
pub mod live;
pub mod quota;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::store::{Store, UsageRecord, millis};
use clock::Clock;
use quota::Quotas;

/// The longest a record waits in the queue before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the writer takes what is queued (and writes early when a batch is full).
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// How often old records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most records in one transaction.
const MAX_BATCH: usize = 500;
/// At most one "queue full" warning in this long.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// On shutdown, how long the last batch may take.
const FINAL_WRITE: Duration = Duration::from_secs(10);

/// Settings of the recorder.
#[derive(Clone, Copy, Debug)]
pub struct UsageSettings {
    /// Whether records are written at all (`GATEWAY_USAGE_RECORDING`).
    pub recording: bool,
    /// Records the queue holds (`GATEWAY_USAGE_QUEUE`).
    pub queue: usize,
    /// How long records are kept (`GATEWAY_USAGE_RETENTION`).
    pub retention: Duration,
}

/// The recorder and the quota counters.
#[derive(Debug)]
pub struct Usage {
    tx: Option<mpsc::Sender<UsageRecord>>,
    /// Records refused because the queue was full.
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    stop: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Token counters per stored key.
    pub quotas: Quotas,
    /// Requests in flight and recent refusals (the console's Live page).
    pub live: live::Live,
}

impl Usage {
    /// Start the writer on `store` (if recording is on).
    pub fn start(store: Store, settings: UsageSettings, clock: Arc<dyn Clock>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (tx, writer) = if settings.recording {
            let capacity = settings.queue.max(1);
            let (tx, rx) = mpsc::channel(capacity);
            let writer = Writer {
                store,
                rx,
                stop: stop_rx,
                batch_limit: capacity.min(MAX_BATCH),
                retention: settings.retention,
                clock: clock.clone(),
                failing: false,
            };
            (Some(tx), Some(tokio::spawn(writer.run())))
        } else {
            (None, None)
        };
        Self {
            tx,
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            stop,
            writer: Mutex::new(writer),
            quotas: Quotas::new(clock),
            live: live::Live::default(),
        }
    }

    /// The time on the recorder's clock, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        millis(self.quotas.now())
    }

    /// Count a finished request's tokens and queue its record. Never waits.
    pub fn record(&self, mut record: UsageRecord) {
        let tokens = record.prompt_tokens + record.completion_tokens;
        match &record.key_id {
            Some(id) => self.quotas.add(id, tokens),
            None => self
                .quotas
                .add(&crate::admin::config_counter(&record.key_name), tokens),
        }
        let Some(tx) = &self.tx else { return };
        record.at = self.now_millis();
        if let Err(mpsc::error::TrySendError::Full(_) | mpsc::error::TrySendError::Closed(_)) =
            tx.try_send(record)
        {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("gateway_usage_dropped_total").increment(1);
            let mut last = self
                .last_warning
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                *last = Some(Instant::now());
                tracing::warn!(
                    dropped_total = dropped,
                    "usage queue is full (is the database slow or unavailable?): usage records are being dropped"
                );
            }
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Write out the queue and stop the writer (on shutdown).
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
            tracing::warn!("usage records could not all be written before exit");
        }
    }
}

/// The task that writes batches.
struct Writer {
    store: Store,
    rx: mpsc::Receiver<UsageRecord>,
    stop: watch::Receiver<bool>,
    batch_limit: usize,
    retention: Duration,
    clock: Arc<dyn Clock>,
    /// The last write failed (warn once per outage, and say when it is over).
    failing: bool,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_limit);
        // The queue is drained on a short tick rather than woken for every record: a busy
        // gateway then pays a few wake-ups a second, not one per request.
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = Instant::now();
        let mut last_prune: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                _ = tick.tick() => {
                    // Full batches go at once, as many as are queued; the rest within a second.
                    loop {
                        while batch.len() < self.batch_limit {
                            match self.rx.try_recv() {
                                Ok(record) => batch.push(record),
                                Err(_) => break,
                            }
                        }
                        if batch.len() < self.batch_limit {
                            break;
                        }
                        self.flush(&mut batch).await;
                        last_flush = Instant::now();
                        if !batch.is_empty() {
                            break; // the write failed: try again on a later tick
                        }
                    }
                    if last_flush.elapsed() >= FLUSH_EVERY {
                        self.flush(&mut batch).await;
                        last_flush = Instant::now();
                    }
                    if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                        last_prune = Some(Instant::now());
                        self.prune().await;
                    }
                }
            }
        }
        let deadline = Instant::now() + FINAL_WRITE;
        loop {
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            self.flush(&mut batch).await;
            if !batch.is_empty() {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        lost = batch.len(),
                        "usage records not written at exit: the database is unavailable"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn flush(&mut self, batch: &mut Vec<UsageRecord>) {
        if batch.is_empty() {
            return;
        }
        match self.store.insert_usage(batch).await {
            Ok(()) => {
                if self.failing {
                    tracing::info!("usage records are being written again");
                    self.failing = false;
                }
                batch.clear();
            }
            Err(err) => {
                if !self.failing {
                    tracing::warn!(error = %err, pending = batch.len(), "cannot write usage records; keeping them and retrying");
                    self.failing = true;
                }
            }
        }
    }

    async fn prune(&self) {
        let retention = chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let before = millis(
            self.clock
                .now()
                .checked_sub_signed(retention)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        );
        match self.store.prune_usage(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "deleted usage records past GATEWAY_USAGE_RETENTION"
            ),
            Err(err) => tracing::warn!(error = %err, "cannot delete old usage records"),
        }
    }
}
