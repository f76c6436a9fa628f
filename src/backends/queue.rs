//! The wait for a backend slot, fair across keys.
//!
//! Each key has its own first-in-first-out line; the keys take turns. When a slot frees, the
//! key whose turn it is gets it for its oldest request that can use it (one whose model that
//! backend has), and goes to the back of the turn order; so a key with a hundred requests
//! waiting gets every other slot at most while another key waits, never all of them. The queue
//! is bounded (all keys together), and fair at the door too: when it is full, a request whose
//! key has fewer waiting than the longest line takes the place of that line's newest request
//! (which is refused as if the queue had been full when it came), so one key filling the queue
//! cannot turn every other key away. A request that waits longer than its timeout leaves it.
//!
//! The queue only orders and hands over: what a waiter asks for (`A`) and what it is granted
//! (`G`, a slot on a backend) are the pool's, which places waiters in [`FairQueue::dispatch`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// Why a request did not get a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue was full when it arrived, or a key with fewer waiting took its place.
    Full,
    /// It waited for the whole timeout.
    TimedOut,
}

struct Waiter<A, G> {
    id: u64,
    ask: A,
    grant: oneshot::Sender<G>,
}

struct Lines<A, G> {
    /// Keys with waiting requests, in turn order.
    turns: VecDeque<Arc<str>>,
    waiting: HashMap<Arc<str>, VecDeque<Waiter<A, G>>>,
    next_id: u64,
}

/// See the module documentation.
pub struct FairQueue<A, G> {
    lines: Mutex<Lines<A, G>>,
    depth: AtomicUsize,
    limit: usize,
}

impl<A, G> std::fmt::Debug for FairQueue<A, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairQueue")
            .field("depth", &self.depth())
            .field("limit", &self.limit)
            .finish()
    }
}

impl<A, G> FairQueue<A, G> {
    /// A queue holding at most `limit` waiters.
    pub fn new(limit: usize) -> Self {
        Self {
            lines: Mutex::new(Lines {
                turns: VecDeque::new(),
                waiting: HashMap::new(),
                next_id: 0,
            }),
            depth: AtomicUsize::new(0),
            limit,
        }
    }

    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines<A, G>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Join `key`'s line; the ticket waits for the grant. The caller runs [`dispatch`] next
    /// (a slot may have freed meanwhile).
    ///
    /// [`dispatch`]: Self::dispatch
    pub fn join(&self, key: &str, ask: A) -> Result<Ticket<'_, A, G>, Refused> {
        let (grant, granted) = oneshot::channel();
        let mut lines = self.lock();
        let mut displaced = None;
        if self.depth() >= self.limit {
            let mine = lines.waiting.get(key).map_or(0, VecDeque::len);
            let longest = lines
                .waiting
                .iter()
                .max_by_key(|(_, line)| line.len())
                .filter(|(_, line)| line.len() > mine + 1)
                .map(|(k, _)| k.clone());
            let Some(longest) = longest else {
                return Err(Refused::Full);
            };
            // Its newest request gives up its place: the line keeps its oldest ones, and its
            // sender, dropped below, tells the ticket it was refused.
            displaced = lines.waiting.get_mut(&longest).and_then(VecDeque::pop_back);
            if displaced.is_some() {
                self.depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let id = lines.next_id;
        lines.next_id += 1;
        let key: Arc<str> = match lines.waiting.get_key_value(key) {
            Some((existing, _)) => existing.clone(),
            None => {
                let key: Arc<str> = Arc::from(key);
                lines.turns.push_back(key.clone());
                key
            }
        };
        lines
            .waiting
            .entry(key.clone())
            .or_default()
            .push_back(Waiter { id, ask, grant });
        self.depth.fetch_add(1, Ordering::Relaxed);
        drop(lines);
        drop(displaced);
        Ok(Ticket {
            queue: self,
            key,
            id,
            granted: Some(granted),
        })
    }

    /// Hand out what `place` can give: in turn order of the keys, each key's oldest waiter
    /// that `place` finds a slot for. Grants a waiter no longer takes (its client left) are
    /// handed back by being dropped after the lock is released.
    pub fn dispatch(&self, mut place: impl FnMut(&A) -> Option<G>) {
        let mut unclaimed = Vec::new();
        {
            let mut lines = self.lock();
            'pass: loop {
                for turn in 0..lines.turns.len() {
                    let Some(key) = lines.turns.get(turn).cloned() else {
                        break;
                    };
                    let Some(line) = lines.waiting.get_mut(&key) else {
                        continue;
                    };
                    let Some((position, grant)) = line
                        .iter()
                        .enumerate()
                        .find_map(|(i, w)| place(&w.ask).map(|g| (i, g)))
                    else {
                        continue;
                    };
                    let Some(waiter) = line.remove(position) else {
                        continue;
                    };
                    self.depth.fetch_sub(1, Ordering::Relaxed);
                    let empty = line.is_empty();
                    lines.turns.remove(turn);
                    if empty {
                        lines.waiting.remove(&key);
                    } else {
                        lines.turns.push_back(key);
                    }
                    if let Err(grant) = waiter.grant.send(grant) {
                        unclaimed.push(grant);
                    }
                    continue 'pass;
                }
                break;
            }
        }
        drop(unclaimed);
    }

