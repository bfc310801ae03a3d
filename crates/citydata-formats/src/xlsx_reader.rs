//! XLSX: one sheet of an Office Open XML workbook, read cell by cell.
//!
//! **Which sheet:** the one named by `--sheet` (matched exactly, else without regard to case), or
//! by default the first visible worksheet (the first worksheet when all are hidden). Chart and
//! dialog sheets hold no cells: they are passed over, and refused when named.
//!
//! **Rows:** the first row with a non-blank cell is the header; its first and last non-blank cells
//! set the table's span, so a table placed at `B3` starts at `B`. A blank header cell inside the
//! span is named after its sheet column (`column_C`). Every later row with a non-blank cell is a
//! record, located by its sheet row number (`Loc::line`, 1-based) and its record number. Blank rows
//! (no cells, or only empty or white-space cells), in the middle or at the end, are skipped. A cell
//! outside the header's span that holds a value adds a column named after its sheet column
//! (`column_G`, with a suffix when a header took that name), so a value under a missing header is
//! kept rather than lost or made an error; the same file always gives the same columns. A sheet
//! either parses or it does not: there are no malformed rows for `skip_bad_rows` to leave out.
//!
//! **Cells:** strings become text; numbers become integers when integral and within 2^53,
//! otherwise numbers; booleans stay booleans; error values (`#N/A`, `#DIV/0!`, and newer ones such
//! as `#SPILL!` that the parser does not know) and empty or white-space strings are null. A number
//! with a date or time format comes as ISO text, so that inference types it: `2024-01-31`,
//! `2024-01-31T08:30:00` (with milliseconds when there are some), `08:30:00` for a time alone (a
//! value below one day), and `36:15:00` for an elapsed-time format (`[h]:mm:ss`). Both the 1900
//! and the 1904 date systems are read; a date value outside Excel's range (or the 29 February 1900
//! that never was) stays a number. Cells stored as ISO dates (`t="d"`) are passed on as their text.
//!
//! **Bounds:** a workbook is a ZIP archive, so before the workbook is opened every entry is
//! inflated once, through a counter, and the read fails when the total passes
//! `ReadOptions::max_inflated_bytes`: the sizes the archive declares are checked first, but they
//! can lie, and the counter does not. The number of entries and the parts a workbook needs are
//! checked at the same time, and a corrupt entry (bad checksum, bad deflate data) is named. The
//! parser then holds the shared strings in memory, which the cap bounds. The sheet itself is
//! streamed through the parser's cell reader, one row at a time: its `worksheet_range` would build
//! the whole sheet as a dense grid, which for a sheet with one cell at `A1` and one at
//! `XFD1048576` would be terabytes whatever the cap. Columns past `XFD` are refused. A panic of
//! the parser on malformed content (such as a shared string index past the list) becomes an error.
//!
//! **Encrypted workbooks** are OLE compound files, not ZIP archives (as are old XLS files); such a
//! file reaching this reader is named for what it is, with what to do about it.
//!
//! **Progress:** the bytes the workbook parser reads from the file are counted; the check before
//! it is not, so the count moves while the sheet is parsed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use calamine::{DataRef, ExcelDateTime, ExcelDateTimeType, SheetType, SheetVisible, Xlsx, XlsxError};

use crate::{Cell, Columns, CountingRead, FormatError, Loc, ReadOptions, Reader, Sink, Skipped};

/// The most entries a workbook's archive may hold; real workbooks have tens, or a few thousand
/// with many sheets and pictures.
const MAX_ENTRIES: usize = 10_000;

/// Excel's last column, `XFD`, is index 16383.
const MAX_COLUMNS: u32 = 16_384;

/// The signature of an OLE compound file: what an encrypted workbook (and an old XLS) is.
const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The parts without which an archive is no workbook.
const REQUIRED_PARTS: [&str; 2] = ["[Content_Types].xml", "xl/workbook.xml"];

const DAY_MS: u64 = 86_400_000;

/// The first serial day past 9999-12-31, where Excel's dates end.
const MAX_SERIAL: f64 = 2_958_466.0;

/// The largest magnitude up to which every integer is exact in an `f64`.
const MAX_SAFE_INT: f64 = 9_007_199_254_740_992.0;

/// Reads the first (or the chosen) sheet of an XLSX workbook.
pub(crate) struct XlsxReader {
    file: CountingRead,
    sheet: Option<String>,
    max_inflated_bytes: u64,
}

impl XlsxReader {
    pub(crate) fn new(_path: PathBuf, file: CountingRead, options: &ReadOptions) -> Self {
        Self { file, sheet: options.sheet.clone(), max_inflated_bytes: options.max_inflated_bytes }
    }
}

