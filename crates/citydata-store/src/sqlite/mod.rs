//! The SQLite backend: one database file in WAL mode, a pool of read connections, one writer at a time.

mod bulk;
mod search;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use citydata_model::{DatasetMeta, FieldType, LangText, RowBatch, Schema, Slot, Slug, Value};

use bulk::{BulkInsert, Param};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Statement};
use sha2::{Digest, Sha256};

mod cond;
mod dashboards;
mod query;
mod sandbox;
pub(crate) mod sensors;
mod spatial;

use crate::{quote_ident, Dataset, NewVersion, Organization, Resource, Result, Rows, StoreError, Version};

/// The newest schema this build writes.
const SCHEMA_VERSION: i64 = 6;

const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,          -- LangText as JSON
    created TEXT NOT NULL
);
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    organization_id INTEGER REFERENCES organizations(id),
    meta TEXT NOT NULL,           -- DatasetMeta as JSON
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE resources (
    id TEXT PRIMARY KEY,          -- UUID; also the name of the resource's table
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    current_version INTEGER,
    UNIQUE (dataset_id, name)
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
CREATE TABLE blob_chunks (
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (sha256, seq)
);
CREATE TABLE versions (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    number INTEGER NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    filename TEXT NOT NULL,
    format TEXT NOT NULL,
    media_type TEXT NOT NULL,
    encoding TEXT NOT NULL,
    schema TEXT NOT NULL,         -- Frictionless Table Schema as JSON
    row_count INTEGER NOT NULL,
    created TEXT NOT NULL,
    publisher TEXT NOT NULL,
    skipped TEXT NOT NULL,        -- JSON array of texts
    PRIMARY KEY (resource_id, number)
);
",
    search::MIGRATION,
    // Value counts of the current table's low-cardinality columns, made while it loads: exact totals
    // of equality filters and facets of whole tables without a scan.
    r"
CREATE TABLE value_count_columns (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    column_name TEXT NOT NULL,
    nulls INTEGER NOT NULL,       -- how many rows hold no value
    PRIMARY KEY (resource_id, column_name)
) STRICT, WITHOUT ROWID;
CREATE TABLE value_counts (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    column_name TEXT NOT NULL,
    value ANY NOT NULL,           -- exactly as the table stores it (STRICT: no affinity)
    count INTEGER NOT NULL,
    PRIMARY KEY (resource_id, column_name, value)
) STRICT, WITHOUT ROWID;
",
    // Spatial resources: where each version keeps its geometries (`Spatial` as JSON; NULL when it
    // has none). Their bounding boxes are in an R*Tree beside the table, `"{id}~geo"`.
    r"
ALTER TABLE versions ADD COLUMN spatial TEXT;
",
    sensors::MIGRATION,
    // Dashboards a publisher added (definitions as JSON text).
    dashboards::MIGRATION,
];

const CHUNK: usize = 1 << 20;

fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// A UUID-shaped id derived from the dataset and resource names, so a resource keeps its id across
/// versions and across rebuilds of the demo.
fn resource_uuid(dataset: &str, name: &str) -> String {
    crate::name_uuid(&["citydata-resource", dataset, name])
}

fn sql_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer | FieldType::Boolean => "INTEGER",
        FieldType::Number => "REAL",
        _ => "TEXT",
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    // The query planner stability guarantee: a cached statement keeps its plan whatever is bound.
    // Without it the bundled SQLite plans `LIMIT ?` and `LIKE ?` by the bound values, and so marks
    // such a statement expired on every new binding and compiles it again on its next step: every
    // page of rows was parsed and planned anew despite `prepare_cached`. The plans lost are
    // those that use the values of bound LIKE patterns and limits with indexes; the tables of
    // resources have none but the rowid, and no statistics are gathered (no ANALYZE).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    spatial::register(conn)?;
    sensors::register_functions(conn)?;
    Ok(())
}

/// The most read connections open at once. Generous, since a streaming export holds one for as long
/// as its client reads; all stay open once made, so none is paid for twice.
const MAX_READERS: usize = 64;

/// Read connections: the idle ones, and how many exist.
struct ReaderPool {
    idle: Vec<Connection>,
    open: usize,
}

pub(crate) struct SqliteStore {
    path: PathBuf,
    readers: Mutex<ReaderPool>,
    reader_freed: std::sync::Condvar,
    sandbox: sandbox::Sandbox,
    postings: search::PostingsCache,
}

