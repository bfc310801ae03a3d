//! The publishing pipeline: a file (or a Frictionless data package) in, a new version of a dataset out.
//!
//! For each file: detect format and encoding, hash the bytes, infer a schema from a sample of the
//! first records (the write lock is not held meanwhile) and apply the metadata's schema override;
//! then, in ONE store transaction for all files of the call, store the bytes, add the version and
//! load the rows into a new table that replaces the old one. The load reads the file once: it
//! converts every record to the sample's schema while inferring over every record, as a whole scan
//! would, and keeps the table only when the whole file's schema (and spatial plan) is the sample's.
//! Otherwise the version is undone (a savepoint) and loaded again under the whole file's schema,
//! so the result is always that of inferring over every record first. Any error rolls everything
//! back: the previous version keeps serving, unchanged. Identical bytes make no new version.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use citydata_formats::{
    Format, FormatError, Pass, Progress, ReadOptions, RowBatch, Scan, Skipped, Slot, Source,
};
use citydata_model::{DatasetMeta, FieldType, LangText, Schema, Slug, Value};
use citydata_store::{NewVersion, Store, StoreError, TableLoader, ValueCounts};
use sha2::{Digest, Sha256};

/// Why a publish failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A file could not be read as data.
    #[error("{}: {error}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// What is wrong and where.
        error: FormatError,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The request itself is wrong (metadata, package descriptor).
    #[error("{0}")]
    Invalid(String),
}

/// How to publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The format, when not to be detected.
    pub format: Option<Format>,
    /// Reader options.
    pub read: ReadOptions,
    /// The resource name (default: made from the file name).
    pub resource: Option<String>,
    /// Who publishes.
    pub publisher: String,
    /// Metadata replacing the dataset's.
    pub meta: Option<DatasetMeta>,
}

/// Shows the progress of a pass (the CLI draws a bar; tests and the server show nothing).
pub trait Reporter {
    /// A pass over a file of `total` bytes begins; its counters are in `progress`.
    fn pass(&self, label: &str, progress: Arc<Progress>, total: u64);
    /// The pass ended.
    fn end(&self) {}
}

/// A reporter that shows nothing.
pub struct Quiet;

impl Reporter for Quiet {
    fn pass(&self, _: &str, _: Arc<Progress>, _: u64) {}
}

/// What happened to one resource.
#[derive(Debug, Clone)]
pub struct ResourceOutcome {
    /// Resource name.
    pub name: String,
    /// The new version number, or `None` when the bytes were identical to the current version's.
    pub version: Option<i64>,
    /// Data rows.
    pub rows: u64,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Format and encoding found.
    pub format: Format,
    /// Encoding label.
    pub encoding: &'static str,
    /// The schema.
    pub schema: Schema,
    /// Rows left out under `--skip-bad-rows`.
    pub skipped: Vec<Skipped>,
    /// Where the rows are, for a spatial resource (how the geometries were made).
    pub spatial: Option<String>,
    /// What the publisher should know: rows without a location, why no location was found.
    pub notes: Vec<String>,
    /// How many times the rows were read to load them: 1, or 2 when the whole file's schema was not
    /// that of its first records (0 when the bytes were unchanged).
    pub reads: u8,
}

/// How many records (or bytes of the file, whichever comes first) the schema is first inferred
/// from. A file no longer than that is read whole, and its schema is final at once.
const SAMPLE_RECORDS: u64 = 20_000;
const SAMPLE_BYTES: u64 = 8 << 20;

/// One file to publish as one resource.
struct Planned {
    name: String,
    source: Source,
    sha256: String,
    bytes: u64,
    title: LangText,
    description: LangText,
    /// The schema and plan to load with: final when `guess` is `None`.
    settled: Settled,
    /// When `settled` comes from a sample of the file: what the load checks it against.
    guess: Option<Guess>,
    package_schema: Option<Schema>,
    /// The CRS named by a GeoJSON file's legacy `crs` member, read once (a whole pass over the file).
    geojson_crs: std::cell::OnceCell<Result<Option<String>, FormatError>>,
}

/// What a sample found, for a speculative load to watch.
struct Guess {
    /// The inferred type of each column (`None` where an override sets the type).
    inferred: Vec<Option<FieldType>>,
    /// How many records the sample read.
    sampled: u64,
}

/// A schema with the metadata's overrides applied, and where the rows are.
#[derive(Clone)]
struct Settled {
    schema: Schema,
    rows: u64,
    skipped: Vec<Skipped>,
    spatial: Option<crate::spatial::Plan>,
    notes: Vec<String>,
}

impl Settled {
    /// Whether a table loaded under `self` holds exactly what it would under `other`: the same
    /// columns with the same types (the conversion of a value depends on nothing else) and the same
    /// spatial plan.
    fn loads_as(&self, other: &Settled) -> bool {
        self.schema.missing_values == other.schema.missing_values
            && self.schema.fields.len() == other.schema.fields.len()
            && self
                .schema
                .fields
                .iter()
                .zip(&other.schema.fields)
                .all(|(a, b)| a.name == b.name && a.field_type == b.field_type)
            && self.spatial == other.spatial
    }
}