/// The workbook parser finds its parts through the archive's central directory, so the counted
/// file must seek as well as read.
impl Seek for CountingRead {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl Reader for XlsxReader {
    fn read(
        &mut self,
        columns: &mut Columns,
        _skipped: &mut Vec<Skipped>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        check_archive(&self.file.inner, self.max_inflated_bytes)?;
        self.file.seek(SeekFrom::Start(0))?;
        let input = BufReader::with_capacity(64 * 1024, &mut self.file);
        let mut book: Xlsx<_> = guarded(|| calamine::Reader::new(input)).map_err(|e| workbook_error(&e))?;
        let name = choose_sheet(calamine::Reader::sheets_metadata(&book), self.sheet.as_deref())?;
        let mut cells =
            guarded(|| book.worksheet_cells_reader(&name)).map_err(|e| sheet_error(&name, None, &e))?;
        let mut table = Table::new(columns);
        loop {
            match guarded(|| cells.next_cell()) {
                Ok(Some(c)) => {
                    let (row, col) = c.get_position();
                    let value = c.get_value().clone();
                    table.push(row, col, value, sink)?;
                }
                Ok(None) => break,
                // An error value the parser does not know (`#SPILL!`, `#CALC!`, ...): the cell has
                // been read to its value, and an error value is null anyway.
                Err(XlsxError::CellError(_)) => {}
                Err(e) => return Err(sheet_error(&name, table.row, &e)),
            }
        }
        table.finish(sink)
    }
}

/// Runs a step of the workbook parser, turning a panic on malformed content (such as a shared
/// string index past the end of the list) into an error.
fn guarded<T>(step: impl FnOnce() -> Result<T, XlsxError>) -> Result<T, XlsxError> {
    catch_unwind(AssertUnwindSafe(step))
        .unwrap_or(Err(XlsxError::Unexpected("the parser stopped on malformed content")))
}

/// Checks that `file` is a ZIP archive holding a workbook, and inflates every entry through a
/// counter so that neither a zip bomb nor an archive lying about its sizes gets past the cap.
fn check_archive(file: &File, cap: u64) -> Result<(), FormatError> {
    let mut input = file;
    input.seek(SeekFrom::Start(0))?;
    let mut magic = Vec::with_capacity(OLE_MAGIC.len());
    input.take(OLE_MAGIC.len() as u64).read_to_end(&mut magic)?;
    if magic == OLE_MAGIC {
        return Err(FormatError::file(
            "this is an encrypted (password-protected) workbook, or an Excel 97-2003 (XLS) file: \
             remove the password, or save it as XLSX, and publish it again",
        ));
    }
    input.seek(SeekFrom::Start(0))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(input))
        .map_err(|e| FormatError::file(format!("not an XLSX workbook: not a readable ZIP archive ({e})")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(FormatError::file(format!(
            "not an XLSX workbook: the archive holds {} entries, more than the {MAX_ENTRIES} a workbook may have",
            archive.len()
        )));
    }
    for part in REQUIRED_PARTS {
        if !archive.file_names().any(|n| n.replace('\\', "/").eq_ignore_ascii_case(part)) {
            return Err(FormatError::file(format!("not an XLSX workbook: the archive has no {part}")));
        }
    }
    let mut declared = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| zip_error(&e))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > cap {
        return Err(too_big(cap));
    }
    let mut inflated = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| zip_error(&e))?;
        let name = entry.name().to_owned();
        let left = cap - inflated;
        let n = io::copy(&mut (&mut entry).take(left.saturating_add(1)), &mut io::sink())
            .map_err(|e| FormatError::file(format!("the workbook is corrupt: part {name}: {e}")))?;
        if n > left {
            return Err(too_big(cap));
        }
        inflated += n;
    }
    Ok(())
}

fn too_big(cap: u64) -> FormatError {
    let size = if cap >= 1 << 20 { format!("{} MiB", cap >> 20) } else { format!("{cap} bytes") };
    FormatError::file(format!(
        "the workbook inflates to more than {size} (zip bomb?): it is refused before it is opened"
    ))
}

fn zip_error(e: &zip::result::ZipError) -> FormatError {
    match e {
        zip::result::ZipError::UnsupportedArchive(m) if *m == zip::result::ZipError::PASSWORD_REQUIRED => {
            FormatError::file("the workbook's archive is encrypted: save it again without a password")
        }
        _ => FormatError::file(format!("the workbook is corrupt: {e}")),
    }
}

fn workbook_error(e: &XlsxError) -> FormatError {
    match e {
        XlsxError::Password => FormatError::file(
            "the workbook is encrypted (password-protected): remove the password and publish it again",
        ),
        XlsxError::FileNotFound(part) => {
            FormatError::file(format!("not an XLSX workbook: the archive has no {part}"))
        }
        XlsxError::Io(e) => FormatError::file(format!("read error: {e}")),
        _ => FormatError::file(format!("the workbook is corrupt: {e}")),
    }
}

/// An error of the sheet's parser; `row` is the last (0-based) row it gave cells of, since the
/// error itself does not say where it is.
fn sheet_error(name: &str, row: Option<u32>, e: &XlsxError) -> FormatError {
    let place = row.map(|r| format!(" (at or after row {})", r + 1)).unwrap_or_default();
    FormatError::file(match e {
        XlsxError::NotAWorksheet(kind) => format!("sheet {name:?} is a {kind}, not a worksheet of cells"),
        XlsxError::Io(e) => format!("read error: {e}"),
        _ => format!("sheet {name:?} is corrupt{place}: {e}"),
    })
}

