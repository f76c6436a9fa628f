//! Writing a batch of usage records, the parts every engine shares: the batch's hourly totals
//! and its keys' `last_used`, summed in memory first, and multi-row statements in a few fixed
//! sizes.
//!
//! A batch is cut into pieces of the [`ROWS_PER_STATEMENT`] sizes only, so each table has at
//! most five distinct statements, each parsed once per connection and then taken from the
//! statement cache: parsing a statement of a new length every batch was the larger part of what
//! recording usage cost.

use std::sync::OnceLock;

use super::{HourlyTotals, StoreError, UsageRecord};

/// The row counts a multi-row INSERT is built with, largest first (14 parameters a usage row:
/// well under SQLite's limit of 32,766 and PostgreSQL's of 65,535 a statement).
pub const ROWS_PER_STATEMENT: [usize; 5] = [256, 64, 16, 4, 1];

/// `rows` cut into consecutive pieces whose lengths are all in [`ROWS_PER_STATEMENT`].
pub fn statement_pieces<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = ROWS_PER_STATEMENT
            .into_iter()
            .find(|size| *size <= rows.len())?;
        let (piece, rest) = rows.split_at(size);
        rows = rest;
        Some(piece)
    })
}

/// How an engine spells a statement's parameters.
#[derive(Clone, Copy, Debug)]
pub enum Placeholders {
    /// `?` (SQLite).
    Question,
    /// `$1`, `$2`, ... (PostgreSQL).
    Numbered,
}

/// A multi-row INSERT, its text made once for each of the [`ROWS_PER_STATEMENT`] sizes.
pub struct MultiRowInsert {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    placeholders: Placeholders,
    texts: OnceLock<[String; ROWS_PER_STATEMENT.len()]>,
}

impl MultiRowInsert {
    /// `head VALUES (...), (...) tail`, with `columns` values a row.
    pub const fn new(
        head: &'static str,
        columns: usize,
        tail: &'static str,
        placeholders: Placeholders,
    ) -> Self {
        Self {
            head,
            columns,
            tail,
            placeholders,
            texts: OnceLock::new(),
        }
    }

    fn text(&self, rows: usize) -> String {
        let mut next = 0;
        let mut value = || {
            next += 1;
            match self.placeholders {
                Placeholders::Question => "?".to_owned(),
                Placeholders::Numbered => format!("${next}"),
            }
        };
        let rows: Vec<String> = (0..rows)
            .map(|_| {
                let values: Vec<String> = (0..self.columns).map(|_| value()).collect();
                format!("({})", values.join(", "))
            })
            .collect();
        format!("{} VALUES {}{}", self.head, rows.join(", "), self.tail)
    }

    /// The statement for `rows` rows, which must be one of [`ROWS_PER_STATEMENT`] (what
    /// [`statement_pieces`] hands out).
    pub fn sql(&self, rows: usize) -> Result<&str, StoreError> {
        let texts = self
            .texts
            .get_or_init(|| ROWS_PER_STATEMENT.map(|size| self.text(size)));
        ROWS_PER_STATEMENT
            .iter()
            .position(|size| *size == rows)
            .and_then(|at| texts.get(at))
            .map(String::as_str)
            .ok_or_else(|| {
                StoreError::Unavailable(format!("no {rows}-row statement for {}", self.head))
            })
    }
}

/// The start of the usage INSERT (14 columns).
pub const USAGE_INSERT_HEAD: &str = "INSERT INTO usage (at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms)";
/// Values a usage row.
pub const USAGE_COLUMNS: usize = 14;

/// The start of the hourly upsert (11 columns).
pub const HOURLY_UPSERT_HEAD: &str = "INSERT INTO usage_hourly (hour, key_id, key_name, user_name, model, route, requests, errors, prompt_tokens, completion_tokens, total_ms)";
/// Values an hourly row.
pub const HOURLY_COLUMNS: usize = 11;
/// What the hourly upsert does with an hour that has a row already.
pub const HOURLY_UPSERT_TAIL: &str = " ON CONFLICT (hour, key_id, key_name, user_name, model, route) DO UPDATE SET \
     requests = usage_hourly.requests + excluded.requests, errors = usage_hourly.errors + excluded.errors, \
     prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
     total_ms = usage_hourly.total_ms + excluded.total_ms";

