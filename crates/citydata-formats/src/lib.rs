//! Bytes in, typed records out: encoding and format detection, one streaming reader per format, and
//! type inference over the whole file.
//!
//! [`scan`] infers the columns and their types over every record; [`load`] reads the file and hands
//! each record, converted to a schema's types, to the caller. A publish reads a file once when it
//! can: it guesses the schema from a [`sample`] of the first records and loads under the guess while
//! the same pass infers over every record ([`Pass::Speculate`]); only when the whole file disagrees
//! with the guess does it read the file a second time.
//! Neither pass holds the file in memory: readers stream, and every reader is bounded (record size,
//! XML entity handling, inflated size of XLSX parts).
//!
//! **Architecture Invariant:** this crate knows no database and no HTTP; it depends only on
//! `citydata-model`. Errors carry the line or record and the reason; the caller adds the file name.

mod csv_reader;
mod detect;
mod encoding;
mod infer;
mod json_reader;
mod xlsx_reader;
mod xml_reader;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use citydata_model::Schema;
pub use citydata_model::{RowBatch, Slot};

pub use detect::Format;
pub use encoding::TextEncoding;
pub use infer::{convert, convert_into, infer_text, Inference};

/// Where in a file a record stands: the 1-based line where it starts (0 when the format has no lines,
/// as in XLSX where it is the sheet row) and its 1-based number among the data records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// 1-based line (or sheet row) where the record starts; 0 when unknown.
    pub line: u64,
    /// 1-based index of the record among data records.
    pub record: u64,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.record) {
            (0, 0) => Ok(()),
            (0, r) => write!(f, "record {r}"),
            (l, 0) => write!(f, "line {l}"),
            (l, r) => write!(f, "line {l} (record {r})"),
        }
    }
}

/// Why a file cannot be read. The pipeline adds the file name in front.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct FormatError {
    /// Where, when known.
    pub loc: Option<Loc>,
    /// The column concerned, when one is.
    pub column: Option<String>,
    /// What is wrong, said so that the publisher knows what to fix.
    pub message: String,
}

impl FormatError {
    /// An error about the whole file.
    pub fn file(message: impl Into<String>) -> Self {
        Self { loc: None, column: None, message: message.into() }
    }

    /// An error at `loc`.
    pub fn at(loc: Loc, message: impl Into<String>) -> Self {
        Self { loc: Some(loc), column: None, message: message.into() }
    }

    /// The same error, naming `column`.
    #[must_use]
    pub fn in_column(mut self, column: &str) -> Self {
        self.column = Some(column.to_owned());
        self
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = self.loc.filter(|l| l.line != 0 || l.record != 0) {
            write!(f, "{loc}: ")?;
        }
        if let Some(c) = &self.column {
            write!(f, "column {c:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for FormatError {
    fn from(e: std::io::Error) -> Self {
        FormatError::file(format!("read error: {e}"))
    }
}

/// One cell as a reader found it. Text is inferred; JSON numbers and booleans come typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// Absent or JSON null.
    Null,
    /// Text, to be typed by inference.
    Text(Cow<'a, str>),
    /// A JSON integer.
    Int(i64),
    /// A JSON (or spreadsheet) number.
    Num(f64),
    /// A JSON (or spreadsheet) boolean.
    Bool(bool),
    /// A GeoJSON geometry, as JSON text.
    Geometry(Cow<'a, str>),
}

/// The columns of a file in order of first appearance. Readers of keyed formats (JSON, XML) add a
/// column when a record brings a new key; CSV and XLSX take theirs from the header row.
///
/// Column names are unique without regard to ASCII case (as SQL identifiers are), and `_id` is
/// reserved for the row id: a clashing name gets `_2`, `_3`, ... appended.
#[derive(Debug, Default, Clone)]
pub struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
    taken: HashSet<String>,
}

impl Columns {
    /// The index of the column for key `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let unique = self.unique(name.to_owned());
        let i = self.names.len();
        self.names.push(unique);
        self.index.insert(name.to_owned(), i);
        i
    }

    fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut n = 2;
        while name.eq_ignore_ascii_case("_id") || self.taken.contains(&name.to_ascii_lowercase()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(name.to_ascii_lowercase());
        name
    }

    /// Sets the columns from a header row: blank names become `column_N`, repeated names get `_2`,
    /// `_3`, ... Surrounding white space is trimmed; everything else (Chinese, bilingual names) is kept.
    pub fn set_header<'s>(&mut self, header: impl IntoIterator<Item = &'s str>) {
        *self = Columns::default();
        for (i, raw) in header.into_iter().enumerate() {
            let base = match raw.trim() {
                "" => format!("column_{}", i + 1),
                s => s.to_owned(),
            };
            let name = self.unique(base);
            self.index.insert(name.clone(), i);
            self.names.push(name);
        }
    }

    /// The names, in order.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many columns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A row that `--skip-bad-rows` left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Where it stands.
    pub loc: Loc,
    /// Why it was left out.
    pub reason: String,
}

/// Options a publisher can give a reader.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Leave out malformed rows (reporting each) instead of failing.
    pub skip_bad_rows: bool,
    /// XLSX: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// XML: the path of the repeated record element, such as `dataset/facility` (default: found by itself).
    pub record_path: Option<String>,
    /// XLSX: the most bytes the zip's parts may inflate to, in all.
    pub max_inflated_bytes: u64,
    /// The longest record (or line) a text reader accepts, in bytes.
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            skip_bad_rows: false,
            sheet: None,
            record_path: None,
            max_inflated_bytes: 1 << 30,
            max_record_bytes: 64 << 20,
        }
    }
}

