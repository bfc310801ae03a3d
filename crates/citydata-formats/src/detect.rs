//! Which format a file is in: the `--format` the publisher gave, else the file name, checked against
//! the first bytes.

use std::io::Read;
use std::path::Path;

use crate::encoding::{self, TextEncoding};
use crate::FormatError;

/// The formats citydata publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma (or otherwise) separated values; the delimiter is sniffed.
    Csv,
    /// Tab separated values.
    Tsv,
    /// A JSON array of objects, or an object holding one.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A GeoJSON FeatureCollection.
    GeoJson,
    /// An Excel workbook.
    Xlsx,
    /// XML with a repeated record element.
    Xml,
    /// A Frictionless data package descriptor.
    DataPackage,
}

impl Format {
    /// Parses a `--format` value.
    ///
    /// # Errors
    /// Unknown names, with the list of known ones.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" | "jsonlines" => Format::Ndjson,
            "geojson" => Format::GeoJson,
            "xlsx" => Format::Xlsx,
            "xml" => Format::Xml,
            "datapackage" => Format::DataPackage,
            other => {
                return Err(FormatError::file(format!(
                    "unknown format {other:?}: use csv, tsv, json, ndjson, geojson, xlsx, xml or datapackage"
                )))
            }
        })
    }

    /// The short name (also the CKAN `format` of a resource, upper-cased).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::GeoJson => "geojson",
            Format::Xlsx => "xlsx",
            Format::Xml => "xml",
            Format::DataPackage => "datapackage",
        }
    }

    /// The media type of the original bytes.
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Tsv => "text/tab-separated-values",
            Format::Json | Format::DataPackage => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::GeoJson => "application/geo+json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Xml => "application/xml",
        }
    }

    fn from_name(path: &Path) -> Option<Result<Self, FormatError>> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name == "datapackage.json" {
            return Some(Ok(Format::DataPackage));
        }
        let ext = name.rsplit_once('.')?.1;
        Some(Ok(match ext {
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "geojson" => Format::GeoJson,
            "xlsx" | "xlsm" => Format::Xlsx,
            "xml" => Format::Xml,
            "xls" => {
                return Some(Err(FormatError::file(
                    "XLS (Excel 97-2003) workbooks are not supported: save the sheet as XLSX or CSV",
                )))
            }
            _ => return None,
        }))
    }
}

const SAMPLE: usize = 256 * 1024;

/// Finds the format and text encoding of `path`.
///
/// # Errors
/// Empty, binary or unreadable files, and files whose content contradicts their stated format.
pub fn detect(path: &Path, given: Option<Format>) -> Result<(Format, TextEncoding), FormatError> {
    let mut file = std::fs::File::open(path).map_err(|e| FormatError::file(format!("cannot open: {e}")))?;
    let mut sample = Vec::with_capacity(SAMPLE);
    (&mut file).take(SAMPLE as u64).read_to_end(&mut sample)?;
    let complete = sample.len() < SAMPLE;
    if sample.iter().all(u8::is_ascii_whitespace) && complete {
        return Err(FormatError::file("the file is empty"));
    }
    let named = match given {
        Some(f) => Some(f),
        None => Format::from_name(path).transpose()?,
    };
    let zip = sample.starts_with(b"PK\x03\x04");
    match named {
        Some(Format::Xlsx) if !zip => {
            return Err(FormatError::file(
                "not an XLSX workbook: an XLSX file is a ZIP archive, this is not one",
            ))
        }
        Some(Format::Xlsx) => return Ok((Format::Xlsx, TextEncoding::Utf8)),
        None if zip => return Ok((Format::Xlsx, TextEncoding::Utf8)),
        Some(f) if zip => {
            return Err(FormatError::file(format!(
                "this is a ZIP archive, not {}; publish the files inside it",
                f.name().to_uppercase()
            )))
        }
        _ => {}
    }
    for (magic, what) in
        [(&b"%PDF"[..], "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\x1f\x8b", "gzip data")]
    {
        if sample.starts_with(magic) {
            return Err(FormatError::file(format!("this is {what}, not a data file")));
        }
    }
    let encoding = encoding::detect(&sample, complete)?;
    let text = decoded_sample(&sample, encoding);
    let sniffed = sniff(&text);
    let format = match named {
        // A .json file holding a FeatureCollection is GeoJSON.
        Some(Format::Json) if sniffed == Format::GeoJson => Format::GeoJson,
        Some(Format::Json) if sniffed == Format::Ndjson => Format::Ndjson,
        Some(f @ (Format::Json | Format::GeoJson | Format::Ndjson | Format::DataPackage))
            if !matches!(sniffed, Format::Json | Format::GeoJson | Format::Ndjson) =>
        {
            return Err(FormatError::file(format!(
                "the file is named as {} but does not start with JSON (first character {:?})",
                f.name().to_uppercase(),
                text.trim_start().chars().next().unwrap_or(' ')
            )))
        }
        Some(Format::Xml) if sniffed != Format::Xml => {
            return Err(FormatError::file("the file is named as XML but does not start with '<'"))
        }
        Some(f) => f,
        None => sniffed,
    };
    Ok((format, encoding))
}

