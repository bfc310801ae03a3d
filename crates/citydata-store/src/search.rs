//! Catalogue search, the part every backend shares: the query and result types, the tokenizer, and
//! what of a dataset goes into the index.
//!
//! The database's full-text engine (SQLite FTS5, PostgreSQL tsvector) only stores and matches the
//! space-separated tokens made here, so every backend finds the same datasets for the same query,
//! and Chinese and English are handled the same way on both.
//!
//! How text becomes tokens:
//! - It is lower-cased (full-width Latin letters and digits count as their ASCII forms) and cut into
//!   runs of Han characters and runs of other letters and digits; everything else separates.
//! - Each Han character is folded from Traditional to Simplified one character at a time (never
//!   depending on its neighbours, so a document and a query always fold alike): `空氣` and `空气`
//!   give the same tokens.
//! - Chinese has no spaces. A Han run of a document gives its bigrams, in order, then its unigrams;
//!   a Han run of a query gives its bigrams as one phrase (a lone character, its unigram). A query
//!   therefore matches where its run occurs in the document as a substring: `空氣` and `健康指数`
//!   both find `空氣質素健康指數`.
//! - The other runs are words. Words of ASCII letters are reduced to their stem by the Snowball
//!   English stemmer (`reading`, `readings` -> `read`; `library`, `libraries` -> `librari`); words
//!   with digits or other letters are kept as they are.
//!
//! A query is its terms ANDed (the first 32). English stop words (`the`, `of`, ...) are left out of
//! a query unless it has nothing else; documents keep them.

use citydata_model::{DatasetMeta, Field, LangText};

/// A field a search can be narrowed by and counted over, named as CKAN's `package_search` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FacetField {
    /// The publishing organisation, by slug.
    Organization,
    /// A tag (keyword), as the publisher wrote it.
    Tag,
    /// The format of a resource's current version, lower case (`csv`, `xlsx`, ...).
    Format,
    /// The dataset's theme (served as a CKAN group).
    Theme,
    /// The licence identifier.
    License,
}

impl FacetField {
    /// Every facet field, in the order CKAN clients usually list them.
    pub const ALL: [FacetField; 5] = [
        FacetField::Organization,
        FacetField::Tag,
        FacetField::Format,
        FacetField::Theme,
        FacetField::License,
    ];

    /// CKAN's name for the field: `organization`, `tags`, `res_format`, `groups`, `license_id`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FacetField::Organization => "organization",
            FacetField::Tag => "tags",
            FacetField::Format => "res_format",
            FacetField::Theme => "groups",
            FacetField::License => "license_id",
        }
    }

    /// The field named `name`: CKAN's name, or the name of the metadata key it comes from
    /// (`tag`, `format`, `theme`, `license`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "organization" => FacetField::Organization,
            "tags" | "tag" => FacetField::Tag,
            "res_format" | "format" => FacetField::Format,
            "groups" | "theme" => FacetField::Theme,
            "license_id" | "license" => FacetField::License,
            _ => return None,
        })
    }

    /// The key the index stores the field under (independent of CKAN's naming).
    pub(crate) fn key(self) -> &'static str {
        match self {
            FacetField::Organization => "organization",
            FacetField::Tag => "tag",
            FacetField::Format => "format",
            FacetField::Theme => "theme",
            FacetField::License => "license",
        }
    }

    /// The field stored under `key`.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        FacetField::ALL.into_iter().find(|f| f.key() == key)
    }

    /// A filter value as the index stores it (formats are lower case; others are exact).
    pub(crate) fn normalize(self, value: &str) -> String {
        match self {
            FacetField::Format => value.trim().to_lowercase(),
            _ => value.trim().to_owned(),
        }
    }
}

/// The order of search results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchSort {
    /// Best match first (BM25; a title match counts more than a description match; equal scores,
    /// the most recently created first); for an empty query, the most recently modified first.
    #[default]
    Relevance,
    /// Most recently modified first.
    ModifiedDesc,
    /// Least recently modified first.
    ModifiedAsc,
    /// By title (the first language that has one), A to Z.
    TitleAsc,
    /// By title, Z to A.
    TitleDesc,
    /// By slug, A to Z.
    NameAsc,
    /// By slug, Z to A.
    NameDesc,
}