/// The sheet to read: `wanted` (exactly, else without regard to case), or the first visible
/// worksheet.
fn choose_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String, FormatError> {
    let Some(wanted) = wanted else {
        let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
        return worksheets()
            .find(|s| s.visible == SheetVisible::Visible)
            .or_else(|| worksheets().next())
            .map(|s| s.name.clone())
            .ok_or_else(|| FormatError::file("the workbook has no worksheet"));
    };
    let lower = wanted.to_lowercase();
    let Some(sheet) = sheets
        .iter()
        .find(|s| s.name == wanted)
        .or_else(|| sheets.iter().find(|s| s.name.to_lowercase() == lower))
    else {
        let names: Vec<String> = sheets.iter().map(|s| format!("{:?}", s.name)).collect();
        return Err(FormatError::file(if names.is_empty() {
            format!("no sheet named {wanted:?}: the workbook has no sheets")
        } else {
            format!("no sheet named {wanted:?}: the workbook's sheets are {}", names.join(", "))
        }));
    };
    if sheet.typ != SheetType::WorkSheet {
        return Err(FormatError::file(format!(
            "sheet {:?} is a {} sheet, not a worksheet of cells",
            sheet.name,
            match sheet.typ {
                SheetType::ChartSheet => "chart",
                SheetType::DialogSheet => "dialog",
                SheetType::MacroSheet => "macro",
                _ => "non-cell",
            }
        )));
    }
    Ok(sheet.name.clone())
}

/// The header's place in the sheet: its first column and how many columns it spans.
#[derive(Clone, Copy)]
struct Span {
    first: u32,
    width: u32,
}

/// Gathers the cells of one sheet row at a time and hands each complete row on.
struct Table<'a, 'c> {
    columns: &'c mut Columns,
    header: Option<Span>,
    /// Columns added for cells outside the header's span, by sheet column.
    extra: HashMap<u32, usize>,
    /// Every key and name given to a column, so that an added column gets a fresh one.
    taken: HashSet<String>,
    /// The 0-based sheet row being gathered.
    row: Option<u32>,
    /// Its non-blank cells, by 0-based sheet column.
    pending: Vec<(u32, Cell<'a>)>,
    out: Vec<Cell<'a>>,
    records: u64,
}

impl<'a, 'c> Table<'a, 'c> {
    fn new(columns: &'c mut Columns) -> Self {
        Self {
            columns,
            header: None,
            extra: HashMap::new(),
            taken: HashSet::new(),
            row: None,
            pending: Vec::new(),
            out: Vec::new(),
            records: 0,
        }
    }

    fn push(
        &mut self,
        row: u32,
        col: u32,
        value: DataRef<'a>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        let loc = Loc { line: u64::from(row) + 1, record: 0 };
        if col >= MAX_COLUMNS {
            return Err(FormatError::at(loc, "a cell lies past column XFD, the last a sheet has"));
        }
        match self.row {
            Some(r) if row < r => {
                return Err(FormatError::at(
                    loc,
                    format!("the row comes after row {}: the sheet's rows are out of order", r + 1),
                ))
            }
            Some(r) if row == r => {}
            _ => {
                self.flush(sink)?;
                self.row = Some(row);
            }
        }
        let cell = cell(value);
        if !is_blank(&cell) {
            self.pending.push((col, cell));
        }
        Ok(())
    }

    fn finish(mut self, sink: &mut Sink<'_>) -> Result<(), FormatError> {
        self.flush(sink)
    }

    fn flush(&mut self, sink: &mut Sink<'_>) -> Result<(), FormatError> {
        let Some(row) = self.row else { return Ok(()) };
        if self.pending.is_empty() {
            return Ok(());
        }
        // Cells normally come in column order; a stable sort keeps the last of a repeated cell last.
        self.pending.sort_by_key(|(c, _)| *c);
        let Some(span) = self.header else {
            self.set_header();
            return Ok(());
        };
        self.records += 1;
        self.out.clear();
        self.out.resize(self.columns.len(), Cell::Null);
        let mut pending = std::mem::take(&mut self.pending);
        for (col, cell) in pending.drain(..) {
            let i = if col >= span.first && col - span.first < span.width {
                (col - span.first) as usize
            } else {
                self.extra_column(col)
            };
            if i >= self.out.len() {
                self.out.resize(i + 1, Cell::Null);
            }
            self.out[i] = cell;
        }
        self.pending = pending;
        sink(Loc { line: u64::from(row) + 1, record: self.records }, &self.out)
    }

    fn set_header(&mut self) {
        let (Some(&(first, _)), Some(&(last, _))) = (self.pending.first(), self.pending.last()) else {
            return;
        };
        let mut names: Vec<String> =
            (first..=last).map(|c| format!("column_{}", column_letters(c))).collect();
        for (col, cell) in self.pending.drain(..) {
            names[(col - first) as usize] = header_text(&cell);
        }
        self.columns.set_header(names.iter().map(String::as_str));
        self.taken.extend(self.columns.names().iter().cloned());
        self.header = Some(Span { first, width: last - first + 1 });
    }

    /// The column for a value at sheet column `col`, outside the header: added the first time,
    /// named after the sheet column, with a suffix when a header already took that name.
    fn extra_column(&mut self, col: u32) -> usize {
        if let Some(&i) = self.extra.get(&col) {
            return i;
        }
        let base = format!("column_{}", column_letters(col));
        let mut key = base.clone();
        let mut n = 2;
        while self.taken.contains(&key) {
            key = format!("{base}_{n}");
            n += 1;
        }
        let i = self.columns.intern(&key);
        if let Some(name) = self.columns.names().get(i) {
            self.taken.insert(name.clone());
        }
        self.taken.insert(key);
        self.extra.insert(col, i);
        i
    }
}

/// `A` for 0, `Z` for 25, `AA` for 26, ...
fn column_letters(col: u32) -> String {
    let mut n = col + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

fn is_blank(cell: &Cell<'_>) -> bool {
    match cell {
        Cell::Null => true,
        Cell::Text(t) => t.trim().is_empty(),
        _ => false,
    }
}

/// A header cell as a column name.
fn header_text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(t) | Cell::Geometry(t) => t.to_string(),
        Cell::Int(v) => v.to_string(),
        Cell::Num(v) => v.to_string(),
        Cell::Bool(true) => "TRUE".to_owned(),
        Cell::Bool(false) => "FALSE".to_owned(),
    }
}

