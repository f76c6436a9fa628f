//! The PostgreSQL queries of stored responses (`responses` table, `0002_responses.sql`).

use sqlx::{Postgres, QueryBuilder};

use super::{PostgresStore, unavailable};
use crate::store::rows::{self, RESPONSE_COLUMNS};
use crate::store::{StoreError, StoredResponse};

/// Responses per INSERT: 6 parameters each, far under PostgreSQL's 65,535 per statement.
const RESPONSES_PER_STATEMENT: usize = 500;

impl PostgresStore {
    pub async fn insert_responses(&self, batch: &[StoredResponse]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for rows in batch.chunks(RESPONSES_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Postgres>::new(format!(
                "INSERT INTO responses ({RESPONSE_COLUMNS}) "
            ));
            insert.push_values(rows, |mut row, r| {
                row.push_bind(r.id.as_str())
                    .push_bind(r.owner.as_str())
                    .push_bind(r.created)
                    .push_bind(r.expires)
                    .push_bind(r.input.as_str())
                    .push_bind(r.response.as_str());
            });
            // A batch written again after a failure replaces what is there.
            insert.push(
                " ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, \
                 created = EXCLUDED.created, expires = EXCLUDED.expires, \
                 input = EXCLUDED.input, response = EXCLUDED.response",
            );
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    pub async fn response(
        &self,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = $1 AND owner = $2 AND expires > $3"
        ))
        .bind(id)
        .bind(owner)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref()
            .map(rows::response)
            .transpose()
            .map_err(unavailable)
    }

    pub async fn delete_response(
        &self,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM responses WHERE id = $1 AND owner = $2 AND expires > $3")
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(unavailable)
    }

    pub async fn prune_responses(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM responses WHERE expires <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}
