//! DCAT: the catalogue as linked data, following DCAT-AP 3, for harvesters (European and national
//! portals, CKAN's DCAT harvester) and for anyone who wants the whole catalogue in one document.
//!
//! - `/catalog.jsonld`, `/catalog.ttl`, `/catalog.rdf`: the catalogue, a page of datasets at a time
//!   (`?page=N` from 1, `?page_size=M` up to [`MAX_PAGE_SIZE`], default [`PAGE_SIZE`]), with Hydra
//!   paging terms (`hydra:PartialCollectionView` with first, previous, next and last) as CKAN's DCAT
//!   extension serves them. The paging links are format-neutral (`/catalog?page=2`): `/catalog`, the
//!   catalogue's IRI, answers 303 See Other to the document the `Accept` header asks for.
//! - `/dataset/{slug}.jsonld`, `.ttl`, `.rdf`: one dataset; `/dataset/{slug}`, its IRI, redirects
//!   the same way.
//! - `/dataset/{slug}/datapackage.json`: a Frictionless Data Package, the dataset's data dictionary.
//!
//! Each answer is built once as a set of triples ([`Graph`]) and written by one of three small
//! writers (Turtle, JSON-LD, RDF/XML), so the three documents always hold the same graph. The
//! writers are written here rather than taken from a crate: the oxigraph serialisers (`oxttl`,
//! `oxrdfxml`, `oxjsonld`) add about a minute of build from scratch on two cores, a second
//! quick-xml, `rand`, and need Rust 1.87 where this workspace says 1.85, for a few hundred lines
//! of escaping that the tests below pin down. Every IRI and text is made safe once, when its term
//! is made ([`Term::iri`], [`Term::lang`]): IRIs percent-encode what IRIs may not hold, texts
//! replace the control characters XML 1.0 cannot carry, so all three writers can say the same.
//!
//! Vocabularies: themes map to the EU data-theme authority, frequencies to the EU frequency
//! authority, formats to the EU file-type authority, media types to IANA's registry. Every node
//! whose class DCAT-AP's SHACL shapes check is typed (`foaf:Agent`, `skos:Concept`,
//! `dct:LicenseDocument`, `dct:MediaType`, `dct:Frequency`, ...).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use citydata_model::LangText;
use citydata_store::{Dataset, Organization, Resource, Version};
use serde_json::{json, Map, Value as JsonValue};

use crate::extract::{Path, Query};
use crate::{ApiError, AppState};

/// Datasets on a catalogue page unless `page_size` says otherwise.
pub(crate) const PAGE_SIZE: u64 = 100;
/// The largest `page_size` accepted.
pub(crate) const MAX_PAGE_SIZE: u64 = 1000;

/// The catalogue's own title and description, in each language the site serves.
const CATALOG_TITLE: [(&str, &str); 3] = [
    ("en", "citydata open data catalogue"),
    ("zh-Hant", "citydata 開放數據目錄"),
    ("zh-Hans", "citydata 开放数据目录"),
];
const CATALOG_DESCRIPTION: [(&str, &str); 3] = [
    ("en", "Every dataset published on this site, with its files, their sizes and SHA-256 checksums."),
    ("zh-Hant", "本網站發布的所有數據集，連同其檔案、大小及 SHA-256 校驗碼。"),
    ("zh-Hans", "本网站发布的所有数据集，连同其文件、大小及 SHA-256 校验码。"),
];
/// Who publishes the catalogue when nothing says more (the site has no operator setting yet).
const SITE_PUBLISHER: &str = "citydata";

/// The prefixes every document declares; terms in the code are written with them (`dct:title`).
const PREFIXES: &[(&str, &str)] = &[
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("spdx", "http://spdx.org/rdf/terms#"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
];
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";

/// The EU Publications Office's authority tables (data themes, frequencies, file types, languages).
const EU: &str = "http://publications.europa.eu/resource/authority/";
const IANA_MEDIA_TYPES: &str = "http://www.iana.org/assignments/media-types/";

/// Theme names (ours, and DATA.GOV.HK's categories made into slugs) to the EU data themes.
const THEMES: &[(&[&str], &str, &str)] = &[
    (&["agriculture", "fisheries", "forestry", "food"], "AGRI", "Agriculture, fisheries, forestry and food"),
    (
        &["economy", "finance", "economy-and-finance", "commerce-and-industry", "business"],
        "ECON",
        "Economy and finance",
    ),
    (&["education", "culture", "sport", "recreation-and-culture"], "EDUC", "Education, culture and sport"),
    (&["energy"], "ENER", "Energy"),
    (&["environment", "climate", "climate-and-weather", "weather"], "ENVI", "Environment"),
    (
        &["government", "government-and-public-sector", "public-sector"],
        "GOVE",
        "Government and public sector",
    ),
    (&["health"], "HEAL", "Health"),
    (&["international", "international-issues"], "INTR", "International issues"),
    (&["justice", "law-and-security", "public-safety"], "JUST", "Justice, legal system and public safety"),
    (&["regions-and-cities", "city-management"], "REGI", "Regions and cities"),
    (
        &["population", "society", "population-and-society", "social-welfare", "housing"],
        "SOCI",
        "Population and society",
    ),
    (
        &["science-and-technology", "science", "technology", "information-technology-and-broadcasting"],
        "TECH",
        "Science and technology",
    ),
    (&["transport", "transportation", "traffic"], "TRAN", "Transport"),
];

/// Update frequencies to the EU frequency authority; anything else is `OTHER`.
const FREQUENCIES: &[(&[&str], &str)] = &[
    (&["continuous", "real-time", "realtime", "live"], "UPDATE_CONT"),
    (&["hourly"], "HOURLY"),
    (&["daily"], "DAILY"),
    (&["weekly"], "WEEKLY"),
    (&["fortnightly"], "BIWEEKLY"),
    (&["monthly"], "MONTHLY"),
    (&["quarterly"], "QUARTERLY"),
    (&["half-yearly", "semi-annual", "semiannual"], "ANNUAL_2"),
    (&["annual", "annually", "yearly"], "ANNUAL"),
    (&["irregular", "as-needed", "ad-hoc"], "IRREG"),
    (&["never"], "NEVER"),
];

/// Our format names to the EU file-type authority (formats it lacks, such as NDJSON, get none).
const FILE_TYPES: &[(&str, &str)] = &[
    ("csv", "CSV"),
    ("tsv", "TSV"),
    ("json", "JSON"),
    ("geojson", "GEOJSON"),
    ("xlsx", "XLSX"),
    ("xls", "XLS"),
    ("xml", "XML"),
];

/// Licence identifiers to the IRIs of their texts.
const LICENSES: &[(&str, &str)] = &[
    ("CC-BY-4.0", "http://creativecommons.org/licenses/by/4.0/"),
    ("CC-BY-SA-4.0", "http://creativecommons.org/licenses/by-sa/4.0/"),
    ("CC0-1.0", "http://creativecommons.org/publicdomain/zero/1.0/"),
    ("ODbL-1.0", "http://opendatacommons.org/licenses/odbl/1-0/"),
    ("ODC-By-1.0", "http://opendatacommons.org/licenses/by/1-0/"),
    ("PDDL-1.0", "http://opendatacommons.org/licenses/pddl/1-0/"),
    ("OGL-UK-3.0", "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"),
];

// ---------------------------------------------------------------------------------------------
// The graph

/// An RDF term. IRIs and literal texts are only made by the constructors, which make them safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Term {
    Iri(String),
    Blank(usize),
    Literal { value: String, tag: Tag },
}