    /// Take waiter `id` out of `key`'s line; whether it was still there.
    fn leave(&self, key: &Arc<str>, id: u64) -> bool {
        let mut lines = self.lock();
        let Some(line) = lines.waiting.get_mut(key) else {
            return false;
        };
        let Some(position) = line.iter().position(|w| w.id == id) else {
            return false;
        };
        line.remove(position);
        self.depth.fetch_sub(1, Ordering::Relaxed);
        if line.is_empty() {
            lines.waiting.remove(key);
            lines.turns.retain(|k| k != key);
        }
        true
    }
}

/// A place in the queue: await [`Ticket::granted`]; dropped, it leaves the queue.
pub struct Ticket<'q, A, G> {
    queue: &'q FairQueue<A, G>,
    key: Arc<str>,
    id: u64,
    granted: Option<oneshot::Receiver<G>>,
}

impl<A, G> Ticket<'_, A, G> {
    /// The grant, or [`Refused::TimedOut`] after `timeout`.
    pub async fn granted(mut self, timeout: Duration) -> Result<G, Refused> {
        let Some(granted) = self.granted.as_mut() else {
            return Err(Refused::TimedOut);
        };
        // Not taken out of `self` while waiting: a request dropped meanwhile (its client left)
        // drops the ticket, which then leaves the queue.
        let waited = tokio::time::timeout(timeout, granted).await;
        let granted = self.granted.take();
        match waited {
            Ok(Ok(grant)) => Ok(grant),
            // Its place was taken by a key with fewer waiting (or the queue is gone).
            Ok(Err(_)) => Err(Refused::Full),
            Err(_) if self.queue.leave(&self.key, self.id) => Err(Refused::TimedOut),
            // Granted just as the time ran out: take it.
            Err(_) => granted
                .and_then(|mut granted| granted.try_recv().ok())
                .ok_or(Refused::TimedOut),
        }
    }
}

impl<A, G> Drop for Ticket<'_, A, G> {
    fn drop(&mut self) {
        if self.granted.is_some() {
            self.queue.leave(&self.key, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_take_turns() {
        let queue: FairQueue<u32, u32> = FairQueue::new(100);
        let mut tickets = Vec::new();
        for i in 0..5 {
            tickets.push(("a", queue.join("a", i).unwrap_or_else(|_| panic!("join"))));
        }
        tickets.push(("b", queue.join("b", 100).unwrap_or_else(|_| panic!("join"))));
        assert_eq!(queue.depth(), 6);
        // Three slots free, one at a time.
        let mut order = Vec::new();
        for _ in 0..3 {
            let mut given = false;
            queue.dispatch(|ask| {
                if given {
                    None
                } else {
                    given = true;
                    order.push(*ask);
                    Some(*ask)
                }
            });
        }
        assert_eq!(order, vec![0, 100, 1], "b's one request is served second");
        assert_eq!(queue.depth(), 3);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_timed_out_waiter_leaves() {
        let queue: FairQueue<(), ()> = FairQueue::new(1);
        let ticket = queue.join("a", ()).unwrap_or_else(|_| panic!("join"));
        assert!(matches!(queue.join("b", ()), Err(Refused::Full)));
        let waited = ticket.granted(Duration::from_millis(20)).await;
        assert_eq!(waited, Err(Refused::TimedOut));
        assert_eq!(queue.depth(), 0);
        let ticket = queue.join("b", ()).unwrap_or_else(|_| panic!("join"));
        drop(ticket);
        assert_eq!(queue.depth(), 0, "a dropped ticket leaves the queue");
    }

    #[tokio::test]
    async fn a_full_queue_still_lets_in_a_key_with_fewer_waiting() {
        let queue: FairQueue<u32, u32> = FairQueue::new(3);
        let a: Vec<_> = (0..3)
            .map(|i| queue.join("a", i).unwrap_or_else(|_| panic!("join")))
            .collect();
        assert!(
            matches!(queue.join("a", 9), Err(Refused::Full)),
            "the longest line's own key is refused"
        );
        let b = queue.join("b", 100).unwrap_or_else(|_| panic!("b gets in"));
        assert_eq!(queue.depth(), 3);
        assert!(
            matches!(queue.join("b", 101), Err(Refused::Full)),
            "b may not displace a line only one longer than its own"
        );
        let mut a = a.into_iter();
        let (first, second, third) = (a.next(), a.next(), a.next());
        let third = third.unwrap_or_else(|| panic!("three tickets"));
        assert_eq!(
            third.granted(Duration::from_millis(10)).await,
            Err(Refused::Full),
            "a's newest gave up its place"
        );
        let mut order = Vec::new();
        queue.dispatch(|ask| {
            order.push(*ask);
            Some(*ask)
        });
        assert_eq!(order, vec![0, 100, 1], "a's oldest and b's one are served");
        drop((first, second, b));
        assert_eq!(queue.depth(), 0);
    }

    #[tokio::test]
    async fn waiters_that_cannot_be_placed_are_passed_over() {
        let queue: FairQueue<&'static str, &'static str> = FairQueue::new(10);
        let first = queue
            .join("a", "elsewhere")
            .unwrap_or_else(|_| panic!("join"));
        let second = queue.join("a", "here").unwrap_or_else(|_| panic!("join"));
        queue.dispatch(|ask| (*ask == "here").then_some("slot"));
        assert_eq!(second.granted(Duration::from_millis(10)).await, Ok("slot"));
        assert_eq!(queue.depth(), 1);
        drop(first);
    }
}
