//! The SQLite side of the dashboards: one row per dashboard in `dashboards`, written in its own
//! short transaction.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::dashboards::StoredDashboard;
use crate::Result;

/// The migration that creates the dashboards table.
pub(crate) const MIGRATION: &str = r"
CREATE TABLE dashboards (
    id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,     -- JSON text, as the publisher gave it
    created TEXT NOT NULL,
    modified TEXT NOT NULL
) STRICT;
";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDashboard> {
    Ok(StoredDashboard { id: r.get(0)?, definition: r.get(1)?, created: r.get(2)?, modified: r.get(3)? })
}

impl SqliteStore {
    /// Runs `f` in an immediate write transaction on a connection of its own, and commits.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = rusqlite::Connection::open(&self.path)?;
        super::configure(&conn)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let v = f(&tx)?;
        tx.commit()?;
        Ok(v)
    }

    pub(crate) fn put_dashboard(&self, id: &str, definition: &str) -> Result<bool> {
        self.write(|tx| {
            let existed: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM dashboards WHERE id = ?1)", [id], |r| r.get(0))?;
            let now = super::now();
            tx.execute(
                "INSERT INTO dashboards (id, definition, created, modified) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, modified = excluded.modified",
                params![id, definition, now],
            )?;
            Ok(existed)
        })
    }

    pub(crate) fn dashboard(&self, id: &str) -> Result<Option<StoredDashboard>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT id, definition, created, modified FROM dashboards WHERE id = ?1")?
                .query_row([id], row)
                .optional()?)
        })
    }

    pub(crate) fn dashboards(&self) -> Result<Vec<StoredDashboard>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT id, definition, created, modified FROM dashboards ORDER BY id")?;
            let all = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(all)
        })
    }

    pub(crate) fn remove_dashboard(&self, id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM dashboards WHERE id = ?1", [id])? > 0))
    }
}
