//! The SQLite queries of stored responses (`responses` table, `0002_responses.sql`).

use sqlx::{QueryBuilder, Sqlite};

use super::{SqliteStore, unavailable};
use crate::store::rows::{self, RESPONSE_COLUMNS};
use crate::store::{StoreError, StoredResponse};

/// Responses per INSERT: 6 parameters each, well under SQLite's limit per statement.
const RESPONSES_PER_STATEMENT: usize = 500;

impl SqliteStore {
    pub async fn insert_responses(&self, batch: &[StoredResponse]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for rows in batch.chunks(RESPONSES_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(format!(
                "INSERT OR REPLACE INTO responses ({RESPONSE_COLUMNS}) "
            ));
            insert.push_values(rows, |mut row, r| {
                row.push_bind(r.id.as_str())
                    .push_bind(r.owner.as_str())
                    .push_bind(r.created)
                    .push_bind(r.expires)
                    .push_bind(r.input.as_str())
                    .push_bind(r.response.as_str());
            });
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
            "SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = ? AND owner = ? AND expires > ?"
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
        sqlx::query("DELETE FROM responses WHERE id = ? AND owner = ? AND expires > ?")
            .bind(id)
            .bind(owner)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(unavailable)
    }

    pub async fn prune_responses(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM responses WHERE expires <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}
