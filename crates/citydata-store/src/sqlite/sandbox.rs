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
const FUNCTIONS: &[&str] = &[
    // core scalar
    "abs",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "format",
    "glob",
    "hex",
    "if",
    "ifnull",
    "iif",
    "instr",
    "length",
    "like",
    "likelihood",
    "likely",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "octet_length",
    "printf",
    "quote",
    "random",
    "randomblob",
    "replace",
    "round",
    "rtrim",
    "sign",
    "soundex",
    "substr",
    "substring",
    "trim",
    "typeof",
    "unhex",
    "unicode",
    "unistr",
    "unistr_quote",
    "unlikely",
    "upper",
    "zeroblob",
    // date and time
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
    // aggregate
    "avg",
    "count",
    "group_concat",
    "string_agg",
    "sum",
    "total",
    "median",
    "percentile",
    "percentile_cont",
    "percentile_disc",
    // window
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // math
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "ceil",
    "ceiling",
    "cos",
    "cosh",
    "degrees",
    "exp",
    "floor",
    "ln",
    "log",
    "log10",
    "log2",
    "mod",
    "pi",
    "pow",
    "power",
    "radians",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
    // JSON
    "json",
    "jsonb",
    "json_array",
    "jsonb_array",
    "json_array_length",
    "json_error_position",
    "json_extract",
    "jsonb_extract",
    "->",
    "->>",
    "json_insert",
    "jsonb_insert",
    "json_object",
    "jsonb_object",
    "json_patch",
    "jsonb_patch",
    "json_pretty",
    "json_quote",
    "json_remove",
    "jsonb_remove",
    "json_replace",
    "jsonb_replace",
    "json_set",
    "jsonb_set",
    "json_type",
    "json_valid",
    "json_group_array",
    "jsonb_group_array",
    "json_group_object",
    "jsonb_group_object",
];

/// Table-valued functions user SQL may read from, besides the resource tables.
const TABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];

/// What the authorizer lets through on one connection, and the first thing it refused.
#[derive(Default)]
struct Rules {
    tables: HashSet<String>,
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
        AuthAction::Read { table_name, .. } => {
            if ctx.database_name == Some("main")
                && (rules.tables.contains(table_name) || TABLE_FUNCTIONS.contains(&table_name))
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
        | AuthAction::Delete { table_name } => {
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
    fn begin(&self, tables: HashSet<String>, limit: Duration) {
        *lock(&self.rules) = Rules { tables, refused: None };
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
        let message = match e {
            rusqlite::Error::SqliteFailure(_, Some(m)) | rusqlite::Error::SqlInputError { msg: m, .. } => {
                m.clone()
            }
            rusqlite::Error::MultipleStatement => {
                return StoreError::Invalid("send one SQL statement at a time".into())
            }
            e => e.to_string(),
        };
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => {
                StoreError::Invalid(format!("the query took longer than {}", seconds(limits.time)))
            }
            Some(ErrorCode::AuthorizationForStatementDenied) => {
                let what = lock(&self.rules).refused.take().unwrap_or_else(|| "this statement".to_owned());
                StoreError::Invalid(format!(
                    "not allowed: {what}; this SQL may only SELECT from the public data tables, named by their \
                     resource id in double quotes, with ordinary functions"
                ))
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
                return Err(StoreError::Invalid(
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
        let tables: HashSet<String> = self.read(|c| {
            let mut st = c.prepare_cached("SELECT id FROM resources WHERE current_version IS NOT NULL")?;
            let ids = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(ids)
        })?;
        let sandbox = self.sandbox.acquire(limits.wait)?;
        sandbox.begin(tables, limits.time);
        let fail = |e: rusqlite::Error| sandbox.explain(&e, limits);

        sandbox.start();
        let st = sandbox.conn.prepare(sql);
        sandbox.stop();
        let mut st = st.map_err(fail)?;
        if !st.readonly() {
            return Err(StoreError::Invalid("not allowed: this SQL may only read".into()));
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