/// One cell of the sheet as a reader cell.
fn cell(value: DataRef<'_>) -> Cell<'_> {
    match value {
        DataRef::Int(v) => Cell::Int(v),
        DataRef::Float(v) => number(v),
        DataRef::Bool(v) => Cell::Bool(v),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) if !s.is_empty() => {
            Cell::Text(Cow::Owned(s))
        }
        DataRef::SharedString(s) if !s.is_empty() => Cell::Text(Cow::Borrowed(s)),
        DataRef::DateTime(d) => date_time(&d),
        _ => Cell::Null,
    }
}

/// An integer when the number is one and exact, else a number; infinities and NaN (which no
/// spreadsheet writes) as their text.
fn number(v: f64) -> Cell<'static> {
    if !v.is_finite() {
        Cell::Text(Cow::Owned(v.to_string()))
    } else if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INT {
        #[allow(clippy::cast_possible_truncation)]
        let int = v as i64;
        Cell::Int(int)
    } else {
        Cell::Num(v)
    }
}

/// A date, datetime or time of day as ISO text, an elapsed time as `H:MM:SS`; a number outside
/// the range of dates stays a number.
fn date_time(d: &ExcelDateTime) -> Cell<'static> {
    let v = d.as_f64();
    if d.is_duration() {
        return Cell::Text(Cow::Owned(duration_text(v)));
    }
    if !(0.0..MAX_SERIAL).contains(&v) {
        return number(v);
    }
    // The parser keeps the workbook's date system private; the equality tells it.
    let is_1904 = *d == ExcelDateTime::new(v, ExcelDateTimeType::DateTime, true);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = (v * DAY_MS as f64).round() as u64;
    if v < 1.0 {
        // A time of day alone (a rounding up to midnight stays on the same day).
        return Cell::Text(Cow::Owned(clock(total.min(DAY_MS - 1))));
    }
    let (days, ms) = (total / DAY_MS, total % DAY_MS);
    if !is_1904 && days == 60 {
        // 1900-02-29, a day Excel counts and the calendar does not.
        return number(v);
    }
    #[allow(clippy::cast_precision_loss)]
    let (y, m, day, ..) =
        ExcelDateTime::new(days as f64, ExcelDateTimeType::DateTime, is_1904).to_ymd_hms_milli();
    let date = format!("{y:04}-{m:02}-{day:02}");
    Cell::Text(Cow::Owned(if ms == 0 { date } else { format!("{date}T{}", clock(ms)) }))
}

/// `HH:MM:SS`, with `.fff` when there are milliseconds; hours may pass 23 (for elapsed times).
fn clock(ms: u64) -> String {
    let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if f == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{f:03}")
    }
}

