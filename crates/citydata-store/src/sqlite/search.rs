//! Catalogue search on SQLite: an FTS5 table of the tokens made in [`crate::search`], a table of facet
//! values, and a row of sort keys per dataset. All three are rewritten for a dataset inside the
//! publish transaction that changes it, so the index is never out of step with the catalogue.
//!
//! The FTS5 table uses the `ascii` tokenizer: it splits on ASCII characters other than letters and
//! digits and keeps every other character, so the tokens made in Rust (letters, digits and Han
//! characters only, separated by spaces) reach the index unchanged. It is contentless: the tokens
//! are not stored a second time, only indexed (`contentless_delete` needs SQLite 3.43 or newer; the
//! bundled SQLite is).
//!
//! Facet counts are not a GROUP BY: over a large matching set that join costs tens of milliseconds.
//! The facet values of every dataset are loaded into memory ([`FacetPostings`]) once per generation
//! of the index (a counter every re-index bumps, read in the search's own snapshot, so another
//! process's publish is seen too) and counted there over the matching ids.

use std::sync::{Arc, Mutex};

use citydata_model::{DatasetMeta, LangText, Schema};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{from_json, SqlitePublish, SqliteStore};
use crate::search::{
    query_terms, FacetField, FacetPostings, IndexDoc, IndexResource, SearchQuery, SearchResult, SearchSort,
    Term,
};
use crate::{Result, StoreError};

/// Migration 2: the search index.
pub(super) const MIGRATION: &str = r"
CREATE VIRTUAL TABLE search_text USING fts5(
    title, tags, body, columns,   -- space-separated tokens; rowid = datasets.id
    content = '', contentless_delete = 1,
    tokenize = 'ascii'
);
CREATE TABLE search_docs (
    dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id),
    slug TEXT NOT NULL,           -- datasets.slug, so that a search needs no other table
    title_key TEXT NOT NULL,      -- the title to sort by
    modified INTEGER NOT NULL,    -- datasets.modified as Unix nanoseconds, to sort by
    org_title TEXT                -- the organisation title (JSON) as indexed, to spot a renamed one
);
CREATE INDEX search_docs_slug ON search_docs (slug);
CREATE INDEX search_docs_title ON search_docs (title_key, slug);
CREATE INDEX search_docs_modified ON search_docs (modified);
CREATE TABLE search_values (
    id INTEGER PRIMARY KEY,
    field TEXT NOT NULL,          -- organization, tag, format, theme, license
    value TEXT NOT NULL,
    UNIQUE (field, value)
);
CREATE TABLE search_facets (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    value_id INTEGER NOT NULL REFERENCES search_values(id),
    PRIMARY KEY (dataset_id, value_id)
) WITHOUT ROWID;
CREATE INDEX search_facets_value ON search_facets (value_id);
CREATE TABLE search_state (
    generation INTEGER NOT NULL   -- counts changes of the index, so a copy in memory knows it is stale
);
INSERT INTO search_state (generation) VALUES (0);
";

/// BM25 weights of the columns title, tags, body, columns.
const RANK: &str = "bm25(search_text, 10.0, 5.0, 1.0, 2.0)";

