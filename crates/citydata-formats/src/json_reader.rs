//! JSON, NDJSON and GeoJSON, streamed record by record.
//!
//! JSON: a top-level array of objects, or an object holding one at any depth (the first array whose
//! first element is an object, such as `{"data": [...]}` or `{"result": {"records": [...]}}`).
//! GeoJSON: the `features` of a FeatureCollection; properties become columns and the geometry a
//! `geometry` column. Nested objects are flattened into `parent.child` columns; arrays are kept as
//! JSON text. Only one record is in memory at a time, and a record may not exceed the size limit.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use crate::{Cell, Columns, Format, FormatError, Loc, ReadOptions, Reader, Sink, Skipped};

/// Reads JSON, NDJSON or GeoJSON.
pub(crate) struct JsonReader {
    input: Option<Box<dyn Read + Send>>,
    format: Format,
    max_record_bytes: usize,
}

impl JsonReader {
    pub(crate) fn new(input: Box<dyn Read + Send>, format: Format, options: &ReadOptions) -> Self {
        Self { input: Some(input), format, max_record_bytes: options.max_record_bytes }
    }
}

impl Reader for JsonReader {
    fn read(
        &mut self,
        columns: &mut Columns,
        _: &mut Vec<Skipped>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        let input = self.input.take().ok_or_else(|| FormatError::file("the reader was already used"))?;
        let mut state = State { columns, sink, n: 0, geo: self.format == Format::GeoJson, error: None };
        if self.format == Format::Ndjson {
            return read_ndjson(input, self.max_record_bytes, &mut state);
        }
        let since = Rc::new(RefCell::new(0usize));
        let guard = SizeGuard { inner: input, since: since.clone(), limit: self.max_record_bytes };
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, guard));
        let found = {
            let mut seed = Records { state: &mut state, since: &since, depth: 0 };
            let r = (&mut seed).deserialize(&mut de);
            match r {
                Ok(found) => found,
                Err(e) => return Err(state.error.take().unwrap_or_else(|| json_error(&e))),
            }
        };
        de.end().map_err(|e| json_error(&e))?;
        if !found {
            return Err(FormatError::file(if state.geo {
                "no features found: a GeoJSON file must be a FeatureCollection with a \"features\" array"
            } else {
                "no records found: expected an array of objects, or an object holding one"
            }));
        }
        Ok(())
    }
}

struct State<'c, 's, 'k> {
    columns: &'c mut Columns,
    sink: &'s mut Sink<'k>,
    n: u64,
    geo: bool,
    error: Option<FormatError>,
}

impl State<'_, '_, '_> {
    fn record(&mut self, value: Json, line: u64) -> Result<(), FormatError> {
        self.n += 1;
        let loc = Loc { line, record: self.n };
        let Json::Object(obj) = value else {
            return Err(FormatError::at(loc, format!("expected an object, found {}", kind(&value))));
        };
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(self.columns.len().max(obj.len()));
        let mut put = |columns: &mut Columns, name: &str, cell: Cell<'static>| {
            let i = columns.intern(name);
            if cells.len() <= i {
                cells.resize(i + 1, Cell::Null);
            }
            cells[i] = cell;
        };
        if self.geo {
            if obj.get("type").and_then(Json::as_str) != Some("Feature") {
                return Err(FormatError::at(loc, "expected a GeoJSON Feature (\"type\": \"Feature\")"));
            }
            if let Some(Json::Object(props)) = obj.get("properties") {
                flatten(self.columns, "", props, &mut put);
            }
            match obj.get("geometry") {
                Some(Json::Null) | None => put(self.columns, "geometry", Cell::Null),
                Some(g @ Json::Object(_)) => {
                    put(self.columns, "geometry", Cell::Geometry(Cow::Owned(g.to_string())))
                }
                Some(other) => {
                    return Err(FormatError::at(
                        loc,
                        format!("the geometry is {}, not an object", kind(other)),
                    ))
                }
            }
        } else {
            flatten(self.columns, "", &obj, &mut put);
        }
        (self.sink)(loc, &cells)
    }
}

