//! The store: the catalogue (organisations, datasets, resources, versions), the original bytes of
//! every version (content-addressed by SHA-256), and one queryable table per tabular resource.
//!
//! One publish is one transaction ([`Publish`]): the blob, the version, the new table replacing the
//! old one and the catalogue entries commit together or not at all, so a failure or a crash at any
//! moment leaves the previous version serving, unchanged.
//!
//! **Architecture Invariant:** this is the only crate that speaks SQL, and [`Store`] is its interface:
//! no type of the database driver appears in it, so nothing outside knows which backend runs. Every
//! identifier that reaches SQL goes through [`quote_ident`]; every value is a bound parameter.

pub mod dashboards;
mod ident;
mod query;
mod search;
pub mod sensors;
mod sqlite;

use std::io::Read;
use std::path::Path;

use citydata_model::{DatasetMeta, LangText, RowBatch, Schema, Slug, Value};

pub use ident::quote_ident;
pub use query::{
    ArithOp, CmpOp, Column, Cond, Facet, FacetValue, Filter, Head, Literal, Op, Operand, RowBuffer, RowQuery,
    RowSink, SortKey, SpatialOp, SqlLimits, SqlOutcome, TemporalOp, Total, GEOMETRY_PROPERTY,
};
pub use search::{FacetField, SearchQuery, SearchResult, SearchSort};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Database(String),
    /// Reading the bytes to store failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The request names something that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// The request asks for something it may not have (user SQL outside the public tables).
    #[error("{0}")]
    Forbidden(String),
    /// Every connection for this kind of work is busy; the caller may try again shortly.
    #[error("{0}")]
    Busy(String),
    /// The database was written by a newer citydata.
    #[error("the database has schema version {found}, newer than this citydata understands ({supported}); upgrade citydata")]
    TooNew {
        /// The version in the file.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The stable UUID of the dataset `slug` (name-based, so it never changes and needs no lookup).
#[must_use]
pub fn dataset_id(slug: &str) -> String {
    name_uuid(&["citydata-dataset", slug])
}

/// A name-based UUID (version 5 layout, SHA-256 of the parts joined by NUL).
#[must_use]
pub fn name_uuid(parts: &[&str]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(parts.join("\0").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 layout (name-based)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An organisation that publishes datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Its slug.
    pub slug: String,
    /// Its title.
    pub title: LangText,
}

/// One immutable version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// 1, 2, 3, ... per resource.
    pub number: i64,
    /// SHA-256 of the original bytes, lower-case hex.
    pub sha256: String,
    /// Size of the original bytes.
    pub bytes: i64,
    /// The file name it was published from.
    pub filename: String,
    /// Format name (`csv`, `xlsx`, ...).
    pub format: String,
    /// Media type of the original bytes.
    pub media_type: String,
    /// Text encoding found (`utf-8`, `big5-hkscs`, ...).
    pub encoding: String,
    /// Table schema of the version.
    pub schema: Schema,
    /// Number of data rows.
    pub row_count: i64,
    /// When it was published (RFC 3339, UTC).
    pub created: String,
    /// Who published it.
    pub publisher: String,
    /// Rows left out under `--skip-bad-rows`, as `line N: reason`.
    pub skipped: Vec<String>,
    /// Where the rows' geometries are, for a spatial resource.
    pub spatial: Option<Spatial>,
}

/// The name of the column that the store adds to a table whose geometry the publish made from
/// coordinate columns (latitude and longitude, or grid eastings and northings). Reserved, like `_id`.
pub const GEOMETRY_COLUMN: &str = "_geom";

/// Where a spatial resource keeps its geometries, and what they cover.
///
/// Every geometry of the table is WGS 84 GeoJSON text (longitude, latitude) in `column`, whatever
/// the file held; each row's bounding box is in the table's spatial index.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spatial {
    /// The column holding each row's geometry: a geometry field of the schema, or
    /// [`GEOMETRY_COLUMN`] when the publish made the geometry from coordinate columns.
    pub column: String,
    /// How the geometries were made, for people (`"GeoJSON geometries"`, `"points from the columns
    /// Easting and Northing (EPSG:2326)"`).
    pub source: String,
    /// The extent of all geometries, `[min lon, min lat, max lon, max lat]`; `None` when no row has one.
    pub extent: Option<[f64; 4]>,
    /// Rows with a geometry.
    pub count: u64,
    /// The geometry types found (`Point`, `Polygon`, ...), in order of first appearance.
    pub types: Vec<String>,
}

/// What a new spatial version says about its geometries before its rows load.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpatial {
    /// The column holding the geometry (see [`Spatial::column`]); when it is [`GEOMETRY_COLUMN`], the
    /// store adds it to the table after the schema's fields, and each row brings its value last.
    pub column: String,
    /// How the geometries were made (see [`Spatial::source`]).
    pub source: String,
}