fn unix_nanos(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Rewrites the index entry of dataset `id` from the catalogue as `c` sees it.
fn index_dataset(c: &Connection, id: i64) -> Result<()> {
    let Some((slug, meta, modified, org)) = c
        .prepare_cached(
            "SELECT d.slug, d.meta, d.modified, o.slug, o.title
             FROM datasets d LEFT JOIN organizations o ON o.id = d.organization_id WHERE d.id = ?1",
        )?
        .query_row([id], |r| {
            let org = match r.get::<_, Option<String>>(3)? {
                Some(s) => Some((s, r.get::<_, String>(4)?)),
                None => None,
            };
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, org))
        })
        .optional()?
    else {
        return Ok(());
    };
    let meta: DatasetMeta = from_json(&meta);
    let org_title: Option<LangText> = org.as_ref().map(|(_, t)| from_json(t));
    let resources = c
        .prepare_cached(
            "SELECT r.name, r.title, r.description, v.format, v.schema
             FROM resources r LEFT JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version
             WHERE r.dataset_id = ?1 ORDER BY r.position",
        )?
        .query_map([id], |r| {
            Ok(IndexResource {
                name: r.get(0)?,
                title: from_json(&r.get::<_, String>(1)?),
                description: from_json(&r.get::<_, String>(2)?),
                format: r.get(3)?,
                fields: r
                    .get::<_, Option<String>>(4)?
                    .map(|s| from_json::<Schema>(&s).fields)
                    .unwrap_or_default(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let org_ref = org.as_ref().zip(org_title.as_ref()).map(|((s, _), t)| (s.as_str(), t));
    let doc = IndexDoc::new(&slug, &meta, org_ref, &resources);

    c.prepare_cached("DELETE FROM search_text WHERE rowid = ?1")?.execute([id])?;
    c.prepare_cached(
        "INSERT INTO search_text (rowid, title, tags, body, columns) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, doc.title, doc.tags, doc.body, doc.columns])?;
    let old: Vec<i64> = c
        .prepare_cached("DELETE FROM search_facets WHERE dataset_id = ?1 RETURNING value_id")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut find = c.prepare_cached("SELECT id FROM search_values WHERE field = ?1 AND value = ?2")?;
    let mut add = c.prepare_cached("INSERT INTO search_values (field, value) VALUES (?1, ?2)")?;
    let mut insert = c.prepare_cached("INSERT INTO search_facets (dataset_id, value_id) VALUES (?1, ?2)")?;
    for (field, value) in &doc.facets {
        let value_id = match find.query_row(params![field.key(), value], |r| r.get::<_, i64>(0)).optional()? {
            Some(v) => v,
            None => {
                add.execute(params![field.key(), value])?;
                c.last_insert_rowid()
            }
        };
        insert.execute(params![id, value_id])?;
    }
    // Values no dataset has any more.
    let mut unused = c.prepare_cached(
        "DELETE FROM search_values WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM search_facets WHERE value_id = ?1)",
    )?;
    for v in old {
        unused.execute([v])?;
    }
    c.prepare_cached(
        "INSERT OR REPLACE INTO search_docs (dataset_id, slug, title_key, modified, org_title)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, slug, doc.title_key, unix_nanos(&modified), org.map(|(_, t)| t)])?;
    c.prepare_cached("UPDATE search_state SET generation = generation + 1")?.execute([])?;
    Ok(())
}

/// Indexes the datasets that have no index entry: all of them in a database made before the index
/// existed. Cheap when there are none, so it runs at every open.
pub(super) fn index_missing(c: &Connection) -> Result<()> {
    const MISSING: &str =
        "SELECT id FROM datasets d WHERE NOT EXISTS (SELECT 1 FROM search_docs s WHERE s.dataset_id = d.id)";
    let any: bool = c.query_row(&format!("SELECT EXISTS ({MISSING})"), [], |r| r.get(0))?;
    if !any {
        return Ok(());
    }
    c.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        let ids = c.prepare(MISSING)?.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
        for id in ids {
            index_dataset(c, id)?;
        }
        Ok(())
    })();
    c.execute_batch(if done.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    done
}

impl SqlitePublish {
    /// Rewrites the index entry of the dataset being published, and of the other datasets of its
    /// organisation when this publish changed the organisation's title.
    pub(super) fn reindex(&self) -> Result<()> {
        index_dataset(&self.conn, self.dataset_id)?;
        let stale = self
            .conn
            .prepare(
                "SELECT s.dataset_id FROM datasets d
                 JOIN organizations o ON o.id = d.organization_id
                 JOIN search_docs s ON s.dataset_id = d.id
                 WHERE d.organization_id = (SELECT organization_id FROM datasets WHERE id = ?1)
                   AND s.org_title IS NOT o.title",
            )?
            .query_map([self.dataset_id], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        for id in stale {
            index_dataset(&self.conn, id)?;
        }
        Ok(())
    }
}

/// The FTS5 query of `terms`: each a quoted phrase, so no user text is ever FTS5 syntax; ANDed.
fn fts5_match(terms: &[Term]) -> String {
    let phrases: Vec<String> =
        terms.iter().map(|t| format!("\"{}\"", t.join(" ").replace('"', "\"\""))).collect();
    phrases.join(" AND ")
}

/// The matching datasets of a search as SQL: a subquery `m` with the dataset id as `id` (and the
/// BM25 score as `rank` when ranked), and its parameters.
struct Matching {
    from: String,
    params: Vec<SqlValue>,
}

impl Matching {
    fn new(q: &SearchQuery, fts: Option<&str>, ranked: bool) -> Self {
        let mut params = Vec::new();
        let (mut sql, id) = match fts {
            Some(m) => {
                params.push(SqlValue::Text(m.to_owned()));
                let rank = if ranked { format!(", {RANK} AS rank") } else { String::new() };
                // `+rowid`: the filters must not drive the full-text query (SQLite would run it
                // again for every id they give).
                (format!("SELECT rowid AS id{rank} FROM search_text WHERE search_text MATCH ?"), "+rowid")
            }
            None => ("SELECT dataset_id AS id FROM search_docs WHERE 1".to_owned(), "dataset_id"),
        };
        for (field, value) in &q.filters {
            sql.push_str(&format!(
                " AND {id} IN (SELECT dataset_id FROM search_facets
                               WHERE value_id = (SELECT id FROM search_values WHERE field = ? AND value = ?))"
            ));
            params.push(SqlValue::Text(field.key().to_owned()));
            params.push(SqlValue::Text(field.normalize(value)));
        }
        Self { from: format!("({sql}) m"), params }
    }
}

fn text(v: rusqlite::types::ValueRef<'_>) -> Result<&str> {
    v.as_str().map_err(|e| StoreError::Database(e.to_string()))
}

/// The facet values of the index as of one generation of it.
pub(super) struct Postings {
    generation: i64,
    postings: FacetPostings,
}

/// Where a store keeps the facet values it loaded last.
#[derive(Default)]
pub(super) struct PostingsCache {
    current: Mutex<Option<Arc<Postings>>>,
    /// Held while loading, so that the searches that find the cache stale load it once.
    loading: Mutex<()>,
}

impl PostingsCache {
    fn get(&self, generation: i64) -> Option<Arc<Postings>> {
        self.current.lock().ok().and_then(|g| g.clone()).filter(|p| p.generation == generation)
    }
}

impl SqliteStore {
    /// The facet values as `c` sees the index, from the cache when it is of that generation.
    fn postings(&self, c: &Connection) -> Result<Arc<Postings>> {
        let generation: i64 = c.query_row("SELECT generation FROM search_state", [], |r| r.get(0))?;
        if let Some(p) = self.postings.get(generation) {
            return Ok(p);
        }
        let _loading = self.postings.loading.lock();
        if let Some(p) = self.postings.get(generation) {
            return Ok(p);
        }
        let mut values = Vec::new();
        let mut st = c.prepare_cached("SELECT id, field, value FROM search_values")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let Some(field) = FacetField::from_key(text(r.get_ref(1)?)?) {
                values.push((r.get(0)?, field, r.get(2)?));
            }
        }
        let mut postings = FacetPostings::new(values);
        let mut st =
            c.prepare_cached("SELECT dataset_id, value_id FROM search_facets ORDER BY dataset_id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            postings.push(r.get(0)?, r.get(1)?);
        }
        let p = Arc::new(Postings { generation, postings });
        if let Ok(mut cached) = self.postings.current.lock() {
            // A search on an older snapshot does not replace a newer cache.
            if cached.as_ref().is_none_or(|c| c.generation < generation) {
                *cached = Some(p.clone());
            }
        }
        Ok(p)
    }

    pub(crate) fn search(&self, q: &SearchQuery) -> Result<SearchResult> {
        let terms = query_terms(&q.q);
        let fts = (!terms.is_empty()).then(|| fts5_match(&terms));
        let ranked = q.sort == SearchSort::Relevance && fts.is_some();
        let order = match q.sort {
            SearchSort::Relevance if ranked => "p.rank, p.id DESC",
            SearchSort::Relevance | SearchSort::ModifiedDesc => "s.modified DESC, s.dataset_id DESC",
            SearchSort::ModifiedAsc => "s.modified, s.dataset_id",
            SearchSort::TitleAsc => "s.title_key, s.slug",
            SearchSort::TitleDesc => "s.title_key DESC, s.slug DESC",
            SearchSort::NameAsc => "s.slug",
            SearchSort::NameDesc => "s.slug DESC",
        };
        self.read(|c| {
            // One snapshot for the count, the page and the facets.
            let tx = c.unchecked_transaction()?;
            let m = Matching::new(q, fts.as_deref(), false);
            let (count, facets) = if q.facets.is_empty() {
                let count: i64 = tx
                    .prepare_cached(&format!("SELECT COUNT(*) FROM {}", m.from))?
                    .query_row(params_from_iter(&m.params), |r| r.get(0))?;
                (count.unsigned_abs(), Vec::new())
            } else {
                let postings = self.postings(&tx)?;
                if fts.is_none() && q.filters.is_empty() {
                    let count: i64 = tx.query_row("SELECT COUNT(*) FROM search_docs", [], |r| r.get(0))?;
                    (count.unsigned_abs(), postings.postings.count(None, &q.facets, q.facet_limit))
                } else {
                    let ids = tx
                        .prepare_cached(&format!("SELECT m.id FROM {}", m.from))?
                        .query_map(params_from_iter(&m.params), |r| r.get(0))?
                        .collect::<Result<Vec<i64>, _>>()?;
                    let facets = postings.postings.count(Some(&ids), &q.facets, q.facet_limit);
                    (ids.len() as u64, facets)
                }
            };
            let mut slugs = Vec::new();
            if q.rows > 0 && count > u64::from(q.start) {
                let mut m = Matching::new(q, fts.as_deref(), ranked);
                m.params.push(SqlValue::Integer(i64::from(q.rows)));
                m.params.push(SqlValue::Integer(i64::from(q.start)));
                let sql = if ranked {
                    // The page by score first, then only its slugs.
                    format!(
                        "SELECT s.slug FROM (SELECT m.id, m.rank FROM {} ORDER BY m.rank, m.id DESC LIMIT ? OFFSET ?) p
                         JOIN search_docs s ON s.dataset_id = p.id ORDER BY {order}",
                        m.from
                    )
                } else {
                    format!(
                        "SELECT s.slug FROM {} JOIN search_docs s ON s.dataset_id = m.id ORDER BY {order} LIMIT ? OFFSET ?",
                        m.from
                    )
                };
                slugs = tx
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(&m.params), |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
            }
            Ok(SearchResult { count, slugs, facets })
        })
    }
}

#[cfg(test)]
mod tests {
    use citydata_model::{Field, FieldType, Slug};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::{NewVersion, Publish, Store};

    /// A resource to publish: name, format, column names.
    type Res = (&'static str, &'static str, &'static [&'static str]);

    /// The test catalogue, published in this order.
    const CATALOGUE: &[(&str, &str, &[Res])] = &[
        (
            "aqhi",
            r#"{"title":{"en":"Air Quality Health Index","zh-Hant":"空氣質素健康指數"},
                "description":"Hourly readings at each station","organization":"epd",
                "organization_title":{"en":"Environmental Protection Department","zh-Hant":"環境保護署"},
                "tags":["air","health"],"theme":"environment","license":"CC-BY-4.0"}"#,
            &[("hourly", "csv", &["station", "aqhi", "pm2_5"])],
        ),
        (
            "libraries",
            r#"{"title":{"en":"Public library locations","zh-Hans":"公共图书馆位置"},
                "description":"Addresses and opening hours","organization":"lcsd",
                "tags":["culture"],"theme":"culture","license":"CC-BY-4.0"}"#,
            &[("locations", "json", &["name", "address", "district"])],
        ),
        (
            "air-report",
            r#"{"title":"Annual environment report","description":"With a chapter on noise and air",
                "organization":"epd","tags":["air","report"],"theme":"environment","license":"OGL"}"#,
            &[("report", "xlsx", &["year", "indicator"]), ("summary", "csv", &["year"])],
        ),
        (
            "wifi",
            r#"{"title":{"en":"Wi-Fi.HK hotspots","zh-Hant":"Wi-Fi.HK 熱點"},"organization":"ogcio",
                "tags":["wifi","smart city"],"theme":"infrastructure"}"#,
            &[("hotspots", "geojson", &["name_en", "name_tc", "latitude", "longitude"])],
        ),
        (
            "noise",
            r#"{"title":"Noise levels","description":"Measured at the roadside",
                "organization":"epd","tags":["noise"],"theme":"environment","license":"CC-BY-4.0"}"#,
            &[("levels", "csv", &["site", "db"])],
        ),
    ];

    /// Adds a version of each resource to `p`, without committing.
    fn add(p: &mut Publish, slug: &str, resources: &[Res]) {
        for (name, format, columns) in resources {
            let bytes = format!("{slug}/{name}/{}", columns.join(","));
            let sha = hex::encode(Sha256::digest(bytes.as_bytes()));
            let schema = Schema::new(columns.iter().map(|c| Field::new(*c, FieldType::String)).collect());
            let nv = NewVersion {
                resource: name,
                title: LangText::default(),
                description: LangText::default(),
                sha256: &sha,
                filename: "data",
                format,
                media_type: "application/octet-stream",
                encoding: "utf-8",
                schema: &schema,
                skipped: Vec::new(),
                spatial: None,
            };
            p.add_version(&nv, &mut bytes.as_bytes()).unwrap().finish().unwrap();
        }
    }

    fn begin(store: &Store, slug: &str, meta: &str) -> Publish {
        let meta: DatasetMeta = serde_json::from_str(meta).unwrap();
        store.begin_publish(&Slug::parse(slug).unwrap(), Some(&meta), "test").unwrap()
    }

    fn publish(store: &Store, slug: &str, meta: &str, resources: &[Res]) {
        let mut p = begin(store, slug, meta);
        add(&mut p, slug, resources);
        p.commit().unwrap();
    }

    fn catalogue() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("city.db")).unwrap();
        for (slug, meta, resources) in CATALOGUE {
            publish(&store, slug, meta, resources);
        }
        (dir, store)
    }

    fn slugs(store: &Store, q: &SearchQuery) -> String {
        store.search(q).unwrap().slugs.join(" ")
    }

    fn find(store: &Store, q: &str) -> String {
        slugs(store, &SearchQuery { q: q.to_owned(), rows: 100, ..SearchQuery::default() })
    }

    #[test]
    fn finds_words_in_every_language_and_column() {
        let (_dir, store) = catalogue();
        for (q, want) in [
            // Chinese: substrings, either script finding either.
            ("空氣", "aqhi"),
            ("空气", "aqhi"),
            ("健康指数", "aqhi"),
            ("健康指數", "aqhi"),
            ("空", "aqhi"),
            ("指數空氣", ""),
            ("圖書館", "libraries"),
            ("图书馆", "libraries"),
            ("熱點", "wifi"),
            ("热点", "wifi"),
            ("環境保護署", "noise air-report aqhi"),
            // English: stems, case, all words.
            ("reading", "aqhi"),
            ("READINGS", "aqhi"),
            ("libraries", "libraries"),
            ("quality health", "aqhi"),
            ("quality noise", ""),
            ("index of air quality", "aqhi"),
            // Column names, resource names, formats, organisations, tags, themes, slugs.
            ("pm2", "aqhi"),
            ("latitude", "wifi"),
            ("district", "libraries"),
            ("hotspots", "wifi"),
            ("geojson", "wifi"),
            ("lcsd", "libraries"),
            ("smart city", "wifi"),
            ("infrastructure", "wifi"),
            ("wi-fi.hk", "wifi"),
            // Title matches above description-only matches.
            ("noise", "noise air-report"),
            ("air", "air-report aqhi"),
            // Nothing a user types is search-engine syntax.
            ("\"", "noise wifi air-report libraries aqhi"),
            ("AND OR *", ""),
            ("NEAR(air", ""),
            ("air*", "air-report aqhi"),
            ("-air", "air-report aqhi"),
            ("title:air", ""),
            ("^air OR \"noise", "air-report"),
            ("'; DROP TABLE datasets; --", ""),
        ] {
            assert_eq!(find(&store, q), want, "{q:?}");
        }
    }

    #[test]
    fn facets_filters_sorts_and_pages() {
        let (_dir, store) = catalogue();
        let all = SearchQuery { facets: FacetField::ALL.to_vec(), rows: 100, ..SearchQuery::default() };
        let r = store.search(&all).unwrap();
        assert_eq!(r.count, 5);
        let facets: Vec<String> = r
            .facets
            .iter()
            .map(|(f, vs)| {
                let vs: Vec<String> = vs.iter().map(|(v, n)| format!("{v}:{n}")).collect();
                format!("{}={}", f.name(), vs.join(","))
            })
            .collect();
        assert_eq!(
            facets,
            [
                "organization=epd:3,lcsd:1,ogcio:1",
                "tags=air:2,culture:1,health:1,noise:1,report:1,smart city:1,wifi:1",
                "res_format=csv:3,geojson:1,json:1,xlsx:1",
                "groups=environment:3,culture:1,infrastructure:1",
                "license_id=CC-BY-4.0:3,OGL:1",
            ]
        );

        let q =
            |q: &str, filters: &[(FacetField, &str)], sort: SearchSort, rows: u32, start: u32| SearchQuery {
                q: q.to_owned(),
                filters: filters.iter().map(|(f, v)| (*f, (*v).to_owned())).collect(),
                sort,
                rows,
                start,
                facets: vec![FacetField::Tag],
                facet_limit: 2,
            };
        use FacetField::{Format, Organization, Tag, Theme};
        use SearchSort::*;
        for (query, count, want, tags) in [
            (q("", &[], Relevance, 10, 0), 5, "noise wifi air-report libraries aqhi", "air:2,culture:1"),
            (q("", &[], ModifiedAsc, 10, 0), 5, "aqhi libraries air-report wifi noise", "air:2,culture:1"),
            (q("", &[], ModifiedDesc, 2, 1), 5, "wifi air-report", "air:2,culture:1"),
            (q("", &[], TitleAsc, 10, 0), 5, "aqhi air-report noise libraries wifi", "air:2,culture:1"),
            (q("", &[], TitleDesc, 3, 0), 5, "wifi libraries noise", "air:2,culture:1"),
            (q("", &[], NameAsc, 10, 0), 5, "air-report aqhi libraries noise wifi", "air:2,culture:1"),
            (q("", &[], NameDesc, 1, 4), 5, "air-report", "air:2,culture:1"),
            (q("", &[], NameAsc, 10, 5), 5, "", "air:2,culture:1"),
            (q("", &[], NameAsc, 0, 0), 5, "", "air:2,culture:1"),
            (q("", &[(Organization, "epd")], NameAsc, 10, 0), 3, "air-report aqhi noise", "air:2,health:1"),
            (q("", &[(Tag, "air"), (Tag, "report")], NameAsc, 10, 0), 1, "air-report", "air:1,report:1"),
            (q("", &[(Format, "CSV")], NameAsc, 10, 0), 3, "air-report aqhi noise", "air:2,health:1"),
            (q("air", &[(Theme, "environment")], Relevance, 10, 0), 2, "air-report aqhi", "air:2,health:1"),
            (q("air", &[(Organization, "lcsd")], Relevance, 10, 0), 0, "", ""),
            (q("", &[(Tag, "nope")], NameAsc, 10, 0), 0, "", ""),
            (q("environment", &[], NameDesc, 10, 0), 3, "noise aqhi air-report", "air:2,health:1"),
        ] {
            let r = store.search(&query).unwrap();
            let got_tags: Vec<String> = r.facets[0].1.iter().map(|(v, n)| format!("{v}:{n}")).collect();
            assert_eq!(
                (r.count, r.slugs.join(" "), got_tags.join(",")),
                (count, want.to_owned(), tags.to_owned()),
                "{query:?}"
            );
        }
    }

    #[test]
    fn the_index_follows_publishes_and_rollbacks() {
        let (_dir, store) = catalogue();
        let tags = || {
            let q = SearchQuery { facets: vec![FacetField::Tag], ..SearchQuery::default() };
            let r = store.search(&q).unwrap();
            r.facets[0].1.iter().map(|(v, n)| format!("{v}:{n}")).collect::<Vec<_>>().join(",")
        };
        let before = "air:2,culture:1,health:1,noise:1,report:1,smart city:1,wifi:1";
        assert_eq!(tags(), before);

        // A rolled-back publish leaves the index as it was.
        let mut p = begin(
            &store,
            "libraries",
            r#"{"title":"Swimming pools","organization":"lcsd","tags":["sport"]}"#,
        );
        add(&mut p, "libraries", &[("pools", "csv", &["pool_name"])]);
        drop(p);
        let mut p = begin(&store, "pools", r#"{"title":"Swimming pools","organization":"lcsd"}"#);
        add(&mut p, "pools", &[("pools", "csv", &["pool_name"])]);
        drop(p);
        for (q, want) in [("public", "libraries"), ("opening", "libraries"), ("swimming", ""), ("pool", "")] {
            assert_eq!(find(&store, q), want, "{q:?}");
        }
        assert_eq!(tags(), before);

        // A committed publish replaces the dataset's entry.
        publish(
            &store,
            "libraries",
            r#"{"title":"Swimming pools","organization":"lcsd","tags":["sport"]}"#,
            &[("pools", "csv", &["pool_name"])],
        );
        for (q, want) in [
            ("public", ""),
            ("opening", ""),
            ("swimming", "libraries"),
            ("pool", "libraries"),
            ("district", "libraries"),
        ] {
            assert_eq!(find(&store, q), want, "{q:?}");
        }
        assert_eq!(tags(), "air:2,health:1,noise:1,report:1,smart city:1,sport:1,wifi:1");
        // The values no dataset has any more (tag and theme `culture`) are gone from the index too.
        let culture: i64 = store
            .backend
            .read(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM search_values WHERE value = 'culture'", [], |r| {
                    r.get(0)
                })?)
            })
            .unwrap();
        assert_eq!(culture, 0);

        // A new title of an organisation reaches its other datasets.
        publish(
            &store,
            "noise",
            r#"{"title":"Noise levels","organization":"epd","organization_title":"Department of Clean Air"}"#,
            &[],
        );
        assert_eq!(find(&store, "clean"), "noise air-report aqhi");
        assert_eq!(find(&store, "環境保護署"), "");
    }

    #[test]
    fn an_old_database_is_indexed_when_opened() {
        let (dir, store) = catalogue();
        drop(store);
        let path = dir.path().join("city.db");
        // Back to what migration 1 made: no search tables.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = OFF; DROP TABLE search_text; DROP TABLE value_counts;
             DROP TABLE value_count_columns; ALTER TABLE versions DROP COLUMN spatial;
             DROP TABLE dashboards; PRAGMA user_version = 1;",
        )
        .unwrap();
        let tables: Vec<String> = c
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND (name LIKE 'search%' OR name LIKE 'sta~_%' ESCAPE '~')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!tables.is_empty());
        for t in tables {
            c.execute_batch(&format!("DROP TABLE {}", crate::quote_ident(&t))).unwrap();
        }
        drop(c);
        let store = Store::open(&path).unwrap();
        assert_eq!(find(&store, "空气"), "aqhi");
        assert_eq!(store.search(&SearchQuery::default()).unwrap().count, 5);
        drop(store);
        let c = Connection::open(&path).unwrap();
        assert_eq!(
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(),
            super::super::SCHEMA_VERSION
        );
    }

    /// Not a benchmark with limits, a look: with `RUN_SLOW_TESTS` set, builds a catalogue of 10,000
    /// datasets as migration 1 would hold them, times their indexing at open and a mix of searches
    /// (run with `--no-capture` to see the timings), and checks the counts add up.
    #[test]
    fn timings_over_ten_thousand_datasets() {
        if std::env::var_os("RUN_SLOW_TESTS").is_none() {
            return;
        }
        const N: usize = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.db");
        drop(Store::open(&path).unwrap());
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % n as u64).unwrap()
        };
        let en = "air quality traffic speed population district building height address parcel hotspot lamppost \
                  temperature humidity rainfall noise water school hospital library park beach bus railway ferry \
                  parking toilet market licence restaurant hotel tourism budget expenditure revenue tax employment \
                  wage housing land planning census birth death marriage election vote weather tide typhoon \
                  innovation technology fund research talent startup patent broadband mobile internet energy \
                  electricity gas waste recycling tree slope road tunnel bridge cycling pedestrian accident crime \
                  police fire ambulance clinic vaccine dental elderly youth sport stadium pool museum heritage";
        let en: Vec<&str> = en.split_whitespace().collect();
        let zh = "空氣質素 交通 速度 人口 地區 建築物 高度 地址 地段 熱點 智慧燈柱 氣溫 濕度 雨量 噪音 食水 學校 醫院 \
                  圖書館 公園 泳灘 巴士 鐵路 渡輪 停車場 公廁 街市 牌照 餐廳 酒店 旅遊 預算 開支 收入 稅務 就業 工資 房屋 \
                  土地 規劃 人口普查 出生 死亡 婚姻 選舉 天氣 潮汐 颱風 創新 科技 基金 研究 人才 初創 專利 寬頻 流動 \
                  能源 電力 煤氣 廢物 回收 樹木 斜坡 道路 隧道 橋樑 單車 行人 意外 罪案 警察 消防 救護 診所 疫苗";
        let zh: Vec<&str> = zh.split_whitespace().collect();
        let formats = ["csv", "csv", "csv", "json", "xlsx", "geojson", "xml"];
        let licenses = ["CC-BY-4.0", "OGL", "data.gov.hk terms"];
        let themes = ["environment", "transport", "population", "housing", "economy", "health", "education"];
        let c = Connection::open(&path).unwrap();
        c.execute_batch("BEGIN").unwrap();
        c.execute("INSERT INTO blobs (sha256, size) VALUES ('x', 0)", []).unwrap();
        for o in 0..40 {
            c.execute(
                "INSERT INTO organizations (slug, title, created) VALUES (?1, ?2, '2024-01-01T00:00:00Z')",
                params![
                    format!("org-{o}"),
                    format!(r#"{{"en":"Department {o}","zh-Hant":"{}署"}}"#, zh[o % zh.len()])
                ],
            )
            .unwrap();
        }
        let mut words = |pool: &[&'static str], n: usize, sep: &str| -> String {
            (0..n).map(|_| pool[next(pool.len())]).collect::<Vec<_>>().join(sep)
        };
        for i in 0..N {
            let tags: Vec<String> =
                (0..3 + i % 4).map(|k| en[(i * 7 + k * 13) % en.len()].to_owned()).collect();
            let meta = serde_json::json!({
                "title": {"en": words(&en, 4, " "), "zh-Hant": words(&zh, 3, ""), "zh-Hans": words(&zh, 2, "")},
                "description": {"en": words(&en, 30, " "), "zh-Hant": words(&zh, 20, "，")},
                "tags": tags,
                "license": licenses[i % licenses.len()],
                "theme": themes[i % themes.len()],
                "frequency": "daily",
            });
            c.execute(
                "INSERT INTO datasets (id, slug, organization_id, meta, created, modified) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    i64::try_from(i + 1).unwrap(),
                    format!("dataset-{i}"),
                    i64::try_from(i % 40 + 1).unwrap(),
                    meta.to_string(),
                    format!("2024-01-01T00:00:{:02}.{:09}Z", i % 60, i)
                ],
            )
            .unwrap();
            for r in 0..1 + i % 3 {
                let id = format!("r-{i}-{r}");
                let columns: Vec<Field> = words(&en, 5 + i % 15, " ")
                    .split(' ')
                    .map(|w| Field::new(w, FieldType::String))
                    .collect();
                c.execute(
                    "INSERT INTO resources (id, dataset_id, name, position, title, description, current_version)
                     VALUES (?1, ?2, ?3, ?4, '{}', '{}', 1)",
                    params![id, i64::try_from(i + 1).unwrap(), format!("part-{r}"), r],
                )
                .unwrap();
                c.execute(
                    "INSERT INTO versions (resource_id, number, sha256, filename, format, media_type, encoding, schema,
                                           row_count, created, publisher, skipped)
                     VALUES (?1, 1, 'x', 'f', ?2, 'm', 'utf-8', ?3, 0, '2024', 'gen', '[]')",
                    params![id, formats[(i + r) % formats.len()], serde_json::to_string(&Schema::new(columns)).unwrap()],
                )
                .unwrap();
            }
        }
        c.execute_batch("COMMIT").unwrap();
        drop(c);

        let t = std::time::Instant::now();
        let store = Store::open(&path).unwrap();
        eprintln!("indexing {N} datasets at open: {:?}", t.elapsed());
        let all = store.search(&SearchQuery::default()).unwrap();
        assert_eq!(all.count, N as u64);
        store
            .backend
            .read(|c| {
                *store.backend.postings.current.lock().unwrap() = None;
                let t = std::time::Instant::now();
                store.backend.postings(c)?;
                eprintln!("loading the facet values: {:?}", t.elapsed());
                Ok(())
            })
            .unwrap();

        let q = |q: &str, filters: &[(FacetField, &str)], sort: SearchSort| SearchQuery {
            q: q.to_owned(),
            filters: filters.iter().map(|(f, v)| (*f, (*v).to_owned())).collect(),
            sort,
            rows: 20,
            facets: FacetField::ALL.to_vec(),
            ..SearchQuery::default()
        };
        use FacetField::{Format, Organization, Tag};
        use SearchSort::{ModifiedDesc, NameAsc, Relevance, TitleAsc};
        let cases = [
            q("", &[], Relevance),
            q("", &[], TitleAsc),
            q("air", &[], Relevance),
            q("air quality", &[], Relevance),
            q("air quality traffic", &[], NameAsc),
            q("空氣", &[], Relevance),
            q("空气质素", &[], Relevance),
            q("交通 速度", &[], Relevance),
            q("人", &[], Relevance),
            q("museum heritage", &[(Tag, "air")], Relevance),
            q("", &[(Organization, "org-3")], ModifiedDesc),
            q("", &[(Tag, "air"), (Format, "csv")], Relevance),
            q("daily", &[], Relevance),
            q("nothingmatches", &[], Relevance),
        ];
        let mut every = Vec::new();
        for case in &cases {
            let mut times = Vec::new();
            let mut count = 0;
            for _ in 0..30 {
                let t = std::time::Instant::now();
                let r = store.search(case).unwrap();
                times.push(t.elapsed());
                count = r.count;
                // Every dataset has exactly one organisation, theme and licence.
                for f in [0, 3, 4] {
                    assert_eq!(r.facets[f].1.iter().map(|(_, n)| n).sum::<u64>(), r.count, "{case:?}");
                }
            }
            times.sort();
            eprintln!(
                "{:>5} found, median {:>9.3?}, max {:>9.3?}: q={:?} filters={:?} sort={:?}",
                count,
                times[times.len() / 2],
                times[times.len() - 1],
                case.q,
                case.filters,
                case.sort
            );
            every.extend(times);
        }
        every.sort();
        let p = |x: usize| every[(every.len() * x / 100).min(every.len() - 1)];
        eprintln!(
            "all {} searches: p50 {:?}, p99 {:?}, max {:?}",
            every.len(),
            p(50),
            p(99),
            every[every.len() - 1]
        );
    }

    #[test]
    fn han_tokens_survive_the_fts5_tokenizer() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATION.split("CREATE TABLE search_docs").next().unwrap()).unwrap();
        c.execute(
            "INSERT INTO search_text (rowid, title, tags, body, columns) VALUES (1, ?1, '', '', '')",
            ["空气 气质 𠀋 café"],
        )
        .unwrap();
        for (q, hits) in [
            ("空气", 1),
            ("气质", 1),
            ("空", 0),
            ("空气 气质", 1),
            ("气质 空气", 0),
            ("𠀋", 1),
            ("café", 1),
            ("cafe", 0),
        ] {
            let m = fts5_match(&[q.split(' ').map(str::to_owned).collect()]);
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM search_text WHERE search_text MATCH ?1", [m], |r| r.get(0))
                .unwrap();
            assert_eq!(n, hits, "{q:?}");
        }
    }
}
