//! Which backend a request goes to: a pure function over what the pool knows of each backend,
//! so the rules can be read (and tested) in one place.
//!
//! Among the backends that have the model (or whose models are not known yet), in this order:
//! healthy before known down (a known-down backend is only a last resort, tried when no healthy
//! one has the model); listed before not known; one with a free slot before one at its
//! `max_concurrent`; the model already loaded before not loaded; then the least busy (requests
//! in flight relative to `max_concurrent`, divided by the weight). Backends still equal after
//! all that take turns in proportion to their weights.

use std::cmp::Ordering;

/// Whether a backend has a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Has {
    /// Listed by its `/api/tags` (or its fixed `models`).
    Yes,
    /// Its models are not known (discovery has not answered yet).
    Unknown,
    /// Not listed.
    No,
}

/// What is known of one backend when a request is placed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Its position in the pool.
    pub index: usize,
    /// Not known to be down.
    pub healthy: bool,
    /// Whether it has the model.
    pub has: Has,
    /// The model is loaded there (`/api/ps`).
    pub loaded: bool,
    /// Requests it is serving now.
    pub in_flight: u32,
    /// Its limit (0 = none).
    pub max_concurrent: u32,
    /// Its weight (at least 1).
    pub weight: u32,
}

impl Candidate {
    fn full(&self) -> bool {
        self.max_concurrent > 0 && self.in_flight >= self.max_concurrent
    }

    fn busy(&self) -> f64 {
        let capacity = if self.max_concurrent > 0 {
            f64::from(self.max_concurrent)
        } else {
            1.0
        };
        f64::from(self.in_flight) / capacity / f64::from(self.weight.max(1))
    }

    /// Everything but the tie-break, best first.
    fn compare(&self, other: &Self) -> Ordering {
        other
            .healthy
            .cmp(&self.healthy)
            .then(self.has.cmp(&other.has))
            .then(self.full().cmp(&other.full()))
            .then(other.loaded.cmp(&self.loaded))
            .then(self.busy().total_cmp(&other.busy()))
    }
}

/// The backends to try, best first; those known not to have the model are left out. `turn`
/// (a counter that moves on with every request) picks among equally good backends, in
/// proportion to their weights.
pub fn rank(mut ranked: Vec<Candidate>, turn: u64) -> Vec<usize> {
    ranked.retain(|c| c.has != Has::No);
    ranked.sort_by(Candidate::compare);
    let tied = ranked
        .iter()
        .take_while(|c| c.compare(&ranked[0]) == Ordering::Equal)
        .count();
    if tied > 1 {
        let total: u64 = ranked[..tied]
            .iter()
            .map(|c| u64::from(c.weight.max(1)))
            .sum();
        let mut point = turn % total;
        let mut chosen = 0;
        for (i, c) in ranked[..tied].iter().enumerate() {
            let weight = u64::from(c.weight.max(1));
            if point < weight {
                chosen = i;
                break;
            }
            point -= weight;
        }
        ranked[..tied].rotate_left(chosen);
    }
    ranked.into_iter().map(|c| c.index).collect()
}

/// `name` with `:latest` when it has no tag (looked for in the last path segment only, so
/// `host:5000/ns/model` still gets one): how Ollama names a model in its listings.
pub fn full_name(name: &str) -> String {
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(index: usize) -> Candidate {
        Candidate {
            index,
            healthy: true,
            has: Has::Yes,
            loaded: false,
            in_flight: 0,
            max_concurrent: 0,
            weight: 1,
        }
    }

    #[test]
    fn only_backends_with_the_model_and_healthy_ones_first() {
        let mut a = backend(0);
        a.has = Has::No;
        let mut b = backend(1);
        b.healthy = false;
        let c = backend(2);
        assert_eq!(rank(vec![a, b, c], 0), vec![2, 1]);
    }

    #[test]
    fn loaded_before_idle_and_free_before_full() {
        let b = backend(1);
        let mut c = backend(2);
        c.loaded = true;
        c.in_flight = 3;
        assert_eq!(rank(vec![b, c], 0)[0], 2, "loaded wins over less busy");
        c.max_concurrent = 3;
        assert_eq!(
            rank(vec![b, c], 0)[0],
            1,
            "a full backend comes after one with room"
        );
    }

    #[test]
    fn least_busy_relative_to_its_limit() {
        let mut a = backend(0);
        a.in_flight = 2;
        a.max_concurrent = 8;
        let mut b = backend(1);
        b.in_flight = 1;
        b.max_concurrent = 2;
        assert_eq!(rank(vec![a, b], 0), vec![0, 1]);
    }

    #[test]
    fn equal_backends_take_turns_by_weight() {
        let a = backend(0);
        let mut b = backend(1);
        b.weight = 2;
        let firsts: Vec<usize> = (0..6).map(|turn| rank(vec![a, b], turn)[0]).collect();
        assert_eq!(firsts, vec![0, 1, 1, 0, 1, 1]);
        let even: Vec<usize> = (0..4)
            .map(|turn| rank(vec![a, backend(1)], turn)[0])
            .collect();
        assert_eq!(even, vec![0, 1, 0, 1]);
    }

    #[test]
    fn names_get_latest() {
        assert_eq!(full_name("llama3.2"), "llama3.2:latest");
        assert_eq!(full_name("qwen3:8b"), "qwen3:8b");
        assert_eq!(full_name("host:5000/ns/m"), "host:5000/ns/m:latest");
    }
}
