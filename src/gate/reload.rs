//! Stored keys into memory. The request path reads the key map from memory only; this module
//! rebuilds that map from the store and swaps it in whole.
//!
//! Changes made through the admin API call [`reload`] before answering, so they apply at once.
//! Changes made by another process (the CLI) bump the store's change counter; [`watch`] reads
//! that counter (one small query) every [`POLL_EVERY`] and reloads when it moved. If the
//! database is away, the keys already in memory keep working.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::state::AppState;
use crate::store::StoreError;

/// How often the change counter is read: changes by another process apply within a second.
pub const POLL_EVERY: Duration = Duration::from_millis(400);

/// Serialises reloads, and remembers the counter the keys in memory were read at.
#[derive(Debug, Default)]
pub struct Reloader {
    lock: tokio::sync::Mutex<()>,
    generation: AtomicI64,
}

/// Read every stored key and user and swap the new key map in.
pub async fn reload(state: &AppState) -> Result<(), StoreError> {
    let _one_at_a_time = state.reloader.lock.lock().await;
    // The counter first: a change that lands while the keys are read is seen by the next poll.
    let generation = state.store.generation().await?;
    let keys = state.store.keys().await?;
    let users = state.store.users().await?;
    let current = state.gate.keys.load_full();
    state
        .gate
        .keys
        .store(Arc::new(current.with_stored(&keys, &users)));
    state
        .reloader
        .generation
        .store(generation, Ordering::Relaxed);
    Ok(())
}

/// Poll the change counter until the process ends; reload when it moved.
pub async fn watch(state: AppState) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let changed = match state.store.generation().await {
            Ok(generation) => generation != state.reloader.generation.load(Ordering::Relaxed),
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "cannot read key changes; the keys in memory stay in force");
                    failing = true;
                }
                continue;
            }
        };
        if changed {
            match reload(&state).await {
                Ok(()) => tracing::info!("stored keys reloaded"),
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "cannot reload keys; the keys in memory stay in force");
                    }
                    failing = true;
                    continue;
                }
            }
        }
        if failing {
            tracing::info!("the database is reachable again");
            failing = false;
        }
    }
}
