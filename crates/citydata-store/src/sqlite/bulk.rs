//! Bulk inserts that bind texts without copying them: the store's only unsafe code.
//!
//! rusqlite binds every text as `SQLITE_TRANSIENT`, so SQLite copies it into memory of its own: a
//! malloc, a copy and a free per value. A bulk load binds millions of texts, and those copies were a
//! fifth of the writer's time (measured on the 1,000,000-row benchmark of `bench/publish.sh`). Here
//! the INSERT is prepared through SQLite's C API and each text is bound as `SQLITE_STATIC`, pointing
//! into the caller's buffer.
//!
//! **Why it is sound:** a [`BulkInsert`] binds every parameter of its statement from values borrowed
//! for the whole of [`BulkInsert::run`], steps the statement once and resets it, all inside that
//! call. SQLite reads a static text only while the statement runs (or when it is rebound, which
//! releases the old value without reading it); the statement is never stepped except by `run`, which
//! binds every parameter anew first, so the pointers left behind after a run are never read. The
//! statement is finalised on drop and cannot outlive its connection (the `'c` borrow), and the type
//! is neither `Send` nor `Sync` (raw pointers), as a rusqlite statement.
#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use rusqlite::{ffi, Connection};

use crate::{Result, StoreError};

/// One parameter's value, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// A prepared statement whose texts are bound without copies.
pub(crate) struct BulkInsert<'c> {
    db: *mut ffi::sqlite3,
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
    _conn: PhantomData<&'c Connection>,
}

impl<'c> BulkInsert<'c> {
    /// Prepares `sql` (one statement) on `conn`.
    pub(crate) fn prepare(conn: &'c Connection, sql: &str) -> Result<Self> {
        let len = c_int::try_from(sql.len()).map_err(|_| StoreError::Invalid("statement too long".into()))?;
        // SAFETY: the handle stays valid while `conn` is borrowed, which `'c` ensures for the whole
        // life of the statement; it is only passed to SQLite's own functions.
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes (its length is given, so no NUL is needed); `stmt`
        // is a valid place for the result.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &raw mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| StoreError::Invalid("an empty statement".into()))?;
        // SAFETY: `stmt` is a statement just prepared.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(Self { db, stmt, params: usize::try_from(count).unwrap_or(0), _conn: PhantomData })
    }

    /// Binds `values` to the statement's parameters, in order (there must be exactly as many), and
    /// runs it once.
    pub(crate) fn run<'v>(&mut self, values: impl IntoIterator<Item = Param<'v>>) -> Result<()> {
        let stmt = self.stmt.as_ptr();
        let mut bound = 0usize;
        for v in values {
            bound += 1;
            if bound > self.params {
                continue;
            }
            let i = c_int::try_from(bound).unwrap_or(c_int::MAX);
            // SAFETY: `stmt` is live and `i` is one of its parameters. A text is bound as static: it
            // is borrowed for `'v`, which outlasts this call, and SQLite reads it only while the
            // statement runs below, within this call (see the module's note).
            let rc = unsafe {
                match v {
                    Param::Null => ffi::sqlite3_bind_null(stmt, i),
                    Param::Int(x) => ffi::sqlite3_bind_int64(stmt, i, x),
                    Param::Real(x) => ffi::sqlite3_bind_double(stmt, i, x),
                    Param::Text(t) => match c_int::try_from(t.len()) {
                        Ok(n) => ffi::sqlite3_bind_text(stmt, i, t.as_ptr().cast(), n, ffi::SQLITE_STATIC()),
                        Err(_) => ffi::SQLITE_TOOBIG,
                    },
                }
            };
            if rc != ffi::SQLITE_OK {
                // SAFETY: `stmt` is live; nothing of this run stays bound.
                unsafe { ffi::sqlite3_clear_bindings(stmt) };
                return Err(self.failed(rc));
            }
        }
        if bound != self.params {
            // SAFETY: `stmt` is live; clearing leaves no parameter of an earlier run bound.
            unsafe { ffi::sqlite3_clear_bindings(stmt) };
            return Err(StoreError::Invalid(format!(
                "{bound} values for a statement of {} parameters",
                self.params
            )));
        }
        // SAFETY: `stmt` is live and every parameter was bound in this call from values that
        // outlive it.
        let rc = unsafe { ffi::sqlite3_step(stmt) };
        // SAFETY: as above; the reset ends the run, so nothing reads the bound texts any more.
        let reset = unsafe { ffi::sqlite3_reset(stmt) };
        match (rc, reset) {
            (ffi::SQLITE_DONE, ffi::SQLITE_OK) => Ok(()),
            (ffi::SQLITE_DONE | ffi::SQLITE_ROW, other) if other != ffi::SQLITE_OK => Err(self.failed(other)),
            (ffi::SQLITE_ROW, _) => Err(StoreError::Invalid("a bulk statement returned rows".into())),
            (other, _) => Err(self.failed(other)),
        }
    }

    fn failed(&self, rc: c_int) -> StoreError {
        if rc == ffi::SQLITE_TOOBIG {
            return StoreError::Invalid("a value is too big for the database".into());
        }
        error(self.db)
    }
}

impl Drop for BulkInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and owned here; it is finalised once.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The connection's latest error, as rusqlite would word it.
fn error(db: *mut ffi::sqlite3) -> StoreError {
    // SAFETY: `db` is a live connection; SQLite returns a NUL-terminated message it owns, copied
    // here before any other call on the connection.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db);
        if m.is_null() {
            String::from("unknown SQLite error")
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        }
    };
    StoreError::Database(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_every_kind_of_value_and_reports_errors() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b REAL, c TEXT, d ANY) STRICT").unwrap();
        let mut ins = BulkInsert::prepare(&conn, "INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)").unwrap();
        let texts: Vec<String> = vec!["中文 text".into(), String::new(), "nul\0inside".into()];
        ins.run([
            Param::Int(-7),
            Param::Real(2.5),
            Param::Text(&texts[0]),
            Param::Null,
            Param::Null,
            Param::Null,
            Param::Text(&texts[1]),
            Param::Text(&texts[2]),
        ])
        .unwrap();
        // The texts were read while the statement ran: changing the buffers after changes nothing.
        drop(texts);
        type Row = (Option<i64>, Option<f64>, Option<String>, Option<String>);
        let rows: Vec<Row> = conn
            .prepare("SELECT a, b, c, d FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (Some(-7), Some(2.5), Some("中文 text".into()), None),
                (None, None, Some(String::new()), Some("nul\0inside".into())),
            ]
        );
        // Too few or too many values: refused before the statement runs.
        for n in [1, 9] {
            let e = ins.run(vec![Param::Null; n]).unwrap_err();
            let want = StoreError::Invalid(format!("{n} values for a statement of 8 parameters"));
            assert_eq!(e.to_string(), want.to_string());
        }
        // A STRICT type error comes back as SQLite words it, and the statement can run again.
        let e = ins.run([Param::Text("x"); 8]).unwrap_err();
        assert!(e.to_string().contains("cannot store TEXT value in INTEGER column"), "{e}");
        ins.run([
            Param::Int(1),
            Param::Real(1.0),
            Param::Null,
            Param::Null,
            Param::Int(2),
            Param::Null,
            Param::Null,
            Param::Null,
        ])
        .unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 4);
        assert!(BulkInsert::prepare(&conn, "INSERT INTO nowhere VALUES (1)").is_err());
    }
}
