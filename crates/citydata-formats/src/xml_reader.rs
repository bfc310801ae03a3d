//! XML, streamed record by record.
//!
//! **Records.** The records are the elements at one path from the root, such as
//! `facilities/facility` or `response/data/row`. [`ReadOptions::record_path`] (`--record-path`) names
//! that path: element names separated by `/`, matched against the end of an element's path, so that
//! `facility` matches `facility` elements at any depth and `data/row` a `row` inside a `data`; a
//! leading `/` anchors the path at the root. Namespace prefixes are ignored (`gml:pos` is `pos`).
//!
//! Otherwise the reader finds the path in the first MiB of the document, which it keeps while it
//! looks and then reads again, so that the input is still read only once and streamed:
//!
//! 1. An element is *repeated* when one parent holds two or more children of its name; its count is
//!    the most children of that name in any one parent. A repeated element is a candidate when it
//!    has child elements or attributes of its own, or when its parent holds nothing else (a plain
//!    list, `<names><name>A</name><name>B</name></names>`). So a `<phone>` that repeats inside a
//!    record next to other fields is a field, not a record.
//! 2. Candidates with children or attributes come before plain lists, then the most repeated wins,
//!    then the shallowest, then the first in the document.
//! 3. Without any candidate (a document with one record), the reader goes down from the root while
//!    the element has exactly one child element and that child has children or attributes itself.
//!    The element where it stops is the record: `<facilities><facility id="1">..</facility>
//!    </facilities>` gives `facility`, `<response><data><row>..` gives `row`, and
//!    `<r><a>1</a><b>2</b></r>` gives the root `r` itself, as one record.
//!
//! **Columns.** Each record is one row. The attributes of the record element and its child elements
//! are columns, named by their local names (`xmlns` declarations are left out). Nested elements are
//! flattened into `parent.child` columns, and the attributes of a nested element into
//! `parent.attribute`. In one record, a name met again (a repeated child, or a child named like an
//! attribute) gets `_2`, then `_3`, ...: the first keeps the name, and attributes come before
//! children. Text is trimmed of XML white space; an element without text (`<a/>`, `<a></a>`, white
//! space only) is null, unless it carries attributes, when only its attribute columns are set; an
//! empty attribute is null. Text beside child elements (mixed content) is a column named after the
//! element itself, and so is the text of a record without children (a plain list gives one column);
//! a record without text has no column of its own. CDATA is text; comments and processing
//! instructions are skipped. Every value is text, typed later by inference.
//!
//! **Safety.** Entities are never expanded: a DOCTYPE that declares one is refused, and a reference
//! to any entity other than the five predefined ones (`&lt;` `&gt;` `&amp;` `&apos;` `&quot;`) is an
//! error; character references (`&#20013;`, `&#x4E2D;`) are decoded. External DTDs are never read.
//! A record may not exceed the record size limit, nor may any element or text outside records;
//! elements nest at most 256 deep. Memory holds one record, and the first MiB while looking for the
//! records. Malformed XML cannot be resynchronised, so `skip_bad_rows` does not apply.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, Cursor, Read};

use quick_xml::escape::{resolve_xml_entity, EscapeError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Decoder;

use crate::{Cell, Columns, FormatError, Loc, ReadOptions, Reader, Sink, Skipped};

/// How much of the document's start the reader looks at to find the records.
const DETECT_BYTES: u64 = 1 << 20;
/// The deepest element nesting accepted.
const MAX_DEPTH: usize = 256;
/// The read buffer.
const CHUNK: usize = 256 * 1024;

/// Reads the repeated record element of an XML document.
pub(crate) struct XmlReader {
    input: Option<Box<dyn Read + Send>>,
    record_path: Option<String>,
    max_record_bytes: u64,
}

impl XmlReader {
    pub(crate) fn new(input: Box<dyn Read + Send>, options: &ReadOptions) -> Self {
        let record_path =
            options.record_path.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned);
        Self { input: Some(input), record_path, max_record_bytes: options.max_record_bytes as u64 }
    }
}

impl Reader for XmlReader {
    fn read(
        &mut self,
        columns: &mut Columns,
        _: &mut Vec<Skipped>,
        sink: &mut Sink<'_>,
    ) -> Result<(), FormatError> {
        let input = self.input.take().ok_or_else(|| FormatError::file("the reader was already used"))?;
        let limit = self.max_record_bytes;
        let (target, input) = match &self.record_path {
            Some(spec) => (Target::given(spec), input),
            None => {
                let mut tokens = Tokens::new(Source::new(input, true), limit);
                let path = detect(&mut tokens)?;
                (Target::Found(path), tokens.into_rest())
            }
        };
        let mut tokens = Tokens::new(Source::new(input, false), limit);
        let mut rows = Rows {
            columns,
            sink,
            frames: Vec::new(),
            active: 0,
            used: HashMap::new(),
            slots: Vec::new(),
            text: String::new(),
            name: String::new(),
            key: String::new(),
            n: 0,
        };
        if rows.stream(&mut tokens, &target)? == 0 {
            return Err(FormatError::file(target.none_found()));
        }
        Ok(())
    }
}