/// What qualifies a literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tag {
    /// A plain string (`xsd:string`).
    None,
    /// A language tag (BCP 47, as written: `zh-Hant`).
    Lang(String),
    /// A datatype IRI.
    Type(String),
}

/// `dct:title` -> `http://purl.org/dc/terms/title`; full IRIs stay as they are.
fn expand(s: &str) -> String {
    if let Some((prefix, local)) = s.split_once(':') {
        if !local.starts_with("//") {
            if let Some((_, ns)) = PREFIXES.iter().find(|(p, _)| *p == prefix) {
                return format!("{ns}{local}");
            }
        }
    }
    s.to_owned()
}

/// Percent-encodes what an IRI may not hold (controls, space, `<>"{}|\^` and backquote).
fn clean_iri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c <= ' ' || c == '\u{7f}' || "<>\"{}|\\^`".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces the characters XML 1.0 cannot carry, even escaped, with U+FFFD, so that the RDF/XML
/// document holds the same text as the other two.
fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Percent-encodes one path segment or query value for a URL made here.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl Term {
    fn iri(s: &str) -> Term {
        Term::Iri(clean_iri(&expand(s)))
    }

    fn text(s: &str) -> Term {
        Term::Literal { value: clean_text(s), tag: Tag::None }
    }

    fn lang(s: &str, lang: &str) -> Term {
        Term::Literal { value: clean_text(s), tag: Tag::Lang(lang.to_owned()) }
    }

    fn typed(s: &str, datatype: &str) -> Term {
        let dt = expand(datatype);
        let tag = if dt == XSD_STRING { Tag::None } else { Tag::Type(dt) };
        Term::Literal { value: clean_text(s), tag }
    }
}

/// A set of triples, kept in the order they were added (duplicates are dropped).
#[derive(Default)]
struct Graph {
    triples: Vec<(Term, String, Term)>,
    seen: HashSet<(Term, String, Term)>,
    blanks: usize,
}

/// One subject with its predicates (`rdf:type` first) and their objects, in the order added.
struct Node<'g> {
    subject: &'g Term,
    props: Vec<(&'g str, Vec<&'g Term>)>,
}

impl Graph {
    fn blank(&mut self) -> Term {
        self.blanks += 1;
        Term::Blank(self.blanks - 1)
    }

    fn add(&mut self, s: &Term, p: &str, o: Term) {
        let t = (s.clone(), expand(p), o);
        if self.seen.insert(t.clone()) {
            self.triples.push(t);
        }
    }

    fn a(&mut self, s: &Term, class: &str) {
        self.add(s, "rdf:type", Term::iri(class));
    }

    /// One literal per language that has text.
    fn texts(&mut self, s: &Term, p: &str, t: &LangText) {
        for (lang, v) in &t.0 {
            if !v.trim().is_empty() {
                self.add(s, p, Term::lang(v, lang));
            }
        }
    }

    fn nodes(&self) -> Vec<Node<'_>> {
        let mut nodes: Vec<Node<'_>> = Vec::new();
        let mut index: HashMap<&Term, usize> = HashMap::new();
        for (s, p, o) in &self.triples {
            let i = *index.entry(s).or_insert_with(|| {
                nodes.push(Node { subject: s, props: Vec::new() });
                nodes.len() - 1
            });
            let props = &mut nodes[i].props;
            match props.iter_mut().find(|(q, _)| q == p) {
                Some((_, objects)) => objects.push(o),
                None => props.push((p, vec![o])),
            }
        }
        for n in &mut nodes {
            n.props.sort_by_key(|(p, _)| *p != RDF_TYPE);
        }
        nodes
    }
}

/// `prefix:local` when `iri` is in a declared namespace and `local` is a plain name.
fn compact(iri: &str) -> Option<String> {
    PREFIXES.iter().find_map(|(p, ns)| {
        let local = iri.strip_prefix(ns)?;
        let mut chars = local.chars();
        let first = chars.next()?;
        let plain = (first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        plain.then(|| format!("{p}:{local}"))
    })
}

// ---------------------------------------------------------------------------------------------
// Turtle

/// A Turtle string: quotes, backslashes and control characters escaped; everything else (Chinese
/// included) as it is, in UTF-8.
fn turtle_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn turtle_iri(iri: &str) -> String {
    compact(iri).unwrap_or_else(|| format!("<{iri}>"))
}

struct TurtleWriter<'g> {
    nodes: &'g [Node<'g>],
    index: HashMap<&'g Term, usize>,
    /// Blank nodes that are the object of exactly one triple: written in place as `[ ... ]`.
    inline: HashSet<&'g Term>,
    written: HashSet<&'g Term>,
    out: String,
}

impl<'g> TurtleWriter<'g> {
    fn term(&mut self, t: &'g Term, indent: usize) {
        match t {
            Term::Iri(i) => self.out.push_str(&turtle_iri(i)),
            Term::Blank(b) if !self.inline.contains(t) || self.written.contains(t) => {
                let _ = write!(self.out, "_:b{b}");
            }
            Term::Blank(_) => {
                self.written.insert(t);
                match self.index.get(t) {
                    Some(&i) => {
                        self.out.push_str("[\n");
                        self.props(i, indent + 4);
                        let _ = write!(self.out, "\n{:indent$}]", "");
                    }
                    None => self.out.push_str("[]"),
                }
            }
            Term::Literal { value, tag } => {
                self.out.push_str(&turtle_string(value));
                match tag {
                    Tag::None => {}
                    Tag::Lang(l) => {
                        let _ = write!(self.out, "@{l}");
                    }
                    Tag::Type(dt) => {
                        let _ = write!(self.out, "^^{}", turtle_iri(dt));
                    }
                }
            }
        }
    }

    fn props(&mut self, node: usize, indent: usize) {
        let nodes = self.nodes;
        let props = &nodes[node].props;
        for (n, (p, objects)) in props.iter().enumerate() {
            if n > 0 {
                self.out.push_str(" ;\n");
            }
            let pred = if *p == RDF_TYPE { "a".to_owned() } else { turtle_iri(p) };
            let _ = write!(self.out, "{:indent$}{pred} ", "");
            for (k, o) in objects.iter().enumerate() {
                if k > 0 {
                    self.out.push_str(", ");
                }
                self.term(o, indent);
            }
        }
    }