impl SqliteStore {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        // Bigger pages than the default 4 KiB: fewer B-tree pages to balance on bulk loads and fewer
        // to read on scans. Takes effect only when the file is new.
        conn.execute_batch("PRAGMA page_size = 16384")?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "cannot switch the database to WAL mode (it is {mode})"
            )));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: version, supported: SCHEMA_VERSION });
        }
        if version < SCHEMA_VERSION {
            // Under the write lock, and with the version read again inside it: two processes opening a
            // new database at once must not both run the same migration.
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let migrated = (|| -> Result<()> {
                let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                for (i, m) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
                    conn.execute_batch(m)?;
                    conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
                }
                Ok(())
            })();
            match migrated {
                Ok(()) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        search::index_missing(&conn)?;
        Ok(Self {
            path: path.to_owned(),
            readers: Mutex::new(ReaderPool { idle: vec![conn], open: 1 }),
            reader_freed: std::sync::Condvar::new(),
            sandbox: sandbox::Sandbox::new(path),
            postings: search::PostingsCache::default(),
        })
    }

    /// Runs `f` on a pooled read connection. At most [`MAX_READERS`] are open; a caller waits for a
    /// free one rather than opening more (opening costs a parse of the whole schema, which grows with
    /// every table), and every connection goes back to the pool, even when `f` panics.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        struct Lease<'s> {
            store: &'s SqliteStore,
            conn: Option<Connection>,
        }
        impl Drop for Lease<'_> {
            fn drop(&mut self) {
                let mut pool = self.store.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match self.conn.take() {
                    Some(c) => pool.idle.push(c),
                    None => pool.open -= 1,
                }
                self.store.reader_freed.notify_one();
            }
        }
        // Take an idle connection, or the right to open one, with the pool's lock held only here.
        let idle = {
            let mut pool = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if let Some(c) = pool.idle.pop() {
                    break Some(c);
                }
                if pool.open < MAX_READERS {
                    pool.open += 1;
                    break None;
                }
                pool = self.reader_freed.wait(pool).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        // On a failure to open, the lease's drop gives the counted place back.
        let mut lease = Lease { store: self, conn: idle };
        if lease.conn.is_none() {
            let c = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&c)?;
            lease.conn = Some(c);
        }
        match &lease.conn {
            Some(c) => f(c),
            None => Err(StoreError::Database("no read connection".into())),
        }
    }

    pub(crate) fn is_empty(&self) -> Result<bool> {
        self.read(|c| Ok(c.query_row("SELECT NOT EXISTS (SELECT 1 FROM datasets)", [], |r| r.get(0))?))
    }

    pub(crate) fn check(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut problems = Vec::new();
            let mut st = c.prepare("PRAGMA integrity_check")?;
            for r in st.query_map([], |r| r.get::<_, String>(0))? {
                let r = r?;
                if r != "ok" {
                    problems.push(format!("integrity: {r}"));
                }
            }
            let tx = c.unchecked_transaction()?;
            let tables: Vec<String> = tx
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '%-%' AND name NOT LIKE '%~geo%'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let current: Vec<(String, i64, i64)> = tx
                .prepare(
                    "SELECT r.id, r.current_version, v.row_count FROM resources r
                     JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for t in &tables {
                if !current.iter().any(|(id, _, _)| id == t) {
                    problems.push(format!("table {t:?} belongs to no current version"));
                }
            }
            for (id, number, rows) in &current {
                if !tables.contains(id) {
                    problems.push(format!("resource {id} version {number} has no table"));
                    continue;
                }
                let n: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM {}", quote_ident(id)), [], |r| r.get(0))?;
                if n != *rows {
                    problems.push(format!("resource {id} version {number} records {rows} rows, its table has {n}"));
                }
            }
            let spatial: Vec<(String, String)> = tx
                .prepare(
                    "SELECT r.id, v.spatial FROM resources r
                     JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version
                     WHERE v.spatial IS NOT NULL",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (id, summary) in &spatial {
                let Ok(sp) = serde_json::from_str::<crate::Spatial>(summary) else {
                    problems.push(format!("resource {id}: its spatial summary cannot be read"));
                    continue;
                };
                let indexed: rusqlite::Result<i64> =
                    tx.query_row(&format!("SELECT COUNT(*) FROM {}", quote_ident(&geo_table(id))), [], |r| r.get(0));
                match indexed {
                    Ok(n) if n.unsigned_abs() == sp.count => {}
                    Ok(n) => problems.push(format!("resource {id}: {} geometries, {n} in the spatial index", sp.count)),
                    Err(e) => problems.push(format!("resource {id}: its spatial index cannot be read: {e}")),
                }
            }
            let orphans: i64 = tx.query_row(
                "SELECT COUNT(*) FROM versions v WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = v.sha256)
                 OR v.number > (SELECT current_version FROM resources r WHERE r.id = v.resource_id)",
                [],
                |r| r.get(0),
            )?;
            if orphans > 0 {
                problems.push(format!("{orphans} versions without their bytes or newer than the current one"));
            }
            let short: i64 = tx.query_row(
                "SELECT COUNT(*) FROM blobs b WHERE size != (SELECT COALESCE(SUM(length(data)), 0) FROM blob_chunks c WHERE c.sha256 = b.sha256)",
                [],
                |r| r.get(0),
            )?;
            if short > 0 {
                problems.push(format!("{short} blobs whose stored bytes do not add up to their size"));
            }
            Ok(problems)
        })
    }

    pub(crate) fn dataset_slugs(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT slug FROM datasets ORDER BY slug")?;
            let rows = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
    }

    pub(crate) fn dataset(&self, slug: &str) -> Result<Option<Dataset>> {
        self.read(|c| {
            let Some((id, meta, org_slug, org_title, created, modified)) = c
                .prepare_cached(
                    "SELECT d.id, d.meta, o.slug, o.title, d.created, d.modified
                     FROM datasets d LEFT JOIN organizations o ON o.id = d.organization_id WHERE d.slug = ?1",
                )?
                .query_row(
                    [slug],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    },
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut st = c.prepare_cached(
                "SELECT id, name, title, description FROM resources WHERE dataset_id = ?1 ORDER BY position",
            )?;
            let mut resources = st
                .query_map([id], |r| {
                    Ok(Resource {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        title: from_json::<LangText>(&r.get::<_, String>(2)?),
                        description: from_json::<LangText>(&r.get::<_, String>(3)?),
                        versions: Vec::new(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut vst = c.prepare_cached(
                "SELECT number, sha256, (SELECT size FROM blobs b WHERE b.sha256 = v.sha256), filename, format,
                        media_type, encoding, schema, row_count, created, publisher, skipped, spatial
                 FROM versions v WHERE resource_id = ?1 ORDER BY number",
            )?;
            for res in &mut resources {
                res.versions = vst
                    .query_map([&res.id], |r| {
                        Ok(Version {
                            number: r.get(0)?,
                            sha256: r.get(1)?,
                            bytes: r.get(2)?,
                            filename: r.get(3)?,
                            format: r.get(4)?,
                            media_type: r.get(5)?,
                            encoding: r.get(6)?,
                            schema: from_json::<Schema>(&r.get::<_, String>(7)?),
                            row_count: r.get(8)?,
                            created: r.get(9)?,
                            publisher: r.get(10)?,
                            skipped: from_json::<Vec<String>>(&r.get::<_, String>(11)?),
                            spatial: r
                                .get::<_, Option<String>>(12)?
                                .and_then(|s| serde_json::from_str::<crate::Spatial>(&s).ok()),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
            }
            Ok(Some(Dataset {
                id: crate::dataset_id(slug),
                slug: slug.to_owned(),
                meta: from_json(&meta),
                organization: org_slug.map(|s| Organization { slug: s, title: from_json(&org_title.unwrap_or_default()) }),
                created,
                modified,
                resources,
            }))
        })
    }

    pub(crate) fn spatial_resources(&self, dataset: Option<&str>) -> Result<Vec<crate::SpatialResource>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.slug, d.meta, r.id, r.name, r.title, r.description, v.number, v.created, v.schema,
                        v.row_count, v.spatial
                 FROM resources r
                 JOIN datasets d ON d.id = r.dataset_id
                 JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version
                 WHERE v.spatial IS NOT NULL AND (?1 IS NULL OR d.slug = ?1)
                 ORDER BY d.slug, r.position",
            )?;
            let rows = st
                .query_map([dataset], |r| {
                    Ok((
                        crate::SpatialResource {
                            dataset: r.get(0)?,
                            meta: from_json(&r.get::<_, String>(1)?),
                            id: r.get(2)?,
                            name: r.get(3)?,
                            title: from_json(&r.get::<_, String>(4)?),
                            description: from_json(&r.get::<_, String>(5)?),
                            version: r.get(6)?,
                            created: r.get(7)?,
                            schema: from_json(&r.get::<_, String>(8)?),
                            rows: r.get::<_, i64>(9)?.unsigned_abs(),
                            spatial: crate::Spatial {
                                column: String::new(),
                                source: String::new(),
                                extent: None,
                                count: 0,
                                types: Vec::new(),
                            },
                        },
                        r.get::<_, String>(10)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(mut res, spatial)| {
                    res.spatial = serde_json::from_str(&spatial).map_err(|e| {
                        StoreError::Database(format!(
                            "the spatial summary of resource {} cannot be read: {e}",
                            res.id
                        ))
                    })?;
                    Ok(res)
                })
                .collect()
        })
    }

    pub(crate) fn rows_in_box(
        &self,
        id: &str,
        bbox: [f64; 4],
        limit: usize,
        sink: &mut dyn crate::RowSink,
    ) -> Result<bool> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            spatial::rows_in_box(&tx, id, bbox, limit, sink)
        })
    }

    pub(crate) fn dataset_of_resource(&self, id: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT d.slug FROM resources r JOIN datasets d ON d.id = r.dataset_id WHERE r.id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    pub(crate) fn organizations(&self) -> Result<Vec<(Organization, u64)>> {
        self.read(|c| {
            // One grouped scan of the datasets, not one per organisation (there is no index on
            // organization_id, and a dataset's row holds its metadata: 10,000 are ~6 MB).
            let mut st = c.prepare_cached(
                "SELECT o.slug, o.title, IFNULL(n.count, 0) FROM organizations o
                 LEFT JOIN (SELECT organization_id, COUNT(*) AS count FROM datasets GROUP BY organization_id) n
                   ON n.organization_id = o.id
                 ORDER BY o.slug",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        Organization { slug: r.get(0)?, title: from_json(&r.get::<_, String>(1)?) },
                        r.get::<_, i64>(2)?.unsigned_abs(),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    pub(crate) fn blob_size(&self, sha256: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row("SELECT size FROM blobs WHERE sha256 = ?1", [sha256], |r| r.get(0)).optional()?)
        })
    }

    pub(crate) fn write_blob(&self, sha256: &str, out: &mut dyn std::io::Write) -> Result<bool> {
        self.read(|c| {
            // One read transaction, so that the chunks come from one consistent snapshot.
            let tx = c.unchecked_transaction()?;
            if tx
                .query_row("SELECT size FROM blobs WHERE sha256 = ?1", [sha256], |r| r.get::<_, i64>(0))
                .optional()?
                .is_none()
            {
                return Ok(false);
            }
            let mut st = tx.prepare("SELECT data FROM blob_chunks WHERE sha256 = ?1 ORDER BY seq")?;
            let mut rows = st.query([sha256])?;
            while let Some(r) = rows.next()? {
                if let ValueRef::Blob(b) = r.get_ref(0)? {
                    out.write_all(b)?;
                }
            }
            Ok(true)
        })
    }

    pub(crate) fn rows(&self, resource_id: &str, limit: u32, offset: u64) -> Result<Rows> {
        self.read(|c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM resources WHERE id = ?1 AND current_version IS NOT NULL)",
                [resource_id],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound(format!("resource {resource_id}")));
            }
            let mut st = c.prepare(&format!(
                "SELECT * FROM {} ORDER BY \"_id\" LIMIT ?1 OFFSET ?2",
                quote_ident(resource_id)
            ))?;
            let columns: Vec<String> = st.column_names().iter().map(|s| (*s).to_owned()).collect();
            let n = columns.len();
            let mut rows = Vec::new();
            let mut q = st.query(params![limit, i64::try_from(offset).unwrap_or(i64::MAX)])?;
            while let Some(r) = q.next()? {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    row.push(match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(i) => Value::Int(i),
                        ValueRef::Real(f) => Value::Real(f),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Value::Text(String::from_utf8_lossy(t).into_owned().into())
                        }
                    });
                }
                rows.push(row);
            }
            Ok(Rows { columns, rows })
        })
    }

    pub(crate) fn begin_publish(
        &self,
        slug: &Slug,
        meta: Option<&DatasetMeta>,
        publisher: &str,
    ) -> Result<SqlitePublish> {
        let conn = Connection::open(&self.path)?;
        configure(&conn)?;
        conn.execute_batch(&format!("PRAGMA cache_size = -{PLAIN_LOAD_CACHE_KIB}; BEGIN IMMEDIATE"))?;
        let mut p = SqlitePublish {
            conn,
            dataset_id: 0,
            slug: slug.to_string(),
            publisher: publisher.to_owned(),
            now: now(),
            changed: false,
            open: true,
        };
        p.upsert_dataset(meta)?;
        Ok(p)
    }
}