/// A spatial resource as the map and feature APIs list it: the current version of a resource whose
/// rows have geometries.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialResource {
    /// The dataset's slug.
    pub dataset: String,
    /// The dataset's metadata.
    pub meta: DatasetMeta,
    /// The resource's id (its table).
    pub id: String,
    /// The resource's name in its dataset.
    pub name: String,
    /// The resource's title.
    pub title: LangText,
    /// The resource's description.
    pub description: LangText,
    /// The current version's number.
    pub version: i64,
    /// When the current version was published.
    pub created: String,
    /// The current version's schema.
    pub schema: Schema,
    /// The current version's rows.
    pub rows: u64,
    /// Where its geometries are.
    pub spatial: Spatial,
}

/// A resource (one file of a dataset) with its versions, newest last.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Stable id (a UUID, as CKAN resource ids are); also the name of its table in user SQL.
    pub id: String,
    /// Name, unique in the dataset.
    pub name: String,
    /// Title and description from the metadata.
    pub title: LangText,
    /// Description.
    pub description: LangText,
    /// Every version, oldest first; the last is the current one.
    pub versions: Vec<Version>,
}

impl Resource {
    /// The version being served.
    #[must_use]
    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }
}

/// A dataset with its metadata and resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Stable id (a UUID derived from the slug, as CKAN package ids are UUIDs).
    pub id: String,
    /// Its slug.
    pub slug: String,
    /// Metadata as last published.
    pub meta: DatasetMeta,
    /// Its organisation.
    pub organization: Option<Organization>,
    /// When first published (RFC 3339, UTC).
    pub created: String,
    /// When last changed.
    pub modified: String,
    /// Its resources in publication order.
    pub resources: Vec<Resource>,
}

/// What a version to add brings besides its bytes and rows.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// Resource name within the dataset.
    pub resource: &'a str,
    /// Resource title and description.
    pub title: LangText,
    /// Resource description.
    pub description: LangText,
    /// SHA-256 of the bytes, lower-case hex (computed by the caller while it read them).
    pub sha256: &'a str,
    /// File name.
    pub filename: &'a str,
    /// Format name.
    pub format: &'a str,
    /// Media type.
    pub media_type: &'a str,
    /// Encoding label.
    pub encoding: &'a str,
    /// Table schema.
    pub schema: &'a Schema,
    /// Rows left out, as text.
    pub skipped: Vec<String>,
    /// Where the geometries are, for a spatial resource.
    pub spatial: Option<NewSpatial>,
}

/// How often each value occurs in one column of a new version's table, counted while it loads.
/// Given to [`TableLoader::set_value_counts`] for columns with few distinct values, it lets the store
/// answer exact totals of equality filters, and facets of the whole table, without a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueCounts {
    /// The column.
    pub column: String,
    /// Every distinct value (nulls as `Value::Null`) with its count; they must add up to the rows.
    pub values: Vec<(Value<'static>, u64)>,
}

/// A page of rows from a resource's table.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Column names, in table order (the leading `_id` included).
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Value<'static>>>,
}

/// The store. Cheap to share between threads (`Arc<Store>`); each call takes a pooled connection.
pub struct Store {
    backend: sqlite::SqliteStore,
}