    fn top(&mut self, node: usize) {
        let subject = self.nodes[node].subject;
        self.written.insert(subject);
        match subject {
            Term::Iri(i) => self.out.push_str(&turtle_iri(i)),
            Term::Blank(b) => {
                let _ = write!(self.out, "_:b{b}");
            }
            Term::Literal { .. } => {}
        }
        self.out.push('\n');
        self.props(node, 4);
        self.out.push_str(" .\n\n");
    }
}

fn turtle(g: &Graph) -> String {
    let mut head = String::new();
    for (p, ns) in PREFIXES {
        let _ = writeln!(head, "@prefix {p}: <{ns}> .");
    }
    head.push('\n');
    let nodes = g.nodes();
    let mut refs: HashMap<&Term, usize> = HashMap::new();
    for (_, _, o) in &g.triples {
        if matches!(o, Term::Blank(_)) {
            *refs.entry(o).or_default() += 1;
        }
    }
    let mut w = TurtleWriter {
        nodes: &nodes,
        index: nodes.iter().enumerate().map(|(i, n)| (n.subject, i)).collect(),
        inline: refs.into_iter().filter(|(_, n)| *n == 1).map(|(t, _)| t).collect(),
        written: HashSet::new(),
        out: head,
    };
    for (i, n) in nodes.iter().enumerate() {
        if !w.inline.contains(n.subject) {
            w.top(i);
        }
    }
    // Blank nodes only reachable from one another (a cycle) are written with their labels.
    for (i, n) in nodes.iter().enumerate() {
        if !w.written.contains(n.subject) {
            w.top(i);
        }
    }
    w.out
}

// ---------------------------------------------------------------------------------------------
// JSON-LD

fn jsonld_name(iri: &str) -> String {
    compact(iri).unwrap_or_else(|| iri.to_owned())
}

fn jsonld_ref(t: &Term) -> JsonValue {
    match t {
        Term::Iri(i) => json!({ "@id": i }),
        Term::Blank(b) => json!({ "@id": format!("_:b{b}") }),
        Term::Literal { value, tag: Tag::None } => json!({ "@value": value }),
        Term::Literal { value, tag: Tag::Lang(l) } => json!({ "@value": value, "@language": l }),
        Term::Literal { value, tag: Tag::Type(dt) } => json!({ "@value": value, "@type": jsonld_name(dt) }),
    }
}

/// JSON-LD 1.1 in flattened form: a `@context` of the prefixes, and one node object per subject.
fn jsonld(g: &Graph) -> String {
    let context: Map<String, JsonValue> =
        PREFIXES.iter().map(|(p, ns)| ((*p).to_owned(), json!(ns))).collect();
    let graph: Vec<JsonValue> = g
        .nodes()
        .iter()
        .map(|n| {
            let mut node = Map::new();
            node.insert("@id".into(), jsonld_ref(n.subject)["@id"].clone());
            for (p, objects) in &n.props {
                let iris: Option<Vec<JsonValue>> = objects
                    .iter()
                    .map(|o| match o {
                        Term::Iri(i) => Some(json!(jsonld_name(i))),
                        _ => None,
                    })
                    .collect();
                match iris {
                    Some(types) if *p == RDF_TYPE => node.insert("@type".into(), JsonValue::Array(types)),
                    _ => node.insert(jsonld_name(p), objects.iter().map(|o| jsonld_ref(o)).collect()),
                };
            }
            JsonValue::Object(node)
        })
        .collect();
    let doc = json!({ "@context": context, "@graph": graph });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

// ---------------------------------------------------------------------------------------------
// RDF/XML

/// Text content: `&`, `<`, `>` (so `]]>` cannot appear) and carriage returns (which XML would
/// otherwise turn into line feeds) as references.
fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value in double quotes: as text, plus quotes, tabs and line feeds.
fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            c => out.push_str(&xml_text(c.encode_utf8(&mut [0u8; 4]))),
        }
    }
    out
}

fn is_ncname_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ncname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// The element name of a predicate: `prefix:local` for the declared namespaces, else `ns0:local`
/// with the namespace declared on the element (as the second value).
fn xml_qname(iri: &str) -> Result<(String, String), String> {
    if let Some(q) = compact(iri) {
        return Ok((q, String::new()));
    }
    let tail = iri.chars().rev().take_while(|c| is_ncname_char(*c)).count();
    let mut split = iri.len() - iri.chars().rev().take(tail).map(char::len_utf8).sum::<usize>();
    while split < iri.len() && !iri[split..].starts_with(is_ncname_start) {
        split += iri[split..].chars().next().map_or(1, char::len_utf8);
    }
    if split >= iri.len() {
        return Err(format!("the predicate <{iri}> has no local name that RDF/XML can write"));
    }
    Ok((format!("ns0:{}", &iri[split..]), format!(" xmlns:ns0=\"{}\"", xml_attr(&iri[..split]))))
}

fn rdfxml(g: &Graph) -> Result<String, String> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF");
    for (p, ns) in PREFIXES {
        let _ = write!(out, "\n    xmlns:{p}=\"{}\"", xml_attr(ns));
    }
    out.push_str(">\n");
    for n in g.nodes() {
        match n.subject {
            Term::Iri(i) => {
                let _ = writeln!(out, "  <rdf:Description rdf:about=\"{}\">", xml_attr(i));
            }
            Term::Blank(b) => {
                let _ = writeln!(out, "  <rdf:Description rdf:nodeID=\"b{b}\">");
            }
            Term::Literal { .. } => return Err("a literal cannot be a subject".into()),
        }
        for (p, objects) in &n.props {
            let (name, decl) = xml_qname(p)?;
            for o in objects {
                let _ = match o {
                    Term::Iri(i) => writeln!(out, "    <{name}{decl} rdf:resource=\"{}\"/>", xml_attr(i)),
                    Term::Blank(b) => writeln!(out, "    <{name}{decl} rdf:nodeID=\"b{b}\"/>"),
                    Term::Literal { value, tag } => {
                        let attr = match tag {
                            Tag::None => String::new(),
                            Tag::Lang(l) => format!(" xml:lang=\"{}\"", xml_attr(l)),
                            Tag::Type(dt) => format!(" rdf:datatype=\"{}\"", xml_attr(dt)),
                        };
                        writeln!(out, "    <{name}{decl}{attr}>{}</{name}>", xml_text(value))
                    }
                };
            }
        }
        out.push_str("  </rdf:Description>\n");
    }
    out.push_str("</rdf:RDF>\n");
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Vocabulary mappings

/// A name as a lower-case slug: `Law & Security` -> `law-and-security`.
fn slug_of(s: &str) -> String {
    let s = s.trim().to_lowercase().replace('&', " and ");
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// The EU data theme of one of our themes: its code and English label.
fn eu_theme(theme: &str) -> Option<(&'static str, &'static str)> {
    let key = slug_of(theme);
    THEMES.iter().find(|(names, _, _)| names.contains(&key.as_str())).map(|(_, code, label)| (*code, *label))
}

/// The EU frequency code of an update frequency (`OTHER` when it is none of the known ones).
fn eu_frequency(frequency: &str) -> &'static str {
    let key = slug_of(frequency);
    FREQUENCIES.iter().find(|(names, _)| names.contains(&key.as_str())).map_or("OTHER", |(_, code)| code)
}