pub(crate) struct SqlitePublish {
    conn: Connection,
    dataset_id: i64,
    slug: String,
    publisher: String,
    now: String,
    changed: bool,
    open: bool,
}

impl Drop for SqlitePublish {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqlitePublish {
    fn upsert_dataset(&mut self, meta: Option<&DatasetMeta>) -> Result<()> {
        let c = &self.conn;
        let org_id = match meta.and_then(|m| m.organization.as_deref().map(|o| (m, o))) {
            None => None,
            Some((m, org)) => {
                let (oslug, default_title) = match Slug::parse(org) {
                    Ok(s) => (s, LangText::en(org)),
                    Err(_) => (Slug::from_text(org, "organization"), LangText::en(org)),
                };
                let title = if m.organization_title.is_empty() {
                    default_title
                } else {
                    m.organization_title.clone()
                };
                c.execute(
                    "INSERT INTO organizations (slug, title, created) VALUES (?1, ?2, ?3) ON CONFLICT (slug) DO NOTHING",
                    params![oslug.as_str(), json(&title), self.now],
                )?;
                if !m.organization_title.is_empty() {
                    c.execute(
                        "UPDATE organizations SET title = ?2 WHERE slug = ?1",
                        params![oslug.as_str(), json(&title)],
                    )?;
                }
                Some(c.query_row("SELECT id FROM organizations WHERE slug = ?1", [oslug.as_str()], |r| {
                    r.get::<_, i64>(0)
                })?)
            }
        };
        let existing: Option<(i64, String)> = c
            .query_row("SELECT id, meta FROM datasets WHERE slug = ?1", [&self.slug], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match (existing, meta) {
            (Some((id, old)), Some(m)) => {
                self.dataset_id = id;
                let new = json(m);
                if new != old {
                    c.execute(
                        "UPDATE datasets SET meta = ?2, organization_id = ?3 WHERE id = ?1",
                        params![id, new, org_id],
                    )?;
                    self.changed = true;
                }
            }
            (Some((id, _)), None) => self.dataset_id = id,
            (None, m) => {
                let mut m = m.cloned().unwrap_or_default();
                if m.title.is_empty() {
                    m.title = LangText::en(self.slug.clone());
                }
                c.execute(
                    "INSERT INTO datasets (slug, organization_id, meta, created, modified) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![self.slug, org_id, json(&m), self.now],
                )?;
                self.dataset_id = c.last_insert_rowid();
                self.changed = true;
            }
        }
        Ok(())
    }

    pub(crate) fn current_sha256(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT v.sha256 FROM resources r JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version
                 WHERE r.dataset_id = ?1 AND r.name = ?2",
                params![self.dataset_id, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn store_blob(&self, sha256: &str, bytes: &mut dyn Read) -> Result<()> {
        let c = &self.conn;
        let exists: bool =
            c.query_row("SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ?1)", [sha256], |r| r.get(0))?;
        if exists {
            return Ok(());
        }
        c.execute("INSERT INTO blobs (sha256, size) VALUES (?1, 0)", [sha256])?;
        let mut st = c.prepare_cached("INSERT INTO blob_chunks (sha256, seq, data) VALUES (?1, ?2, ?3)")?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0i64;
        let mut seq = 0i64;
        loop {
            let mut filled = 0;
            while filled < CHUNK {
                let n = bytes.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            hasher.update(&buf[..filled]);
            st.execute(params![sha256, seq, &buf[..filled]])?;
            seq += 1;
            size += filled as i64;
            if filled < CHUNK {
                break;
            }
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(StoreError::Invalid(
                "the file changed while it was being published; publish it again".into(),
            ));
        }
        c.execute("UPDATE blobs SET size = ?2 WHERE sha256 = ?1", params![sha256, size])?;
        Ok(())
    }

    pub(crate) fn add_version(
        &mut self,
        v: &NewVersion<'_>,
        bytes: &mut dyn Read,
    ) -> Result<SqliteLoader<'_>> {
        if let Some(f) = v.schema.fields.iter().find(|f| f.name.eq_ignore_ascii_case("_id")) {
            return Err(StoreError::Invalid(format!(
                "the column name {:?} is reserved for the row id",
                f.name
            )));
        }
        let derived = v.spatial.as_ref().is_some_and(|s| s.column == crate::GEOMETRY_COLUMN);
        if let Some(f) = v.schema.fields.iter().find(|f| f.name.eq_ignore_ascii_case(crate::GEOMETRY_COLUMN))
        {
            if derived {
                return Err(StoreError::Invalid(format!(
                    "the column name {:?} is reserved for the geometry made from coordinate columns",
                    f.name
                )));
            }
        }
        if let Some(sp) = v.spatial.as_ref().filter(|_| !derived) {
            let ok = v.schema.fields.iter().any(|f| f.name == sp.column);
            if !ok {
                return Err(StoreError::Invalid(format!(
                    "the geometry column {:?} is not in the schema",
                    sp.column
                )));
            }
        }
        self.store_blob(v.sha256, bytes)?;
        // Everything of the version from here on can be undone on its own (`SqliteLoader::abandon`).
        // Cheap: the new table's pages are new, and SQLite journals for a savepoint only the pages
        // that existed when it began.
        self.conn.execute_batch(&format!("SAVEPOINT {LOAD_SAVEPOINT}"))?;
        self.changed = true;
        // A version half made is undone at once, so that the next try starts clean.
        self.create_version(v, derived).inspect_err(|_| {
            let _ = undo_version(&self.conn);
        })
    }

    /// Records version `v` and creates its empty table (inside the version's savepoint).
    fn create_version(&self, v: &NewVersion<'_>, derived: bool) -> Result<SqliteLoader<'_>> {
        let c = &self.conn;
        let id = resource_uuid(&self.slug, v.resource);
        c.execute(
            "INSERT INTO resources (id, dataset_id, name, position, title, description)
             VALUES (?1, ?2, ?3, (SELECT COUNT(*) FROM resources WHERE dataset_id = ?2), ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description",
            params![id, self.dataset_id, v.resource, json(&v.title), json(&v.description)],
        )?;
        let number: i64 = c.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE resource_id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        c.execute(
            "INSERT INTO versions (resource_id, number, sha256, filename, format, media_type, encoding, schema,
                                   row_count, created, publisher, skipped)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11)",
            params![
                id,
                number,
                v.sha256,
                v.filename,
                v.format,
                v.media_type,
                v.encoding,
                json(v.schema),
                self.now,
                self.publisher,
                json(&v.skipped)
            ],
        )?;
        let staging = format!("{id}~{number}");
        let mut cols = vec!["\"_id\" INTEGER PRIMARY KEY".to_owned()];
        cols.extend(
            v.schema.fields.iter().map(|f| format!("{} {}", quote_ident(&f.name), sql_type(f.field_type))),
        );
        let mut names: Vec<String> = v.schema.fields.iter().map(|f| quote_ident(&f.name)).collect();
        if derived {
            cols.push(format!("{} TEXT", quote_ident(crate::GEOMETRY_COLUMN)));
            names.push(quote_ident(crate::GEOMETRY_COLUMN));
        }
        c.execute_batch(&format!("CREATE TABLE {} ({}) STRICT", quote_ident(&staging), cols.join(", ")))?;
        let cache = if v.spatial.is_some() {
            c.execute_batch(&format!(
                "CREATE VIRTUAL TABLE {} USING rtree(id, minx, maxx, miny, maxy)",
                quote_ident(&geo_table(&staging))
            ))?;
            SPATIAL_LOAD_CACHE_KIB
        } else {
            PLAIN_LOAD_CACHE_KIB
        };
        c.execute_batch(&format!("PRAGMA cache_size = -{cache}"))?;
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert = if names.is_empty() {
            format!("INSERT INTO {} DEFAULT VALUES", quote_ident(&staging))
        } else {
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote_ident(&staging),
                names.join(", "),
                marks.join(", ")
            )
        };
        let stmt = BulkInsert::prepare(&self.conn, &insert)?;
        // Many rows per statement for bulk loads: one VDBE run per MANY_ROWS rows instead of one per row.
        let width = names.len();
        let many_rows = MANY_PARAMS.checked_div(width).map_or(0, |n| n.clamp(1, MANY_ROWS));
        let many = if many_rows > 1 {
            let tuple = format!("({})", vec!["?"; width].join(", "));
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                quote_ident(&staging),
                names.join(", "),
                vec![tuple; many_rows].join(", ")
            );
            Some(BulkInsert::prepare(&self.conn, &sql)?)
        } else {
            None
        };
        let spatial = match &v.spatial {
            Some(sp) => Some(SpatialLoad {
                info: crate::Spatial {
                    column: sp.column.clone(),
                    source: sp.source.clone(),
                    extent: None,
                    count: 0,
                    types: Vec::new(),
                },
                insert: self.conn.prepare(&format!(
                    "INSERT INTO {} (id, minx, maxx, miny, maxy) VALUES (?1, ?2, ?3, ?4, ?5)",
                    quote_ident(&geo_table(&staging))
                ))?,
            }),
            None => None,
        };
        Ok(SqliteLoader {
            conn: &self.conn,
            stmt,
            many,
            many_rows,
            width,
            id,
            number,
            staging,
            rows: 0,
            counts: Vec::new(),
            spatial,
            schema: v.schema.clone(),
            schema_changed: false,
            skipped: None,
        })
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        if self.changed {
            self.conn.execute(
                "UPDATE datasets SET modified = ?2 WHERE id = ?1",
                params![self.dataset_id, self.now],
            )?;
        }
        self.reindex()?;
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

/// The page cache of a publish, in KiB. A table loads in rowid order, so it only ever changes the
/// right edge of its B-tree: a small cache lets the pages it is done with go to the WAL while the
/// rows load, instead of all at the commit (measured: a shorter commit, half the memory). An R*Tree
/// index inserts all over its pages, so a spatial version gets a bigger cache.
const PLAIN_LOAD_CACHE_KIB: u32 = 8 << 10;
const SPATIAL_LOAD_CACHE_KIB: u32 = 64 << 10;

/// The savepoint around the loading of one version.
const LOAD_SAVEPOINT: &str = "version_load";

/// Undoes everything since the version's savepoint, and ends it.
fn undo_version(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!("ROLLBACK TO {LOAD_SAVEPOINT}; RELEASE {LOAD_SAVEPOINT}"))?;
    Ok(())
}

/// Rows per multi-row INSERT, and the most parameters one may bind.
const MANY_ROWS: usize = 16;
const MANY_PARAMS: usize = 2000;

/// A value as a parameter of a bulk insert.
fn param<'v>(v: &'v Value<'_>) -> Param<'v> {
    match v {
        Value::Null => Param::Null,
        Value::Int(x) => Param::Int(*x),
        Value::Real(x) => Param::Real(*x),
        Value::Text(t) => Param::Text(t),
    }
}

/// The name of the spatial index (an R*Tree of each row's bounding box, keyed by `_id`) of a table.
pub(crate) fn geo_table(table: &str) -> String {
    format!("{table}~geo")
}

/// The spatial side of a load: the index's insert and what the geometries cover so far.
struct SpatialLoad<'p> {
    info: crate::Spatial,
    insert: Statement<'p>,
}

impl SpatialLoad<'_> {
    /// Indexes the box of row `id`.
    fn add(&mut self, id: i64, b: [f64; 4]) -> Result<()> {
        if !b.iter().all(|x| x.is_finite()) || b[0] > b[2] || b[1] > b[3] {
            return Err(StoreError::Invalid(format!("row {id} has an invalid bounding box {b:?}")));
        }
        self.insert.execute(params![id, b[0], b[2], b[1], b[3]])?;
        let e = self.info.extent.get_or_insert(b);
        e[0] = e[0].min(b[0]);
        e[1] = e[1].min(b[1]);
        e[2] = e[2].max(b[2]);
        e[3] = e[3].max(b[3]);
        self.info.count += 1;
        Ok(())
    }
}

pub(crate) struct SqliteLoader<'p> {
    conn: &'p Connection,
    spatial: Option<SpatialLoad<'p>>,
    stmt: BulkInsert<'p>,
    many: Option<BulkInsert<'p>>,
    many_rows: usize,
    width: usize,
    counts: Vec<crate::ValueCounts>,
    id: String,
    number: i64,
    staging: String,
    rows: i64,
    /// The schema the table was made with, then as [`SqliteLoader::set_schema`] refined it.
    schema: Schema,
    schema_changed: bool,
    /// The rows left out, when [`SqliteLoader::set_skipped`] gave them.
    skipped: Option<Vec<String>>,
}

