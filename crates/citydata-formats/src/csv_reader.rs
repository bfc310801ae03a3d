//! CSV and TSV: the delimiter sniffed from the first lines, `"` quoting with doubled quotes and
//! newlines inside quotes, blank lines skipped, rows of the wrong width an error (or, with
//! `skip_bad_rows`, reported and left out).

use std::borrow::Cow;
use std::io::{Cursor, Read};

use crate::{Cell, Columns, Format, FormatError, Loc, ReadOptions, Reader, Sink, Skipped};

/// Reads delimited text.
pub(crate) struct CsvReader {
    input: Option<Box<dyn Read + Send>>,
    format: Format,
    skip_bad_rows: bool,
    max_record_bytes: usize,
}

impl CsvReader {
    pub(crate) fn new(input: Box<dyn Read + Send>, format: Format, options: &ReadOptions) -> Self {
        Self {
            input: Some(input),
            format,
            skip_bad_rows: options.skip_bad_rows,
            max_record_bytes: options.max_record_bytes,
        }
    }
}

const SNIFF_BYTES: u64 = 64 * 1024;

impl Reader for CsvReader {
    fn read(
        &mut self,
        columns: &mut Columns,
        skipped: &mut Vec<Skipped>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        let mut input = self.input.take().ok_or_else(|| FormatError::file("the reader was already used"))?;
        let mut head = Vec::with_capacity(SNIFF_BYTES as usize);
        (&mut input).take(SNIFF_BYTES).read_to_end(&mut head).map_err(io_error)?;
        let delimiter = if self.format == Format::Tsv { b'\t' } else { sniff_delimiter(&head) };
        let guarded =
            LineGuard { inner: Cursor::new(head).chain(input), run: 0, limit: self.max_record_bytes };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(guarded);
        let mut record = csv::ByteRecord::new();
        // The cells of a record, its memory kept from one record to the next.
        let mut spare: Vec<Cell<'static>> = Vec::new();
        let mut width = None;
        let mut n = 0u64;
        loop {
            let more = rdr.read_byte_record(&mut record).map_err(|e| csv_error(&e))?;
            if !more {
                break;
            }
            let line = record.position().map_or(0, csv::Position::line);
            if record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace) {
                continue; // a blank line
            }
            let Some(expected) = width else {
                let mut header = Vec::new();
                fields(&record, Loc { line, record: 0 }, &mut header)?;
                columns.set_header(header.iter().map(|c| match c {
                    Cell::Text(t) => t.as_ref(),
                    _ => "",
                }));
                width = Some(record.len());
                continue;
            };
            n += 1;
            let loc = Loc { line, record: n };
            if record.len() != expected {
                let reason = format!("expected {expected} fields as in the header, found {}", record.len());
                if self.skip_bad_rows {
                    skipped.push(Skipped { loc, reason });
                    n -= 1;
                    continue;
                }
                return Err(FormatError::at(
                    loc,
                    format!("{reason} (use --skip-bad-rows to leave such rows out)"),
                ));
            }
            let mut cells = recycle(std::mem::take(&mut spare));
            fields(&record, loc, &mut cells)?;
            sink(loc, &cells)?;
            spare = recycle(cells);
        }
        Ok(())
    }
}

/// An empty vector on the memory of `v`, for cells that borrow from another record.
fn recycle<'b>(mut v: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    v.clear();
    // An empty vector's items are never made; collecting in place keeps its allocation.
    v.into_iter().map(|_| unreachable!("an empty vector has no items")).collect()
}

