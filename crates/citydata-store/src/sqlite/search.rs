//! Catalogue search on SQLite: an FTS5 table of the tokens made in [`crate::search`], a table of facet
//! values, and a row of sort keys per dataset. All three are rewritten for a dataset inside the
//! publish transaction that changes it, so the index is never out of step with the catalogue.
//!
//! The FTS5 table uses the `ascii` tokenizer: it splits on ASCII characters other than letters and
//! digits and keeps every other character, so the tokens made in Rust (letters, digits and Han
//! characters only, separated by spaces) reach the index unchanged. It is contentless: the tokens
//! are not stored a second time, only indexed.

use citydata_model::{DatasetMeta, LangText, Schema};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{from_json, SqlitePublish, SqliteStore};
use crate::search::{
    query_terms, FacetField, IndexDoc, IndexResource, SearchQuery, SearchResult, SearchSort, Term,
};
use crate::Result;

/// Migration 2: the search index.
pub(super) const MIGRATION: &str = r"
CREATE VIRTUAL TABLE search_text USING fts5(
    title, tags, body, columns,   -- space-separated tokens; rowid = datasets.id
    content = '', contentless_delete = 1,
    tokenize = 'ascii'
);
CREATE TABLE search_docs (
    dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id),
    title_key TEXT NOT NULL,      -- the title to sort by
    modified INTEGER NOT NULL,    -- datasets.modified as Unix nanoseconds, to sort by
    org_title TEXT                -- the organisation title (JSON) as indexed, to spot a renamed one
);
CREATE INDEX search_docs_title ON search_docs (title_key);
CREATE INDEX search_docs_modified ON search_docs (modified);
CREATE TABLE search_facets (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    field TEXT NOT NULL,          -- organization, tag, format, theme, license
    value TEXT NOT NULL,
    PRIMARY KEY (dataset_id, field, value)
) WITHOUT ROWID;
CREATE INDEX search_facets_value ON search_facets (field, value);
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
    c.prepare_cached("DELETE FROM search_facets WHERE dataset_id = ?1")?.execute([id])?;
    let mut insert =
        c.prepare_cached("INSERT INTO search_facets (dataset_id, field, value) VALUES (?1, ?2, ?3)")?;
    for (field, value) in &doc.facets {
        insert.execute(params![id, field.key(), value])?;
    }
    c.prepare_cached(
        "INSERT OR REPLACE INTO search_docs (dataset_id, title_key, modified, org_title) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, doc.title_key, unix_nanos(&modified), org.map(|(_, t)| t)])?;
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

/// The SQL of the matching datasets: a subquery with their ids as `id` (and, when `ranked`, their
/// BM25 score as `rank`), and its parameters.
fn matching(q: &SearchQuery, fts: Option<&str>, ranked: bool) -> (String, Vec<SqlValue>) {
    let mut params = Vec::new();
    let (mut sql, id) = match fts {
        Some(m) => {
            params.push(SqlValue::Text(m.to_owned()));
            let rank = if ranked { format!(", {RANK} AS rank") } else { String::new() };
            (format!("SELECT rowid AS id{rank} FROM search_text WHERE search_text MATCH ?"), "rowid")
        }
        None => (format!("SELECT id{} FROM datasets WHERE 1", if ranked { ", 0 AS rank" } else { "" }), "id"),
    };
    for (field, value) in &q.filters {
        sql.push_str(&format!(
            " AND {id} IN (SELECT dataset_id FROM search_facets WHERE field = ? AND value = ?)"
        ));
        params.push(SqlValue::Text(field.key().to_owned()));
        params.push(SqlValue::Text(field.normalize(value)));
    }
    (sql, params)
}

impl SqliteStore {
    pub(crate) fn search(&self, q: &SearchQuery) -> Result<SearchResult> {
        let terms = query_terms(&q.q);
        let fts = (!terms.is_empty()).then(|| fts5_match(&terms));
        let sort = match q.sort {
            SearchSort::Relevance if fts.is_some() => "m.rank, s.modified DESC, s.dataset_id DESC",
            SearchSort::Relevance | SearchSort::ModifiedDesc => "s.modified DESC, s.dataset_id DESC",
            SearchSort::ModifiedAsc => "s.modified, s.dataset_id",
            SearchSort::TitleAsc => "s.title_key, d.slug",
            SearchSort::TitleDesc => "s.title_key DESC, d.slug DESC",
            SearchSort::NameAsc => "d.slug",
            SearchSort::NameDesc => "d.slug DESC",
        };
        let ranked = q.sort == SearchSort::Relevance && fts.is_some();
        self.read(|c| {
            // One snapshot for the count, the page and the facets.
            let tx = c.unchecked_transaction()?;
            let (m, mp) = matching(q, fts.as_deref(), false);
            let count: i64 =
                tx.prepare_cached(&format!("SELECT COUNT(*) FROM ({m})"))?.query_row(params_from_iter(&mp), |r| {
                    r.get(0)
                })?;
            let mut slugs = Vec::new();
            if q.rows > 0 && count > i64::from(q.start) {
                let (m, mut p) = matching(q, fts.as_deref(), ranked);
                p.push(SqlValue::Integer(i64::from(q.rows)));
                p.push(SqlValue::Integer(i64::from(q.start)));
                let sql = format!(
                    "SELECT d.slug FROM ({m}) m JOIN datasets d ON d.id = m.id JOIN search_docs s ON s.dataset_id = m.id
                     ORDER BY {sort} LIMIT ? OFFSET ?"
                );
                slugs = tx
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(&p), |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
            }
            let mut facets: Vec<(FacetField, Vec<(String, u64)>)> = Vec::new();
            for f in &q.facets {
                if !facets.iter().any(|(g, _)| g == f) {
                    facets.push((*f, Vec::new()));
                }
            }
            if !facets.is_empty() {
                let fields: Vec<SqlValue> = facets.iter().map(|(f, _)| SqlValue::Text(f.key().to_owned())).collect();
                let marks = vec!["?"; fields.len()].join(", ");
                let (sql, p) = if fts.is_none() && q.filters.is_empty() {
                    (
                        format!(
                            "SELECT field, value, COUNT(*) FROM search_facets WHERE field IN ({marks}) GROUP BY field, value"
                        ),
                        fields,
                    )
                } else {
                    let mut p = mp;
                    p.extend(fields);
                    (
                        format!(
                            "SELECT f.field, f.value, COUNT(*) FROM ({m}) m JOIN search_facets f ON f.dataset_id = m.id
                             WHERE f.field IN ({marks}) GROUP BY f.field, f.value"
                        ),
                        p,
                    )
                };
                let mut st = tx.prepare_cached(&sql)?;
                let mut rows = st.query(params_from_iter(&p))?;
                while let Some(r) = rows.next()? {
                    let field = FacetField::from_key(&r.get::<_, String>(0)?);
                    if let Some((_, values)) = facets.iter_mut().find(|(f, _)| Some(*f) == field) {
                        values.push((r.get(1)?, r.get::<_, i64>(2)?.unsigned_abs()));
                    }
                }
                for (_, values) in &mut facets {
                    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    values.truncate(q.facet_limit);
                }
            }
            Ok(SearchResult { count: count.unsigned_abs(), slugs, facets })
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
        let tags =
            store.search(&SearchQuery { facets: vec![FacetField::Tag], ..SearchQuery::default() }).unwrap();
        assert!(tags.facets[0].1.contains(&("sport".to_owned(), 1)), "{tags:?}");
        assert!(!tags.facets[0].1.iter().any(|(t, _)| t == "culture"), "{tags:?}");

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
            "DROP TABLE search_text; DROP TABLE search_docs; DROP TABLE search_facets; PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(c);
        let store = Store::open(&path).unwrap();
        assert_eq!(find(&store, "空气"), "aqhi");
        assert_eq!(store.search(&SearchQuery::default()).unwrap().count, 5);
        drop(store);
        let c = Connection::open(&path).unwrap();
        assert_eq!(c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 2);
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