fn format_error(file: &Path) -> impl Fn(FormatError) -> PublishError + '_ {
    move |error| PublishError::Format { file: file.to_owned(), error }
}

/// Publishes `path` (a data file, or a `datapackage.json` with all its resources) as dataset `slug`.
///
/// # Errors
/// Any problem with a file, the metadata or the store; then nothing has changed.
pub fn publish(
    store: &Store,
    path: &Path,
    slug: &Slug,
    opts: &PublishOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<ResourceOutcome>, PublishError> {
    let format = match opts.format {
        Some(f) => f,
        None => Source::open(path, None, opts.read.clone()).map_err(format_error(path))?.format,
    };
    let (files, meta) = if format == Format::DataPackage {
        datapackage(path, opts.meta.clone())?
    } else {
        let name = match &opts.resource {
            Some(n) => n.clone(),
            None => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
                Slug::from_text(stem, "data").to_string()
            }
        };
        (vec![(name, path.to_owned(), opts.format, None)], opts.meta.clone())
    };
    let single = files.len() == 1;
    let mut planned = Vec::new();
    for (name, file, format, package_schema) in files {
        let source = Source::open(&file, format, opts.read.clone()).map_err(format_error(&file))?;
        let (sha256, bytes) = hash_file(&file, reporter).map_err(|e| format_error(&file)(e.into()))?;
        let rmeta = meta.as_ref().and_then(|m| m.resources.get(&name));
        let mut p = Planned {
            title: rmeta.map(|r| r.title.clone()).unwrap_or_default(),
            description: rmeta.map(|r| r.description.clone()).unwrap_or_default(),
            settled: Settled {
                schema: Schema::default(),
                rows: 0,
                skipped: Vec::new(),
                spatial: None,
                notes: Vec::new(),
            },
            guess: None,
            name,
            source,
            sha256,
            bytes,
            package_schema,
            geojson_crs: std::cell::OnceCell::new(),
        };
        // Planned even when the bytes turn out unchanged: the metadata is checked against the file.
        (p.settled, p.guess) = plan_file(&p, meta.as_ref(), single, reporter)?;
        planned.push(p);
    }
    let mut tx = store.begin_publish(slug, meta.as_ref(), &opts.publisher)?;
    let mut outcomes = Vec::new();
    for p in planned {
        let unchanged = tx.current_sha256(&p.name)?.as_deref() == Some(p.sha256.as_str());
        let (version, settled, reads) = if unchanged {
            (None, p.settled.clone(), 0)
        } else {
            let (number, settled, reads) = load_version(&mut tx, &p, meta.as_ref(), single, reporter)?;
            (Some(number), settled, reads)
        };
        outcomes.push(ResourceOutcome {
            name: p.name,
            version,
            rows: settled.rows,
            sha256: p.sha256,
            bytes: p.bytes,
            format: p.source.format,
            encoding: p.source.encoding.label(),
            schema: settled.schema,
            skipped: settled.skipped,
            spatial: settled.spatial.map(|sp| sp.new.source),
            notes: settled.notes,
            reads,
        });
    }
    let t = std::time::Instant::now();
    tx.commit()?;
    tracing::debug!(elapsed = ?t.elapsed(), "committed");
    // An unchanged resource is what its current version says (its plan saw only a sample).
    if outcomes.iter().any(|o| o.version.is_none()) {
        if let Some(ds) = store.dataset(slug.as_str())? {
            for o in outcomes.iter_mut().filter(|o| o.version.is_none()) {
                let Some(v) = ds.resources.iter().find(|r| r.name == o.name).and_then(|r| r.current()) else {
                    continue;
                };
                o.rows = u64::try_from(v.row_count).unwrap_or(0);
                o.schema = v.schema.clone();
                o.skipped = stored_skipped(&v.skipped);
                o.spatial = v.spatial.as_ref().map(|sp| sp.source.clone());
            }
        }
    }
    Ok(outcomes)
}

/// The rows left out as a version records them (`line N (record M): reason`), read back.
fn stored_skipped(texts: &[String]) -> Vec<Skipped> {
    texts.iter().map(|t| Skipped { loc: citydata_formats::Loc::default(), reason: t.clone() }).collect()
}

/// Decides the schema and plan to load `p` with: from a sample of its first records when the file
/// is longer than that (with the sample's inferred types, to check the load against), from the
/// whole file otherwise, or when the sample cannot decide (no column yet, or the metadata names a
/// column the sample has not met).
fn plan_file(
    p: &Planned,
    meta: Option<&DatasetMeta>,
    single: bool,
    reporter: &dyn Reporter,
) -> Result<(Settled, Option<Guess>), PublishError> {
    let file = &p.source.path;
    let t = std::time::Instant::now();
    let sample = citydata_formats::sample(&p.source, Arc::default(), SAMPLE_RECORDS, SAMPLE_BYTES)
        .map_err(format_error(file))?;
    tracing::debug!(file = %file.display(), elapsed = ?t.elapsed(), rows = sample.rows, whole = sample.complete, "sampled");
    if sample.complete {
        return Ok((settle(p, sample, meta, single)?, None));
    }
    if !sample.schema.fields.is_empty() {
        let inferred: Vec<FieldType> = sample.schema.fields.iter().map(|f| f.field_type).collect();
        let sampled = sample.rows;
        if let Ok(settled) = settle(p, sample, meta, single) {
            let inferred = inferred
                .iter()
                .zip(&settled.schema.fields)
                .map(|(t, f)| (*t == f.field_type).then_some(*t))
                .collect();
            return Ok((settled, Some(Guess { inferred, sampled })));
        }
    }
    Ok((settle(p, scan_whole(p, reporter)?, meta, single)?, None))
}