impl Store {
    /// Opens (creating when new) the store at `path`, bringing its schema up to date.
    ///
    /// # Errors
    /// When the file cannot be opened or was written by a newer citydata.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self { backend: sqlite::SqliteStore::open(path)? })
    }

    /// True when no dataset has been published yet.
    ///
    /// # Errors
    /// Database errors.
    pub fn is_empty(&self) -> Result<bool> {
        self.backend.is_empty()
    }

    /// Starts a publish of dataset `slug`: one transaction that [`Publish::commit`] ends. `meta`
    /// replaces the dataset's metadata when given (a new dataset without it gets its slug as title).
    ///
    /// # Errors
    /// Database errors, or when another publish holds the write lock for too long.
    pub fn begin_publish(&self, slug: &Slug, meta: Option<&DatasetMeta>, publisher: &str) -> Result<Publish> {
        Ok(Publish { inner: self.backend.begin_publish(slug, meta, publisher)? })
    }

    /// The spatial resources (current versions with geometries), by dataset slug and position;
    /// only those of dataset `dataset` when given.
    ///
    /// # Errors
    /// Database errors.
    pub fn spatial_resources(&self, dataset: Option<&str>) -> Result<Vec<SpatialResource>> {
        self.backend.spatial_resources(dataset)
    }

    /// The rows of spatial resource `id` whose bounding box meets `bbox` (`[min lon, min lat, max
    /// lon, max lat]`, WGS 84), for a map tile: `_id`, the geometry, then the other fields; at most
    /// `limit`, in `_id` order. Returns true when the limit left rows out.
    ///
    /// # Errors
    /// `NotFound` for an unknown resource, `Invalid` when it has no geometry; database errors.
    pub fn rows_in_box(
        &self,
        id: &str,
        bbox: [f64; 4],
        limit: usize,
        sink: &mut dyn RowSink,
    ) -> Result<bool> {
        self.backend.rows_in_box(id, bbox, limit, sink)
    }

    /// All dataset slugs, sorted.
    ///
    /// # Errors
    /// Database errors.
    pub fn dataset_slugs(&self) -> Result<Vec<String>> {
        self.backend.dataset_slugs()
    }

    /// One dataset with its resources and versions.
    ///
    /// # Errors
    /// Database errors.
    pub fn dataset(&self, slug: &str) -> Result<Option<Dataset>> {
        self.backend.dataset(slug)
    }

    /// The slug of the dataset that holds resource `id` (the resource's UUID).
    ///
    /// # Errors
    /// Database errors.
    pub fn dataset_of_resource(&self, id: &str) -> Result<Option<String>> {
        self.backend.dataset_of_resource(id)
    }

    /// Every organisation with the number of its datasets, by slug.
    ///
    /// # Errors
    /// Database errors.
    pub fn organizations(&self) -> Result<Vec<(Organization, u64)>> {
        self.backend.organizations()
    }

    /// Streams the original bytes with hash `sha256` into `out`; false when there is no such blob.
    ///
    /// # Errors
    /// Database or write errors.
    pub fn write_blob(&self, sha256: &str, out: &mut dyn std::io::Write) -> Result<bool> {
        self.backend.write_blob(sha256, out)
    }

    /// The size of the blob with hash `sha256`.
    ///
    /// # Errors
    /// Database errors.
    pub fn blob_size(&self, sha256: &str) -> Result<Option<i64>> {
        self.backend.blob_size(sha256)
    }

    /// Up to `limit` rows of the current table of resource `resource_id`, from row `offset`.
    ///
    /// # Errors
    /// Database errors; `NotFound` for unknown resources.
    pub fn rows(&self, resource_id: &str, limit: u32, offset: u64) -> Result<Rows> {
        self.backend.rows(resource_id, limit, offset)
    }

    /// Runs query `q` over the rows of the current table of resource `resource_id`, streaming the
    /// head and then the rows into `sink`. Returns the `next` token when more rows follow (pass it as
    /// [`RowQuery::after`] for the next page). See [`RowQuery`] for the semantics.
    ///
    /// # Errors
    /// `NotFound` for unknown resources; `Invalid` for unknown columns, values that do not fit their
    /// column, and bad tokens; whatever the sink returns; database errors.
    pub fn query_rows(
        &self,
        resource_id: &str,
        q: &RowQuery,
        sink: &mut dyn RowSink,
    ) -> Result<Option<String>> {
        self.backend.query_rows(resource_id, q, sink)
    }

    /// Runs one read-only SQL statement from a user, streaming the head and then the rows into
    /// `sink`. The statement may only `SELECT` from the tables of current resources (named by their
    /// resource id, double-quoted) with ordinary functions; the database engine enforces it, with the
    /// time and row limits in `limits`. A result column has the type of the resource column it comes
    /// from, else the type of its first value; blobs arrive as text, `\x` and hex.
    ///
    /// # Errors
    /// `Invalid` with a message for the user when the SQL is wrong, too slow or too big; `Forbidden`
    /// when it reaches for anything but the public data tables and ordinary functions; `Busy` when
    /// the sandbox stays busy longer than `limits.wait`; whatever the sink returns; database errors.
    pub fn user_sql(&self, sql: &str, limits: &SqlLimits, sink: &mut dyn RowSink) -> Result<SqlOutcome> {
        self.backend.user_sql(sql, limits, sink)
    }

    /// Searches the catalogue: the datasets that match `q`, one page of their slugs, and the facet
    /// counts over all of them. (CKAN's `tag_list` is the [`FacetField::Tag`] facet of an empty query
    /// with `facet_limit: usize::MAX`.)
    ///
    /// # Errors
    /// Database errors. No query text is an error: it is never taken as search-engine syntax.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResult> {
        self.backend.search(q)
    }

    /// Checks the database: the file's integrity, and that the catalogue and the tables agree (every
    /// current version has its table with exactly its row count, no table is left from an
    /// unfinished publish). Returns the problems found; empty when all is well.
    ///
    /// # Errors
    /// Database errors.
    pub fn check(&self) -> Result<Vec<String>> {
        self.backend.check()
    }
}

/// One publish in progress: a write transaction. Dropping it without [`Publish::commit`] rolls
/// everything back.
pub struct Publish {
    inner: sqlite::SqlitePublish,
}

