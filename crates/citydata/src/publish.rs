//! The publishing pipeline: a file (or a Frictionless data package) in, a new version of a dataset out.
//!
//! For each file: detect format and encoding, hash the bytes, scan once to infer the schema (the
//! write lock is not held meanwhile), apply the metadata's schema override; then, in ONE store
//! transaction for all files of the call, store the bytes, add the version and load the rows into a
//! new table that replaces the old one. Any error rolls everything back: the previous version keeps
//! serving, unchanged. Identical bytes make no new version.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use citydata_formats::{Format, FormatError, Progress, ReadOptions, Skipped, Source};
use citydata_model::{DatasetMeta, LangText, Schema, Slug, Value};
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
}

/// One file to publish as one resource.
struct Planned {
    name: String,
    source: Source,
    sha256: String,
    bytes: u64,
    schema: Schema,
    rows: u64,
    skipped: Vec<Skipped>,
    title: LangText,
    description: LangText,
    spatial: Option<crate::spatial::Plan>,
    notes: Vec<String>,
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
        let progress = Arc::new(Progress::default());
        reporter.pass("inferring types", progress.clone(), bytes);
        let t = std::time::Instant::now();
        let scan = citydata_formats::scan(&source, progress);
        reporter.end();
        tracing::debug!(file = %file.display(), elapsed = ?t.elapsed(), "scanned");
        let scan = scan.map_err(format_error(&file))?;
        let mut schema = scan.schema;
        let rmeta = meta.as_ref().and_then(|m| m.resources.get(&name));
        let overrides = [
            package_schema.as_ref(),
            // The top-level schema of the metadata is for a dataset published from one file.
            meta.as_ref().and_then(|m| m.schema.as_ref()).filter(|_| single),
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
            .or_else(|| meta.as_ref().and_then(|m| m.geometry.as_ref()).filter(|_| single));
        let (spatial, note) = crate::spatial::plan(&source, &schema, &scan.ranges, scan.rows, spec)
            .map_err(|e| PublishError::Invalid(format!("{}: {e}", file.display())))?;
        planned.push(Planned {
            spatial,
            notes: note.into_iter().collect(),
            title: rmeta.map(|r| r.title.clone()).unwrap_or_default(),
            description: rmeta.map(|r| r.description.clone()).unwrap_or_default(),
            name,
            source,
            sha256,
            bytes,
            schema,
            rows: scan.rows,
            skipped: scan.skipped,
        });
    }
    let mut tx = store.begin_publish(slug, meta.as_ref(), &opts.publisher)?;
    let mut outcomes = Vec::new();
    for mut p in planned {
        let unchanged = tx.current_sha256(&p.name)?.as_deref() == Some(p.sha256.as_str());
        let version = if unchanged {
            None
        } else {
            let file = &p.source.path;
            let mut bytes = std::fs::File::open(file).map_err(|e| format_error(file)(e.into()))?;
            let skipped: Vec<String> = p.skipped.iter().map(|s| format!("{}: {}", s.loc, s.reason)).collect();
            let nv = NewVersion {
                resource: &p.name,
                title: p.title.clone(),
                description: p.description.clone(),
                sha256: &p.sha256,
                filename: file.file_name().and_then(|s| s.to_str()).unwrap_or("data"),
                format: p.source.format.name(),
                media_type: p.source.format.media_type(),
                encoding: p.source.encoding.label(),
                schema: &p.schema,
                skipped,
                spatial: p.spatial.as_ref().map(|sp| sp.new.clone()),
            };
            let t = std::time::Instant::now();
            let mut loader = tx.add_version(&nv, &mut bytes as &mut dyn Read)?;
            tracing::debug!(elapsed = ?t.elapsed(), "stored the bytes");
            let t = std::time::Instant::now();
            let progress = Arc::new(Progress::default());
            reporter.pass("loading", progress.clone(), p.bytes);
            let loaded = load_rows(&p.source, &p.schema, p.spatial.as_ref(), progress, &mut loader);
            reporter.end();
            let (_, unlocated) = loaded.map_err(|e| match e {
                LoadError::Format(e) => format_error(file)(e),
                LoadError::Store(e) => PublishError::Store(e),
            })?;
            if unlocated > 0 {
                p.notes.push(format!("{unlocated} rows have no location (blank or impossible coordinates)"));
            }
            let number = loader.finish()?;
            tracing::debug!(elapsed = ?t.elapsed(), "loaded the rows");
            Some(number)
        };
        outcomes.push(ResourceOutcome {
            name: p.name,
            version,
            rows: p.rows,
            sha256: p.sha256,
            bytes: p.bytes,
            format: p.source.format,
            encoding: p.source.encoding.label(),
            schema: p.schema,
            skipped: p.skipped,
            spatial: p.spatial.map(|sp| sp.new.source),
            notes: p.notes,
        });
    }
    let t = std::time::Instant::now();
    tx.commit()?;
    tracing::debug!(elapsed = ?t.elapsed(), "committed");
    Ok(outcomes)
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

/// One slot of a [`RowBatch`]: a value whose text lives in the batch's text buffer.
#[derive(Clone, Copy)]
enum Slot {
    Null,
    Int(i64),
    Real(f64),
    Text(usize, usize),
}

/// Rows on their way from the reader thread to the writer: values in one flat vector, texts in one
/// buffer, so that a batch costs two allocations, not one per cell.
#[derive(Default)]
struct RowBatch {
    slots: Vec<Slot>,
    text: String,
    /// Each row's bounding box, for a spatial table.
    boxes: Vec<Option<[f64; 4]>>,
}

const BATCH_ROWS: usize = 2048;

/// Reads and converts rows on one thread while this one inserts them, so the two cores share the load.
/// Columns with more distinct values than this get no value counts.
const MAX_COUNTED_VALUES: usize = 1000;

/// Counts the values of one column while it loads, until it has too many distinct ones.
#[derive(Default)]
struct ValueCounter {
    texts: std::collections::HashMap<String, u64>,
    ints: std::collections::HashMap<i64, u64>,
    reals: std::collections::HashMap<u64, u64>,
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

/// Loads the rows of `source` into `loader`; with a spatial plan, each row gets its geometry and box.
/// Returns the rows read and how many of them have no location.
fn load_rows(
    source: &Source,
    schema: &Schema,
    plan: Option<&crate::spatial::Plan>,
    progress: Arc<Progress>,
    loader: &mut TableLoader<'_>,
) -> Result<(u64, u64), LoadError> {
    let width = schema.fields.len();
    let replaces = plan.and_then(crate::spatial::Plan::replaces);
    let derived = plan.is_some_and(crate::spatial::Plan::derived);
    let (tx, rx) = std::sync::mpsc::sync_channel::<RowBatch>(8);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = RowBatch::default();
            let mut rows_in_batch = 0;
            let mut counters: Vec<ValueCounter> = (0..width).map(|_| ValueCounter::default()).collect();
            let mut geometry = String::new();
            let mut types: Vec<&'static str> = Vec::new();
            let mut unlocated = 0u64;
            let mut record = 0u64;
            let result = citydata_formats::load(source, schema, progress, &mut |row| {
                record += 1;
                for (v, counter) in row.iter().zip(&mut counters) {
                    counter.add(v);
                }
                let mut located = false;
                if let Some(plan) = plan {
                    let mut kind = "";
                    match plan.locate(row, &mut geometry, &mut kind) {
                        Ok(crate::spatial::Located::At(b)) => {
                            batch.boxes.push(Some(b));
                            located = true;
                            if !types.contains(&kind) {
                                types.push(kind);
                            }
                        }
                        Ok(crate::spatial::Located::Nowhere) => {
                            batch.boxes.push(None);
                            unlocated += 1;
                        }
                        Err(e) => {
                            return Err(FormatError::at(citydata_formats::Loc { line: 0, record }, e));
                        }
                    }
                }
                let text = |batch: &mut RowBatch, t: &str| {
                    let start = batch.text.len();
                    batch.text.push_str(t);
                    Slot::Text(start, batch.text.len())
                };
                for (i, v) in row.iter().enumerate() {
                    let slot = if Some(i) == replaces {
                        if located {
                            text(&mut batch, &geometry)
                        } else {
                            Slot::Null
                        }
                    } else {
                        match v {
                            Value::Null => Slot::Null,
                            Value::Int(i) => Slot::Int(*i),
                            Value::Real(r) => Slot::Real(*r),
                            Value::Text(t) => text(&mut batch, t),
                        }
                    };
                    batch.slots.push(slot);
                }
                if derived {
                    let slot = if located { text(&mut batch, &geometry) } else { Slot::Null };
                    batch.slots.push(slot);
                }
                rows_in_batch += 1;
                if rows_in_batch == BATCH_ROWS {
                    rows_in_batch = 0;
                    let full = std::mem::take(&mut batch);
                    tx.send(full).map_err(|_| FormatError::file("the writer stopped"))?;
                }
                Ok(())
            });
            if result.is_ok() && !batch.slots.is_empty() {
                let _ = tx.send(batch);
            }
            let counts: Vec<ValueCounts> = counters
                .into_iter()
                .zip(&schema.fields)
                .filter(|(_, f)| Some(f.name.as_str()) != plan.map(|p| p.new.column.as_str()))
                .filter_map(|(c, f)| c.into_counts(&f.name))
                .collect();
            let types: Vec<String> = types.into_iter().map(str::to_owned).collect();
            result.map(|rows| (rows, counts, types, unlocated))
        });
        let mut store_error = None;
        let row_width = width + usize::from(derived);
        'batches: for batch in &rx {
            if row_width == 0 {
                continue;
            }
            let values: Vec<Value<'_>> = batch
                .slots
                .iter()
                .map(|s| match *s {
                    Slot::Null => Value::Null,
                    Slot::Int(i) => Value::Int(i),
                    Slot::Real(r) => Value::Real(r),
                    Slot::Text(a, b) => Value::Text(std::borrow::Cow::Borrowed(&batch.text[a..b])),
                })
                .collect();
            let inserted = if plan.is_some() {
                loader.insert_located(&values, &batch.boxes)
            } else {
                loader.insert_many(&values)
            };
            if let Err(e) = inserted {
                store_error = Some(e);
                break 'batches;
            }
        }
        drop(rx);
        let read =
            reader.join().map_err(|_| LoadError::Format(FormatError::file("the reader thread panicked")))?;
        match store_error {
            Some(e) => Err(LoadError::Store(e)),
            None => {
                let (rows, counts, types, unlocated) = read.map_err(LoadError::Format)?;
                loader.set_value_counts(counts);
                loader.set_geometry_types(types);
                Ok((rows, unlocated))
            }
        }
    })
}