fn flatten(
    columns: &mut Columns,
    prefix: &str,
    obj: &serde_json::Map<String, Json>,
    put: &mut dyn FnMut(&mut Columns, &str, Cell<'static>),
) {
    for (k, v) in obj {
        let name =
            if prefix.is_empty() { Cow::Borrowed(k.as_str()) } else { Cow::Owned(format!("{prefix}.{k}")) };
        let cell = match v {
            Json::Null => Cell::Null,
            Json::Bool(b) => Cell::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Cell::Int(i),
                (None, Some(f)) if n.is_f64() => Cell::Num(f),
                _ => Cell::Text(Cow::Owned(n.to_string())),
            },
            Json::String(s) => Cell::Text(Cow::Owned(s.clone())),
            Json::Array(_) => Cell::Text(Cow::Owned(v.to_string())),
            Json::Object(inner) => {
                flatten(columns, &name, inner, put);
                continue;
            }
        };
        put(columns, &name, cell);
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn json_error(e: &serde_json::Error) -> FormatError {
    let loc = (e.line() > 0).then_some(Loc { line: e.line() as u64, record: 0 });
    let mut message = e.to_string();
    // serde_json ends its message with " at line L column C"; the location is shown in front already.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    let message = match e.classify() {
        serde_json::error::Category::Eof => format!("unexpected end of the file: {message}"),
        serde_json::error::Category::Syntax => format!("malformed JSON: {message}"),
        _ => message,
    };
    FormatError { loc, column: None, message }
}

/// The name in the top-level `crs` member of a GeoJSON document (`{"type": "name", "properties":
/// {"name": "urn:ogc:def:crs:EPSG::2326"}}`), reading the whole document without keeping it.
pub(crate) fn top_level_crs(input: Box<dyn Read + Send>) -> Result<Option<String>, FormatError> {
    struct Top;
    impl<'de> Visitor<'de> for Top {
        type Value = Option<Json>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a GeoJSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut crs = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "crs" {
                    crs = Some(map.next_value::<Json>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(crs)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, input));
    let crs = serde::Deserializer::deserialize_any(&mut de, Top).map_err(|e| json_error(&e))?;
    match crs {
        None | Some(Json::Null) => Ok(None),
        Some(c) => match c.pointer("/properties/name").and_then(Json::as_str) {
            Some(name) if c.get("type").and_then(Json::as_str) == Some("name") => Ok(Some(name.to_owned())),
            _ => Err(FormatError::file(format!(
                "the \"crs\" member must name a coordinate reference system \
                 ({{\"type\": \"name\", \"properties\": {{\"name\": \"urn:ogc:def:crs:EPSG::2326\"}}}}), not {}",
                shorten(&c.to_string())
            ))),
        },
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn read_ndjson(
    input: Box<dyn Read + Send>,
    limit: usize,
    state: &mut State<'_, '_, '_>,
) -> Result<(), FormatError> {
    let mut r = BufReader::with_capacity(256 * 1024, input);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = (&mut r).take(limit as u64 + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if line.len() > limit {
            return Err(FormatError::at(
                Loc { line: line_no, record: 0 },
                "the line is longer than the record size limit",
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Json = serde_json::from_slice(&line).map_err(|e| {
            let mut fe = json_error(&e);
            fe.loc = Some(Loc { line: line_no, record: state.n + 1 });
            fe
        })?;
        state.record(value, line_no)?;
    }
}

/// Fails the read when one record grows past the limit (the counter is reset between records).
struct SizeGuard {
    inner: Box<dyn Read + Send>,
    since: Rc<RefCell<usize>>,
    limit: usize,
}

impl Read for SizeGuard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut since = self.since.borrow_mut();
        *since += n;
        if *since > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a record larger than {} MiB", self.limit >> 20),
            ));
        }
        Ok(n)
    }
}

/// Finds the record array anywhere in the document and streams it; returns whether it found one.
struct Records<'a, 'c, 's, 'k> {
    state: &'a mut State<'c, 's, 'k>,
    since: &'a Rc<RefCell<usize>>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for &mut Records<'_, '_, '_, '_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Records<'_, '_, '_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records or an object holding one")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        // An array is the record array when its first element is an object.
        let Some(first) = seq.next_element::<Json>()? else { return Ok(false) };
        if !first.is_object() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(false);
        }
        let mut next = Some(first);
        while let Some(v) = next {
            if let Err(e) = self.state.record(v, 0) {
                self.state.error = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            *self.since.borrow_mut() = 0;
            next = seq.next_element::<Json>()?;
        }
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            let geo_skip = self.state.geo && self.depth == 0 && key != "features";
            if found || geo_skip || self.depth >= 8 {
                map.next_value::<IgnoredAny>()?;
            } else {
                let mut inner = Records { state: &mut *self.state, since: self.since, depth: self.depth + 1 };
                found = map.next_value_seed(&mut inner)?;
            }
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Records = Vec<(Loc, Vec<Cell<'static>>)>;

    fn read(text: &str, format: Format) -> Result<(Vec<String>, Records), String> {
        let opts = ReadOptions { max_record_bytes: 1 << 20, ..ReadOptions::default() };
        let mut r = JsonReader::new(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), format, &opts);
        let mut cols = Columns::default();
        let mut rows = Vec::new();
        r.read(&mut cols, &mut Vec::new(), &mut |loc, cells| {
            rows.push((
                loc,
                cells
                    .iter()
                    .map(|c| match c {
                        Cell::Text(t) => Cell::Text(Cow::Owned(t.to_string())),
                        Cell::Geometry(t) => Cell::Geometry(Cow::Owned(t.to_string())),
                        Cell::Null => Cell::Null,
                        Cell::Int(i) => Cell::Int(*i),
                        Cell::Num(n) => Cell::Num(*n),
                        Cell::Bool(b) => Cell::Bool(*b),
                    })
                    .collect(),
            ));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((cols.names().to_vec(), rows))
    }

    fn t(s: &str) -> Cell<'static> {
        Cell::Text(Cow::Owned(s.to_owned()))
    }

    #[test]
    fn arrays_and_wrapped_arrays() {
        let want_cols = ["名稱", "n", "addr.en", "tags"];
        for text in [
            r#"[{"名稱":"館","n":1,"addr":{"en":"Rd"}},{"n":2.5,"tags":[1,2]}]"#,
            r#"{"meta":{"count":2},"bbox":[1,2],"data":[{"名稱":"館","n":1,"addr":{"en":"Rd"}},{"n":2.5,"tags":[1,2]}]}"#,
            r#"{"result":{"records":[{"名稱":"館","n":1,"addr":{"en":"Rd"}},{"n":2.5,"tags":[1,2]}]}}"#,
        ] {
            let (cols, rows) = read(text, Format::Json).unwrap();
            assert_eq!(cols, want_cols, "{text}");
            assert_eq!(rows[0].1, vec![t("館"), Cell::Int(1), t("Rd")]);
            assert_eq!(rows[1].1, vec![Cell::Null, Cell::Num(2.5), Cell::Null, t("[1,2]")]);
            assert_eq!(rows[1].0.record, 2);
        }
    }

    #[test]
    fn ndjson_with_line_numbers() {
        let (cols, rows) = read("{\"a\":1}\n\n{\"a\":true,\"b\":null}\n", Format::Ndjson).unwrap();
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(rows[1].0, Loc { line: 3, record: 2 });
        let e = read("{\"a\":1}\n{\"a\":\n", Format::Ndjson).unwrap_err();
        assert!(e.starts_with("line 2 (record 2): unexpected end of the file"), "{e}");
    }

    #[test]
    fn legacy_crs_member() {
        let crs = |t: &'static str| top_level_crs(Box::new(t.as_bytes()));
        let named = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2326"}},"features":[]}"#;
        assert_eq!(crs(named).unwrap().as_deref(), Some("urn:ogc:def:crs:EPSG::2326"));
        let after = r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{}}],"crs":{"type":"name","properties":{"name":"EPSG:4326"}}}"#;
        assert_eq!(crs(after).unwrap().as_deref(), Some("EPSG:4326"));
        assert_eq!(crs(r#"{"type":"FeatureCollection","features":[]}"#).unwrap(), None);
        let linked =
            r#"{"type":"FeatureCollection","crs":{"type":"link","properties":{"href":"x"}},"features":[]}"#;
        assert!(crs(linked).unwrap_err().to_string().contains("must name a coordinate reference system"));
        assert!(crs("{").is_err());
    }

    #[test]
    fn geojson_features() {
        let text = r#"{"type":"FeatureCollection","bbox":[0,0,1,1],"features":[
            {"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Point","coordinates":[114.1,22.3]}},
            {"type":"Feature","properties":{"name":"B"},"geometry":null}]}"#;
        let (cols, rows) = read(text, Format::GeoJson).unwrap();
        assert_eq!(cols, ["name", "geometry"]);
        assert_eq!(
            rows[0].1[1],
            Cell::Geometry(Cow::Owned(r#"{"type":"Point","coordinates":[114.1,22.3]}"#.into()))
        );
        let e = read(r#"{"type":"FeatureCollection","features":[{"type":"Point"}]}"#, Format::GeoJson)
            .unwrap_err();
        assert_eq!(e, "record 1: expected a GeoJSON Feature (\"type\": \"Feature\")");
    }

    #[test]
    fn malformed_and_empty() {
        let e = read("[{\"a\":1},\n{\"a\":2,}]", Format::Json).unwrap_err();
        assert!(e.starts_with("line 2: malformed JSON: trailing comma"), "{e}");
        let e = read("[{\"a\":1}", Format::Json).unwrap_err();
        assert!(e.contains("unexpected end of the file"), "{e}");
        assert!(read("[1,2]", Format::Json).unwrap_err().contains("no records found"));
        assert!(read("{\"a\":1}", Format::Json).unwrap_err().contains("no records found"));
        let e = read("[{\"a\":1}, 5]", Format::Json).unwrap_err();
        assert_eq!(e, "record 2: expected an object, found a number");
        let e = read(&format!("[{{\"a\":\"{}\"}}]", "x".repeat(3 << 20)), Format::Json).unwrap_err();
        assert!(e.contains("larger than 1 MiB"), "{e}");
    }
}