/// Counters a progress display reads while a pass runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the file read so far in this pass.
    pub bytes: AtomicU64,
    /// Records read so far in this pass.
    pub records: AtomicU64,
    /// Set by another thread to end a [`load`] early (with an error): its consumer has failed.
    pub stop: std::sync::atomic::AtomicBool,
}

/// What a reader pushes each record into: its location and its cells, by column index (a record may
/// be shorter than the column list; missing cells are null).
pub type Sink<'s> = dyn FnMut(Loc, &[Cell<'_>]) -> Result<(), FormatError> + 's;

/// A streaming reader over one file. Each call to `read` reads the file from its start.
pub trait Reader {
    /// Reads every record, interning column names into `columns` and pushing records into `sink`.
    /// Rows left out under `skip_bad_rows` are added to `skipped`.
    ///
    /// # Errors
    /// The first malformed record (unless skipped), an I/O error, or the first error of `sink`.
    fn read(
        &mut self,
        columns: &mut Columns,
        skipped: &mut Vec<Skipped>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError>;
}

/// A file ready to be read: its format and encoding found, its options set.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its text encoding (UTF-8 for binary formats).
    pub encoding: TextEncoding,
    /// Reader options.
    pub options: ReadOptions,
}

impl Source {
    /// Opens `path`, taking `format` when given and otherwise detecting it from the name and the
    /// first bytes, and detecting the text encoding.
    ///
    /// # Errors
    /// Empty or binary files, unknown formats, encodings that are neither UTF-8/16 nor Big5-HKSCS.
    pub fn open(path: &Path, format: Option<Format>, options: ReadOptions) -> Result<Self, FormatError> {
        let (format, encoding) = detect::detect(path, format)?;
        Ok(Self { path: path.to_owned(), format, encoding, options })
    }

    /// A reader over the file from its start, counting progress into `progress`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn reader(&self, progress: Arc<Progress>) -> Result<Box<dyn Reader>, FormatError> {
        let file =
            std::fs::File::open(&self.path).map_err(|e| FormatError::file(format!("cannot open: {e}")))?;
        let counted = CountingRead { inner: file, progress };
        Ok(match self.format {
            Format::Csv | Format::Tsv => {
                Box::new(csv_reader::CsvReader::new(self.text(counted)?, self.format, &self.options))
            }
            Format::Json | Format::GeoJson | Format::Ndjson => {
                Box::new(json_reader::JsonReader::new(self.text(counted)?, self.format, &self.options))
            }
            Format::Xml => Box::new(xml_reader::XmlReader::new(self.text(counted)?, &self.options)),
            Format::Xlsx => Box::new(xlsx_reader::XlsxReader::new(self.path.clone(), counted, &self.options)),
            Format::DataPackage => {
                return Err(FormatError::file("a datapackage.json is published resource by resource"))
            }
        })
    }

    /// The coordinate reference system a GeoJSON file names in its top-level `crs` member (the
    /// pre-2016 GeoJSON way, still written by many tools): the name it gives, such as
    /// `urn:ogc:def:crs:EPSG::2326`. `None` for other formats and for files without one.
    ///
    /// # Errors
    /// When the file cannot be read as JSON, or its `crs` member is not a named CRS.
    pub fn geojson_crs(&self) -> Result<Option<String>, FormatError> {
        if self.format != Format::GeoJson {
            return Ok(None);
        }
        let file =
            std::fs::File::open(&self.path).map_err(|e| FormatError::file(format!("cannot open: {e}")))?;
        let counted = CountingRead { inner: file, progress: Arc::new(Progress::default()) };
        json_reader::top_level_crs(self.text(counted)?)
    }

    fn text(&self, r: CountingRead) -> Result<Box<dyn Read + Send>, FormatError> {
        encoding::decode(r, self.encoding)
    }
}