/// A catalogue search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to find, ANDed; empty (or without any letter or digit) finds every dataset.
    pub q: String,
    /// Facet values the datasets must have, all of them (the same field twice: both values).
    pub filters: Vec<(FacetField, String)>,
    /// Order of the results.
    pub sort: SearchSort,
    /// How many slugs to return (0: only the count and facets).
    pub rows: u32,
    /// How many matching datasets to skip first.
    pub start: u32,
    /// The fields to count values of over all matching datasets.
    pub facets: Vec<FacetField>,
    /// At most this many values per facet, the most frequent first (`usize::MAX`: all).
    pub facet_limit: usize,
}

impl Default for SearchQuery {
    /// CKAN's defaults: everything, 10 rows, 50 values per facet.
    fn default() -> Self {
        Self {
            q: String::new(),
            filters: Vec::new(),
            sort: SearchSort::Relevance,
            rows: 10,
            start: 0,
            facets: Vec::new(),
            facet_limit: 50,
        }
    }
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchResult {
    /// How many datasets match (all pages).
    pub count: u64,
    /// The slugs of the asked page, in order.
    pub slugs: Vec<String>,
    /// Per asked facet field, in the order asked: values with the number of matching datasets that
    /// have each, the most frequent first (ties by value).
    pub facets: Vec<(FacetField, Vec<(String, u64)>)>,
}

/// One term of a query: a phrase of one or more tokens that must follow each other.
pub(crate) type Term = Vec<String>;

fn is_han(c: char) -> bool {
    matches!(
        u32::from(c),
        0x3007 // 〇
        | 0x3400..=0x4DBF // Extension A
        | 0x4E00..=0x9FFF // Unified Ideographs
        | 0xF900..=0xFAFF // Compatibility Ideographs
        | 0x20000..=0x2FA1F // Extensions B to F, Compatibility Supplement
        | 0x30000..=0x323AF // Extensions G, H
    )
}

/// Full-width ASCII forms (`Ａ`, `２`) as ASCII.
fn narrow(c: char) -> char {
    match u32::from(c) {
        x @ 0xFF01..=0xFF5E => char::from_u32(x - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Traditional -> Simplified, one character at a time.
fn fold(c: char) -> char {
    // The table only has characters of the Basic Multilingual Plane.
    if c.len_utf8() != 3 {
        return c;
    }
    let mut buf = [0u8; 4];
    fast2s::convert(c.encode_utf8(&mut buf)).chars().next().unwrap_or(c)
}

/// A run of text that makes tokens.
enum Run<'a> {
    Han(&'a [char]),
    Word(&'a str),
}

/// Calls `f` with each run of `text`, Han characters already folded, words lower-cased.
fn runs(text: &str, mut f: impl FnMut(Run<'_>)) {
    let mut han: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush = |han: &mut Vec<char>, word: &mut String, f: &mut dyn FnMut(Run<'_>)| {
        if !han.is_empty() {
            f(Run::Han(han));
            han.clear();
        }
        if !word.is_empty() {
            f(Run::Word(word));
            word.clear();
        }
    };
    for c in text.chars().map(narrow) {
        if is_han(c) {
            if !word.is_empty() {
                flush(&mut han, &mut word, &mut f);
            }
            han.push(fold(c));
        } else if c.is_alphanumeric() {
            if !han.is_empty() {
                flush(&mut han, &mut word, &mut f);
            }
            word.extend(c.to_lowercase());
        } else {
            flush(&mut han, &mut word, &mut f);
        }
    }
    flush(&mut han, &mut word, &mut f);
}

fn stemmer() -> rust_stemmers::Stemmer {
    rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English)
}

/// The token of a word: its stem when it is of ASCII letters only.
fn word_token<'a>(stemmer: &rust_stemmers::Stemmer, word: &'a str) -> std::borrow::Cow<'a, str> {
    if word.bytes().all(|b| b.is_ascii_lowercase()) {
        stemmer.stem(word)
    } else {
        word.into()
    }
}

/// Appends the tokens of document text `text` to `out`, each after a space.
pub(crate) fn index_text(text: &str, out: &mut String) {
    let stemmer = stemmer();
    runs(text, |run| match run {
        Run::Han(chars) => {
            for pair in chars.windows(2) {
                out.push(' ');
                out.extend(pair);
            }
            for c in chars {
                out.push(' ');
                out.push(*c);
            }
        }
        Run::Word(w) => {
            out.push(' ');
            out.push_str(&word_token(&stemmer, w));
        }
    });
}

/// Words left out of a query that has other words: they are in nearly every English text.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of", "on",
    "or", "that", "the", "to", "with",
];

/// At most this many terms of a query count; the rest are left out (a pasted page of text should
/// not make an expensive query).
const MAX_TERMS: usize = 32;

/// The terms of query text `q`, to be ANDed; empty when `q` has no letter or digit.
pub(crate) fn query_terms(q: &str) -> Vec<Term> {
    let stemmer = stemmer();
    let mut terms: Vec<(Term, bool)> = Vec::new();
    runs(q, |run| {
        let (term, stop) = match run {
            Run::Han([c]) => (vec![c.to_string()], false),
            Run::Han(chars) => (chars.windows(2).map(|p| p.iter().collect()).collect(), false),
            Run::Word(w) => (vec![word_token(&stemmer, w).into_owned()], STOP_WORDS.contains(&w)),
        };
        if !terms.iter().any(|(t, _)| *t == term) {
            terms.push((term, stop));
        }
    });
    let all_stop = terms.iter().all(|(_, stop)| *stop);
    terms.into_iter().filter(|(_, stop)| all_stop || !stop).map(|(t, _)| t).take(MAX_TERMS).collect()
}

/// One resource of a dataset, as far as the index cares.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexResource {
    pub name: String,
    pub title: LangText,
    pub description: LangText,
    /// The format of the current version, if it has one.
    pub format: Option<String>,
    /// The schema fields of the current version.
    pub fields: Vec<Field>,
}

/// What the index holds for one dataset: the token text of each weighted column, the sort key for
/// titles, and the facet values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IndexDoc {
    /// Titles in every language, and the slug.
    pub title: String,
    /// Tags and theme.
    pub tags: String,
    /// Descriptions, organisation, licence, frequency, source, resource names, titles, descriptions
    /// and formats.
    pub body: String,
    /// Column names, titles and descriptions of the resources' current schemas.
    pub columns: String,
    /// The title to sort by: the first language that has one, lower-cased (the slug without).
    pub title_key: String,
    /// Facet values, each pair once.
    pub facets: Vec<(FacetField, String)>,
}