impl SqliteLoader<'_> {
    pub(crate) fn insert(&mut self, row: &[Value<'_>]) -> Result<()> {
        self.stmt.run(row.iter().map(param))?;
        self.rows += 1;
        Ok(())
    }

    /// Inserts rows given one after the other in `values` (a multiple of the table's width), with
    /// their bounding boxes (one per row) when the version is spatial.
    pub(crate) fn insert_many(&mut self, values: &[Value<'_>], bboxes: &[Option<[f64; 4]>]) -> Result<()> {
        self.insert_params(values.len(), bboxes, |i| param(&values[i]))
    }

    /// Like [`SqliteLoader::insert_many`], with the rows of `batch`: its texts are bound where they
    /// lie, without a copy.
    pub(crate) fn insert_batch(&mut self, batch: &RowBatch, bboxes: &[Option<[f64; 4]>]) -> Result<()> {
        self.insert_params(batch.slots.len(), bboxes, |i| match batch.slots[i] {
            Slot::Null => Param::Null,
            Slot::Int(x) => Param::Int(x),
            Slot::Real(x) => Param::Real(x),
            Slot::Text(a, b) => Param::Text(&batch.text[a..b]),
        })
    }

    /// Inserts `count` values (whole rows), the value at `i` given by `value(i)`.
    fn insert_params<'v>(
        &mut self,
        count: usize,
        bboxes: &[Option<[f64; 4]>],
        value: impl Fn(usize) -> Param<'v>,
    ) -> Result<()> {
        if self.width == 0 {
            return Ok(());
        }
        if !count.is_multiple_of(self.width) {
            return Err(StoreError::Invalid(format!(
                "{count} values are not whole rows of {} columns",
                self.width
            )));
        }
        let first_id = self.rows + 1;
        match &mut self.spatial {
            Some(sp) => {
                if bboxes.len() != count / self.width {
                    return Err(StoreError::Invalid(format!(
                        "{} bounding boxes for {} rows",
                        bboxes.len(),
                        count / self.width
                    )));
                }
                // The table is new and loaded in order, so its rows get the ids 1, 2, 3, ...
                for (k, b) in bboxes.iter().enumerate() {
                    if let Some(b) = b {
                        sp.add(first_id + i64::try_from(k).unwrap_or(i64::MAX), *b)?;
                    }
                }
            }
            None if !bboxes.is_empty() => {
                return Err(StoreError::Invalid("bounding boxes given for a version without geometry".into()))
            }
            None => {}
        }
        let mut start = 0;
        if let Some(many) = &mut self.many {
            let chunk = self.many_rows * self.width;
            while count - start >= chunk {
                many.run((start..start + chunk).map(&value))?;
                self.rows += i64::try_from(self.many_rows).unwrap_or(i64::MAX);
                start += chunk;
            }
        }
        while start < count {
            self.stmt.run((start..start + self.width).map(&value))?;
            self.rows += 1;
            start += self.width;
        }
        Ok(())
    }

    pub(crate) fn set_value_counts(&mut self, counts: Vec<crate::ValueCounts>) {
        self.counts = counts;
    }

    pub(crate) fn set_geometry_types(&mut self, types: Vec<String>) {
        if let Some(sp) = &mut self.spatial {
            sp.info.types = types;
        }
    }

    pub(crate) fn set_schema(&mut self, schema: &Schema) -> Result<()> {
        let same_columns = schema.fields.len() == self.schema.fields.len()
            && schema
                .fields
                .iter()
                .zip(&self.schema.fields)
                .all(|(a, b)| a.name == b.name && a.field_type == b.field_type);
        if !same_columns {
            return Err(StoreError::Invalid(
                "the schema's columns or types differ from those the table was made with".into(),
            ));
        }
        if *schema != self.schema {
            self.schema = schema.clone();
            self.schema_changed = true;
        }
        Ok(())
    }

    pub(crate) fn set_skipped(&mut self, skipped: Vec<String>) {
        self.skipped = Some(skipped);
    }

    pub(crate) fn abandon(self) -> Result<()> {
        let SqliteLoader { conn, stmt, many, spatial, .. } = self;
        // The statements on the table go first: the rollback drops it.
        drop((stmt, many, spatial));
        undo_version(conn)
    }

    pub(crate) fn finish(self) -> Result<i64> {
        let SqliteLoader {
            conn,
            stmt,
            many,
            id,
            number,
            staging,
            rows,
            counts,
            spatial,
            schema,
            schema_changed,
            skipped,
            ..
        } = self;
        drop(stmt);
        drop(many);
        if schema_changed {
            conn.execute(
                "UPDATE versions SET schema = ?3 WHERE resource_id = ?1 AND number = ?2",
                params![id, number, json(&schema)],
            )?;
        }
        if let Some(skipped) = skipped {
            conn.execute(
                "UPDATE versions SET skipped = ?3 WHERE resource_id = ?1 AND number = ?2",
                params![id, number, json(&skipped)],
            )?;
        }
        let spatial = spatial.map(|sp| sp.info);
        conn.execute(
            "UPDATE versions SET spatial = ?3 WHERE resource_id = ?1 AND number = ?2",
            params![id, number, spatial.as_ref().map(json)],
        )?;
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote_ident(&geo_table(&id))))?;
        if spatial.is_some() {
            conn.execute_batch(&format!(
                "ALTER TABLE {} RENAME TO {}",
                quote_ident(&geo_table(&staging)),
                quote_ident(&geo_table(&id))
            ))?;
        }
        conn.execute("DELETE FROM value_counts WHERE resource_id = ?1", [&id])?;
        conn.execute("DELETE FROM value_count_columns WHERE resource_id = ?1", [&id])?;
        {
            let mut col = conn.prepare_cached(
                "INSERT OR REPLACE INTO value_count_columns (resource_id, column_name, nulls) VALUES (?1, ?2, ?3)",
            )?;
            let mut val = conn.prepare_cached(
                "INSERT INTO value_counts (resource_id, column_name, value, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )?;
            for c in &counts {
                let nulls: u64 = c.values.iter().filter(|(v, _)| *v == Value::Null).map(|(_, n)| n).sum();
                col.execute(params![id, c.column, i64::try_from(nulls).unwrap_or(i64::MAX)])?;
                for (v, n) in &c.values {
                    let v: rusqlite::types::Value = match v {
                        Value::Null => continue,
                        Value::Int(i) => rusqlite::types::Value::Integer(*i),
                        Value::Real(r) => rusqlite::types::Value::Real(*r),
                        Value::Text(t) => rusqlite::types::Value::Text(t.to_string()),
                    };
                    val.execute(params![id, c.column, v, i64::try_from(*n).unwrap_or(i64::MAX)])?;
                }
            }
        }
        conn.execute(
            "UPDATE versions SET row_count = ?3 WHERE resource_id = ?1 AND number = ?2",
            params![id, number, rows],
        )?;
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {table}; ALTER TABLE {staging} RENAME TO {table};",
            table = quote_ident(&id),
            staging = quote_ident(&staging)
        ))?;
        conn.execute("UPDATE resources SET current_version = ?2 WHERE id = ?1", params![id, number])?;
        conn.execute_batch(&format!("RELEASE {LOAD_SAVEPOINT}"))?;
        Ok(number)
    }
}