/// Which elements are the records.
enum Target {
    /// Found by the reader: the full path from the root.
    Found(Vec<String>),
    /// Given by the publisher: the last names of the path, or the whole path when anchored.
    Given { spec: String, names: Vec<String>, anchored: bool },
}

impl Target {
    fn given(spec: &str) -> Self {
        let names = spec.split('/').map(str::trim).filter(|s| !s.is_empty()).map(|s| local(s).to_owned());
        Target::Given { spec: spec.to_owned(), names: names.collect(), anchored: spec.starts_with('/') }
    }

    fn matches(&self, path: &[String]) -> bool {
        match self {
            Target::Found(p) => p.as_slice() == path,
            Target::Given { names, anchored, .. } => {
                !names.is_empty() && if *anchored { names.as_slice() == path } else { path.ends_with(names) }
            }
        }
    }

    fn none_found(&self) -> String {
        match self {
            Target::Found(p) => format!(
                "no records found: no <{}> element; name the record element with --record-path",
                p.join("/")
            ),
            Target::Given { spec, .. } => {
                format!("no records found: no element matches the record path {spec:?} (--record-path)")
            }
        }
    }
}

/// The local part of a qualified name: `gml:pos` is `pos`.
fn local(name: &str) -> &str {
    name.split_once(':').map_or(name, |(_, l)| l)
}

/// XML white space.
fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes & (MIB - 1) == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes & 1023 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

fn undeclared(name: &str) -> String {
    format!(
        "undeclared entity &{name};: only the predefined entities (&lt; &gt; &amp; &apos; &quot;) and \
         character references are allowed"
    )
}

fn xml_message(e: quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(e) => format!("read error: {e}"),
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => undeclared(&name),
        quick_xml::Error::Syntax(e) => format!("malformed XML: {e}"),
        quick_xml::Error::IllFormed(e) => format!("malformed XML: {e}"),
        quick_xml::Error::InvalidAttr(e) => format!("malformed XML: {e}"),
        other => format!("malformed XML: {other}"),
    }
}

/// The input, buffered. It counts the bytes and lines the parser consumes, refuses to read past a
/// limit, and while the records are looked for keeps what was consumed, to be read again.
struct Source {
    inner: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes consumed.
    pos: u64,
    /// Line feeds consumed.
    newlines: u64,
    /// Reading stops once `pos` is past this.
    limit: u64,
    /// Whether reading stopped at the limit.
    over: bool,
    kept: Option<Vec<u8>>,
}