/// The batch's hourly totals: one row per hour and dimensions.
pub fn hourly_totals(batch: &[UsageRecord]) -> Vec<HourlyTotals> {
    let mut hourly: Vec<HourlyTotals> = Vec::new();
    for r in batch {
        let hour = r.at.div_euclid(3_600_000) * 3600;
        let found = hourly.iter().position(|h| {
            h.hour == hour
                && h.key_id == r.key_id
                && h.key_name == r.key_name
                && h.user == r.user
                && h.model == r.model
                && h.route == r.route
        });
        let at = found.unwrap_or_else(|| {
            hourly.push(HourlyTotals {
                hour,
                key_id: r.key_id.clone(),
                key_name: r.key_name.clone(),
                user: r.user.clone(),
                model: r.model.clone(),
                route: r.route.clone(),
                ..HourlyTotals::default()
            });
            hourly.len() - 1
        });
        let Some(totals) = hourly.get_mut(at) else {
            continue;
        };
        totals.requests += 1;
        totals.errors += u64::from(r.is_error());
        totals.prompt_tokens += r.prompt_tokens;
        totals.completion_tokens += r.completion_tokens;
        totals.total_ms += r.total_ms;
    }
    hourly
}

/// Each stored key of the batch with the latest time it was used.
pub fn last_used(batch: &[UsageRecord]) -> Vec<(&str, i64)> {
    let mut last_used: Vec<(&str, i64)> = Vec::new();
    for r in batch {
        if let Some(id) = r.key_id.as_deref() {
            match last_used.iter_mut().find(|(k, _)| *k == id) {
                Some(entry) => entry.1 = entry.1.max(r.at),
                None => last_used.push((id, r.at)),
            }
        }
    }
    last_used
}

#[cfg(test)]
mod tests {
    use super::{MultiRowInsert, Placeholders, ROWS_PER_STATEMENT, statement_pieces};

    #[test]
    fn each_statement_size_has_one_placeholder_per_value_in_either_spelling() {
        let question =
            MultiRowInsert::new("INSERT INTO t (a, b, c)", 3, "", Placeholders::Question);
        let numbered =
            MultiRowInsert::new("INSERT INTO t (a, b, c)", 3, "", Placeholders::Numbered);
        for size in ROWS_PER_STATEMENT {
            let count = question.sql(size).map(|sql| sql.matches('?').count());
            assert_eq!(count.ok(), Some(size * 3), "{size} rows");
            let last = numbered
                .sql(size)
                .map(|sql| sql.ends_with(&format!("${})", size * 3)));
            assert_eq!(last.ok(), Some(true), "{size} rows numbered to the end");
        }
        assert_eq!(
            numbered.sql(1).ok(),
            Some("INSERT INTO t (a, b, c) VALUES ($1, $2, $3)")
        );
        assert!(question.sql(3).is_err(), "an unlisted size is refused");
    }

    #[test]
    fn a_batch_is_cut_into_the_fixed_statement_sizes_in_order_and_whole() {
        for len in [0usize, 1, 3, 4, 5, 99, 100, 256, 257, 500, 1000] {
            let rows: Vec<usize> = (0..len).collect();
            let pieces: Vec<&[usize]> = statement_pieces(&rows).collect();
            assert!(
                pieces.iter().all(|p| ROWS_PER_STATEMENT.contains(&p.len())),
                "{len}: {:?}",
                pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
            );
            let joined: Vec<usize> = pieces.concat();
            assert_eq!(joined, rows, "{len}: every row once, in order");
        }
        // 100 rows (a tenth of a second at 1,000 req/s) take four statements, not a hundred.
        assert_eq!(statement_pieces(&[0u8; 100]).count(), 4);
    }
}