/// The fields of `record` as text cells, into `out`. The record is checked as UTF-8 once as a whole
/// (a field is valid when the whole is and it starts and ends on character boundaries); only an
/// invalid record is checked field by field, to name the field.
fn fields<'r>(record: &'r csv::ByteRecord, loc: Loc, out: &mut Vec<Cell<'r>>) -> Result<(), FormatError> {
    if let Ok(all) = std::str::from_utf8(record.as_slice()) {
        // The fields lie one after the other in the record's buffer.
        let mut start = 0;
        let whole = record.iter().all(|f| {
            let end = start + f.len();
            let ok = all.is_char_boundary(end);
            if ok {
                out.push(Cell::Text(Cow::Borrowed(&all[start..end])));
            }
            start = end;
            ok
        });
        if whole {
            return Ok(());
        }
        out.clear();
    }
    for (i, f) in record.iter().enumerate() {
        match std::str::from_utf8(f) {
            Ok(s) => out.push(Cell::Text(Cow::Borrowed(s))),
            Err(e) => {
                return Err(FormatError::at(
                    loc,
                    format!("field {} is not valid UTF-8 (byte {} of the field)", i + 1, e.valid_up_to()),
                ))
            }
        }
    }
    Ok(())
}

fn io_error(e: std::io::Error) -> FormatError {
    FormatError::file(e.to_string())
}

fn csv_error(e: &csv::Error) -> FormatError {
    let loc = e.position().map(|p| Loc { line: p.line(), record: 0 });
    let message = match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    FormatError { loc, column: None, message }
}

/// Picks the delimiter among `,`, tab, `;` and `|` that splits the first lines most consistently.
fn sniff_delimiter(head: &[u8]) -> u8 {
    // Only whole lines count: the sample may end inside one.
    let end = head.iter().rposition(|&b| b == b'\n').map_or(head.len(), |p| p + 1);
    let mut best = (b',', 0usize, false);
    for d in [b',', b'\t', b';', b'|'] {
        let mut counts = Vec::new();
        let mut in_quotes = false;
        let mut count = 0;
        for &b in &head[..end] {
            match b {
                b'"' => in_quotes = !in_quotes,
                b'\n' if !in_quotes => {
                    counts.push(count);
                    count = 0;
                    if counts.len() == 50 {
                        break;
                    }
                }
                _ if b == d && !in_quotes => count += 1,
                _ => {}
            }
        }
        if count > 0 {
            counts.push(count);
        }
        counts.retain(|&c| c > 0);
        let Some(&first) = counts.first() else { continue };
        let consistent = counts.iter().all(|&c| c == first);
        let better = match (consistent, best.2) {
            (true, false) => true,
            (false, true) => false,
            _ => first > best.1,
        };
        if better {
            best = (d, first, consistent);
        }
    }
    best.0
}

/// Fails the read when a line grows past the limit, so that a file without line breaks (or a
/// runaway quote) cannot make the parser buffer without bound.
struct LineGuard<R> {
    inner: R,
    run: usize,
    limit: usize,
}