impl Source {
    fn new(inner: Box<dyn Read + Send>, keep: bool) -> Self {
        Self {
            inner,
            buf: vec![0; CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            pos: 0,
            newlines: 0,
            limit: u64::MAX,
            over: false,
            kept: keep.then(Vec::new),
        }
    }

    /// The whole input again: what was kept, what is buffered, then the rest.
    fn into_rest(self) -> Box<dyn Read + Send> {
        let mut kept = self.kept.unwrap_or_default();
        kept.extend_from_slice(&self.buf[self.start..self.end]);
        Box::new(Cursor::new(kept).chain(self.inner))
    }
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Source {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos > self.limit {
            self.over = true;
            return Err(io::Error::other("the record size limit was reached"));
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        let done = &self.buf[self.start..self.start + n];
        self.newlines += done.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(done);
        }
        self.start += n;
        self.pos += n as u64;
    }
}

/// One step through the document, checked.
enum Tok<'b> {
    /// An element starts; its local name is [`Tokens::name`].
    Start(BytesStart<'b>),
    /// The element ends.
    End,
    /// Text inside the root element (character data, CDATA, or a predefined entity).
    Text(Cow<'b, str>),
    /// A character reference.
    Char(char),
    /// Nothing of interest (a comment, white space outside the root, ...).
    Skip,
    /// The end of the document.
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Before,
    Inside,
    After,
}

/// The XML parser, with what quick-xml leaves to its caller: one root element and nothing after
/// it, entity rules, the depth cap, the path of open elements, and line numbers.
struct Tokens {
    xml: quick_xml::Reader<Source>,
    /// Local names of the open elements (`..depth`); the rest are spare buffers.
    names: Vec<String>,
    depth: usize,
    root: Root,
    limit: u64,
}

impl Tokens {
    fn new(source: Source, limit: u64) -> Self {
        let mut xml = quick_xml::Reader::from_reader(source);
        let config = xml.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Self { xml, names: Vec::new(), depth: 0, root: Root::Before, limit }
    }

    /// The line where the next event starts.
    fn line(&self) -> u64 {
        self.xml.get_ref().newlines + 1
    }

    /// Bytes consumed so far.
    fn pos(&self) -> u64 {
        self.xml.get_ref().pos
    }

    /// Lets the next event read up to the size limit past `from`.
    fn allow_from(&mut self, from: u64) {
        self.xml.get_mut().limit = from.saturating_add(self.limit);
    }

    fn over(&self) -> bool {
        self.xml.get_ref().over
    }

    fn decoder(&self) -> Decoder {
        self.xml.decoder()
    }

    /// The names of the open elements, from the root.
    fn path(&self) -> &[String] {
        &self.names[..self.depth]
    }

    /// The name of the innermost open element.
    fn name(&self) -> &str {
        self.depth.checked_sub(1).map_or("", |i| &self.names[i])
    }

    fn depth(&self) -> usize {
        self.depth
    }

    fn into_rest(self) -> Box<dyn Read + Send> {
        self.xml.into_inner().into_rest()
    }

    fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Tok<'b>, FormatError> {
        buf.clear();
        let line = self.line();
        let err = |m: String| FormatError::at(Loc { line, record: 0 }, m);
        let event = match self.xml.read_event_into(buf) {
            Ok(event) => event,
            Err(_) if self.over() => {
                return Err(err(format!(
                    "an element or text larger than the record size limit ({})",
                    size(self.limit)
                )))
            }
            Err(e) => return Err(err(xml_message(e))),
        };
        Ok(match event {
            Event::Start(e) => {
                let name = std::str::from_utf8(e.local_name().into_inner())
                    .map_err(|_| err("malformed XML: an element name is not valid UTF-8".into()))?;
                if self.root == Root::After {
                    return Err(err(format!(
                        "malformed XML: a second root element <{name}> after the end of the first"
                    )));
                }
                if self.depth == MAX_DEPTH {
                    return Err(err(format!("elements are nested more than {MAX_DEPTH} deep")));
                }
                if self.names.len() == self.depth {
                    self.names.push(String::new());
                }
                self.names[self.depth].clear();
                self.names[self.depth].push_str(name);
                self.depth += 1;
                self.root = Root::Inside;
                Tok::Start(e)
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.root = Root::After;
                }
                Tok::End
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|e| err(format!("malformed XML: {e}")))?;
                self.text(text, &err)?
            }
            Event::CData(t) => {
                let text = t.xml10_content().map_err(|e| err(format!("malformed XML: {e}")))?;
                self.text(text, &err)?
            }
            Event::GeneralRef(r) => {
                // A reference outside the root element is text there, which is refused.
                self.text(Cow::Borrowed("&"), &err)?;
                if let Some(c) = r.resolve_char_ref().map_err(|e| err(format!("malformed XML: {e}")))? {
                    Tok::Char(c)
                } else {
                    let name = r.decode().map_err(|e| err(format!("malformed XML: {e}")))?;
                    match resolve_xml_entity(&name) {
                        Some(s) => Tok::Text(Cow::Borrowed(s)),
                        None => return Err(err(undeclared(&name))),
                    }
                }
            }
            Event::DocType(d) => {
                if d.windows(8).any(|w| w.eq_ignore_ascii_case(b"<!ENTITY")) {
                    return Err(err(
                        "entity declarations are not allowed: the DOCTYPE declares an entity, and \
                         entities are never expanded"
                            .into(),
                    ));
                }
                if self.root != Root::Before {
                    return Err(err("malformed XML: a DOCTYPE inside the document".into()));
                }
                Tok::Skip
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => Tok::Skip,
            // Not produced: empty elements are expanded into a start and an end.
            Event::Empty(_) => return Err(err("malformed XML: an unexpected empty element".into())),
            Event::Eof => {
                if self.depth > 0 {
                    return Err(err(format!("unexpected end of the file: <{}> is not closed", self.name())));
                }
                if self.root == Root::Before {
                    return Err(err("malformed XML: the document has no root element".into()));
                }
                Tok::Eof
            }
        })
    }

    /// Text is only allowed inside the root element (white space aside).
    fn text<'b>(
        &self,
        text: Cow<'b, str>,
        err: &dyn Fn(String) -> FormatError,
    ) -> Result<Tok<'b>, FormatError> {
        if self.depth > 0 {
            return Ok(Tok::Text(text));
        }
        if trim_xml(&text).is_empty() {
            return Ok(Tok::Skip);
        }
        Err(err(match self.root {
            Root::After => "malformed XML: text after the end of the root element".into(),
            _ => "malformed XML: text before the root element".into(),
        }))
    }
}

/// The attributes of `e` other than namespace declarations, as (local name, value).
fn attributes<'e>(
    e: &'e BytesStart<'_>,
    decoder: Decoder,
) -> impl Iterator<Item = Result<(&'e str, Cow<'e, str>), String>> + 'e {
    e.attributes().filter_map(move |a| {
        let a = match a {
            Ok(a) => a,
            Err(e) => return Some(Err(format!("malformed XML: {e}"))),
        };
        if a.key.as_namespace_binding().is_some() {
            return None;
        }
        let Ok(name) = std::str::from_utf8(a.key.local_name().into_inner()) else {
            return Some(Err("malformed XML: an attribute name is not valid UTF-8".into()));
        };
        Some(
            a.decode_and_unescape_value_with(decoder, resolve_xml_entity)
                .map(|v| (name, v))
                .map_err(xml_message),
        )
    })
}

/// What the reader learned about one element path while looking for the records.
struct PathInfo {
    parent: Option<usize>,
    name: String,
    depth: usize,
    /// The most children of this name in one parent.
    count: u32,
    /// The paths of its child elements.
    children: Vec<usize>,
    /// The most child elements in one element.
    most_children: u32,
    /// Whether one had attributes.
    attrs: bool,
}

impl PathInfo {
    fn structured(&self) -> bool {
        !self.children.is_empty() || self.attrs
    }
}