/// Counts the bytes read into a shared progress counter.
struct CountingRead {
    inner: std::fs::File,
    progress: Arc<Progress>,
}

impl Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What inference learned about a file (or the first part of it).
#[derive(Debug, Clone)]
pub struct Scan {
    /// The inferred schema (column names in order of first appearance).
    pub schema: Schema,
    /// How many data records (skipped rows not counted).
    pub rows: u64,
    /// Rows left out under `skip_bad_rows`.
    pub skipped: Vec<Skipped>,
    /// Per column (schema order): the smallest and largest of its first numbers, for number columns.
    pub ranges: Vec<Option<(f64, f64)>>,
    /// Whether every record of the file was read (false for a [`sample`] that stopped early).
    pub complete: bool,
}

/// What a [`load`] pass did.
#[derive(Debug)]
pub struct Loaded {
    /// Records read (skipped rows not counted).
    pub rows: u64,
    /// With [`Pass::Speculate`]: what inference over every record found (as a [`scan`] would).
    pub scan: Option<Scan>,
    /// With [`Pass::Speculate`]: the first record the schema could not hold, or that the sink
    /// refused; from there on rows were read and inferred but no longer converted nor handed on.
    pub mismatch: Option<FormatError>,
    /// With [`Pass::Speculate`]: the conversion stopped early because the file already showed that
    /// its schema is not the guess (a column's type changed past the sample, or a new column came);
    /// the rows handed on are not all the rows.
    pub diverged: bool,
}

/// How a [`load`] pass treats its schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pass<'g> {
    /// The schema is the file's (inferred by a whole [`scan`], maybe overridden): a value it cannot
    /// hold is an error.
    Load,
    /// The schema is a guess from a [`sample`] of the first `sampled` records: infer over every
    /// record as a scan does while converting to the guess, so that one pass both loads and checks
    /// the guess. A value the guess cannot hold (or a sink error about a record) ends the conversion,
    /// not the pass; so does a column whose inferred type, past the sample, is no longer `inferred`'s
    /// (by column; `None` for a column not to watch, such as one whose type an override sets), or a
    /// column the guess does not have. The caller compares the inferred schema with the guess and
    /// loads again when they differ or the conversion ended early.
    Speculate {
        /// The sample's inferred type of each column.
        inferred: &'g [Option<citydata_model::FieldType>],
        /// How many records the sample read.
        sampled: u64,
    },
}

/// What the readers push records into during a pass.
struct Pipe<'s> {
    inference: Vec<Inference>,
    infer: bool,
    rows: u64,
    progress: &'s Progress,
}

impl Pipe<'_> {
    /// Infers over the record's cells; true when, past the first `watch.1` records, a column's type
    /// is no longer the one `watch.0` expects, or a column beyond them appears.
    fn infer(
        &mut self,
        cells: &[Cell<'_>],
        watch: Option<(&[Option<citydata_model::FieldType>], u64)>,
    ) -> bool {
        if !self.infer {
            return false;
        }
        if self.inference.len() < cells.len() {
            self.inference.resize_with(cells.len(), Inference::default);
        }
        let Some((expected, _)) = watch.filter(|(_, after)| self.rows >= *after) else {
            for (inf, cell) in self.inference.iter_mut().zip(cells) {
                inf.add(cell);
            }
            return false;
        };
        let mut diverged = cells.len() > expected.len();
        for ((inf, cell), want) in self.inference.iter_mut().zip(cells).zip(expected) {
            let before = inf.state();
            inf.add(cell);
            if inf.state() != before {
                diverged |= want.is_some_and(|t| t != inf.field_type());
            }
        }
        diverged
    }

    fn counted(&mut self) {
        self.rows += 1;
        self.progress.records.store(self.rows, Ordering::Relaxed);
    }

    fn scan(mut self, columns: &Columns, skipped: Vec<Skipped>, complete: bool) -> Result<Scan, FormatError> {
        // A sample that stopped before any column (JSON records without keys so far) says nothing.
        if columns.is_empty() && complete {
            return Err(FormatError::file("no columns found: the file holds no header and no records"));
        }
        self.inference.resize_with(columns.len(), Inference::default);
        let fields = columns.names().iter().zip(&self.inference).map(|(n, inf)| inf.field(n)).collect();
        let ranges = self.inference.iter().map(Inference::range).collect();
        Ok(Scan { schema: Schema::new(fields), rows: self.rows, skipped, ranges, complete })
    }
}

/// The message of the error a sink returns to stop a reader early; never shown.
const STOP: &str = "\u{0}stop";

/// Infers the columns and their types over every record of the file.
///
/// # Errors
/// Malformed input, or a file without any column.
pub fn scan(source: &Source, progress: Arc<Progress>) -> Result<Scan, FormatError> {
    sample(source, progress, u64::MAX, u64::MAX)
}