fn eu_file_type(format: &str) -> Option<&'static str> {
    let f = format.to_ascii_lowercase();
    FILE_TYPES.iter().find(|(name, _)| *name == f).map(|(_, code)| *code)
}

/// The IANA IRI of a registered media type (`text/csv; charset=utf-8` -> `.../text/csv`);
/// unregistered (`x-`) and malformed types have none.
fn iana_media_type(media_type: &str) -> Option<String> {
    let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    (token(kind) && token(sub) && !sub.starts_with("x-")).then(|| format!("{IANA_MEDIA_TYPES}{kind}/{sub}"))
}

/// The EU language of a BCP 47 tag.
fn eu_language(tag: &str) -> Option<&'static str> {
    match tag.split('-').next()? {
        "en" => Some("ENG"),
        "zh" => Some("ZHO"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Describing the catalogue

/// A document being built: the graph, the site's base URL and the nodes shared within it.
struct Doc {
    g: Graph,
    base: String,
    licenses: HashMap<String, Term>,
    schemes: Vec<Term>,
}

fn dataset_iri(base: &str, slug: &str) -> String {
    format!("{base}/dataset/{}", pct(slug))
}

fn download_url(base: &str, d: &Dataset, r: &Resource, v: &Version) -> String {
    format!(
        "{base}/api/v1/datasets/{}/resources/{}/versions/{}/download",
        pct(&d.slug),
        pct(&r.name),
        v.number
    )
}

/// The page a person reads about a dataset: the native API's answer until the web UI has one.
fn landing_page(base: &str, slug: &str) -> String {
    format!("{base}/api/v1/datasets/{}", pct(slug))
}

fn datapackage_url(base: &str, slug: &str) -> String {
    format!("{base}/dataset/{}/datapackage.json", pct(slug))
}

impl Doc {
    fn new(base: &str) -> Self {
        Self { g: Graph::default(), base: base.to_owned(), licenses: HashMap::new(), schemes: Vec::new() }
    }

    fn site_agent(&mut self) -> (Term, Term) {
        let agent = Term::iri(&format!("{}/#publisher", self.base));
        self.g.a(&agent, "foaf:Agent");
        self.g.add(&agent, "foaf:name", Term::text(SITE_PUBLISHER));
        let contact = Term::iri(&format!("{}/#contact", self.base));
        self.contact(&contact, SITE_PUBLISHER);
        (agent, contact)
    }

    fn contact(&mut self, contact: &Term, name: &str) {
        self.g.a(contact, "vcard:Organization");
        self.g.a(contact, "vcard:Kind");
        self.g.add(contact, "vcard:fn", Term::text(name));
        self.g.add(contact, "vcard:hasURL", Term::iri(&format!("{}/", self.base)));
    }

    /// The publisher (`foaf:Agent`) and contact point (`vcard:Organization`) of a dataset.
    fn agent(&mut self, org: Option<&Organization>) -> (Term, Term) {
        let Some(o) = org else { return self.site_agent() };
        let iri = format!("{}/organization/{}", self.base, pct(&o.slug));
        let agent = Term::iri(&iri);
        self.g.a(&agent, "foaf:Agent");
        self.g.a(&agent, "foaf:Organization");
        if o.title.is_empty() {
            self.g.add(&agent, "foaf:name", Term::text(&o.slug));
        } else {
            self.g.texts(&agent, "foaf:name", &o.title);
        }
        let contact = Term::iri(&format!("{iri}#contact"));
        self.contact(&contact, o.title.best().unwrap_or(&o.slug));
        (agent, contact)
    }

    /// A theme as a `skos:Concept`: the EU data theme it maps to, else a concept of this site.
    fn theme(&mut self, theme: &str) -> Term {
        let (concept, label, scheme, scheme_title) = match eu_theme(theme) {
            Some((code, label)) => (
                format!("{EU}data-theme/{code}"),
                label.to_owned(),
                format!("{EU}data-theme"),
                "Data theme".to_owned(),
            ),
            None => (
                format!("{}/theme/{}", self.base, pct(&slug_of(theme))),
                theme.to_owned(),
                format!("{}/theme", self.base),
                "Themes of this catalogue".to_owned(),
            ),
        };
        let concept = Term::iri(&concept);
        let scheme = Term::iri(&scheme);
        self.g.a(&concept, "skos:Concept");
        self.g.add(&concept, "skos:prefLabel", Term::lang(&label, "en"));
        self.g.add(&concept, "skos:inScheme", scheme.clone());
        self.g.a(&scheme, "skos:ConceptScheme");
        self.g.add(&scheme, "dct:title", Term::lang(&scheme_title, "en"));
        if !self.schemes.contains(&scheme) {
            self.schemes.push(scheme);
        }
        concept
    }

    fn language(&mut self, tag: &str) -> Option<Term> {
        let code = eu_language(tag)?;
        let lang = Term::iri(&format!("{EU}language/{code}"));
        self.g.a(&lang, "dct:LinguisticSystem");
        Some(lang)
    }

    /// A licence: a known identifier or a URL as the IRI of its text; other text as a
    /// `dct:LicenseDocument` node labelled with it (one per text in a document).
    fn license(&mut self, license: &str) -> Term {
        if let Some(t) = self.licenses.get(license) {
            return t.clone();
        }
        let known = LICENSES.iter().find(|(id, _)| id.eq_ignore_ascii_case(license.trim()));
        let is_url = (license.starts_with("http://") || license.starts_with("https://"))
            && !license.contains(char::is_whitespace);
        let node = match known {
            Some((_, iri)) => Term::iri(iri),
            None if is_url => Term::iri(license),
            None => self.g.blank(),
        };
        self.g.a(&node, "dct:LicenseDocument");
        if !is_url {
            self.g.add(&node, "rdfs:label", Term::text(known.map_or(license, |(id, _)| id)));
        }
        self.licenses.insert(license.to_owned(), node.clone());
        node
    }

    fn dataset(&mut self, d: &Dataset) -> Term {
        let m = &d.meta;
        let base = self.base.clone();
        let ds = Term::iri(&dataset_iri(&base, &d.slug));
        self.g.a(&ds, "dcat:Dataset");
        self.g.add(&ds, "dct:identifier", Term::text(&d.id));
        if m.title.is_empty() {
            self.g.add(&ds, "dct:title", Term::text(&d.slug));
        } else {
            self.g.texts(&ds, "dct:title", &m.title);
        }
        // DCAT-AP requires a description; a dataset without one is described by its title.
        if m.description.is_empty() {
            let title = if m.title.is_empty() { LangText::en(d.slug.clone()) } else { m.title.clone() };
            self.g.texts(&ds, "dct:description", &title);
        } else {
            self.g.texts(&ds, "dct:description", &m.description);
        }
        for tag in &m.tags {
            self.g.add(&ds, "dcat:keyword", Term::text(tag));
        }
        if let Some(theme) = m.theme.as_deref().filter(|t| !t.trim().is_empty()) {
            let concept = self.theme(theme);
            self.g.add(&ds, "dcat:theme", concept);
        }
        let (publisher, contact) = self.agent(d.organization.as_ref());
        self.g.add(&ds, "dct:publisher", publisher);
        self.g.add(&ds, "dcat:contactPoint", contact);
        self.g.add(&ds, "dct:issued", Term::typed(&d.created, "xsd:dateTime"));
        self.g.add(&ds, "dct:modified", Term::typed(&d.modified, "xsd:dateTime"));
        if let Some(f) = m.frequency.as_deref().filter(|f| !f.trim().is_empty()) {
            let freq = Term::iri(&format!("{EU}frequency/{}", eu_frequency(f)));
            self.g.a(&freq, "dct:Frequency");
            self.g.add(&ds, "dct:accrualPeriodicity", freq);
        }
        let page = Term::iri(&landing_page(&base, &d.slug));
        self.g.a(&page, "foaf:Document");
        self.g.add(&ds, "dcat:landingPage", page);
        for tag in m.title.0.keys().chain(m.description.0.keys()) {
            if let Some(lang) = self.language(tag) {
                self.g.add(&ds, "dct:language", lang);
            }
        }
        if let Some(source) = m.source.as_deref().filter(|s| !s.trim().is_empty()) {
            let prov = self.g.blank();
            self.g.a(&prov, "dct:ProvenanceStatement");
            self.g.add(&prov, "rdfs:label", Term::lang(source, "en"));
            self.g.add(&ds, "dct:provenance", prov);
        }
        for r in &d.resources {
            if let Some(v) = r.current() {
                let dist = self.distribution(d, r, v);
                self.g.add(&ds, "dcat:distribution", dist);
            }
        }
        ds
    }

    /// A resource's current version as a `dcat:Distribution`.
    fn distribution(&mut self, d: &Dataset, r: &Resource, v: &Version) -> Term {
        let base = self.base.clone();
        let dist = Term::iri(&format!("{}/resource/{}", dataset_iri(&base, &d.slug), pct(&r.name)));
        self.g.a(&dist, "dcat:Distribution");
        self.g.add(&dist, "dct:identifier", Term::text(&r.id));
        if r.title.is_empty() {
            self.g.add(&dist, "dct:title", Term::text(&r.name));
        } else {
            self.g.texts(&dist, "dct:title", &r.title);
        }
        self.g.texts(&dist, "dct:description", &r.description);
        let url = Term::iri(&download_url(&base, d, r, v));
        self.g.add(&dist, "dcat:accessURL", url.clone());
        self.g.add(&dist, "dcat:downloadURL", url);
        if let Some(l) = d.meta.license.as_deref().filter(|l| !l.trim().is_empty()) {
            let license = self.license(l);
            self.g.add(&dist, "dct:license", license);
        }
        if let Some(code) = eu_file_type(&v.format) {
            let format = Term::iri(&format!("{EU}file-type/{code}"));
            self.g.a(&format, "dct:MediaTypeOrExtent");
            self.g.add(&dist, "dct:format", format);
        }
        if let Some(iri) = iana_media_type(&v.media_type) {
            let media = Term::iri(&iri);
            self.g.a(&media, "dct:MediaType");
            self.g.add(&dist, "dcat:mediaType", media);
        }
        if v.bytes >= 0 {
            self.g.add(&dist, "dcat:byteSize", Term::typed(&v.bytes.to_string(), "xsd:nonNegativeInteger"));
        }
        let checksum = self.g.blank();
        let sha256 = Term::iri("spdx:checksumAlgorithm_sha256");
        self.g.a(&sha256, "spdx:ChecksumAlgorithm");
        self.g.a(&checksum, "spdx:Checksum");
        self.g.add(&checksum, "spdx:algorithm", sha256);
        self.g.add(&checksum, "spdx:checksumValue", Term::typed(&v.sha256, "xsd:hexBinary"));
        self.g.add(&dist, "spdx:checksum", checksum);
        if let Some(first) = r.versions.first() {
            self.g.add(&dist, "dct:issued", Term::typed(&first.created, "xsd:dateTime"));
        }
        self.g.add(&dist, "dct:modified", Term::typed(&v.created, "xsd:dateTime"));
        let schema = Term::iri(&datapackage_url(&base, &d.slug));
        self.g.a(&schema, "dct:Standard");
        self.g.add(
            &schema,
            "rdfs:label",
            Term::lang("Frictionless Data Package with the Table Schema of each resource", "en"),
        );
        self.g.add(&dist, "dct:conformsTo", schema);
        dist
    }
}

/// Where a catalogue page stands among all pages.
struct PageInfo {
    page: u64,
    size: u64,
    total: u64,
}

impl PageInfo {
    fn last(&self) -> u64 {
        self.total.div_ceil(self.size).max(1)
    }
}

/// What the catalogue says about all its datasets, not only those on the page.
struct Summary {
    issued: Option<String>,
    modified: Option<String>,
}

fn catalog_graph(base: &str, datasets: &[Dataset], paging: &PageInfo, summary: &Summary) -> Graph {
    let mut doc = Doc::new(base);
    let cat = Term::iri(&format!("{base}/catalog"));
    doc.g.a(&cat, "dcat:Catalog");
    for (lang, text) in CATALOG_TITLE {
        doc.g.add(&cat, "dct:title", Term::lang(text, lang));
    }
    for (lang, text) in CATALOG_DESCRIPTION {
        doc.g.add(&cat, "dct:description", Term::lang(text, lang));
    }
    let (publisher, _) = doc.site_agent();
    doc.g.add(&cat, "dct:publisher", publisher);
    let home = Term::iri(&format!("{base}/"));
    doc.g.a(&home, "foaf:Document");
    doc.g.add(&cat, "foaf:homepage", home);
    for (lang, _) in CATALOG_TITLE {
        if let Some(l) = doc.language(lang) {
            doc.g.add(&cat, "dct:language", l);
        }
    }
    if let Some(t) = &summary.issued {
        doc.g.add(&cat, "dct:issued", Term::typed(t, "xsd:dateTime"));
    }
    if let Some(t) = &summary.modified {
        doc.g.add(&cat, "dct:modified", Term::typed(t, "xsd:dateTime"));
    }
    for d in datasets {
        let ds = doc.dataset(d);
        doc.g.add(&cat, "dcat:dataset", ds);
    }
    for scheme in doc.schemes.clone() {
        doc.g.add(&cat, "dcat:themeTaxonomy", scheme);
    }
    let page_iri = |n: u64| {
        let size =
            if paging.size == PAGE_SIZE { String::new() } else { format!("&page_size={}", paging.size) };
        Term::iri(&format!("{base}/catalog?page={n}{size}"))
    };
    let view = page_iri(paging.page);
    let last = paging.last();
    doc.g.add(&cat, "hydra:view", view.clone());
    doc.g.a(&view, "hydra:PartialCollectionView");
    doc.g.add(&view, "hydra:totalItems", Term::typed(&paging.total.to_string(), "xsd:integer"));
    doc.g.add(&view, "hydra:itemsPerPage", Term::typed(&paging.size.to_string(), "xsd:integer"));
    doc.g.add(&view, "hydra:first", page_iri(1));
    if paging.page > 1 {
        doc.g.add(&view, "hydra:previous", page_iri(paging.page - 1));
    }
    if paging.page < last {
        doc.g.add(&view, "hydra:next", page_iri(paging.page + 1));
    }
    doc.g.add(&view, "hydra:last", page_iri(last));
    doc.g
}

// ---------------------------------------------------------------------------------------------
// The Frictionless Data Package

fn best(t: &LangText) -> Option<&str> {
    t.best().filter(|s| !s.trim().is_empty())
}

fn datapackage_json(base: &str, d: &Dataset) -> JsonValue {
    let m = &d.meta;
    let mut out = Map::new();
    out.insert("id".into(), json!(dataset_iri(base, &d.slug)));
    out.insert("name".into(), json!(d.slug));
    out.insert("title".into(), json!(best(&m.title).unwrap_or(&d.slug)));
    if let Some(desc) = best(&m.description) {
        out.insert("description".into(), json!(desc));
    }
    out.insert("homepage".into(), json!(landing_page(base, &d.slug)));
    out.insert("created".into(), json!(d.created));
    if !m.tags.is_empty() {
        out.insert("keywords".into(), json!(m.tags));
    }
    if let Some(l) = m.license.as_deref().filter(|l| !l.trim().is_empty()) {
        let license = match LICENSES.iter().find(|(id, _)| id.eq_ignore_ascii_case(l.trim())) {
            Some((id, path)) => json!({ "name": id, "path": path, "title": id }),
            None if l.starts_with("http://") || l.starts_with("https://") => json!({ "path": l }),
            // A licence given by its title: a name in the form the specification asks for.
            None => json!({ "name": slug_of(l), "title": l }),
        };
        out.insert("licenses".into(), json!([license]));
    }
    if let Some(source) = m.source.as_deref().filter(|s| !s.trim().is_empty()) {
        out.insert("sources".into(), json!([{ "title": source }]));
    }
    if let Some(o) = &d.organization {
        out.insert(
            "contributors".into(),
            json!([{ "title": best(&o.title).unwrap_or(&o.slug), "role": "publisher" }]),
        );
    }
    let resources: Vec<JsonValue> = d
        .resources
        .iter()
        .filter_map(|r| {
            let v = r.current()?;
            let mut res = Map::new();
            res.insert("name".into(), json!(r.name));
            res.insert("path".into(), json!(download_url(base, d, r, v)));
            if let Some(t) = best(&r.title) {
                res.insert("title".into(), json!(t));
            }
            if let Some(t) = best(&r.description) {
                res.insert("description".into(), json!(t));
            }
            let format = v.format.to_ascii_lowercase();
            res.insert("format".into(), json!(format));
            res.insert("mediatype".into(), json!(v.media_type));
            if format != "xlsx" && !v.encoding.is_empty() {
                res.insert("encoding".into(), json!(v.encoding));
            }
            res.insert("bytes".into(), json!(v.bytes));
            res.insert("hash".into(), json!(format!("sha256:{}", v.sha256)));
            if format == "csv" || format == "tsv" {
                res.insert("profile".into(), json!("tabular-data-resource"));
            }
            if format == "tsv" {
                res.insert("dialect".into(), json!({ "delimiter": "\t" }));
            }
            res.insert("schema".into(), json!(v.schema));
            Some(JsonValue::Object(res))
        })
        .collect();
    out.insert("resources".into(), JsonValue::Array(resources));
    JsonValue::Object(out)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The three syntaxes, each from one writer over the same graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    JsonLd,
    Turtle,
    RdfXml,
}

impl Syntax {
    fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jsonld" => Some(Syntax::JsonLd),
            "ttl" => Some(Syntax::Turtle),
            "rdf" => Some(Syntax::RdfXml),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Syntax::JsonLd => "jsonld",
            Syntax::Turtle => "ttl",
            Syntax::RdfXml => "rdf",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Syntax::JsonLd => "application/ld+json",
            Syntax::Turtle => "text/turtle; charset=utf-8",
            Syntax::RdfXml => "application/rdf+xml",
        }
    }

    fn write(self, g: &Graph) -> Result<String, ApiError> {
        match self {
            Syntax::JsonLd => Ok(jsonld(g)),
            Syntax::Turtle => Ok(turtle(g)),
            Syntax::RdfXml => rdfxml(g).map_err(ApiError::Internal),
        }
    }
}