/// Reads the start of the document (up to [`DETECT_BYTES`]) and finds the path of the records, as
/// the module doc says.
fn detect(tokens: &mut Tokens) -> Result<Vec<String>, FormatError> {
    let mut paths: Vec<PathInfo> = Vec::new();
    let mut index: HashMap<(usize, String), usize> = HashMap::new();
    // The open elements: their path, their children by path, how many children.
    let mut open: Vec<(usize, HashMap<usize, u32>, u32)> = Vec::new();
    let mut buf = Vec::new();
    while tokens.pos() < DETECT_BYTES {
        tokens.allow_from(tokens.pos());
        let line = tokens.line();
        match tokens.next(&mut buf)? {
            Tok::Start(e) => {
                let mut attrs = false;
                for a in attributes(&e, tokens.decoder()) {
                    a.map_err(|m| FormatError::at(Loc { line, record: 0 }, m))?;
                    attrs = true;
                }
                let parent = open.last().map(|o| o.0);
                let depth = tokens.depth();
                let name = tokens.name().to_owned();
                let id = *index.entry((parent.unwrap_or(usize::MAX), name.clone())).or_insert_with(|| {
                    paths.push(PathInfo {
                        parent,
                        name,
                        depth,
                        count: 0,
                        children: Vec::new(),
                        most_children: 0,
                        attrs: false,
                    });
                    paths.len() - 1
                });
                if let Some((p, counts, children)) = open.last_mut() {
                    *children += 1;
                    let count = counts.entry(id).or_insert(0);
                    *count += 1;
                    paths[id].count = paths[id].count.max(*count);
                    let parent = &mut paths[*p];
                    parent.most_children = parent.most_children.max(*children);
                    if !parent.children.contains(&id) {
                        parent.children.push(id);
                    }
                }
                paths[id].attrs |= attrs;
                open.push((id, HashMap::new(), 0));
            }
            Tok::End => {
                open.pop();
            }
            Tok::Eof => break,
            Tok::Text(_) | Tok::Char(_) | Tok::Skip => {}
        }
    }
    let Some(root) = paths.first() else {
        return Err(FormatError::file(format!(
            "no records found: no element in the first {}; name the record element with --record-path",
            size(DETECT_BYTES)
        )));
    };
    let candidate = paths
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.count >= 2 && (p.structured() || p.parent.is_some_and(|q| paths[q].children.len() == 1))
        })
        .max_by_key(|(i, p)| (p.structured(), p.count, Reverse(p.depth), Reverse(*i)));
    let mut chosen = 0;
    if let Some((i, _)) = candidate {
        chosen = i;
    } else {
        if root.children.is_empty() {
            return Err(FormatError::file(format!(
                "no records found: the root element <{}> holds no elements; name the record element \
                 with --record-path",
                root.name
            )));
        }
        while let [only] = paths[chosen].children[..] {
            if paths[chosen].most_children != 1 || !paths[only].structured() {
                break;
            }
            chosen = only;
        }
    }
    let mut path = Vec::new();
    let mut at = Some(chosen);
    while let Some(i) = at {
        path.push(paths[i].name.clone());
        at = paths[i].parent;
    }
    path.reverse();
    Ok(path)
}

/// One open element inside a record.
#[derive(Default)]
struct Frame {
    /// Its column name (empty for the record element), the prefix of its children's.
    key: String,
    /// Its own text.
    text: String,
    children: bool,
    attrs: bool,
}

/// Turns record elements into rows.
struct Rows<'c, 's, 'k> {
    columns: &'c mut Columns,
    sink: &'s mut Sink<'k>,
    /// Open elements of the current record (`..active`); the rest are spare.
    frames: Vec<Frame>,
    active: usize,
    /// For each key, the last record that used it (to give repeated names `_2`, `_3`, ...).
    used: HashMap<String, u64>,
    /// The current record's cells: column and text range (`None` for null).
    slots: Vec<(usize, Option<(usize, usize)>)>,
    /// The current record's texts.
    text: String,
    /// The current record element's name.
    name: String,
    /// A buffer for attribute column names.
    key: String,
    n: u64,
}