fn duration_text(days: f64) -> String {
    if !days.is_finite() {
        return days.to_string();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (days.abs() * DAY_MS as f64).round() as u64;
    let sign = if days < 0.0 && ms > 0 { "-" } else { "" };
    format!("{sign}{}", clock(ms))
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};
    use std::sync::Arc;

    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    use super::*;
    use crate::Progress;

    const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG_REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

    /// Style indexes of the test workbooks' `styles.xml`.
    const DATE: &str = "1";
    const DATETIME: &str = "2";
    const TIME: &str = "3";
    const ELAPSED: &str = "4";

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }

    /// One cell: `kind` is `s` (shared string index), `str` (inline string), `n` (number), `b`,
    /// `e` (error), `d` (ISO date text), a style index (a number in that format), or `` for an
    /// empty styled cell.
    fn c(at: &str, kind: &str, v: &str) -> String {
        let v = esc(v);
        match kind {
            "s" | "b" | "e" | "d" => format!(r#"<c r="{at}" t="{kind}"><v>{v}</v></c>"#),
            "str" => format!(r#"<c r="{at}" t="inlineStr"><is><t>{v}</t></is></c>"#),
            "n" => format!(r#"<c r="{at}"><v>{v}</v></c>"#),
            "" => format!(r#"<c r="{at}" s="1"/>"#),
            style => format!(r#"<c r="{at}" s="{style}"><v>{v}</v></c>"#),
        }
    }

    fn row(r: u32, cells: &[String]) -> String {
        format!(r#"<row r="{r}">{}</row>"#, cells.concat())
    }

    fn sheet_xml(rows: &[String]) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>{}</sheetData></worksheet>"#,
            rows.concat()
        )
    }

    /// A sheet of a test workbook: name, `state` attribute (hidden or not), worksheet XML.
    struct Sheet<'s> {
        name: &'s str,
        hidden: bool,
        xml: String,
    }

    fn sheet<'s>(name: &'s str, rows: &[String]) -> Sheet<'s> {
        Sheet { name, hidden: false, xml: sheet_xml(rows) }
    }

    /// The parts of a minimal workbook.
    fn parts(sheets: &[Sheet<'_>], shared: &[&str], date1904: bool) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![
            (
                "[Content_Types].xml".to_owned(),
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.to_owned(),
            ),
            (
                "_rels/.rels".to_owned(),
                format!(r#"<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
            ),
        ];
        let mut list = String::new();
        let mut rels = String::new();
        for (i, s) in sheets.iter().enumerate() {
            let n = i + 1;
            let state = if s.hidden { r#" state="hidden""# } else { "" };
            list += &format!(r#"<sheet name="{}" sheetId="{n}"{state} r:id="rId{n}"/>"#, esc(s.name));
            rels += &format!(
                r#"<Relationship Id="rId{n}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>"#
            );
            out.push((format!("xl/worksheets/sheet{n}.xml"), s.xml.clone()));
        }
        rels += &format!(
            r#"<Relationship Id="rIdS" Type="{REL_NS}/styles" Target="styles.xml"/><Relationship Id="rIdT" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>"#
        );
        out.push((
            "xl/workbook.xml".to_owned(),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><workbookPr date1904="{}"/><sheets>{list}</sheets></workbook>"#, u8::from(date1904)),
        ));
        out.push((
            "xl/_rels/workbook.xml.rels".to_owned(),
            format!(r#"<Relationships xmlns="{PKG_REL_NS}">{rels}</Relationships>"#),
        ));
        out.push((
            "xl/styles.xml".to_owned(),
            format!(r#"<styleSheet xmlns="{MAIN_NS}"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/></numFmts><cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="164" applyNumberFormat="1"/><xf numFmtId="21" applyNumberFormat="1"/><xf numFmtId="46" applyNumberFormat="1"/></cellXfs></styleSheet>"#),
        ));
        let si: String = shared.iter().map(|s| format!("<si><t>{}</t></si>", esc(s))).collect();
        out.push((
            "xl/sharedStrings.xml".to_owned(),
            format!(r#"<sst xmlns="{MAIN_NS}" count="{0}" uniqueCount="{0}">{si}</sst>"#, shared.len()),
        ));
        out.into_iter().map(|(n, t)| (n, t.into_bytes())).collect()
    }

    fn zip_of(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in parts {
            w.start_file(name.as_str(), SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn book(sheets: &[Sheet<'_>], shared: &[&str]) -> Vec<u8> {
        zip_of(&parts(sheets, shared, false))
    }

    fn owned(c: &Cell<'_>) -> Cell<'static> {
        match c {
            Cell::Null => Cell::Null,
            Cell::Text(t) => Cell::Text(Cow::Owned(t.to_string())),
            Cell::Int(v) => Cell::Int(*v),
            Cell::Num(v) => Cell::Num(*v),
            Cell::Bool(v) => Cell::Bool(*v),
            Cell::Geometry(t) => Cell::Geometry(Cow::Owned(t.to_string())),
        }
    }

    struct Read {
        columns: Vec<String>,
        rows: Vec<(Loc, Vec<Cell<'static>>)>,
        progress: u64,
    }

    fn file_of(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn read_with(bytes: &[u8], options: &ReadOptions) -> Result<Read, String> {
        let f = file_of(bytes);
        let progress = Arc::new(Progress::default());
        let counted = CountingRead { inner: File::open(f.path()).unwrap(), progress: progress.clone() };
        let mut reader = XlsxReader::new(f.path().to_owned(), counted, options);
        let mut columns = Columns::default();
        let mut rows = Vec::new();
        reader
            .read(&mut columns, &mut Vec::new(), &mut |loc, cells| {
                rows.push((loc, cells.iter().map(owned).collect()));
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        let progress = progress.bytes.load(std::sync::atomic::Ordering::Relaxed);
        Ok(Read { columns: columns.names().to_vec(), rows, progress })
    }

    fn read(bytes: &[u8]) -> Result<Read, String> {
        read_with(bytes, &ReadOptions::default())
    }

    fn t(s: &str) -> Cell<'static> {
        Cell::Text(Cow::Owned(s.to_owned()))
    }

    use Cell::{Bool, Int, Null, Num};

    #[test]
    fn cells_of_every_kind() {
        let shared = ["地區 District", "人口", "中西區", "灣仔"];
        let rows = [
            row(
                1,
                &[
                    c("A1", "s", "0"),
                    c("B1", "s", "1"),
                    c("C1", "str", "比率"),
                    c("D1", "str", "開放"),
                    c("E1", "str", "日期"),
                    c("F1", "str", "時間戳"),
                    c("G1", "str", "時間"),
                    c("H1", "str", "備註"),
                ],
            ),
            row(
                2,
                &[
                    c("A2", "s", "2"),
                    c("B2", "n", "243266"),
                    c("C2", "n", "0.25"),
                    c("D2", "b", "1"),
                    c("E2", DATE, "45322"),
                    c("F2", DATETIME, "45322.354166666664"),
                    c("G2", TIME, "0.5"),
                    c("H2", "e", "#N/A"),
                ],
            ),
            // An empty row in the middle, then one whose cells are all empty or blank.
            row(3, &[]),
            row(4, &[c("A4", "", ""), c("B4", "str", "  ")]),
            row(
                5,
                &[
                    c("A5", "s", "3"),
                    c("B5", "n", "1.5e3"),
                    c("C5", "e", "#DIV/0!"),
                    c("D5", "b", "0"),
                    c("E5", "d", "2024-02-29"),
                    c("F5", DATETIME, "45322.0000115741"),
                    c("G5", TIME, "0.75"),
                    c("H5", "str", ""),
                ],
            ),
            row(6, &[c("B6", "n", "-7"), c("C6", "e", "#SPILL!"), c("D6", "b", "1")]),
            // Trailing empty rows.
            row(7, &[c("A7", "", "")]),
            row(40, &[c("C40", "str", "")]),
        ];
        let r = read(&book(&[sheet("Data", &rows)], &shared)).unwrap();
        assert_eq!(r.columns, ["地區 District", "人口", "比率", "開放", "日期", "時間戳", "時間", "備註"]);
        let locs: Vec<(u64, u64)> = r.rows.iter().map(|(l, _)| (l.line, l.record)).collect();
        assert_eq!(locs, [(2, 1), (5, 2), (6, 3)]);
        let cells: Vec<Vec<Cell<'static>>> = r.rows.into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            cells,
            [
                vec![
                    t("中西區"),
                    Int(243_266),
                    Num(0.25),
                    Bool(true),
                    t("2024-01-31"),
                    t("2024-01-31T08:30:00"),
                    t("12:00:00"),
                    Null
                ],
                vec![
                    t("灣仔"),
                    Int(1500),
                    Null,
                    Bool(false),
                    t("2024-02-29"),
                    t("2024-01-31T00:00:01"),
                    t("18:00:00"),
                    Null
                ],
                vec![Null, Int(-7), Null, Bool(true), Null, Null, Null, Null],
            ]
        );
        assert!(r.progress > 0, "the file's bytes are counted");
    }

    #[test]
    fn dates_times_and_elapsed_times() {
        let dt =
            |v: f64, is_1904: bool| date_time(&ExcelDateTime::new(v, ExcelDateTimeType::DateTime, is_1904));
        let elapsed = |v: f64| date_time(&ExcelDateTime::new(v, ExcelDateTimeType::TimeDelta, false));
        for (got, want) in [
            (dt(45322.0, false), t("2024-01-31")),
            (dt(45_322.354_166_666_664, false), t("2024-01-31T08:30:00")),
            (dt(45_322.999_999_999_9, false), t("2024-02-01")),
            (dt(45322.5 + 0.25 / 86_400.0, false), t("2024-01-31T12:00:00.250")),
            (dt(0.354_166_666_666_667, false), t("08:30:00")),
            (dt(0.999_999_999_99, false), t("23:59:59.999")),
            (dt(43860.0, true), t("2024-01-31")),
            (dt(1.0, false), t("1900-01-01")),
            (dt(59.0, false), t("1900-02-28")),
            (dt(60.0, false), Int(60)),
            (dt(61.0, false), t("1900-03-01")),
            (dt(2_958_465.0, false), t("9999-12-31")),
            (dt(2_958_466.0, false), Int(2_958_466)),
            (dt(-1.5, false), Num(-1.5)),
            (elapsed(1.510_416_666_666_666_7), t("36:15:00")),
            (elapsed(-0.0625), t("-01:30:00")),
        ] {
            assert_eq!(got, want);
        }
        let r = read(&zip_of(&parts(
            &[sheet("S", &[row(1, &[c("A1", "str", "d")]), row(2, &[c("A2", DATE, "43860")])])],
            &[],
            true,
        )))
        .unwrap();
        assert_eq!(r.rows[0].1, [t("2024-01-31")], "the 1904 date system");
        let r = read(&book(
            &[sheet("S", &[row(1, &[c("A1", "str", "d")]), row(2, &[c("A2", ELAPSED, "1.5")])])],
            &[],
        ))
        .unwrap();
        assert_eq!(r.rows[0].1, [t("36:00:00")]);
    }

    #[test]
    fn numbers() {
        for (v, want) in [
            (42.0, Int(42)),
            (-0.0, Int(0)),
            (1.5, Num(1.5)),
            (9_007_199_254_740_992.0, Int(9_007_199_254_740_992)),
            (18_014_398_509_481_984.0, Num(18_014_398_509_481_984.0)),
            (1e300, Num(1e300)),
            (f64::NAN, t("NaN")),
            (f64::INFINITY, t("inf")),
        ] {
            assert_eq!(number(v), want, "{v}");
        }
    }

    #[test]
    fn table_away_from_a1_and_cells_outside_the_header() {
        let rows = [
            row(3, &[c("B3", "str", "name"), c("C3", "str", " "), c("D3", "str", "column_F")]),
            row(4, &[c("A4", "str", "left"), c("B4", "str", "x"), c("C4", "n", "1"), c("F4", "str", "far")]),
            row(5, &[c("B5", "str", "y"), c("F5", "str", "again"), c("D5", "n", "2")]),
        ];
        let r = read(&book(&[sheet("S", &rows)], &[])).unwrap();
        assert_eq!(r.columns, ["name", "column_C", "column_F", "column_A", "column_F_2"]);
        let cells: Vec<Vec<Cell<'static>>> = r.rows.into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            cells,
            [vec![t("x"), Int(1), Null, t("left"), t("far")], vec![t("y"), Null, Int(2), Null, t("again")],]
        );
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16_383), "XFD");
    }

    #[test]
    fn header_only_and_empty_sheets() {
        let r =
            read(&book(&[sheet("S", &[row(2, &[c("A2", "n", "2024"), c("B2", "b", "1")])])], &[])).unwrap();
        assert_eq!(r.columns, ["2024", "TRUE"]);
        assert!(r.rows.is_empty());
        let r = read(&book(&[sheet("S", &[])], &[])).unwrap();
        assert!(r.columns.is_empty() && r.rows.is_empty());
    }

    #[test]
    fn choosing_the_sheet() {
        let one = |name: &'static str, v: &str| {
            let rows = [row(1, &[c("A1", "str", "sheet")]), row(2, &[c("A2", "str", v)])];
            Sheet { name, hidden: false, xml: sheet_xml(&rows) }
        };
        let hidden_first = [Sheet { hidden: true, ..one("隱藏", "hidden") }, one("Data", "data")];
        let two = [one("說明", "notes"), one("Data", "data")];
        for (sheets, wanted, want) in [
            (&two[..], None, Ok("notes")),
            (&two, Some("Data"), Ok("data")),
            (&two, Some("data"), Ok("data")),
            (&two, Some("說明"), Ok("notes")),
            (&hidden_first, None, Ok("data")),
            (&hidden_first, Some("隱藏"), Ok("hidden")),
            (&two, Some("Nope"), Err(r#"no sheet named "Nope": the workbook's sheets are "說明", "Data""#)),
        ] {
            let options = ReadOptions { sheet: wanted.map(str::to_owned), ..ReadOptions::default() };
            let got = read_with(&book(sheets, &[]), &options).map(|r| r.rows[0].1[0].clone());
            assert_eq!(got, want.map(t).map_err(str::to_owned), "{wanted:?}");
        }
    }

    #[test]
    fn sheet_kinds() {
        let s = |name: &str, typ, visible| calamine::Sheet { name: name.to_owned(), typ, visible };
        let sheets = [
            s("圖表", SheetType::ChartSheet, SheetVisible::Visible),
            s("Hidden", SheetType::WorkSheet, SheetVisible::Hidden),
            s("Data", SheetType::WorkSheet, SheetVisible::Visible),
        ];
        for (sheets, wanted, want) in [
            (&sheets[..], None, Ok("Data")),
            (&sheets[..2], None, Ok("Hidden")),
            (&sheets[..1], None, Err("the workbook has no worksheet")),
            (&sheets, Some("圖表"), Err(r#"sheet "圖表" is a chart sheet, not a worksheet of cells"#)),
            (&[], Some("Data"), Err(r#"no sheet named "Data": the workbook has no sheets"#)),
        ] {
            let got = choose_sheet(sheets, wanted).map_err(|e| e.to_string());
            assert_eq!(got, want.map(str::to_owned).map_err(str::to_owned), "{wanted:?}");
        }
    }

    #[test]
    fn not_workbooks() {
        let minimal = parts(&[sheet("S", &[])], &[], false);
        let without =
            |name: &str| zip_of(&minimal.iter().filter(|(n, _)| n != name).cloned().collect::<Vec<_>>());
        let many: Vec<(String, Vec<u8>)> =
            minimal.iter().cloned().chain((0..MAX_ENTRIES).map(|i| (format!("x/{i}"), Vec::new()))).collect();
        let mut ole = OLE_MAGIC.to_vec();
        ole.resize(4096, 0);
        for (bytes, want) in [
            (b"a,b\n1,2\n".to_vec(), "not an XLSX workbook: not a readable ZIP archive"),
            (Vec::new(), "not an XLSX workbook"),
            (
                zip_of(&[("data.csv".to_owned(), b"a,b\n".to_vec())]),
                "not an XLSX workbook: the archive has no [Content_Types].xml",
            ),
            (without("xl/workbook.xml"), "not an XLSX workbook: the archive has no xl/workbook.xml"),
            (
                without("xl/_rels/workbook.xml.rels"),
                "not an XLSX workbook: the archive has no xl/_rels/workbook.xml.rels",
            ),
            (zip_of(&many), "more than the 10000 a workbook may have"),
            (ole, "encrypted (password-protected) workbook, or an Excel 97-2003 (XLS) file"),
        ] {
            let e = read(&bytes).err().unwrap_or_default();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }

    /// A workbook with a part of `mib` MiB of zeros, and the offsets of that part's declared
    /// uncompressed size in its local header and in the central directory.
    fn with_zeros(mib: usize) -> (Vec<u8>, [usize; 2]) {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in parts(&[sheet("S", &[row(1, &[c("A1", "str", "a")])])], &[], false) {
            w.start_file(name, SimpleFileOptions::default()).unwrap();
            w.write_all(&data).unwrap();
        }
        w.start_file("xl/media/zeros.bin", SimpleFileOptions::default()).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            w.write_all(&chunk).unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        let find = |sig: &[u8], size_at: usize| {
            (0..bytes.len() - 4)
                .find(|&i| {
                    bytes[i..].starts_with(sig) && {
                        let name_at = if sig[2] == 3 { 30 } else { 46 };
                        bytes[i + name_at..].starts_with(b"xl/media/zeros.bin")
                    }
                })
                .map(|i| i + size_at)
                .unwrap()
        };
        let offsets = [find(b"PK\x03\x04", 22), find(b"PK\x01\x02", 24)];
        (bytes, offsets)
    }

    #[test]
    fn zip_bombs_are_refused() {
        let small = ReadOptions { max_inflated_bytes: 1 << 20, ..ReadOptions::default() };
        let (bomb, offsets) = with_zeros(64);
        assert!(bomb.len() < 1 << 20, "64 MiB of zeros compress to {} bytes", bomb.len());
        let e = read_with(&bomb, &small).err().unwrap_or_default();
        assert!(e.contains("inflates to more than 1 MiB (zip bomb?)"), "{e}");

        // The same archive claiming the part inflates to 1000 bytes: the counter still stops it.
        let mut lying = bomb;
        for at in offsets {
            lying[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        }
        let archive = zip::ZipArchive::new(Cursor::new(lying.clone())).unwrap();
        assert!(archive.decompressed_size().unwrap() < 1 << 20, "the declared sizes pass the cap");
        let e = read_with(&lying, &small).err().unwrap_or_default();
        assert!(e.contains("inflates to more than 1 MiB (zip bomb?)"), "{e}");

        // Under the cap, the workbook reads.
        let (fine, _) = with_zeros(0);
        assert_eq!(read_with(&fine, &small).unwrap().columns, ["a"]);
    }

    #[test]
    fn corrupt_parts() {
        let header = row(1, &[c("A1", "str", "a")]);
        let truncated = {
            let mut p = parts(&[sheet("S", &[])], &[], false);
            for (n, data) in &mut p {
                if n == "xl/worksheets/sheet1.xml" {
                    *data = format!(
                        r#"<worksheet xmlns="{MAIN_NS}"><sheetData>{header}<row r="2"><c r="A2"><v>1"#
                    )
                    .into_bytes();
                }
            }
            zip_of(&p)
        };
        // A sheet stored without compression, one byte changed after the archive was written.
        let bad_crc = {
            let p = parts(&[sheet("S", &[header.clone(), row(2, &[c("A2", "n", "12345")])])], &[], false);
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            for (name, data) in &p {
                let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
                w.start_file(name.as_str(), stored).unwrap();
                w.write_all(data).unwrap();
            }
            let mut bytes = w.finish().unwrap().into_inner();
            let at = bytes.windows(5).position(|w| w == b"12345").unwrap();
            bytes[at] = b'9';
            bytes
        };
        for (bytes, want) in [
            (truncated, r#"sheet "S" is corrupt"#),
            (bad_crc, "the workbook is corrupt: part xl/worksheets/sheet1.xml"),
            (
                book(&[sheet("S", &[header.clone(), row(2, &[c("A2", "s", "7")])])], &["only one"]),
                r#"sheet "S" is corrupt (at or after row 1): the parser stopped on malformed content"#,
            ),
            (
                book(
                    &[sheet(
                        "S",
                        &[header.clone(), row(3, &[c("A3", "n", "1")]), row(2, &[c("A2", "n", "1")])],
                    )],
                    &[],
                ),
                "line 2: the row comes after row 3: the sheet's rows are out of order",
            ),
            (book(&[sheet("S", &[header, row(2, &[c("XFE2", "n", "1")])])], &[]), "past column XFD"),
        ] {
            let e = read(&bytes).err().unwrap_or_default();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }

    #[test]
    fn reads_again_and_infers_types_through_scan() {
        let rows = [
            row(
                1,
                &[
                    c("A1", "str", "整數"),
                    c("B1", "str", "數"),
                    c("C1", "str", "真假"),
                    c("D1", "str", "日期"),
                    c("E1", "str", "日期時間"),
                    c("F1", "str", "時間"),
                    c("G1", "str", "文字"),
                ],
            ),
            row(
                2,
                &[
                    c("A2", "n", "1"),
                    c("B2", "n", "1.5"),
                    c("C2", "b", "1"),
                    c("D2", DATE, "45322"),
                    c("E2", DATETIME, "45322.5"),
                    c("F2", TIME, "0.25"),
                    c("G2", "str", "007"),
                ],
            ),
            row(
                3,
                &[
                    c("A3", "n", "2"),
                    c("B3", "n", "2"),
                    c("C3", "b", "0"),
                    c("D3", DATE, "45323"),
                    c("E3", DATETIME, "45323.75"),
                    c("F3", TIME, "0.5"),
                    c("G3", "n", "7"),
                ],
            ),
        ];
        let f = file_of(&book(&[sheet("S", &rows)], &[]));
        let source = crate::Source::open(f.path(), None, ReadOptions::default()).unwrap();
        let scan = crate::scan(&source, Arc::new(Progress::default())).unwrap();
        let types: Vec<String> =
            scan.schema.fields.iter().map(|f| format!("{}:{:?}", f.name, f.field_type)).collect();
        assert_eq!(
            types,
            [
                "整數:Integer",
                "數:Number",
                "真假:Boolean",
                "日期:Date",
                "日期時間:Datetime",
                "時間:Time",
                "文字:String"
            ]
        );
        assert_eq!(scan.rows, 2);
        let mut reader = source.reader(Arc::new(Progress::default())).unwrap();
        for _ in 0..2 {
            let mut n = 0;
            reader
                .read(&mut Columns::default(), &mut Vec::new(), &mut |_, _| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, 2, "each read starts from the top");
        }
    }
}
