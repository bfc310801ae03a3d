//! The user SQL sandbox: SQL from anyone, run where only the database engine decides what it may do.
//!
//! Nothing here parses the SQL. Each sandbox connection is opened read-only with `query_only` on, the
//! defensive flag set, an untrusted schema, no views, triggers or double-quoted string literals, and
//! lowered limits (a value is at most 10 MB, so `randomblob(1e9)` fails at once; no attached
//! databases). An authorizer admits only `SELECT`, reading the tables of current resources (their
//! resource ids) and an allow-list of plain functions; everything else (writes, `PRAGMA`, `ATTACH`,
//! the catalogue tables, `sqlite_schema`, `load_extension`) stops the statement before it runs. A
//! progress handler ends a query once the engine has spent the caller's time limit on it.
//!
//! The sandbox has its own small pool of connections, so user SQL never takes the connections of
//! ordinary reads; when every sandbox connection is busy a caller waits a bounded time, then is told
//! to try again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use citydata_model::{FieldType, Value};
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::query::{cell, current_columns};
use super::SqliteStore;
use crate::query::{Column, Head, RowSink, SqlLimits, SqlOutcome};
use crate::{Result, StoreError};

/// The longest string or blob a query may make.
const MAX_LENGTH: i32 = 10_000_000;

/// The limits of a sandbox connection, lowered from SQLite's defaults.
const LIMITS: [(Limit, i32); 9] = [
    (Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH),
    (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
    (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
    (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 20),
    (Limit::SQLITE_LIMIT_VDBE_OP, 250_000),
    (Limit::SQLITE_LIMIT_FUNCTION_ARG, 100),
    (Limit::SQLITE_LIMIT_ATTACHED, 0),
    (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 10_000),
    (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 0),
];

/// Functions user SQL may call: SQLite's core scalar, aggregate, window, date, math and JSON
/// functions. Not on it: `load_extension`, `fts3_tokenizer`, the `sqlite_*` introspection functions,
/// `changes`/`last_insert_rowid`, and whatever an extension or a later SQLite adds.
#[rustfmt::skip]
const FUNCTIONS: &[&str] = &[
    // core scalar
    "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "if", "ifnull", "iif", "instr",
    "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif", "octet_length",
    "printf", "quote", "random", "randomblob", "replace", "round", "rtrim", "sign", "soundex", "substr",
    "substring", "trim", "typeof", "unhex", "unicode", "unistr", "unistr_quote", "unlikely", "upper",
    "zeroblob",
    // date and time
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff", "current_date",
    "current_time", "current_timestamp",
    // aggregate
    "avg", "count", "group_concat", "string_agg", "sum", "total", "median", "percentile", "percentile_cont",
    "percentile_disc",
    // window
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
    "last_value", "nth_value",
    // math
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees",
    "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh",
    "sqrt", "tan", "tanh", "trunc",
    // JSON
    "json", "jsonb", "json_array", "jsonb_array", "json_array_length", "json_error_position", "json_extract",
    "jsonb_extract", "->", "->>", "json_insert", "jsonb_insert", "json_object", "jsonb_object", "json_patch",
    "jsonb_patch", "json_pretty", "json_quote", "json_remove", "jsonb_remove", "json_replace",
    "jsonb_replace", "json_set", "jsonb_set", "json_type", "json_valid", "json_group_array",
    "jsonb_group_array", "json_group_object", "jsonb_group_object",
];

/// Table-valued functions user SQL may read from, besides the resource tables.
const TABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];

/// What the authorizer lets through on one connection, and the first thing it refused.
#[derive(Default)]
struct Rules {
    /// The tables user SQL may read: those of current resources, in ASCII lower case (SQLite
    /// compares names without ASCII case).
    tables: HashSet<String>,
    /// The name of everything in the database's schema, in ASCII lower case.
    schema: HashSet<String>,
    refused: Option<String>,
}

/// The engine time of the current query: what it used so far, and when the current step began.
struct Clock {
    limit: Duration,
    used: Duration,
    since: Option<Instant>,
}

impl Clock {
    fn over(&self) -> bool {
        self.used + self.since.map_or(Duration::ZERO, |s| s.elapsed()) > self.limit
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain data, valid whatever a panicking holder did.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn authorize(rules: &mut Rules, ctx: &AuthContext<'_>) -> Authorization {
    let refused = match ctx.action {
        AuthAction::Select | AuthAction::Recursive => return Authorization::Allow,
        AuthAction::Read { table_name, column_name } => {
            let name = table_name.to_ascii_lowercase();
            if rules.tables.contains(&name) || TABLE_FUNCTIONS.contains(&name.as_str()) {
                return Authorization::Allow;
            }
            // A name read for no column (`count(*)`) comes unqualified, as written, and may be a CTE
            // of the query itself: allowed unless it names something in the schema. Columns of
            // CTEs and subqueries reach no authorizer; what they read was authorized on its own.
            if column_name.is_empty()
                && ctx.database_name.is_none()
                && !rules.schema.contains(&name)
                && !name.starts_with("sqlite_")
            {
                return Authorization::Allow;
            }
            format!("reading the table {table_name:?}")
        }
        AuthAction::Function { function_name } => {
            if FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) {
                return Authorization::Allow;
            }
            format!("the function {function_name}()")
        }
        AuthAction::Pragma { pragma_name, .. } => format!("PRAGMA {pragma_name}"),
        AuthAction::Attach { .. } => "ATTACH".to_owned(),
        AuthAction::Detach { .. } => "DETACH".to_owned(),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => "transactions".to_owned(),
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if !table_name.starts_with("sqlite_") =>
        {
            format!("writing to {table_name:?}")
        }
        _ => "changing the database".to_owned(),
    };
    rules.refused.get_or_insert(refused);
    Authorization::Deny
}

/// One sandbox connection with the state its hooks share.
struct SandboxConn {
    conn: Connection,
    rules: Arc<Mutex<Rules>>,
    clock: Arc<Mutex<Clock>>,
}

impl SandboxConn {
    fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA trusted_schema = OFF;")?;
        for (config, on) in [
            (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
            (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, false),
            (DbConfig::SQLITE_DBCONFIG_DQS_DML, false),
            (DbConfig::SQLITE_DBCONFIG_DQS_DDL, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false),
        ] {
            conn.set_db_config(config, on)?;
        }
        for (limit, value) in LIMITS {
            conn.set_limit(limit, value)?;
        }
        let rules = Arc::new(Mutex::new(Rules::default()));
        let clock = Arc::new(Mutex::new(Clock { limit: Duration::ZERO, used: Duration::ZERO, since: None }));
        let c = clock.clone();
        conn.progress_handler(1000, Some(move || lock(&c).over()));
        let r = rules.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&mut lock(&r), &ctx)));
        Ok(Self { conn, rules, clock })
    }

    /// Readies the connection for one query.
    fn begin(&self, (tables, schema): (HashSet<String>, HashSet<String>), limit: Duration) {
        *lock(&self.rules) = Rules { tables, schema, refused: None };
        *lock(&self.clock) = Clock { limit, used: Duration::ZERO, since: None };
    }

    /// Starts the engine clock: the engine works on the query from now.
    fn start(&self) {
        lock(&self.clock).since = Some(Instant::now());
    }

    /// Stops the engine clock: what follows (the sink, say) does not count.
    fn stop(&self) {
        let mut clock = lock(&self.clock);
        if let Some(s) = clock.since.take() {
            clock.used += s.elapsed();
        }
    }

    /// Turns an error of the user's statement into a message for the user.
    fn explain(&self, e: &rusqlite::Error, limits: &SqlLimits) -> StoreError {
        let (code, message) = match e {
            rusqlite::Error::SqliteFailure(err, m) => {
                (Some(err.code), m.clone().unwrap_or_else(|| e.to_string()))
            }
            rusqlite::Error::SqlInputError { error, msg, .. } => (Some(error.code), msg.clone()),
            rusqlite::Error::MultipleStatement => {
                return StoreError::Invalid("send one SQL statement at a time".into())
            }
            e => (None, e.to_string()),
        };
        // Whatever the authorizer refused failed the statement, whichever code SQLite gave.
        if let Some(what) = lock(&self.rules).refused.take() {
            return StoreError::Forbidden(format!(
                "not allowed: {what}; this SQL may only SELECT from the public data tables, named by their \
                 resource id in double quotes, with ordinary functions"
            ));
        }
        match code {
            Some(ErrorCode::OperationInterrupted) => {
                StoreError::Invalid(format!("the query took longer than {}", seconds(limits.time)))
            }
            Some(ErrorCode::TooBig) => StoreError::Invalid(format!(
                "a value in this query grew past {} MB, the most a query may make",
                MAX_LENGTH / 1_000_000
            )),
            Some(ErrorCode::OutOfMemory) => {
                StoreError::Invalid("the query is too large or needs too much memory".to_owned())
            }
            Some(
                ErrorCode::Unknown
                | ErrorCode::ConstraintViolation
                | ErrorCode::TypeMismatch
                | ErrorCode::ParameterOutOfRange
                | ErrorCode::ReadOnly,
            ) => StoreError::Invalid(format!("SQL error: {message}")),
            _ => StoreError::Database(message),
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The pool of sandbox connections.
pub(crate) struct Sandbox {
    path: PathBuf,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<SandboxConn>,
    open: usize,
}

/// A sandbox connection taken from the pool, given back when dropped.
struct Lease<'a> {
    pool: &'a Sandbox,
    held: Option<SandboxConn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.held.take() {
            lock(&self.pool.state).idle.push(c);
            self.pool.freed.notify_one();
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = SandboxConn;
    fn deref(&self) -> &SandboxConn {
        self.held.as_ref().unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }
}

impl Sandbox {
    pub(crate) fn new(path: &Path) -> Self {
        let size = std::thread::available_parallelism().map_or(2, std::num::NonZero::get).clamp(2, 4);
        Self {
            path: path.to_owned(),
            size,
            state: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
        }
    }

    /// A free sandbox connection, opening one while fewer than `size` exist, or waiting up to `wait`.
    fn acquire(&self, wait: Duration) -> Result<Lease<'_>> {
        let deadline = Instant::now() + wait;
        let mut state = lock(&self.state);
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(Lease { pool: self, held: Some(c) });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match SandboxConn::open(&self.path) {
                    Ok(c) => Ok(Lease { pool: self, held: Some(c) }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Busy(
                    "busy: every SQL connection is running another query; try again in a moment".into(),
                ));
            }
            state = self.freed.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// The type of a result column: the schema's when the column comes straight from a resource table,
/// else that of its first value, else string.
fn column_type(
    origin: Option<&(String, String)>,
    first: Option<&Value<'_>>,
    schemas: &mut HashMap<String, Option<Vec<Column>>>,
    load: &mut dyn FnMut(&str) -> Result<Option<Vec<Column>>>,
) -> Result<FieldType> {
    if let Some((table, column)) = origin {
        if !schemas.contains_key(table) {
            let columns = load(table)?;
            schemas.insert(table.clone(), columns);
        }
        if let Some(c) = schemas[table].as_ref().and_then(|cs| cs.iter().find(|c| &c.name == column)) {
            return Ok(c.field_type);
        }
    }
    Ok(match first {
        Some(Value::Int(_)) => FieldType::Integer,
        Some(Value::Real(_)) => FieldType::Number,
        _ => FieldType::String,
    })
}

impl SqliteStore {
    pub(crate) fn user_sql(
        &self,
        sql: &str,
        limits: &SqlLimits,
        sink: &mut dyn RowSink,
    ) -> Result<SqlOutcome> {
        if sql.trim().is_empty() {
            return Err(StoreError::Invalid("no SQL given".into()));
        }
        let names = self.read(|c| {
            let names = |sql: &str| -> Result<HashSet<String>> {
                let mut st = c.prepare_cached(sql)?;
                let names = st.query_map([], |r| r.get::<_, String>(0))?;
                Ok(names.map(|n| n.map(|n| n.to_ascii_lowercase())).collect::<Result<_, _>>()?)
            };
            Ok((
                names("SELECT id FROM resources WHERE current_version IS NOT NULL")?,
                names("SELECT name FROM sqlite_schema")?,
            ))
        })?;
        let sandbox = self.sandbox.acquire(limits.wait)?;
        sandbox.begin(names, limits.time);
        let fail = |e: rusqlite::Error| sandbox.explain(&e, limits);

        sandbox.start();
        let st = sandbox.conn.prepare(sql);
        sandbox.stop();
        let mut st = st.map_err(fail)?;
        // Only comments and semicolons: SQLite prepares no statement, and stepping none is API misuse.
        if st.column_count() == 0 && st.expanded_sql().is_none_or(|s| s.trim().is_empty()) {
            return Err(StoreError::Invalid("no SQL statement given, only comments or semicolons".into()));
        }
        if !st.readonly() {
            return Err(StoreError::Forbidden("not allowed: this SQL may only read".into()));
        }
        let names: Vec<String> = st.column_names().iter().map(|s| (*s).to_owned()).collect();
        let origins: Vec<Option<(String, String)>> = st
            .columns_with_metadata()
            .iter()
            .map(|m| Some((m.table_name()?.to_owned(), m.origin_name()?.to_owned())))
            .collect();
        let width = names.len();
        let mut rows = st.query([]).map_err(fail)?;
        let mut outcome = SqlOutcome { rows: 0, truncated: false };
        let mut headed = false;
        let mut schemas = HashMap::new();
        let mut load = |table: &str| self.read(|c| Ok(current_columns(c, table)?.map(|(cs, _)| cs)));
        loop {
            sandbox.start();
            let row = rows.next();
            sandbox.stop();
            let row = row.map_err(fail)?;
            let values = match row {
                Some(r) => {
                    (0..width).map(|i| r.get_ref(i).map(cell)).collect::<Result<Vec<_>, _>>().map_err(fail)?
                }
                None => Vec::new(),
            };
            if !headed {
                let mut columns = Vec::with_capacity(width);
                for (i, name) in names.iter().enumerate() {
                    let t = column_type(origins[i].as_ref(), values.get(i), &mut schemas, &mut load)?;
                    columns.push(Column { name: name.clone(), field_type: t });
                }
                sink.head(&Head { columns, total: None, facets: Vec::new() })?;
                headed = true;
            }
            if row.is_none() {
                break;
            }
            if outcome.rows == limits.max_rows {
                outcome.truncated = true;
                break;
            }
            sink.row(&values)?;
            outcome.rows += 1;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use citydata_model::FieldType as F;
    use citydata_model::Value::{Int, Null, Real};

    use super::*;
    use crate::query::testing::{publish, store, t};
    use crate::query::{RowBuffer, RowQuery};
    use crate::Store;

    const RUNAWAY: &str =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    /// Two resources: districts, and facilities in them.
    fn city() -> (tempfile::TempDir, Store, String, String) {
        let (dir, store) = store();
        let districts = publish(
            &store,
            "city",
            "districts",
            &[("name", F::String), ("population", F::Integer), ("founded", F::Date)],
            &[
                vec![t("Wan Chai"), Int(166_000), t("1982-01-01")],
                vec![t("Eastern"), Int(529_000), Null],
                vec![t("Southern"), Int(263_000), t("1982-01-01")],
            ],
        );
        let facilities = publish(
            &store,
            "city",
            "facilities",
            &[("district", F::String), ("kind", F::String), ("m2", F::Number)],
            &[
                vec![t("Wan Chai"), t("library"), Real(800.0)],
                vec![t("Wan Chai"), t("pool"), Real(1250.5)],
                vec![t("Eastern"), t("library"), Real(640.0)],
                vec![t("Southern"), t("pool"), Real(900.0)],
                vec![t("Southern"), t("park"), Null],
            ],
        );
        (dir, store, districts, facilities)
    }

    fn sql(
        store: &Store,
        sql: &str,
        limits: &SqlLimits,
    ) -> Result<(Head, Vec<Vec<Value<'static>>>, SqlOutcome)> {
        let mut buf = RowBuffer::default();
        let out = store.user_sql(sql, limits, &mut buf)?;
        Ok((buf.head.expect("a head"), buf.rows, out))
    }

    #[test]
    fn a_select_with_join_and_aggregate_runs() {
        let (_d, store, districts, facilities) = city();
        let (head, rows, out) = sql(
            &store,
            &format!(
                r#"SELECT d.name, d.founded, count(*) AS n, sum(f.m2) AS area, max(d.population) / 1000.0 AS k
                   FROM "{districts}" d JOIN "{facilities}" f ON f.district = d.name
                   GROUP BY d.name ORDER BY n DESC, d.name"#
            ),
            &SqlLimits::default(),
        )
        .unwrap();
        let types: Vec<(&str, F)> = head.columns.iter().map(|c| (c.name.as_str(), c.field_type)).collect();
        assert_eq!(
            types,
            [
                ("name", F::String),
                ("founded", F::Date),
                ("n", F::Integer),
                ("area", F::Number),
                ("k", F::Number)
            ]
        );
        assert_eq!(
            rows,
            [
                vec![t("Southern"), t("1982-01-01"), Int(2), Real(900.0), Real(263.0)],
                vec![t("Wan Chai"), t("1982-01-01"), Int(2), Real(2050.5), Real(166.0)],
                vec![t("Eastern"), Null, Int(1), Real(640.0), Real(529.0)],
            ]
        );
        assert_eq!(out, SqlOutcome { rows: 3, truncated: false });

        let (head, rows, _) = sql(
            &store,
            r#"SELECT value, json_extract('{"a":[1,2]}', '$.a[1]') AS b, upper('x') || printf('%03d', 7), x'ff' FROM json_each('[10, 20]')"#,
            &SqlLimits::default(),
        )
        .unwrap();
        assert_eq!(
            rows,
            [vec![Int(10), Int(2), t("X007"), t("\\xff")], vec![Int(20), Int(2), t("X007"), t("\\xff")]]
        );
        assert_eq!(head.columns.len(), 4);
        let (head, rows, _) =
            sql(&store, &format!(r#"SELECT * FROM "{districts}" WHERE 0"#), &SqlLimits::default()).unwrap();
        assert!(rows.is_empty());
        let names: Vec<&str> = head.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["_id", "name", "population", "founded"]);
    }

    #[test]
    fn what_is_not_a_plain_read_fails_fast_and_changes_nothing() {
        let (dir, store, districts, _) = city();
        let only =
            "this SQL may only SELECT from the public data tables, named by their resource id in double \
                    quotes, with ordinary functions";
        let denied = |what: &str| format!("not allowed: {what}; {only}");
        let d = &districts;
        let escape = dir.path().join("copy.db");
        let escape = escape.to_str().unwrap();
        let cases: Vec<(String, String)> = vec![
            (format!(r#"INSERT INTO "{d}" (name) VALUES ('x')"#), denied(&format!("writing to {d:?}"))),
            (format!(r#"UPDATE "{d}" SET population = 0"#), denied(&format!("writing to {d:?}"))),
            (format!(r#"DELETE FROM "{d}""#), denied(&format!("writing to {d:?}"))),
            ("CREATE TABLE x (a)".into(), denied("changing the database")),
            ("CREATE TEMP TABLE x (a)".into(), denied("changing the database")),
            (format!(r#"DROP TABLE "{d}""#), denied("changing the database")),
            (format!(r#"CREATE VIEW v AS SELECT * FROM "{d}""#), denied("changing the database")),
            (format!(r#"ALTER TABLE "{d}" RENAME TO x"#), denied("changing the database")),
            ("PRAGMA query_only = 0".into(), denied("PRAGMA query_only")),
            ("PRAGMA table_info(versions)".into(), denied("PRAGMA table_info")),
            (
                "SELECT * FROM pragma_table_info('versions')".into(),
                denied("reading the table \"pragma_table_info\""),
            ),
            ("SELECT count(*) FROM pragma_table_info('versions')".into(), denied("PRAGMA table_info")),
            ("SELECT count(*) FROM dbstat".into(), denied("reading the table \"sqlite_master\"")),
            ("SELECT count(*) FROM VERSIONS".into(), denied("reading the table \"VERSIONS\"")),
            ("SELECT count(*) FROM main.versions".into(), denied("reading the table \"versions\"")),
            ("SELECT 1 FROM datasets, organizations".into(), denied("reading the table \"datasets\"")),
            (
                "WITH versions(x) AS (SELECT 1) SELECT count(*) FROM versions".into(),
                denied("reading the table \"versions\""),
            ),
            ("SELECT count(*) FROM sqlite_schema".into(), denied("reading the table \"sqlite_schema\"")),
            (format!("ATTACH DATABASE '{escape}' AS x"), denied("ATTACH")),
            (format!("VACUUM INTO '{escape}'"), "not allowed: this SQL may only read".into()),
            ("BEGIN".into(), denied("transactions")),
            ("SELECT load_extension('x')".into(), denied("the function load_extension()")),
            ("SELECT sqlite_version()".into(), denied("the function sqlite_version()")),
            ("SELECT fts3_tokenizer('simple')".into(), denied("the function fts3_tokenizer()")),
            ("SELECT * FROM versions".into(), denied("reading the table \"versions\"")),
            ("SELECT count(*) FROM versions".into(), denied("reading the table \"versions\"")),
            ("SELECT * FROM blobs".into(), denied("reading the table \"blobs\"")),
            ("SELECT data FROM blob_chunks".into(), denied("reading the table \"blob_chunks\"")),
            ("SELECT * FROM resources".into(), denied("reading the table \"resources\"")),
            ("SELECT * FROM \"organizations\"".into(), denied("reading the table \"organizations\"")),
            ("SELECT name FROM sqlite_schema".into(), denied("reading the table \"sqlite_master\"")),
            ("SELECT * FROM sqlite_master".into(), denied("reading the table \"sqlite_master\"")),
            ("SELECT * FROM dbstat".into(), denied("reading the table \"dbstat\"")),
            (
                format!(r#"SELECT (SELECT count(*) FROM datasets) FROM "{d}""#),
                denied("reading the table \"datasets\""),
            ),
            (
                "SELECT randomblob(1000000000)".into(),
                "a value in this query grew past 10 MB, the most a query may make".into(),
            ),
            (
                "SELECT zeroblob(1e9)".into(),
                "a value in this query grew past 10 MB, the most a query may make".into(),
            ),
            (
                "SELECT length(hex(zeroblob(6000000)))".into(),
                "a value in this query grew past 10 MB, the most a query may make".into(),
            ),
            (r#"SELECT * FROM "no-such-table""#.into(), "SQL error: no such table: no-such-table".into()),
            ("SELECT 1; SELECT 2".into(), "send one SQL statement at a time".into()),
            ("SELECT ?1".into(), "SQL error: variable number must be between ?1 and ?0".into()),
            ("SELEC 1".into(), "SQL error: near \"SELEC\": syntax error".into()),
            (
                format!(r#"SELECT name FROM "{d}" WHERE name = "Eastern""#),
                r#"SQL error: no such column: "Eastern" - should this be a string literal in single-quotes?"#
                    .into(),
            ),
            ("   ".into(), "no SQL given".into()),
            (";".into(), "no SQL statement given, only comments or semicolons".into()),
            ("-- SELECT 1".into(), "no SQL statement given, only comments or semicolons".into()),
            ("/* */ ;".into(), "no SQL statement given, only comments or semicolons".into()),
        ];
        for (q, want) in &cases {
            let started = Instant::now();
            match sql(&store, q, &SqlLimits::default()) {
                Err(StoreError::Invalid(m) | StoreError::Forbidden(m)) => assert_eq!(&m, want, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_millis(500), "{q} took {:?}", started.elapsed());
        }
        assert!(!dir.path().join("copy.db").exists());
        assert!(store.check().unwrap().is_empty());
        let mut rows = RowBuffer::default();
        store.query_rows(&districts, &RowQuery::default(), &mut rows).unwrap();
        assert_eq!(rows.rows.len(), 3);
        assert_eq!(store.dataset_slugs().unwrap(), ["city"]);
    }

    #[test]
    fn a_runaway_query_stops_at_the_time_limit() {
        let (_d, store, _, _) = city();
        let started = Instant::now();
        let err = sql(&store, RUNAWAY, &SqlLimits::default()).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.to_string(), "the query took longer than 1 s");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2000), "{took:?}");
        let limits = SqlLimits { time: Duration::from_millis(150), ..SqlLimits::default() };
        let err = sql(&store, RUNAWAY, &limits).unwrap_err();
        assert_eq!(err.to_string(), "the query took longer than 150 ms");
        // The connection is fine afterwards.
        assert_eq!(sql(&store, "SELECT 1 + 1", &limits).unwrap().1, [vec![Int(2)]]);
    }

    #[test]
    fn the_row_cap_truncates() {
        let (_d, store, _, facilities) = city();
        let q = format!(r#"SELECT kind FROM "{facilities}" ORDER BY _id"#);
        for (max_rows, rows, truncated) in [(0, 0, true), (2, 2, true), (5, 5, false), (6, 5, false)] {
            let limits = SqlLimits { max_rows, ..SqlLimits::default() };
            let (head, got, out) = sql(&store, &q, &limits).unwrap();
            assert_eq!(head.columns[0].field_type, F::String);
            assert_eq!((got.len(), out), (rows, SqlOutcome { rows: rows as u64, truncated }), "{max_rows}");
        }
    }

    #[test]
    fn ordinary_reads_go_on_while_a_runaway_runs() {
        let (_d, store, districts, _) = city();
        let store = Arc::new(store);
        let done = Arc::new(AtomicBool::new(false));
        let limits = SqlLimits { time: Duration::from_secs(2), ..SqlLimits::default() };
        let runaway = {
            let (store, done, limits) = (store.clone(), done.clone(), limits.clone());
            std::thread::spawn(move || {
                let r = sql(&store, RUNAWAY, &limits).map(|_| ());
                done.store(true, Ordering::SeqCst);
                r
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        for _ in 0..50 {
            let mut rows = RowBuffer::default();
            store.query_rows(&districts, &RowQuery::default(), &mut rows).unwrap();
            assert_eq!(rows.rows.len(), 3);
            assert!(store.dataset("city").unwrap().is_some());
        }
        // Another user query gets its own sandbox connection.
        let (_, rows, _) = sql(&store, &format!(r#"SELECT count(*) FROM "{districts}""#), &limits).unwrap();
        assert_eq!(rows, [vec![Int(3)]]);
        assert!(!done.load(Ordering::SeqCst), "the reads waited for the runaway ({:?})", started.elapsed());
        let err = runaway.join().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "the query took longer than 2 s");
    }

    #[test]
    fn a_full_sandbox_answers_busy_after_the_wait() {
        let (_d, store, _, _) = city();
        let store = Arc::new(store);
        let size = store.backend.sandbox.size;
        let limits = SqlLimits { time: Duration::from_millis(1500), ..SqlLimits::default() };
        let runaways: Vec<_> = (0..size)
            .map(|_| {
                let (store, limits) = (store.clone(), limits.clone());
                std::thread::spawn(move || sql(&store, RUNAWAY, &limits).map(|_| ()))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let short = SqlLimits { wait: Duration::from_millis(100), ..SqlLimits::default() };
        let err = sql(&store, "SELECT 1", &short).unwrap_err();
        assert_eq!(
            err.to_string(),
            "busy: every SQL connection is running another query; try again in a moment"
        );
        assert!(started.elapsed() < Duration::from_millis(600));
        // A caller that waits long enough gets a connection once one is free.
        let patient = SqlLimits { wait: Duration::from_secs(5), ..SqlLimits::default() };
        assert_eq!(sql(&store, "SELECT 1", &patient).unwrap().1, [vec![Int(1)]]);
        for r in runaways {
            assert!(r.join().unwrap().is_err());
        }
    }

    #[test]
    fn tables_follow_the_catalogue() {
        let (_d, store, districts, _) = city();
        let q = |id: &str| format!(r#"SELECT count(*) FROM "{id}""#);
        assert_eq!(sql(&store, &q(&districts), &SqlLimits::default()).unwrap().1, [vec![Int(3)]]);
        let later = publish(&store, "later", "later", &[("v", F::Integer)], &[vec![Int(1)], vec![Int(2)]]);
        assert_eq!(sql(&store, &q(&later), &SqlLimits::default()).unwrap().1, [vec![Int(2)]]);
        // A new version replaces the table the sandbox reads.
        publish(&store, "later", "later", &[("v", F::Integer)], &[vec![Int(7)]]);
        assert_eq!(sql(&store, &q(&later), &SqlLimits::default()).unwrap().1, [vec![Int(1)]]);
    }
}