impl Rows<'_, '_, '_> {
    /// Reads every record; returns how many.
    fn stream(&mut self, tokens: &mut Tokens, target: &Target) -> Result<u64, FormatError> {
        let limit = tokens.limit;
        let mut buf = Vec::new();
        // The current record: where it starts, its first byte, its element's depth.
        let mut record: Option<(Loc, u64, usize)> = None;
        loop {
            let pos = tokens.pos();
            let line = tokens.line();
            tokens.allow_from(record.map_or(pos, |r| r.1));
            let too_large = |loc: Loc| {
                FormatError::at(
                    loc,
                    format!("the record is larger than the record size limit ({})", size(limit)),
                )
            };
            let tok = match tokens.next(&mut buf) {
                Ok(tok) => tok,
                Err(mut e) => {
                    if let Some((loc, ..)) = record {
                        if tokens.over() {
                            e = too_large(loc);
                        } else if let Some(l) = &mut e.loc {
                            l.record = loc.record;
                        }
                    }
                    return Err(e);
                }
            };
            match tok {
                Tok::Start(e) => {
                    let done = if record.is_some() {
                        self.child(tokens.name(), &e, tokens.decoder())
                    } else if target.matches(tokens.path()) {
                        self.n += 1;
                        record = Some((Loc { line, record: self.n }, pos, tokens.depth()));
                        self.begin(tokens.name(), &e, tokens.decoder())
                    } else {
                        attributes(&e, tokens.decoder()).try_for_each(|a| a.map(drop))
                    };
                    let here = Loc { line, record: record.map_or(0, |r| r.0.record) };
                    done.map_err(|m| FormatError::at(here, m))?;
                }
                Tok::End => {
                    if let Some((loc, start, depth)) = record {
                        if tokens.depth() < depth {
                            if tokens.pos() - start > limit {
                                return Err(too_large(loc));
                            }
                            self.finish(loc)?;
                            record = None;
                        } else {
                            self.end();
                        }
                    }
                }
                Tok::Text(t) => {
                    if record.is_some() {
                        self.frames[self.active - 1].text.push_str(&t);
                    }
                }
                Tok::Char(c) => {
                    if record.is_some() {
                        self.frames[self.active - 1].text.push(c);
                    }
                }
                Tok::Skip => {}
                Tok::Eof => return Ok(self.n),
            }
        }
    }

    /// Opens a frame; returns it.
    fn push(&mut self) -> &mut Frame {
        if self.frames.len() == self.active {
            self.frames.push(Frame::default());
        }
        let f = &mut self.frames[self.active];
        self.active += 1;
        f.key.clear();
        f.text.clear();
        f.children = false;
        f.attrs = false;
        f
    }

    fn begin(&mut self, name: &str, e: &BytesStart<'_>, decoder: Decoder) -> Result<(), String> {
        self.slots.clear();
        self.text.clear();
        self.name.clear();
        self.name.push_str(name);
        self.active = 0;
        self.push();
        self.attributes(e, decoder)
    }

    fn child(&mut self, name: &str, e: &BytesStart<'_>, decoder: Decoder) -> Result<(), String> {
        let nested = self.active > 1;
        self.push();
        let (open, new) = self.frames.split_at_mut(self.active - 1);
        let parent = &mut open[open.len() - 1];
        parent.children = true;
        let key = &mut new[0].key;
        if nested {
            key.push_str(&parent.key);
            key.push('.');
        }
        key.push_str(name);
        claim(&mut self.used, self.n, key);
        self.attributes(e, decoder)
    }

    /// The attributes of the innermost open element, as columns.
    fn attributes(&mut self, e: &BytesStart<'_>, decoder: Decoder) -> Result<(), String> {
        let f = &mut self.frames[self.active - 1];
        let key = &mut self.key;
        for a in attributes(e, decoder) {
            let (name, value) = a?;
            f.attrs = true;
            key.clear();
            if !f.key.is_empty() {
                key.push_str(&f.key);
                key.push('.');
            }
            key.push_str(name);
            claim(&mut self.used, self.n, key);
            put(self.columns, &mut self.slots, &mut self.text, key, &value);
        }
        Ok(())
    }

    /// Closes the innermost element, setting its own column.
    fn end(&mut self) {
        self.active -= 1;
        let f = &mut self.frames[self.active];
        let text = trim_xml(&f.text);
        if self.active == 0 {
            // The record's own text, if any, is a column named after it.
            if text.is_empty() {
                return;
            }
            f.key.clone_from(&self.name);
            claim(&mut self.used, self.n, &mut f.key);
        }
        if !text.is_empty() || !(f.children || f.attrs) {
            put(self.columns, &mut self.slots, &mut self.text, &f.key, text);
        }
    }

    fn finish(&mut self, loc: Loc) -> Result<(), FormatError> {
        self.end();
        let mut cells = vec![Cell::Null; self.columns.len()];
        for &(i, range) in &self.slots {
            if let Some((a, b)) = range {
                cells[i] = Cell::Text(Cow::Borrowed(&self.text[a..b]));
            }
        }
        (self.sink)(loc, &cells)
    }
}

/// Makes `key` unique in record `record`: the first element or attribute to use it keeps it, the
/// next ones get `_2`, `_3`, ...
fn claim(used: &mut HashMap<String, u64>, record: u64, key: &mut String) {
    let base = key.len();
    let mut n = 1;
    loop {
        match used.get_mut(key.as_str()) {
            Some(last) if *last == record => {
                n += 1;
                key.truncate(base);
                let _ = write!(key, "_{n}");
            }
            Some(last) => {
                *last = record;
                return;
            }
            None => {
                used.insert(key.clone(), record);
                return;
            }
        }
    }
}

/// Sets column `key` of the current record to `value` (null when empty).
fn put(
    columns: &mut Columns,
    slots: &mut Vec<(usize, Option<(usize, usize)>)>,
    text: &mut String,
    key: &str,
    value: &str,
) {
    let i = columns.intern(key);
    let range = (!value.is_empty()).then(|| {
        let a = text.len();
        text.push_str(value);
        (a, text.len())
    });
    slots.push((i, range));
}

#[cfg(test)]
mod tests {
    use super::*;