/// Infers over every record of `p`'s file, with a progress bar.
fn scan_whole(p: &Planned, reporter: &dyn Reporter) -> Result<Scan, PublishError> {
    let progress = Arc::new(Progress::default());
    reporter.pass("inferring types", progress.clone(), p.bytes);
    let scan = citydata_formats::scan(&p.source, progress);
    reporter.end();
    scan.map_err(format_error(&p.source.path))
}

/// The schema of `scan` with the overrides of the package and the metadata applied, and the
/// spatial plan that goes with it.
fn settle(
    p: &Planned,
    scan: Scan,
    meta: Option<&DatasetMeta>,
    single: bool,
) -> Result<Settled, PublishError> {
    let file = &p.source.path;
    let mut schema = scan.schema;
    let rmeta = meta.and_then(|m| m.resources.get(&p.name));
    let overrides = [
        p.package_schema.as_ref(),
        // The top-level schema of the metadata is for a dataset published from one file.
        meta.and_then(|m| m.schema.as_ref()).filter(|_| single),
        rmeta.and_then(|r| r.schema.as_ref()),
    ];
    for over in overrides.into_iter().flatten() {
        schema.apply_override(over).map_err(|unknown| {
            PublishError::Invalid(format!(
                "{}: the schema override names columns the file does not have: {}",
                file.display(),
                unknown.join(", ")
            ))
        })?;
    }
    let spec = rmeta
        .and_then(|r| r.geometry.as_ref())
        .or_else(|| meta.and_then(|m| m.geometry.as_ref()).filter(|_| single));
    let crs = || p.geojson_crs.get_or_init(|| p.source.geojson_crs()).clone();
    let (spatial, note) = crate::spatial::plan(&crs, &schema, &scan.ranges, scan.rows, spec)
        .map_err(|e| PublishError::Invalid(format!("{}: {e}", file.display())))?;
    Ok(Settled { schema, rows: scan.rows, skipped: scan.skipped, spatial, notes: note.into_iter().collect() })
}

/// Adds a version of `p` and loads its rows: under the sample's schema in one pass that also
/// infers over the whole file, and again under the whole file's schema when the two differ.
/// Returns the version number, what was loaded and how many times the rows were read.
fn load_version(
    tx: &mut citydata_store::Publish,
    p: &Planned,
    meta: Option<&DatasetMeta>,
    single: bool,
    reporter: &dyn Reporter,
) -> Result<(i64, Settled, u8), PublishError> {
    let file = &p.source.path;
    let mut settled = p.settled.clone();
    let mut guess = p.guess.as_ref();
    let mut reads = 0;
    loop {
        reads += 1;
        let pass = match guess {
            Some(g) => Pass::Speculate { inferred: &g.inferred, sampled: g.sampled },
            None => Pass::Load,
        };
        let mut bytes = std::fs::File::open(file).map_err(|e| format_error(file)(e.into()))?;
        let nv = NewVersion {
            resource: &p.name,
            title: p.title.clone(),
            description: p.description.clone(),
            sha256: &p.sha256,
            filename: file.file_name().and_then(|s| s.to_str()).unwrap_or("data"),
            format: p.source.format.name(),
            media_type: p.source.format.media_type(),
            encoding: p.source.encoding.label(),
            schema: &settled.schema,
            skipped: skipped_texts(&settled.skipped),
            spatial: settled.spatial.as_ref().map(|sp| sp.new.clone()),
        };
        let t = std::time::Instant::now();
        let progress = Arc::new(Progress::default());
        reporter.pass(if reads == 1 { "loading" } else { "loading again" }, progress.clone(), p.bytes);
        // The rows are read from the start while the bytes are stored.
        let loaded = load_rows(&p.source, &settled.schema, settled.spatial.as_ref(), pass, progress, || {
            let t = std::time::Instant::now();
            let loader = tx.add_version(&nv, &mut bytes as &mut dyn Read);
            tracing::debug!(elapsed = ?t.elapsed(), "stored the bytes");
            loader
        });
        reporter.end();
        let (LoadedRows { pass: read, unlocated }, mut loader) = match loaded {
            Ok(l) => l,
            // The store refuses the guess (a column name it reserves for a geometry the sample's
            // plan would add): the whole file decides whether that stands.
            Err(LoadError::Store(StoreError::Invalid(m))) if guess.is_some() => {
                let whole = settle(p, scan_whole(p, reporter)?, meta, single)?;
                if whole.loads_as(&settled) {
                    return Err(StoreError::Invalid(m).into());
                }
                (settled, guess) = (whole, None);
                continue;
            }
            Err(LoadError::Format(e)) => return Err(format_error(file)(e)),
            Err(LoadError::Store(e)) => return Err(e.into()),
        };
        tracing::debug!(elapsed = ?t.elapsed(), rows = read.rows, speculative = guess.is_some(), "loaded the rows");
        if let Some(scan) = read.scan {
            let whole = settle(p, scan, meta, single)?;
            let held = whole.loads_as(&settled);
            if !held || (read.diverged && read.mismatch.is_none()) {
                tracing::debug!(file = %file.display(), held, "the whole file's schema is not the sample's, or the load stopped early: loading again");
                loader.abandon()?;
                (settled, guess) = (whole, None);
                continue;
            }
            if let Some(e) = read.mismatch {
                return Err(format_error(file)(e));
            }
            loader.set_schema(&whole.schema)?;
            loader.set_skipped(skipped_texts(&whole.skipped));
            settled = whole;
        }
        settled.rows = read.rows;
        if unlocated > 0 {
            settled
                .notes
                .push(format!("{unlocated} rows have no location (blank or impossible coordinates)"));
        }
        let number = loader.finish()?;
        return Ok((number, settled, reads));
    }
}