fn lang_text(t: &LangText, out: &mut String) {
    for s in t.0.values() {
        index_text(s, out);
    }
}

impl IndexDoc {
    /// The index entry of dataset `slug` with metadata `meta`, organisation `organization` (slug
    /// and title) and `resources`.
    pub(crate) fn new(
        slug: &str,
        meta: &DatasetMeta,
        organization: Option<(&str, &LangText)>,
        resources: &[IndexResource],
    ) -> Self {
        let mut d = IndexDoc::default();
        lang_text(&meta.title, &mut d.title);
        index_text(slug, &mut d.title);
        for t in &meta.tags {
            index_text(t, &mut d.tags);
        }
        if let Some(t) = &meta.theme {
            index_text(t, &mut d.tags);
        }
        lang_text(&meta.description, &mut d.body);
        if let Some((oslug, otitle)) = organization {
            index_text(oslug, &mut d.body);
            lang_text(otitle, &mut d.body);
        }
        for s in [&meta.license, &meta.frequency, &meta.source].into_iter().flatten() {
            index_text(s, &mut d.body);
        }
        for r in resources {
            index_text(&r.name, &mut d.body);
            lang_text(&r.title, &mut d.body);
            lang_text(&r.description, &mut d.body);
            if let Some(f) = &r.format {
                index_text(f, &mut d.body);
            }
            for f in &r.fields {
                for s in [Some(&f.name), f.title.as_ref(), f.description.as_ref()].into_iter().flatten() {
                    index_text(s, &mut d.columns);
                }
            }
        }
        d.title_key =
            meta.title.best().filter(|t| !t.trim().is_empty()).unwrap_or(slug).trim().to_lowercase();

        let mut facets = Vec::new();
        if let Some((oslug, _)) = organization {
            facets.push((FacetField::Organization, oslug.to_owned()));
        }
        facets.extend(meta.tags.iter().map(|t| (FacetField::Tag, t.clone())));
        facets.extend(
            resources.iter().filter_map(|r| r.format.as_ref()).map(|f| (FacetField::Format, f.clone())),
        );
        facets.extend(meta.theme.iter().map(|t| (FacetField::Theme, t.clone())));
        facets.extend(meta.license.iter().map(|l| (FacetField::License, l.clone())));
        let mut facets: Vec<(FacetField, String)> = facets
            .into_iter()
            .map(|(f, v)| {
                let v = f.normalize(&v);
                (f, v)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        facets.sort();
        facets.dedup();
        d.facets = facets;
        d
    }
}

/// The facet values of every indexed dataset, held in memory so that counting them over a large
/// matching set takes a fraction of a millisecond instead of a join and a grouping in the
/// database. A backend builds it from its index (the distinct values with their ids, then the
/// value ids of each dataset in ascending dataset order) and rebuilds it when the index changes.
#[derive(Debug, Default)]
pub(crate) struct FacetPostings {
    /// Each distinct (field, value) with the backend's id for it, by id.
    values: Vec<(i64, FacetField, String)>,
    /// Dataset ids, ascending, and where each one's values (indexes into `values`) start in
    /// `postings`.
    ids: Vec<i64>,
    starts: Vec<usize>,
    postings: Vec<u32>,
}

impl FacetPostings {
    /// Postings over `values`: each distinct (field, value) with its id.
    pub(crate) fn new(mut values: Vec<(i64, FacetField, String)>) -> Self {
        values.sort_by_key(|(id, _, _)| *id);
        Self { values, ..Self::default() }
    }

    /// Adds the value with id `value` to dataset `id`; datasets must come in ascending order.
    /// Unknown value ids are left out.
    pub(crate) fn push(&mut self, id: i64, value: i64) {
        let Ok(v) = self.values.binary_search_by_key(&value, |(id, _, _)| *id) else {
            return;
        };
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
            self.starts.push(self.postings.len());
        }
        self.postings.push(u32::try_from(v).unwrap_or(u32::MAX));
    }

    fn values_of(&self, i: usize) -> &[u32] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.postings.len());
        &self.postings[self.starts[i]..end]
    }

    /// The counts of the values of `fields` over datasets `ids` (`None`: every dataset), at most
    /// `limit` per field, the most frequent first (ties by value).
    pub(crate) fn count(
        &self,
        ids: Option<&[i64]>,
        fields: &[FacetField],
        limit: usize,
    ) -> Vec<(FacetField, Vec<(String, u64)>)> {
        let mut counts = vec![0u64; self.values.len()];
        let mut add = |i: usize| {
            for v in self.values_of(i) {
                counts[*v as usize] += 1;
            }
        };
        match ids {
            None => (0..self.ids.len()).for_each(&mut add),
            Some(ids) => {
                for id in ids {
                    if let Ok(i) = self.ids.binary_search(id) {
                        add(i);
                    }
                }
            }
        }
        let mut out: Vec<(FacetField, Vec<(String, u64)>)> = Vec::new();
        for f in fields {
            if out.iter().any(|(g, _)| g == f) {
                continue;
            }
            let mut values: Vec<(String, u64)> = self
                .values
                .iter()
                .zip(&counts)
                .filter(|((_, g, _), n)| g == f && **n > 0)
                .map(|((_, _, v), n)| (v.clone(), *n))
                .collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(limit);
            out.push((*f, values));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_tokens(text: &str) -> String {
        let mut out = String::new();
        index_text(text, &mut out);
        out.trim_start().to_owned()
    }

    fn query(q: &str) -> String {
        query_terms(q).iter().map(|t| t.join("+")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn document_tokens() {
        for (text, want) in [
            ("空氣質素", "空气 气质 质素 空 气 质 素"),
            ("空气质素", "空气 气质 质素 空 气 质 素"),
            ("Air Quality Health Index (AQHI)", "air qualiti health index aqhi"),
            ("Readings, libraries; library's", "read librari librari s"),
            ("PM2.5 readings 2024", "pm2 5 read 2024"),
            ("ＰＭ２．５", "pm2 5"),
            ("每小時AQHI讀數", "每小 小时 每 小 时 aqhi 读数 读 数"),
            ("district_name", "district name"),
            ("Café DÉJÀ-VU", "café déjà vu"),
            ("", ""),
            ("!!! ---", ""),
        ] {
            assert_eq!(doc_tokens(text), want, "{text:?}");
        }
    }

    #[test]
    fn queries() {
        for (q, want) in [
            ("空氣", "空气"),
            ("空气", "空气"),
            ("健康指數", "健康+康指+指数"),
            ("氣", "气"),
            ("reading", "read"),
            ("Libraries of Hong Kong", "librari hong kong"),
            ("the of", "the of"),
            ("air air AIR", "air"),
            ("\"", ""),
            ("AND OR *", "and or"),
            ("NEAR(a b) title:x^2", "near b titl x 2"),
            ("  ", ""),
        ] {
            assert_eq!(query(q), want, "{q:?}");
        }
    }

    #[test]
    fn long_queries_are_cut() {
        let q: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let terms = query_terms(&q.join(" "));
        assert_eq!(terms.len(), MAX_TERMS);
        assert_eq!(terms[MAX_TERMS - 1], ["w31"]);
    }

    #[test]
    fn facet_names_round_trip() {
        for f in FacetField::ALL {
            assert_eq!(FacetField::parse(f.name()), Some(f));
            assert_eq!(FacetField::from_key(f.key()), Some(f));
        }
        assert_eq!(FacetField::parse("theme"), Some(FacetField::Theme));
        assert_eq!(FacetField::parse("nope"), None);
    }

    #[test]
    fn facet_postings() {
        let mut p = FacetPostings::new(vec![
            (7, FacetField::Tag, "noise".into()),
            (2, FacetField::Tag, "air".into()),
            (3, FacetField::Format, "csv".into()),
            (5, FacetField::Tag, "water".into()),
        ]);
        for (id, value) in [(1, 2), (1, 7), (1, 3), (4, 2), (9, 5), (9, 3), (9, 99)] {
            p.push(id, value);
        }
        let show = |ids: Option<&[i64]>, limit| {
            p.count(ids, &[FacetField::Tag, FacetField::Format, FacetField::Tag, FacetField::License], limit)
                .iter()
                .map(|(f, vs)| {
                    let vs: Vec<String> = vs.iter().map(|(v, n)| format!("{v}:{n}")).collect();
                    format!("{}={}", f.name(), vs.join(","))
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(show(None, 10), "tags=air:2,noise:1,water:1 res_format=csv:2 license_id=");
        assert_eq!(show(None, 1), "tags=air:2 res_format=csv:2 license_id=");
        assert_eq!(show(Some(&[4, 9, 12]), 10), "tags=air:1,water:1 res_format=csv:1 license_id=");
        assert_eq!(show(Some(&[]), 10), "tags= res_format= license_id=");
    }

    #[test]
    fn index_doc() {
        let meta: DatasetMeta = serde_json::from_str(
            r#"{"title":{"en":"Air Quality","zh-Hant":"空氣質素"},"description":"Hourly readings",
                "organization":"epd","tags":["air","air"," AQHI "],"license":"CC-BY-4.0","theme":"environment"}"#,
        )
        .unwrap_or_default();
        let org = LangText::en("Environmental Protection Department");
        let res = [
            IndexResource {
                name: "stations".into(),
                format: Some("csv".into()),
                fields: vec![Field::new("station_name", citydata_model::FieldType::String)],
                ..IndexResource::default()
            },
            IndexResource { name: "hourly".into(), format: Some("CSV".into()), ..IndexResource::default() },
        ];
        let d = IndexDoc::new("aqhi", &meta, Some(("epd", &org)), &res);
        assert_eq!(d.title.trim(), "air qualiti 空气 气质 质素 空 气 质 素 aqhi");
        assert_eq!(d.tags.trim(), "air air aqhi environ");
        assert_eq!(d.columns.trim(), "station name");
        assert_eq!(d.title_key, "air quality");
        let facets: Vec<String> = d.facets.iter().map(|(f, v)| format!("{}={v}", f.name())).collect();
        assert_eq!(
            facets,
            [
                "organization=epd",
                "tags=AQHI",
                "tags=air",
                "res_format=csv",
                "groups=environment",
                "license_id=CC-BY-4.0"
            ]
        );
    }
}