/// Loads the rows of one new version into its table.
pub struct TableLoader<'p> {
    inner: sqlite::SqliteLoader<'p>,
}

impl Publish {
    /// The SHA-256 of the current version of resource `name`, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub fn current_sha256(&self, name: &str) -> Result<Option<String>> {
        self.inner.current_sha256(name)
    }

    /// Adds a version: stores the bytes read from `bytes` (unless a blob with that hash exists),
    /// records the version and creates its empty table, all but the bytes under a savepoint of its
    /// own. Returns the loader for its rows; the new table replaces the old one when
    /// [`TableLoader::finish`] is called, and [`TableLoader::abandon`] undoes the version instead.
    /// A loader dropped without either leaves the publish to be rolled back (drop it too).
    ///
    /// # Errors
    /// Database or read errors.
    pub fn add_version(&mut self, v: &NewVersion<'_>, bytes: &mut dyn Read) -> Result<TableLoader<'_>> {
        Ok(TableLoader { inner: self.inner.add_version(v, bytes)? })
    }

    /// Commits the publish: everything becomes visible at once.
    ///
    /// # Errors
    /// Database errors (then nothing changed).
    pub fn commit(self) -> Result<()> {
        self.inner.commit()
    }
}

impl TableLoader<'_> {
    /// Appends one row, its values in schema order.
    ///
    /// # Errors
    /// Database errors.
    pub fn insert(&mut self, row: &[Value<'_>]) -> Result<()> {
        self.inner.insert(row)
    }

    /// Appends several rows, their values one row after the other in schema order (many rows per
    /// statement; [`TableLoader::insert_batch`] is the bulk load's faster way).
    ///
    /// # Errors
    /// Database errors; `Invalid` when `values` is not a whole number of rows.
    pub fn insert_many(&mut self, values: &[Value<'_>]) -> Result<()> {
        self.inner.insert_many(values, &[])
    }

    /// Appends the rows of `batch` (values one row after the other in schema order), with each
    /// row's bounding box when the version is spatial (`bboxes` empty otherwise). The bulk loads'
    /// fastest path: texts are bound where they lie in the batch, without copies.
    ///
    /// # Errors
    /// Database errors; `Invalid` when the batch is not whole rows or the boxes do not match.
    pub fn insert_batch(&mut self, batch: &RowBatch, bboxes: &[Option<[f64; 4]>]) -> Result<()> {
        self.inner.insert_batch(batch, bboxes)
    }

    /// Like [`TableLoader::insert_many`], for a spatial version: `bboxes` holds each row's bounding
    /// box (`[min lon, min lat, max lon, max lat]`, `None` for a row without geometry), one per row.
    ///
    /// # Errors
    /// Database errors; `Invalid` when the rows and boxes do not match.
    pub fn insert_located(&mut self, values: &[Value<'_>], bboxes: &[Option<[f64; 4]>]) -> Result<()> {
        self.inner.insert_many(values, bboxes)
    }

    /// The geometry types found while loading (see [`Spatial::types`]).
    pub fn set_geometry_types(&mut self, types: Vec<String>) {
        self.inner.set_geometry_types(types);
    }

    /// The value counts of the new table's columns (complete counts only: a column left out has
    /// none). Stored with the version when [`TableLoader::finish`] is called.
    pub fn set_value_counts(&mut self, counts: Vec<ValueCounts>) {
        self.inner.set_value_counts(counts);
    }

    /// The version's schema as finally known, stored in place of the one given to
    /// [`Publish::add_version`] when [`TableLoader::finish`] is called. Only what describes the
    /// columns may differ (descriptions, number and date formats): the table was made with the types
    /// given then, so a schema with other types or columns is refused.
    ///
    /// # Errors
    /// `Invalid` when the columns or their types differ.
    pub fn set_schema(&mut self, schema: &Schema) -> Result<()> {
        self.inner.set_schema(schema)
    }

    /// The rows left out, as text, stored in place of those given to [`Publish::add_version`] when
    /// [`TableLoader::finish`] is called (a load that reads the file once knows them only at its end).
    pub fn set_skipped(&mut self, skipped: Vec<String>) {
        self.inner.set_skipped(skipped);
    }

    /// Gives up this version: its record, its table and every row loaded into it are undone, as if
    /// [`Publish::add_version`] had not been called (the stored bytes stay, for the next try).
    ///
    /// # Errors
    /// Database errors.
    pub fn abandon(self) -> Result<()> {
        self.inner.abandon()
    }

    /// Ends the load: records the row count and puts the table in place of the previous version's.
    /// Returns the version number.
    ///
    /// # Errors
    /// Database errors.
    pub fn finish(self) -> Result<i64> {
        self.inner.finish()
    }
}