/// The syntax the `Accept` header prefers (JSON-LD when it names none of the three).
fn negotiate(headers: &HeaderMap) -> Syntax {
    let accept = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()).unwrap_or("");
    let mut chosen: Option<(f32, Syntax)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .unwrap_or(1.0);
        let syntax = match media.as_str() {
            "text/turtle" | "application/x-turtle" => Syntax::Turtle,
            "application/rdf+xml" => Syntax::RdfXml,
            "application/ld+json" | "application/json" => Syntax::JsonLd,
            _ => continue,
        };
        if q > 0.0 && chosen.is_none_or(|(best, _)| q > best) {
            chosen = Some((q, syntax));
        }
    }
    chosen.map_or(Syntax::JsonLd, |(_, s)| s)
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    resp
}

fn document(g: &Graph, syntax: Syntax) -> Result<Response, ApiError> {
    let body = syntax.write(g)?;
    Ok(([(header::CONTENT_TYPE, syntax.content_type())], body).into_response())
}

/// The base URL of the site as the client reached it, or `http://localhost` when the `Host`
/// header holds anything a host name cannot.
fn site_base(headers: &HeaderMap) -> String {
    let base = crate::ckan::base_url(headers);
    let host = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://"));
    let sane = host.is_some_and(|h| {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    });
    if sane {
        base
    } else {
        "http://localhost".to_owned()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// A catalogue page asked for: `page` from 1, `page_size` from 1 to [`MAX_PAGE_SIZE`].
#[derive(Debug, PartialEq, Eq)]
struct Paging {
    page: u64,
    size: u64,
}

impl Paging {
    fn parse(query: &[(String, String)]) -> Result<Self, ApiError> {
        let number = |name: &str, default: u64| -> Result<u64, ApiError> {
            match query.iter().rev().find(|(k, _)| k == name) {
                None => Ok(default),
                Some((_, v)) => v.trim().parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::BadRequest(format!("{name} must be a whole number from 1, not {v:?}"))
                }),
            }
        };
        let page = number("page", 1)?;
        let size = number("page_size", PAGE_SIZE)?;
        if size > MAX_PAGE_SIZE {
            return Err(ApiError::BadRequest(format!(
                "page_size must be at most {MAX_PAGE_SIZE}, not {size}"
            )));
        }
        Ok(Self { page, size })
    }
}