fn decoded_sample(sample: &[u8], encoding: TextEncoding) -> String {
    let enc = match encoding {
        TextEncoding::Utf8 | TextEncoding::Utf8Bom => encoding_rs::UTF_8,
        TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
        TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
        TextEncoding::Big5Hkscs => encoding_rs::BIG5,
    };
    enc.decode_with_bom_removal(sample).0.into_owned()
}

/// Guesses a text format from its start.
fn sniff(text: &str) -> Format {
    let t = text.trim_start();
    match t.as_bytes().first() {
        Some(b'<') => Format::Xml,
        Some(b'[') => Format::Json,
        Some(b'{') => {
            let head: String = t.chars().take(4096).collect();
            if head.contains("\"FeatureCollection\"") {
                return Format::GeoJson;
            }
            let mut lines = t.lines().filter(|l| !l.trim().is_empty());
            let first = lines.next().unwrap_or("");
            let second = lines.next().unwrap_or("");
            if serde_json::from_str::<serde_json::Value>(first).is_ok()
                && second.trim_start().starts_with('{')
            {
                Format::Ndjson
            } else {
                Format::Json
            }
        }
        _ => Format::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_bytes(name: &str, bytes: &[u8], given: Option<Format>) -> Result<Format, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        detect(&p, given).map(|(f, _)| f).map_err(|e| e.to_string())
    }

    #[test]
    fn formats_from_names_and_content() {
        let cases: &[(&str, &[u8], Result<Format, &str>)] = &[
            ("a.csv", b"a,b\n1,2\n", Ok(Format::Csv)),
            ("a.txt", b"a\tb\n1\t2\n", Ok(Format::Csv)),
            ("a.tsv", b"a\tb\n", Ok(Format::Tsv)),
            ("a.json", b"[{\"a\":1}]", Ok(Format::Json)),
            ("a.json", b"{\"a\":1}\n{\"a\":2}\n", Ok(Format::Ndjson)),
            ("a.json", b"{\"type\":\"FeatureCollection\",\"features\":[]}", Ok(Format::GeoJson)),
            ("data", b"{\"data\":[{\"a\":1},\n{\"a\":2}]}", Ok(Format::Json)),
            ("data", b"  <?xml version=\"1.0\"?><a/>", Ok(Format::Xml)),
            ("datapackage.json", b"{\"resources\":[]}", Ok(Format::DataPackage)),
            ("a.csv", b"", Err("empty")),
            ("a.csv", b" \n\n", Err("empty")),
            ("a.xls", b"\xd0\xcf\x11\xe0", Err("XLS (Excel 97-2003)")),
            ("a.xlsx", b"a,b", Err("not an XLSX workbook")),
            ("a.csv", b"PK\x03\x04rest", Err("ZIP archive, not CSV")),
            ("a.csv", b"%PDF-1.4", Err("PDF")),
            ("a.json", b"a,b\n", Err("does not start with JSON")),
            ("a.csv", b"a,b\n\x00\x01", Err("binary file")),
        ];
        for (name, bytes, want) in cases {
            let got = detect_bytes(name, bytes, None);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{name}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{name}: {g}"),
                _ => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
        assert_eq!(detect_bytes("x.dat", b"a;b\n", Some(Format::Tsv)), Ok(Format::Tsv));
    }
}