fn skipped_texts(skipped: &[Skipped]) -> Vec<String> {
    skipped.iter().map(|s| format!("{}: {}", s.loc, s.reason)).collect()
}

fn hash_file(path: &Path, reporter: &dyn Reporter) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let total = f.metadata()?.len();
    let progress = Arc::new(Progress::default());
    reporter.pass("hashing", progress.clone(), total);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        n_total += n as u64;
        progress.bytes.store(n_total, std::sync::atomic::Ordering::Relaxed);
    }
    reporter.end();
    Ok((hex::encode(h.finalize()), n_total))
}

type PackageFile = (String, PathBuf, Option<Format>, Option<Schema>);

/// Reads a Frictionless data package: its resources (local paths only) and its metadata, which
/// `--meta` overrides field by field.
fn datapackage(
    path: &Path,
    over: Option<DatasetMeta>,
) -> Result<(Vec<PackageFile>, Option<DatasetMeta>), PublishError> {
    #[derive(serde::Deserialize)]
    struct Package {
        #[serde(default)]
        title: Option<LangText>,
        #[serde(default)]
        description: Option<LangText>,
        #[serde(default)]
        keywords: Vec<String>,
        #[serde(default)]
        licenses: Vec<License>,
        #[serde(default)]
        resources: Vec<PkgResource>,
    }
    #[derive(serde::Deserialize)]
    struct License {
        name: Option<String>,
        title: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct PkgResource {
        name: Option<String>,
        path: serde_json::Value,
        format: Option<String>,
        title: Option<LangText>,
        description: Option<LangText>,
        schema: Option<Schema>,
    }
    let invalid = |m: String| PublishError::Invalid(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let pkg: Package =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not a valid data package: {e}")))?;
    if pkg.resources.is_empty() {
        return Err(invalid("the data package has no resources".into()));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut meta = DatasetMeta {
        title: pkg.title.unwrap_or_default(),
        description: pkg.description.unwrap_or_default(),
        tags: pkg.keywords,
        license: pkg.licenses.first().and_then(|l| l.name.clone().or_else(|| l.title.clone())),
        ..DatasetMeta::default()
    };
    let mut files = Vec::new();
    for (i, r) in pkg.resources.into_iter().enumerate() {
        let rel = match &r.path {
            serde_json::Value::String(s) => s.clone(),
            _ => {
                return Err(invalid(format!(
                    "resource {} must have one local path (multi-part paths are not supported)",
                    i + 1
                )))
            }
        };
        let rel_path = Path::new(&rel);
        if rel.contains("://")
            || rel_path.is_absolute()
            || rel_path.components().any(|c| c == std::path::Component::ParentDir)
        {
            return Err(invalid(format!(
                "resource path {rel:?} must be relative and inside the package's folder"
            )));
        }
        let name = r.name.clone().unwrap_or_else(|| {
            Slug::from_text(
                rel_path.file_stem().and_then(|s| s.to_str()).unwrap_or(""),
                &format!("resource-{}", i + 1),
            )
            .to_string()
        });
        let format =
            r.format.as_deref().map(Format::parse).transpose().map_err(|e| invalid(e.to_string()))?;
        let rm = meta.resources.entry(name.clone()).or_default();
        rm.title = r.title.unwrap_or_default();
        rm.description = r.description.unwrap_or_default();
        files.push((name, base.join(rel_path), format, r.schema));
    }
    if let Some(o) = over {
        merge_meta(&mut meta, o);
    }
    Ok((files, Some(meta)))
}

/// Lays the fields set in `over` onto `meta`.
fn merge_meta(meta: &mut DatasetMeta, over: DatasetMeta) {
    if !over.title.is_empty() {
        meta.title = over.title;
    }
    if !over.description.is_empty() {
        meta.description = over.description;
    }
    if !over.tags.is_empty() {
        meta.tags = over.tags;
    }
    meta.organization = over.organization.or(meta.organization.take());
    if !over.organization_title.is_empty() {
        meta.organization_title = over.organization_title;
    }
    meta.license = over.license.or(meta.license.take());
    meta.frequency = over.frequency.or(meta.frequency.take());
    meta.theme = over.theme.or(meta.theme.take());
    meta.source = over.source.or(meta.source.take());
    meta.schema = over.schema.or(meta.schema.take());
    meta.geometry = over.geometry.or(meta.geometry.take());
    for (k, v) in over.resources {
        meta.resources.insert(k, v);
    }
}

enum LoadError {
    Format(FormatError),
    Store(StoreError),
}

/// Rows on their way from the reading thread to the writing one, with each row's bounding box for
/// a spatial table.
#[derive(Default)]
struct Batch {
    rows: RowBatch,
    boxes: Vec<Option<[f64; 4]>>,
}

/// A batch goes to the writer when it holds this many rows, or this many bytes.
const BATCH_ROWS: usize = 2048;
const BATCH_BYTES: usize = 4 << 20;

/// The most bytes of batches on their way to the writer at once: enough for the reader to run ahead
/// while the writer stores the file's bytes, and memory stays bounded whatever the records.
const BATCHES_IN_FLIGHT: usize = 32 << 20;

impl Batch {
    fn bytes(&self) -> usize {
        self.rows.bytes() + self.boxes.len() * std::mem::size_of::<Option<[f64; 4]>>()
    }
}

/// The bytes of batches in flight, which the reader takes before it sends a batch and the writer
/// gives back once it has inserted it.
struct Budget {
    /// Bytes in flight, and whether the writer has stopped.
    used: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl Budget {
    fn new() -> Self {
        Self { used: std::sync::Mutex::new((0, false)), changed: std::sync::Condvar::new() }
    }

    /// Waits until `n` more bytes fit (a batch always fits when nothing else is in flight); false
    /// when the writer has stopped.
    fn take(&self, n: usize) -> bool {
        let mut g = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !g.1 && g.0 > 0 && g.0 + n > BATCHES_IN_FLIGHT {
            g = self.changed.wait(g).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        g.0 += n;
        !g.1
    }

    fn give(&self, n: usize) {
        let mut g = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 = g.0.saturating_sub(n);
        self.changed.notify_all();
    }

    /// The writer takes no more batches.
    fn close(&self) {
        self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = true;
        self.changed.notify_all();
    }
}

/// Closes a [`Budget`] when dropped, also while a panic unwinds.
struct CloseOnDrop<'b>(&'b Budget);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Columns with more distinct values than this get no value counts.
const MAX_COUNTED_VALUES: usize = 1000;

type FastMap<K> = std::collections::HashMap<K, u64, foldhash::fast::RandomState>;

/// Counts the values of one column while it loads, until it has too many distinct ones.
#[derive(Default)]
struct ValueCounter {
    texts: FastMap<String>,
    ints: FastMap<i64>,
    reals: FastMap<u64>,
    nulls: u64,
    gave_up: bool,
}

impl ValueCounter {
    fn add(&mut self, v: &Value<'_>) {
        if self.gave_up {
            return;
        }
        match v {
            Value::Null => self.nulls += 1,
            Value::Int(i) => *self.ints.entry(*i).or_default() += 1,
            // -0.0 and 0.0 are one value to SQL.
            Value::Real(r) => *self.reals.entry(if *r == 0.0 { 0 } else { r.to_bits() }).or_default() += 1,
            Value::Text(t) => match self.texts.get_mut(t.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    self.texts.insert(t.to_string(), 1);
                }
            },
        }
        if self.texts.len() + self.ints.len() + self.reals.len() > MAX_COUNTED_VALUES {
            *self = ValueCounter { gave_up: true, ..ValueCounter::default() };
        }
    }

    fn into_counts(self, column: &str) -> Option<ValueCounts> {
        if self.gave_up {
            return None;
        }
        let mut values: Vec<(Value<'static>, u64)> = Vec::new();
        if self.nulls > 0 {
            values.push((Value::Null, self.nulls));
        }
        values.extend(self.ints.into_iter().map(|(i, n)| (Value::Int(i), n)));
        values.extend(self.reals.into_iter().map(|(r, n)| (Value::Real(f64::from_bits(r)), n)));
        values.extend(self.texts.into_iter().map(|(t, n)| (Value::Text(t.into()), n)));
        Some(ValueCounts { column: column.to_owned(), values })
    }
}

/// What [`load_rows`] did.
struct LoadedRows {
    /// What the pass over the file did.
    pass: citydata_formats::Loaded,
    /// Rows without a location (spatial tables).
    unlocated: u64,
}

/// Loads the rows of `source` into the loader that `begin` makes (it stores the file's bytes and
/// creates the table while the first rows are read); with a spatial plan, each row gets its
/// geometry and box. Reading, converting and counting run on one thread while this one inserts, so
/// that the two cores share the load. Returns what was loaded and the loader, to finish.
fn load_rows<'t>(
    source: &Source,
    schema: &Schema,
    plan: Option<&crate::spatial::Plan>,
    pass: Pass<'_>,
    progress: Arc<Progress>,
    begin: impl FnOnce() -> Result<TableLoader<'t>, StoreError>,
) -> Result<(LoadedRows, TableLoader<'t>), LoadError> {
    let width = schema.fields.len();
    let replaces = plan.and_then(crate::spatial::Plan::replaces);
    let derived = plan.is_some_and(crate::spatial::Plan::derived);
    let (tx, rx) = std::sync::mpsc::channel::<Batch>();
    let budget = &Budget::new();
    let stop = progress.clone();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new().name("publish-read".into()).spawn_scoped(scope, move || {
            let mut rows = RowBatch::default();
            let mut boxes = Vec::new();
            let mut rows_in_batch = 0;
            let mut geometry = String::new();
            let mut types: Vec<&'static str> = Vec::new();
            let mut unlocated = 0u64;
            let mut values: Vec<Value<'static>> = Vec::new();
            let send = |batch: Batch| budget.take(batch.bytes()) && tx.send(batch).is_ok();
            let result = citydata_formats::load(
                source,
                schema,
                pass,
                progress,
                &mut rows,
                &mut |loc, batch, start| {
                    // Where the row is comes first: an invalid geometry refuses the row.
                    let mut located = None;
                    if let Some(plan) = plan {
                        let mut row = recycle(std::mem::take(&mut values));
                        row.extend(batch.slots[start..].iter().map(|s| batch.value(*s)));
                        let mut kind = "";
                        let found = plan.locate(&row, &mut geometry, &mut kind);
                        values = recycle(row);
                        match found {
                            Ok(crate::spatial::Located::At(b)) => {
                                located = Some(b);
                                if !types.contains(&kind) {
                                    types.push(kind);
                                }
                            }
                            Ok(crate::spatial::Located::Nowhere) => unlocated += 1,
                            Err(e) => return Err(FormatError::at(loc, e)),
                        }
                    }
                    if plan.is_some() {
                        boxes.push(located);
                        let geometry_slot =
                            if located.is_some() { batch.push_text(&geometry) } else { Slot::Null };
                        match replaces {
                            Some(i) => batch.slots[start + i] = geometry_slot,
                            None if derived => batch.slots.push(geometry_slot),
                            None => {}
                        }
                    }
                    rows_in_batch += 1;
                    if rows_in_batch == BATCH_ROWS || batch.bytes() >= BATCH_BYTES {
                        rows_in_batch = 0;
                        if !send(Batch { rows: std::mem::take(batch), boxes: std::mem::take(&mut boxes) }) {
                            return Err(FormatError::file("the writer stopped"));
                        }
                    }
                    Ok(())
                },
            );
            if result.is_ok() && !rows.slots.is_empty() {
                send(Batch { rows, boxes });
            }
            let types: Vec<String> = types.into_iter().map(str::to_owned).collect();
            result.map(|loaded| (loaded, types, unlocated))
        });
        let reader = reader
            .map_err(|e| LoadError::Format(FormatError::file(format!("cannot start a thread: {e}"))))?;
        // The writer: stores the bytes and creates the table (`begin`), then inserts batch after batch
        // and counts its values (here rather than in the reader, which has more to do per row).
        let mut counters: Vec<ValueCounter> = (0..width).map(|_| ValueCounter::default()).collect();
        // However the writer ends (an error, a panic), the reader must not wait for it.
        let closing = CloseOnDrop(budget);
        let mut written = begin();
        if let Ok(loader) = &mut written {
            let row_width = width + usize::from(derived);
            for batch in rx.iter().filter(|_| row_width > 0) {
                let inserted = loader.insert_batch(&batch.rows, &batch.boxes);
                for row in batch.rows.slots.chunks(row_width) {
                    for (slot, counter) in row.iter().zip(&mut counters) {
                        counter.add(&batch.rows.value(*slot));
                    }
                }
                budget.give(batch.bytes());
                if let Err(e) = inserted {
                    written = Err(e);
                    break;
                }
            }
        }
        if written.is_err() {
            stop.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        drop(closing);
        drop(rx);
        let read =
            reader.join().map_err(|_| LoadError::Format(FormatError::file("the reader thread panicked")))?;
        let mut loader = written.map_err(LoadError::Store)?;
        let (loaded, types, unlocated) = read.map_err(LoadError::Format)?;
        if loaded.mismatch.is_none() {
            // A geometry column's values are not counted (the counters saw its stored GeoJSON).
            let counts = counters
                .into_iter()
                .zip(&schema.fields)
                .filter(|(_, f)| Some(f.name.as_str()) != plan.map(|p| p.new.column.as_str()))
                .filter_map(|(c, f)| c.into_counts(&f.name))
                .collect();
            loader.set_value_counts(counts);
            loader.set_geometry_types(types);
        }
        Ok((LoadedRows { pass: loaded, unlocated }, loader))
    })
}

/// An empty vector on the memory of `v`, for values that borrow from something else.
fn recycle<'b>(mut v: Vec<Value<'_>>) -> Vec<Value<'b>> {
    v.clear();
    // An empty vector's items are never made; collecting in place keeps its allocation.
    v.into_iter().map(|_| unreachable!("an empty vector has no items")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// `rows` lines of `line(i)` under `header`.
    fn table(header: &str, rows: usize, line: impl Fn(usize) -> String) -> String {
        let mut s = format!("{header}\n");
        for i in 0..rows {
            let _ = writeln!(s, "{}", line(i));
        }
        s
    }

    /// Publishes `text` as `file` and checks that the version holds what inferring over the whole
    /// file first and then loading gives (schema, rows, values, skipped rows), and that loading read
    /// the rows `reads` times.
    fn check(file: &str, text: &str, read: ReadOptions, reads: u8) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let slug = Slug::parse("d").unwrap();
        let opts =
            PublishOptions { read: read.clone(), publisher: "test".into(), ..PublishOptions::default() };
        let out = publish(&store, &path, &slug, &opts, &Quiet).unwrap();
        assert_eq!(out[0].reads, reads, "{file}: reads");

        let source = Source::open(&path, None, read).unwrap();
        let whole = citydata_formats::scan(&source, Arc::default()).unwrap();
        let mut want: Vec<Vec<Value<'static>>> = Vec::new();
        let mut batch = RowBatch::default();
        let width = whole.schema.fields.len();
        citydata_formats::load(
            &source,
            &whole.schema,
            Pass::Load,
            Arc::default(),
            &mut batch,
            &mut |_, b, start| {
                want.push(b.slots[start..].iter().map(|s| b.value(*s).into_owned()).collect());
                Ok(())
            },
        )
        .unwrap();

        let ds = store.dataset("d").unwrap().unwrap();
        let res = &ds.resources[0];
        let v = res.current().unwrap();
        assert_eq!(v.schema, whole.schema, "{file}: schema");
        assert_eq!(v.skipped, skipped_texts(&whole.skipped), "{file}: skipped");
        assert_eq!(v.row_count, i64::try_from(want.len()).unwrap(), "{file}: rows");
        let got = store.rows(&res.id, 1_000_000, 0).unwrap();
        assert_eq!(got.columns.len(), width + 1, "{file}: columns");
        for (i, (g, w)) in got.rows.iter().zip(&want).enumerate() {
            assert_eq!(&g[1..], w.as_slice(), "{file}: row {}", i + 1);
        }
        assert_eq!(got.rows.len(), want.len());
    }

    const PAST_SAMPLE: usize = 25_000;

    #[test]
    fn one_read_when_the_sample_holds_and_two_when_the_whole_file_differs() {
        let n = PAST_SAMPLE + 5_000;
        let normal = ReadOptions::default();
        // The first records decide, and the rest agree.
        check(
            "same.csv",
            &table("id,name,day", n, |i| format!("{i},n{},{:02}/01/2024", i % 7, 1 + i % 28)),
            normal.clone(),
            1,
        );
        // A small file is read whole for the sample: its schema is final at once.
        check("small.csv", &table("id,x", 50, |i| format!("{i},{}", i * 2)), normal.clone(), 1);
        // Only the description of a column changes (thousands separators, day-first dates): the
        // table stands, the schema says so.
        let grouped =
            |i: usize| if i == PAST_SAMPLE { "\"1,234\"".to_owned() } else { format!("{}", i % 999) };
        check("grouped.csv", &table("id,n", n, |i| format!("{i},{}", grouped(i))), normal.clone(), 1);
        let dates =
            |i: usize| if i > PAST_SAMPLE { "31/12/2024".to_owned() } else { "2024-01-05".to_owned() };
        check("dates.csv", &table("id,d", n, |i| format!("{i},{}", dates(i))), normal.clone(), 1);
        // A type changes further on: loaded again under the whole file's schema.
        let stray = |i: usize| if i == PAST_SAMPLE { "12a".to_owned() } else { format!("{}", i % 50) };
        check("stray.csv", &table("id,n", n, |i| format!("{i},{}", stray(i))), normal.clone(), 2);
        let real = |i: usize| if i == n - 1 { "2.5".to_owned() } else { format!("{}", i % 50) };
        check("real.csv", &table("id,n", n, |i| format!("{i},{}", real(i))), normal.clone(), 2);
        // A column empty in the sample (text there) gets values later (numbers in the whole file).
        let late = |i: usize| if i > PAST_SAMPLE { format!("{}", i) } else { String::new() };
        check("late.csv", &table("id,late", n, |i| format!("{i},{}", late(i))), normal.clone(), 2);
        // A key that first appears after the sample is a column of the whole file.
        let mut nd = String::new();
        for i in 0..n {
            if i > PAST_SAMPLE {
                let _ = writeln!(nd, r#"{{"id":{i},"extra":"e{i}"}}"#);
            } else {
                let _ = writeln!(nd, r#"{{"id":{i}}}"#);
            }
        }
        check("keys.ndjson", &nd, normal.clone(), 2);
        // Rows left out after the sample are reported.
        let ragged = |i: usize| if i == PAST_SAMPLE { format!("{i}") } else { format!("{i},{}", i % 3) };
        let skip = ReadOptions { skip_bad_rows: true, ..ReadOptions::default() };
        check("ragged.csv", &table("id,n", n, ragged), skip, 1);
        // Past the sample a column's type changes and then comes back: the load stopped at the
        // change, so it loads again under the same schema.
        let back = |i: usize| match i {
            _ if i <= PAST_SAMPLE => String::new(),
            _ if i == n - 1 => "text".to_owned(),
            _ => format!("{i}"),
        };
        check("back.csv", &table("id,b", n, |i| format!("{i},{}", back(i))), normal.clone(), 2);
        // A sample that met no column yet (JSON records without keys) decides nothing.
        let mut empty = "{}\n".repeat(PAST_SAMPLE);
        for i in 0..10 {
            let _ = writeln!(empty, r#"{{"k":{i}}}"#);
        }
        check("keyless.ndjson", &empty, normal, 1);
    }

    fn publish_text(dir: &Path, file: &str, text: &str) -> Result<Vec<ResourceOutcome>, PublishError> {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let store = Store::open(&dir.join("t.db")).unwrap();
        let opts = PublishOptions { publisher: "test".into(), ..PublishOptions::default() };
        publish(&store, &path, &Slug::parse("d").unwrap(), &opts, &Quiet)
    }

    #[test]
    fn unchanged_bytes_report_the_whole_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let n = PAST_SAMPLE + 100;
        let text = table("id,n", n, |i| if i == n - 1 { format!("{i},x") } else { format!("{i},{i}") });
        let first = publish_text(dir.path(), "u.csv", &text).unwrap();
        assert_eq!((first[0].version, first[0].rows, first[0].reads), (Some(1), n as u64, 2));
        let again = publish_text(dir.path(), "u.csv", &text).unwrap();
        assert_eq!((again[0].version, again[0].rows, again[0].reads), (None, n as u64, 0));
        assert_eq!(again[0].schema, first[0].schema);
    }

    /// `n` point features, the one at `bad` (if any) outside WGS 84.
    fn points(n: usize, bad: Option<usize>) -> String {
        let mut s = String::from(r#"{"type":"FeatureCollection","features":["#);
        for i in 0..n {
            let x = if Some(i) == bad { 200.0 } else { 114.1 + (i % 100) as f64 * 0.001 };
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                s,
                r#"{sep}{{"type":"Feature","properties":{{"id":{i}}},"geometry":{{"type":"Point","coordinates":[{x},22.3]}}}}"#
            );
        }
        s.push_str("]}");
        s
    }

    #[test]
    fn spatial_files_past_the_sample() {
        let dir = tempfile::tempdir().unwrap();
        let n = PAST_SAMPLE + 10;
        let good = publish_text(dir.path(), "p.geojson", &points(n, None)).unwrap();
        assert_eq!((good[0].rows, good[0].reads), (n as u64, 1));
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let v = store.dataset("d").unwrap().unwrap().resources[0].current().unwrap().clone();
        assert_eq!(v.spatial.unwrap().count, n as u64);
        // A geometry outside WGS 84 past the sample fails the publish and names its record, as it
        // did when the file was read twice.
        let e =
            publish_text(dir.path(), "bad.geojson", &points(n, Some(PAST_SAMPLE))).unwrap_err().to_string();
        assert!(e.contains(&format!("record {}", PAST_SAMPLE + 1)), "{e}");
        assert!(e.contains("longitude"), "{e}");
        assert_eq!(store.dataset("d").unwrap().unwrap().resources.len(), 1, "nothing of the failed file");
    }

    #[test]
    fn a_name_the_store_refuses_under_the_samples_plan_only() {
        // The sample finds latitude and longitude and would add the `_geom` column, which the file
        // has already; past the sample a latitude is text, so the whole file has no location.
        let dir = tempfile::tempdir().unwrap();
        let n = PAST_SAMPLE + 10;
        let lat =
            |i: usize| if i == PAST_SAMPLE { "unknown".to_owned() } else { format!("22.{}", 300 + i % 50) };
        let text =
            table("id,_geom,latitude,longitude", n, |i| format!("{i},g{i},{},114.{}", lat(i), 100 + i % 50));
        let out = publish_text(dir.path(), "names.csv", &text).unwrap();
        assert_eq!((out[0].rows, out[0].reads, out[0].spatial.as_deref()), (n as u64, 2, None));
    }

    #[test]
    fn an_override_the_file_breaks_after_the_sample_fails_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.csv");
        let n = PAST_SAMPLE + 10;
        let v = |i: usize| if i == PAST_SAMPLE { "x".to_owned() } else { format!("{i}") };
        std::fs::write(&path, table("id,code", n, |i| format!("{i},{}", v(i)))).unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let meta: DatasetMeta =
            serde_json::from_str(r#"{"schema":{"fields":[{"name":"code","type":"integer"}]}}"#).unwrap();
        let opts = PublishOptions { meta: Some(meta), publisher: "test".into(), ..PublishOptions::default() };
        let e = publish(&store, &path, &Slug::parse("d").unwrap(), &opts, &Quiet).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!(
                "line {} (record {}): column \"code\": expected an integer, found \"x\"",
                n - 8,
                n - 9
            )),
            "{e}"
        );
        assert!(store.dataset("d").unwrap().is_none(), "nothing was published");
    }
}