/// `GET /catalog`: the catalogue's IRI; 303 to the document in the syntax `Accept` asks for.
pub(crate) async fn catalog(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    see_other(&format!("/catalog.{}{query}", negotiate(&headers).extension()))
}

async fn catalog_document(
    s: AppState,
    headers: &HeaderMap,
    query: &[(String, String)],
    syntax: Syntax,
) -> Result<Response, ApiError> {
    let Paging { page, size } = Paging::parse(query)?;
    let base = site_base(headers);
    let g = blocking(move || {
        let slugs = s.store.dataset_slugs()?;
        let paging = PageInfo { page, size, total: u64::try_from(slugs.len()).unwrap_or(u64::MAX) };
        let last = paging.last();
        if page > last {
            return Err(ApiError::BadRequest(format!(
                "page {page} is past the last page, {last} ({} datasets, {size} a page)",
                paging.total
            )));
        }
        let first = (page - 1).saturating_mul(size);
        let mut on_page = Vec::new();
        let mut summary = Summary { issued: None, modified: None };
        // The catalogue's dates cover every dataset, so all are read (the store keeps no total).
        for (i, slug) in slugs.iter().enumerate() {
            let Some(d) = s.store.dataset(slug)? else { continue };
            if summary.issued.as_deref().is_none_or(|t| d.created.as_str() < t) {
                summary.issued = Some(d.created.clone());
            }
            if summary.modified.as_deref().is_none_or(|t| d.modified.as_str() > t) {
                summary.modified = Some(d.modified.clone());
            }
            let i = u64::try_from(i).unwrap_or(u64::MAX);
            if i >= first && i - first < size {
                on_page.push(d);
            }
        }
        Ok(catalog_graph(&base, &on_page, &paging, &summary))
    })
    .await?;
    document(&g, syntax)
}