    type Records = Vec<(Loc, Vec<Cell<'static>>)>;

    fn read_with(text: &str, opts: &ReadOptions) -> Result<(Vec<String>, Records), String> {
        let mut r = XmlReader::new(Box::new(Cursor::new(text.as_bytes().to_vec())), opts);
        let mut cols = Columns::default();
        let mut rows = Vec::new();
        r.read(&mut cols, &mut Vec::new(), &mut |loc, cells| {
            let owned = cells
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => Cell::Text(Cow::Owned(t.to_string())),
                    Cell::Null => Cell::Null,
                    other => panic!("XML gives text only, not {other:?}"),
                })
                .collect();
            rows.push((loc, owned));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((cols.names().to_vec(), rows))
    }

    fn read(text: &str, record_path: Option<&str>) -> Result<(Vec<String>, Records), String> {
        let opts = ReadOptions {
            record_path: record_path.map(str::to_owned),
            max_record_bytes: 1 << 20,
            ..ReadOptions::default()
        };
        read_with(text, &opts)
    }

    /// A row as `column=value` pairs joined by `;`, null cells left out.
    fn show(cols: &[String], cells: &[Cell<'_>]) -> String {
        let pairs = cells.iter().zip(cols).filter_map(|(c, n)| match c {
            Cell::Text(t) => Some(format!("{n}={t}")),
            _ => None,
        });
        pairs.collect::<Vec<_>>().join(";")
    }

    const HK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<facilities>
  <facility id="1">
    <name_en>Wan Chai Library</name_en>
    <name_tc>灣仔圖書館</name_tc>
    <district>Wan Chai</district>
    <lat>22.279</lat>
  </facility>
  <facility id="2">
    <name_en>City Hall Public Library</name_en>
    <name_tc>大會堂公共圖書館</name_tc>
    <district>Central &amp; Western</district>
    <lat>22.282</lat>
  </facility>
</facilities>
"#;

    #[test]
    fn records_and_columns() {
        let hk = &["id=1;name_en=Wan Chai Library;name_tc=灣仔圖書館;district=Wan Chai;lat=22.279",
            "id=2;name_en=City Hall Public Library;name_tc=大會堂公共圖書館;district=Central & Western;lat=22.282"];
        #[rustfmt::skip]
        let cases: &[(&str, &str, Option<&str>, &[&str])] = &[
            ("depth 1, attributes, Chinese text", HK, None, hk),
            ("path from the root", HK, Some("facilities/facility"), hk),
            ("trailing name", HK, Some("facility"), hk),
            ("anchored path", HK, Some("/facilities/facility"), hk),
            (
                "depth 2 behind metadata",
                "<response><meta><count>2</count><source>LCSD</source></meta>\
                 <data><row><a>1</a><b>x</b></row><row><a>2</a></row></data></response>",
                None,
                &["a=1;b=x", "a=2"],
            ),
            (
                "Chinese and bilingual element names",
                "<數據><設施><名稱>灣仔圖書館</名稱><name_en>Wan Chai Library</name_en></設施>\
                 <設施><名稱>大會堂</名稱></設施></數據>",
                None,
                &["名稱=灣仔圖書館;name_en=Wan Chai Library", "名稱=大會堂"],
            ),
            (
                "nested elements and their attributes flatten",
                r#"<d><f><address><en>1 Hennessy Rd</en><zh>軒尼詩道1號</zh></address>
                   <price currency="HKD">12</price></f><f><address><en>2 Rd</en></address></f></d>"#,
                None,
                &["address.en=1 Hennessy Rd;address.zh=軒尼詩道1號;price.currency=HKD;price=12", "address.en=2 Rd"],
            ),
            (
                "repeated children get _2, _3; a repeated field is not a record",
                "<d><f><name>A</name><phone>1</phone><phone>2</phone><phone>3</phone></f>\
                 <f><name>B</name><phone>4</phone></f></d>",
                None,
                &["name=A;phone=1;phone_2=2;phone_3=3", "name=B;phone=4"],
            ),
            (
                "repeated nested elements get _2 before the dot",
                "<d><f><addr><en>a</en></addr><addr><en>b</en></addr></f><f/></d>",
                None,
                &["addr.en=a;addr_2.en=b", ""],
            ),
            (
                "a child named like an attribute",
                r#"<d><f id="a"><id>b</id></f><f id="c"/></d>"#,
                None,
                &["id=a;id_2=b", "id=c"],
            ),
            (
                "namespaces: prefixes dropped, declarations left out",
                r#"<w:fc xmlns:w="urn:w" xmlns:g="urn:g"><w:m g:id="1"><g:pos>22.3 114.1</g:pos></w:m>
                   <w:m g:id="2"><g:pos>22.2 114.2</g:pos></w:m></w:fc>"#,
                None,
                &["id=1;pos=22.3 114.1", "id=2;pos=22.2 114.2"],
            ),
            (
                "namespaced record path",
                r#"<w:fc xmlns:w="urn:w"><w:m><a>1</a></w:m></w:fc>"#,
                Some("w:fc/w:m"),
                &["a=1"],
            ),
            (
                "a plain list of values",
                "<names>\n <name>A</name>\n <name> B </name>\n</names>",
                None,
                &["name=A", "name=B"],
            ),
            (
                "records with children win over a longer plain list",
                "<r><tags><t>a</t><t>b</t><t>c</t></tags><items><i><x>1</x></i><i><x>2</x></i></items></r>",
                None,
                &["x=1", "x=2"],
            ),
            (
                "the most repeated wins",
                "<r><pages><p><n>1</n></p><p><n>2</n></p></pages>\
                 <rows><row><v>a</v></row><row><v>b</v></row><row><v>c</v></row></rows></r>",
                None,
                &["v=a", "v=b", "v=c"],
            ),
            (
                "the override reads what detection would not",
                "<r><pages><p><n>1</n></p><p><n>2</n></p></pages>\
                 <rows><row><v>a</v></row><row><v>b</v></row><row><v>c</v></row></rows></r>",
                Some("pages/p"),
                &["n=1", "n=2"],
            ),
            (
                "one record under the root",
                r#"<facilities><facility id="1"><name>A</name><phone>1</phone><phone>2</phone></facility></facilities>"#,
                None,
                &["id=1;name=A;phone=1;phone_2=2"],
            ),
            (
                "one record of attributes only",
                r#"<facilities><facility id="1" name="A"/></facilities>"#,
                None,
                &["id=1;name=A"],
            ),
            ("one record deeper", "<response><data><row><a>1</a></row></data></response>", None, &["a=1"]),
            ("the root as the one record", "<r><a>1</a><b>2</b></r>", None, &["a=1;b=2"]),
            (
                "CDATA is text",
                "<d><f><desc><![CDATA[<b>bold</b> & more]]></desc></f><f><desc>x<![CDATA[y]]>z</desc></f></d>",
                None,
                &["desc=<b>bold</b> & more", "desc=xyz"],
            ),
            (
                "predefined entities and character references",
                r#"<d><f a="&lt;&#x4E2D;&gt;"><t>&lt;&amp;&gt;&quot;&apos; &#20013;&#x6587;</t></f><f><t>&#65;</t></f></d>"#,
                None,
                &["a=<中>;t=<&>\"' 中文", "t=A"],
            ),
            (
                "mixed content, comments, processing instructions",
                "<d><f>lead <b>bold</b> tail<!-- note --><?pi x?></f><f><b>x</b></f></d>",
                None,
                &["b=bold;f=lead  tail", "b=x"],
            ),
            (
                "a DOCTYPE without entities is ignored",
                "<?xml version=\"1.0\"?>\n<!DOCTYPE d SYSTEM \"d.dtd\">\n<d><f><a>1</a></f><f><a>2</a></f></d>",
                None,
                &["a=1", "a=2"],
            ),
        ];
        for (what, xml, path, want) in cases {
            let (cols, rows) = read(xml, *path).unwrap_or_else(|e| panic!("{what}: {e}"));
            let got: Vec<String> = rows.iter().map(|(_, cells)| show(&cols, cells)).collect();
            assert_eq!(got, *want, "{what}");
            for (i, (loc, _)) in rows.iter().enumerate() {
                assert_eq!(loc.record, i as u64 + 1, "{what}");
            }
        }
    }

    #[test]
    fn column_order_and_record_lines() {
        let (cols, rows) = read(HK, None).unwrap();
        assert_eq!(cols, ["id", "name_en", "name_tc", "district", "lat"]);
        assert_eq!(rows[0].0, Loc { line: 3, record: 1 });
        assert_eq!(rows[1].0, Loc { line: 9, record: 2 });
    }

    #[test]
    fn empty_elements_are_null() {
        let xml = "<d>\n<f><a/><b></b><c>  \n </c><d>1</d><e k=\"v\"/><g k=\"\"/></f>\n<f><a>x</a></f>\n</d>";
        let (cols, rows) = read(xml, None).unwrap();
        assert_eq!(cols, ["a", "b", "c", "d", "e.k", "g.k"]);
        let null = Cell::Null;
        let t = |s: &str| Cell::Text(Cow::Owned(s.to_owned()));
        assert_eq!(rows[0].1, [null.clone(), null.clone(), null.clone(), t("1"), t("v"), null.clone()]);
        assert_eq!(rows[1].1[0], t("x"));
        let (cols, rows) = read("<l><i/><i>2</i></l>", None).unwrap();
        assert_eq!(cols, ["i"]);
        assert!(rows[0].1.iter().all(|c| *c == null), "{rows:?}");
        assert_eq!(rows[1].1, [t("2")]);
    }

    #[test]
    fn a_large_document_streams_past_the_detected_prefix() {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<facilities>\n");
        let n = 40_000;
        for i in 1..=n {
            let _ =
                writeln!(xml, "  <facility id=\"{i}\"><name>圖書館 {i}</name><lat>22.{i}</lat></facility>");
        }
        xml.push_str("</facilities>\n");
        assert!(xml.len() as u64 > 2 * DETECT_BYTES);
        let (cols, rows) = read(&xml, None).unwrap();
        assert_eq!(cols, ["id", "name", "lat"]);
        assert_eq!(rows.len(), n);
        let (loc, last) = &rows[n - 1];
        assert_eq!(*loc, Loc { line: n as u64 + 2, record: n as u64 });
        assert_eq!(show(&cols, last), format!("id={n};name=圖書館 {n};lat=22.{n}"));
    }

    #[test]
    fn entity_declarations_are_refused() {
        let bomb = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]><r><x>&lol9;</x></r>",
            (1..10)
                .map(|i| format!("<!ENTITY lol{i} \"{}\">", format!("&lol{};", i - 1).repeat(10)))
                .collect::<String>()
        );
        let xxe = "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///no/such/file\">]>\
                   <r><x>&xxe;</x><x>b</x></r>";
        let parameter = "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://example.com/x.dtd\"> %p;]><r><x>a</x></r>";
        for (what, xml) in [("bomb", bomb.as_str()), ("xxe", xxe), ("parameter", parameter)] {
            for path in [None, Some("x")] {
                let e = read(xml, path).unwrap_err();
                assert!(e.contains("entity declarations are not allowed"), "{what}: {e}");
            }
        }
        let e = read(xxe, None).unwrap_err();
        assert!(e.starts_with("line 2: entity declarations are not allowed"), "{e}");
    }