impl<R: Read> Read for LineGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(p) => self.run = n - p - 1,
            None => self.run += n,
        }
        if self.run > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {} MiB: this does not look like CSV", self.limit >> 20),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = Vec<Vec<Option<String>>>;

    fn read(text: &str, opts: ReadOptions) -> Result<(Vec<String>, Rows, Vec<Skipped>), String> {
        let mut r = CsvReader::new(Box::new(Cursor::new(text.as_bytes().to_vec())), Format::Csv, &opts);
        let mut cols = Columns::default();
        let mut skipped = Vec::new();
        let mut rows = Vec::new();
        r.read(&mut cols, &mut skipped, &mut |_, cells| {
            rows.push(
                cells
                    .iter()
                    .map(|c| match c {
                        Cell::Text(t) => Some(t.to_string()),
                        _ => None,
                    })
                    .collect(),
            );
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((cols.names().to_vec(), rows, skipped))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn quoting_newlines_and_blank_lines() {
        let (cols, rows, _) = read(
            "名稱 Name,\"note\"\r\n\"a, b\",\"say \"\"hi\"\"\nthere\"\r\n\r\nc,d\n\n\n",
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(cols, ["名稱 Name", "note"]);
        assert_eq!(rows, vec![vec![s("a, b"), s("say \"hi\"\nthere")], vec![s("c"), s("d")]]);
    }

    #[test]
    fn sniffs_delimiters() {
        for (text, want) in [
            ("a;b;c\n1;2,5;3\n", vec!["a", "b", "c"]),
            ("a\tb\n1\t2\n", vec!["a", "b"]),
            ("a|b\n\"x|y\"|2\n", vec!["a", "b"]),
            ("a,b;c\n1,2;3\n4,5;6\n", vec!["a", "b;c"]),
            ("only\n1\n", vec!["only"]),
        ] {
            assert_eq!(read(text, ReadOptions::default()).unwrap().0, want, "{text:?}");
        }
    }

    #[test]
    fn header_names_made_unique() {
        let (cols, _, _) = read("a,,a, b ,A,_id\n1,2,3,4,5,6\n", ReadOptions::default()).unwrap();
        assert_eq!(cols, ["a", "column_2", "a_2", "b", "A_3", "_id_2"]);
    }

    #[test]
    fn ragged_rows_fail_or_are_skipped() {
        let text = "a,b\n1,2\n3\n4,5,6\n7,8\n";
        let e = read(text, ReadOptions::default()).unwrap_err();
        assert_eq!(e, "line 3 (record 2): expected 2 fields as in the header, found 1 (use --skip-bad-rows to leave such rows out)");
        let (_, rows, skipped) =
            read(text, ReadOptions { skip_bad_rows: true, ..ReadOptions::default() }).unwrap();
        assert_eq!(rows.len(), 2);
        let lines: Vec<u64> = skipped.iter().map(|s| s.loc.line).collect();
        assert_eq!(lines, [3, 4]);
    }

    #[test]
    fn bounded_lines_and_bad_utf8() {
        let long = format!("a,b\n{}\n", "x".repeat(3 << 20));
        let e = read(&long, ReadOptions { max_record_bytes: 1 << 20, ..ReadOptions::default() }).unwrap_err();
        assert!(e.contains("longer than 1 MiB"), "{e}");
        let mut r = CsvReader::new(
            Box::new(Cursor::new(b"a\nok\n\xff\n".to_vec())),
            Format::Csv,
            &ReadOptions::default(),
        );
        let e = r.read(&mut Columns::default(), &mut Vec::new(), &mut |_, _| Ok(())).unwrap_err();
        assert!(e.to_string().starts_with("line 3"), "{e}");
        // The bytes of 中 cut by a delimiter: the record as a whole is valid UTF-8, its fields are not.
        let mut r = CsvReader::new(
            Box::new(Cursor::new(b"a,b\n\xe4\xb8,\xad\n".to_vec())),
            Format::Csv,
            &ReadOptions::default(),
        );
        let e = r.read(&mut Columns::default(), &mut Vec::new(), &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), "line 2 (record 1): field 1 is not valid UTF-8 (byte 0 of the field)");
    }

    proptest::proptest! {
        /// Any table written as CSV (quotes, delimiters, line breaks and Chinese inside fields)
        /// reads back exactly: the same header, the same rows, the same cells.
        #[test]
        fn csv_round_trip(
            width in 2usize..6,
            cells in proptest::collection::vec("[a-z0-9 ,;|\"\n\r\t地區é]{0,12}", 0..120),
        ) {
            let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
            let rows: Vec<Vec<String>> = cells.chunks_exact(width).map(<[String]>::to_vec).collect();
            let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
            w.write_record(&header).unwrap();
            for r in &rows {
                w.write_record(r).unwrap();
            }
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            let (cols, got, skipped) = read(&text, ReadOptions::default()).unwrap();
            proptest::prop_assert_eq!(cols, header);
            proptest::prop_assert!(skipped.is_empty());
            let want: Vec<Vec<Option<String>>> =
                rows.iter().map(|r| r.iter().map(|c| Some(c.clone())).collect()).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