/// `GET /catalog.jsonld`
pub(crate) async fn catalog_jsonld(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    catalog_document(s, &headers, &q, Syntax::JsonLd).await
}

/// `GET /catalog.ttl`
pub(crate) async fn catalog_ttl(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    catalog_document(s, &headers, &q, Syntax::Turtle).await
}

/// `GET /catalog.rdf`
pub(crate) async fn catalog_rdf(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    catalog_document(s, &headers, &q, Syntax::RdfXml).await
}

async fn find_dataset(s: AppState, slug: String) -> Result<Dataset, ApiError> {
    blocking(move || {
        s.store.dataset(&slug)?.ok_or_else(|| ApiError::NotFound(format!("dataset {slug:?} not found")))
    })
    .await
}

/// `GET /dataset/{slug}.jsonld|.ttl|.rdf`, and `GET /dataset/{slug}` (the dataset's IRI: 303 to
/// the document in the syntax `Accept` asks for).
pub(crate) async fn dataset(
    State(s): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (slug, syntax) = match file.rsplit_once('.') {
        None => (file.clone(), None),
        Some((slug, ext)) => match Syntax::from_extension(ext) {
            Some(syntax) => (slug.to_owned(), Some(syntax)),
            None => {
                return Err(ApiError::NotFound(format!(
                    "no document {file:?}: a dataset is described at /dataset/{{slug}}.jsonld, .ttl or .rdf"
                )))
            }
        },
    };
    let d = find_dataset(s, slug).await?;
    match syntax {
        None => Ok(see_other(&format!("/dataset/{}.{}", pct(&d.slug), negotiate(&headers).extension()))),
        Some(syntax) => {
            let mut doc = Doc::new(&site_base(&headers));
            doc.dataset(&d);
            document(&doc.g, syntax)
        }
    }
}