    #[test]
    fn undeclared_entities_name_the_line() {
        let e = read("<d>\n<f><a>1</a></f>\n<f>\n<a>&nbsp;</a></f></d>", None).unwrap_err();
        assert!(e.starts_with("line 4: undeclared entity &nbsp;"), "{e}");
        let e = read("<d>\n<f><a>1</a></f>\n<f>\n<a>&nbsp;</a></f></d>", Some("f")).unwrap_err();
        assert!(e.starts_with("line 4 (record 2): undeclared entity &nbsp;"), "{e}");
        let e = read("<d>\n<f a=\"&copy;\"/><f/></d>", Some("f")).unwrap_err();
        assert!(e.starts_with("line 2 (record 1): undeclared entity &copy;"), "{e}");
        let e = read("<d x=\"&foo;\">\n<f/><f/></d>", None).unwrap_err();
        assert!(e.starts_with("line 1: undeclared entity &foo;"), "{e}");
    }

    #[test]
    fn malformed_xml_names_the_line() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("<d>\n<f><a>1</a></f>\n<f><a>2</b></f>\n</d>", "line 3: malformed XML: expected `</a>`, but `</b>` was found"),
            ("<d>\n<f><a>1</a></f>\n</d>\ntrailing", "line 3: malformed XML: text after the end of the root element"),
            ("<d><f/></d>\n<d><f/></d>", "line 2: malformed XML: a second root element <d>"),
            ("junk<d/>", "line 1: malformed XML: text before the root element"),
            ("<d>\n<f><a>1</a></f>\n<f><a>2", "line 3: unexpected end of the file: <a> is not closed"),
            ("<d>\n<f a=\"1\" a=\"2\"/>\n</d>", "line 2: malformed XML: "),
            ("<d>\n<f>a & b</f>\n</d>", "line 2: malformed XML: "),
            ("<d>\n\n<f><a x=1/></f></d>", "line 3: malformed XML: "),
            ("<!-- only a comment -->", "malformed XML: the document has no root element"),
            ("<d></d>", "no records found: the root element <d> holds no elements"),
            ("<d>text only</d>", "--record-path"),
        ];
        for (xml, want) in cases {
            let e = read(xml, None).unwrap_err();
            assert!(e.starts_with(want) || e.contains(want), "{xml:?}: {e}");
        }
        let e = read("<d>\n<f><a>1</a></f>\n<f><a>2</b></f>\n</d>", Some("f")).unwrap_err();
        assert!(e.starts_with("line 3 (record 2): malformed XML"), "{e}");
        let e = read(HK, Some("dataset/facility")).unwrap_err();
        assert_eq!(
            e,
            "no records found: no element matches the record path \"dataset/facility\" (--record-path)"
        );
        let deep = format!("<d>{}</d>", "<e>".repeat(300));
        assert!(read(&deep, None).unwrap_err().contains("nested more than 256 deep"));
    }

    #[test]
    fn records_are_capped_in_size() {
        let opts = ReadOptions { max_record_bytes: 1000, ..ReadOptions::default() };
        let small = format!("<d>\n<f><a>{}</a></f>\n<f><a>1</a></f></d>", "x".repeat(500));
        assert_eq!(read_with(&small, &opts).unwrap().1.len(), 2);
        // Many small elements, and one long text.
        let many = format!("<d>\n<f><a>1</a></f>\n<f>{}</f></d>", "<a>1</a>".repeat(200));
        let e = read_with(&many, &opts).unwrap_err();
        assert_eq!(e, "line 3 (record 2): the record is larger than the record size limit (1000 bytes)");
        let long = format!("<d>\n<f><a>1</a></f>\n<f><a>{}</a></f></d>", "x".repeat(1 << 20));
        for path in [None, Some("f")] {
            let opts = ReadOptions { record_path: path.map(str::to_owned), ..opts.clone() };
            let e = read_with(&long, &opts).unwrap_err();
            assert!(e.contains("larger than the record size limit (1000 bytes)"), "{e}");
        }
        let e = read_with(&long, &ReadOptions { record_path: Some("f".into()), ..opts.clone() }).unwrap_err();
        assert!(e.starts_with("line 3 (record 2): "), "{e}");
    }

    #[test]
    fn the_reader_reads_once() {
        let opts = ReadOptions::default();
        let mut r = XmlReader::new(Box::new(Cursor::new(HK.as_bytes().to_vec())), &opts);
        let mut cols = Columns::default();
        r.read(&mut cols, &mut Vec::new(), &mut |_, _| Ok(())).unwrap();
        let e = r.read(&mut cols, &mut Vec::new(), &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(e.message, "the reader was already used");
    }
}