/// Infers the columns and their types over the first records of the file: until `records` have
/// been read or the reader has gone `bytes` past the first record, whichever comes first.
/// [`Scan::complete`] tells whether that was the whole file; an incomplete sample may have no
/// columns yet.
///
/// # Errors
/// Malformed input among the records read, or a whole file without any column.
pub fn sample(
    source: &Source,
    progress: Arc<Progress>,
    records: u64,
    bytes: u64,
) -> Result<Scan, FormatError> {
    let mut reader = source.reader(progress.clone())?;
    let mut columns = Columns::default();
    let mut skipped = Vec::new();
    let mut pipe = Pipe { inference: Vec::new(), infer: true, rows: 0, progress: &progress };
    // Bytes count from the first record: what comes before it (an XLSX's shared strings) is no sample.
    let mut first = None;
    let read = reader.read(&mut columns, &mut skipped, &mut |_, cells| {
        let at = progress.bytes.load(Ordering::Relaxed);
        if pipe.rows >= records || at - *first.get_or_insert(at) > bytes {
            return Err(FormatError::file(STOP));
        }
        pipe.infer(cells, None);
        pipe.counted();
        Ok(())
    });
    let complete = match read {
        Ok(()) => true,
        Err(e) if e.loc.is_none() && e.message == STOP => false,
        Err(e) => return Err(e),
    };
    pipe.scan(&columns, skipped, complete)
}

/// Reads every record and converts it to `schema`'s types, in its column order, appending the row's
/// values to `batch`. `sink` gets the record's place, the batch and where the row begins in
/// `batch.slots`; it may empty the batch (`std::mem::take` it) once it holds enough rows.
/// [`Pass::Speculate`] also infers the file's schema over every record ([`Loaded::scan`]).
/// Setting [`Progress::stop`] ends the pass with an error.
///
/// An error `sink` returns ends the pass, except under [`Pass::Speculate`] where an error that names
/// a record ([`FormatError::loc`] set) only ends the conversion, as a value the schema cannot hold does.
///
/// # Errors
/// Malformed input, a value the schema's type cannot hold (under [`Pass::Load`]), or `sink`'s error.
pub fn load(
    source: &Source,
    schema: &Schema,
    pass: Pass,
    progress: Arc<Progress>,
    batch: &mut RowBatch,
    sink: &mut dyn FnMut(Loc, &mut RowBatch, usize) -> Result<(), FormatError>,
) -> Result<Loaded, FormatError> {
    let watch = match pass {
        Pass::Speculate { inferred, sampled } => Some((inferred, sampled)),
        Pass::Load => None,
    };
    let speculate = watch.is_some();
    let mut reader = source.reader(progress.clone())?;
    let mut columns = Columns::default();
    let mut skipped = Vec::new();
    let mut pipe = Pipe { inference: Vec::new(), infer: speculate, rows: 0, progress: &progress };
    let mut mismatch: Option<FormatError> = None;
    let mut diverged = false;
    reader.read(&mut columns, &mut skipped, &mut |loc, cells| {
        if progress.stop.load(Ordering::Relaxed) {
            return Err(FormatError::file("stopped: the rows could not be stored"));
        }
        diverged |= pipe.infer(cells, watch.filter(|_| !diverged && mismatch.is_none()));
        pipe.counted();
        if mismatch.is_some() || diverged {
            return Ok(());
        }
        let start = batch.slots.len();
        let text_start = batch.text.len();
        let mut failed = None;
        for (i, field) in schema.fields.iter().enumerate() {
            let cell = cells.get(i).unwrap_or(&Cell::Null);
            match convert_into(cell, field, &schema.missing_values, batch) {
                Ok(slot) => batch.slots.push(slot),
                Err(m) => {
                    failed = Some(FormatError::at(loc, m).in_column(&field.name));
                    break;
                }
            }
        }
        let result = match failed {
            Some(e) => Err(e),
            None => sink(loc, batch, start),
        };
        match result {
            Err(e) if speculate && e.loc.is_some() => {
                // The refused row leaves nothing behind (unless the sink took the batch with it).
                if batch.slots.len() >= start {
                    batch.slots.truncate(start);
                    batch.text.truncate(text_start);
                }
                mismatch = Some(e);
                Ok(())
            }
            other => other,
        }
    })?;
    if !speculate && columns.len() != schema.fields.len() {
        return Err(FormatError::file(format!(
            "the file has {} columns but the schema {}; it changed while being published",
            columns.len(),
            schema.fields.len()
        )));
    }
    let rows = pipe.rows;
    let scan = if pipe.infer { Some(pipe.scan(&columns, skipped, true)?) } else { None };
    Ok(Loaded { rows, scan, mismatch, diverged })
}