/// `GET /dataset/{slug}/datapackage.json`
pub(crate) async fn datapackage(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, ApiError> {
    let d = find_dataset(s, slug).await?;
    Ok(Json(datapackage_json(&site_base(&headers), &d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text that breaks naive writers.
    const HOSTILE: &str = "say \"hi\" \"\"\" back\\slash\\n new\nline\r\ttab <b>&amp; ]]> 中文 '單' end\\";

    fn hostile_graph() -> Graph {
        let mut g = Graph::default();
        let s = Term::iri("http://example.org/d?a=1&b=<2>");
        g.a(&s, "dcat:Dataset");
        g.add(&s, "dct:title", Term::lang(HOSTILE, "zh-Hant"));
        g.add(&s, "dct:description", Term::text(HOSTILE));
        g.add(&s, "dct:issued", Term::typed("2026-01-02T03:04:05Z", "xsd:dateTime"));
        let b = g.blank();
        g.add(&s, "spdx:checksum", b.clone());
        g.add(&b, "spdx:checksumValue", Term::typed("ab01", "xsd:hexBinary"));
        g
    }

    #[test]
    fn turtle_strings_escape_quotes_backslashes_and_line_breaks() {
        for (input, expected) in [
            ("plain", r#""plain""#),
            ("a \"q\" \"\"\"", r#""a \"q\" \"\"\"""#),
            ("back\\slash\\", r#""back\\slash\\""#),
            ("l1\nl2\r\tx\u{1}", r#""l1\nl2\r\tx\u0001""#),
            ("<b>&amp; ]]> 中文", r#""<b>&amp; ]]> 中文""#),
        ] {
            assert_eq!(turtle_string(input), expected, "{input:?}");
        }
    }

    #[test]
    fn xml_escapes_markup_and_keeps_carriage_returns() {
        for (input, text, attr) in [
            ("a<b>&c", "a&lt;b&gt;&amp;c", "a&lt;b&gt;&amp;c"),
            ("x ]]> y", "x ]]&gt; y", "x ]]&gt; y"),
            ("\"q\"\n\r\t", "\"q\"\n&#13;\t", "&quot;q&quot;&#10;&#13;&#9;"),
            ("中文 \\", "中文 \\", "中文 \\"),
        ] {
            assert_eq!(xml_text(input), text, "{input:?}");
            assert_eq!(xml_attr(input), attr, "{input:?}");
        }
    }

    #[test]
    fn texts_lose_only_what_xml_cannot_carry_and_iris_are_made_valid() {
        assert_eq!(clean_text("a\u{0}b\u{1b}c\td\ne\rf\u{FFFF}"), "a\u{FFFD}b\u{FFFD}c\td\ne\rf\u{FFFD}");
        assert_eq!(clean_iri("http://x/a b<c>\"{d}|\\^`中"), "http://x/a%20b%3Cc%3E%22%7Bd%7D%7C%5C%5E%60中");
        assert_eq!(pct("智慧 city/é"), "%E6%99%BA%E6%85%A7%20city%2F%C3%A9");
    }

    #[test]
    fn turtle_document_of_hostile_text() {
        let ttl = turtle(&hostile_graph());
        let body = ttl.split("\n\n").nth(1).unwrap();
        assert_eq!(
            body,
            "<http://example.org/d?a=1&b=%3C2%3E>\n    \
             a dcat:Dataset ;\n    \
             dct:title \"say \\\"hi\\\" \\\"\\\"\\\" back\\\\slash\\\\n new\\nline\\r\\ttab <b>&amp; ]]> 中文 '單' end\\\\\"@zh-Hant ;\n    \
             dct:description \"say \\\"hi\\\" \\\"\\\"\\\" back\\\\slash\\\\n new\\nline\\r\\ttab <b>&amp; ]]> 中文 '單' end\\\\\" ;\n    \
             dct:issued \"2026-01-02T03:04:05Z\"^^xsd:dateTime ;\n    \
             spdx:checksum [\n        \
             spdx:checksumValue \"ab01\"^^xsd:hexBinary\n    \
             ] ."
        );
    }

    #[test]
    fn jsonld_document_of_hostile_text() {
        let doc: JsonValue = serde_json::from_str(&jsonld(&hostile_graph())).unwrap();
        assert_eq!(doc["@context"]["dct"], "http://purl.org/dc/terms/");
        let node = &doc["@graph"][0];
        assert_eq!(node["@id"], "http://example.org/d?a=1&b=%3C2%3E");
        assert_eq!(node["@type"], json!(["dcat:Dataset"]));
        assert_eq!(node["dct:title"], json!([{ "@value": HOSTILE, "@language": "zh-Hant" }]));
        assert_eq!(node["dct:description"], json!([{ "@value": HOSTILE }]));
        assert_eq!(
            node["dct:issued"],
            json!([{ "@value": "2026-01-02T03:04:05Z", "@type": "xsd:dateTime" }])
        );
        assert_eq!(node["spdx:checksum"], json!([{ "@id": "_:b0" }]));
        assert_eq!(doc["@graph"][1]["@id"], "_:b0");
    }

    #[test]
    fn rdfxml_document_of_hostile_text() {
        let xml = rdfxml(&hostile_graph()).unwrap();
        let escaped =
            "say \"hi\" \"\"\" back\\slash\\n new\nline&#13;\ttab &lt;b&gt;&amp;amp; ]]&gt; 中文 '單' end\\";
        assert!(xml.contains(&format!("<dct:title xml:lang=\"zh-Hant\">{escaped}</dct:title>")), "{xml}");
        assert!(xml.contains(&format!("<dct:description>{escaped}</dct:description>")), "{xml}");
        assert!(
            xml.contains("<rdf:Description rdf:about=\"http://example.org/d?a=1&amp;b=%3C2%3E\">"),
            "{xml}"
        );
        assert!(xml.contains("<spdx:checksum rdf:nodeID=\"b0\"/>"), "{xml}");
        assert!(xml.contains("<rdf:Description rdf:nodeID=\"b0\">"), "{xml}");
        assert!(xml.contains(
            "<dct:issued rdf:datatype=\"http://www.w3.org/2001/XMLSchema#dateTime\">2026-01-02T03:04:05Z</dct:issued>"
        ));
        assert_eq!(xml.matches("]]>").count(), 0);
    }

    #[test]
    fn predicates_outside_the_prefixes_get_a_namespace_of_their_own() {
        assert_eq!(xml_qname(&expand("dct:title")).unwrap(), ("dct:title".into(), String::new()));
        assert_eq!(
            xml_qname("http://example.org/v#p-1").unwrap(),
            ("ns0:p-1".into(), " xmlns:ns0=\"http://example.org/v#\"".into())
        );
        assert_eq!(
            xml_qname("http://example.org/v/1.5x").unwrap(),
            ("ns0:x".into(), " xmlns:ns0=\"http://example.org/v/1.5\"".into())
        );
        assert!(xml_qname("http://example.org/v/").is_err());
    }

    #[test]
    fn shared_and_cyclic_blank_nodes_keep_their_labels() {
        let mut g = Graph::default();
        let s = Term::iri("http://example.org/s");
        let shared = g.blank();
        let (c1, c2) = (g.blank(), g.blank());
        g.add(&s, "dct:license", shared.clone());
        g.add(&s, "dct:rights", shared.clone());
        g.add(&shared, "rdfs:label", Term::text("L"));
        g.add(&c1, "rdfs:seeAlso", c2.clone());
        g.add(&c2, "rdfs:seeAlso", c1.clone());
        let ttl = turtle(&g);
        let body: Vec<&str> = ttl.split("\n\n").skip(1).filter(|s| !s.is_empty()).collect();
        assert_eq!(
            body,
            [
                "<http://example.org/s>\n    dct:license _:b0 ;\n    dct:rights _:b0 .",
                "_:b0\n    rdfs:label \"L\" .",
                "_:b1\n    rdfs:seeAlso [\n        rdfs:seeAlso _:b1\n    ] .",
            ]
        );
    }

    #[test]
    fn vocabularies_map_to_the_eu_authorities() {
        for (theme, code) in [
            ("economy", Some("ECON")),
            ("science-and-technology", Some("TECH")),
            ("Science and Technology", Some("TECH")),
            ("Law & Security", Some("JUST")),
            ("transport", Some("TRAN")),
            ("population", Some("SOCI")),
            ("空氣", None),
        ] {
            assert_eq!(eu_theme(theme).map(|t| t.0), code, "{theme}");
        }
        for (f, code) in
            [("daily", "DAILY"), ("Annual", "ANNUAL"), ("irregular", "IRREG"), ("every 5 minutes", "OTHER")]
        {
            assert_eq!(eu_frequency(f), code, "{f}");
        }
        assert_eq!(eu_file_type("CSV"), Some("CSV"));
        assert_eq!(eu_file_type("ndjson"), None);
        assert_eq!(
            iana_media_type("text/csv; charset=utf-8").as_deref(),
            Some("http://www.iana.org/assignments/media-types/text/csv")
        );
        assert_eq!(iana_media_type("application/x-ndjson"), None);
        assert_eq!(iana_media_type("nonsense"), None);
    }

    #[test]
    fn paging_parameters() {
        let q = |s: &[(&str, &str)]| -> Vec<(String, String)> {
            s.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(Paging::parse(&q(&[])).unwrap(), Paging { page: 1, size: PAGE_SIZE });
        assert_eq!(
            Paging::parse(&q(&[("page", "3"), ("page_size", "2")])).unwrap(),
            Paging { page: 3, size: 2 }
        );
        for bad in [("page", "0"), ("page", "x"), ("page", ""), ("page_size", "1001"), ("page_size", "-1")] {
            let Err(ApiError::BadRequest(m)) = Paging::parse(&q(&[bad])) else { panic!("{bad:?} accepted") };
            assert!(m.contains(bad.0), "{m}");
        }
    }

    #[test]
    fn accept_headers_choose_the_syntax() {
        for (accept, syntax) in [
            ("", Syntax::JsonLd),
            ("text/html", Syntax::JsonLd),
            ("text/turtle", Syntax::Turtle),
            ("application/rdf+xml;q=0.9, text/turtle;q=0.5", Syntax::RdfXml),
            ("text/turtle;q=0, application/ld+json", Syntax::JsonLd),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            assert_eq!(negotiate(&h), syntax, "{accept}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("bad\"host"));
        assert_eq!(site_base(&h), "http://localhost");
        h.insert(header::HOST, HeaderValue::from_static("data.example:8080"));
        assert_eq!(site_base(&h), "http://data.example:8080");
    }
}
