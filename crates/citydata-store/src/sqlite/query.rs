//! Typed row queries on SQLite: a checked [`RowQuery`] becomes parameterised SQL over the resource's
//! table, run in one read transaction so that the head and the rows see one snapshot.
//!
//! Only `_id` (the rowid) is indexed, so a lookup or a range by `_id` and the default order are index
//! walks; other filters and orders scan the table. The keyset cut of a `next` token is one top-level
//! `_id > ?` term when the order is by `_id` alone, so paging through a table in its default order
//! never re-reads what came before. A [`RowQuery::cond`] becomes one more ANDed term of the WHERE
//! clause (`cond.rs`), so counts, facets and both kinds of paging honour it.

use citydata_model::{FieldType, Schema, Value};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::SqliteStore;
use crate::query::{
    decode_token, encode_token, like_pattern, parse_value, sort_fingerprint, Column, Facet, FacetValue, Head,
    Op, RowQuery, RowSink, Storage, Total,
};
use crate::{quote_ident, Result, StoreError};

/// At most this many values in one `Eq`/`Ne`/`In` filter.
const MAX_FILTER_VALUES: usize = 1000;
/// At most this many words in `q`.
const MAX_WORDS: usize = 32;

/// The columns of the current table of resource `id` (`_id` first) and its row count; `None` when
/// there is no such resource or it has no current version.
pub(super) fn current_columns(c: &Connection, id: &str) -> Result<Option<(Vec<Column>, u64)>> {
    Ok(current_table(c, id)?.map(|t| (t.columns, t.rows)))
}

/// What a query needs to know of a resource's current table.
pub(super) struct CurrentTable {
    /// Its columns, `_id` first; a geometry made from coordinate columns comes last, as
    /// [`crate::GEOMETRY_COLUMN`], and only when asked for by name.
    pub(super) columns: Vec<Column>,
    /// Its row count.
    pub(super) rows: u64,
    /// Where its geometries are, when it is spatial.
    pub(super) spatial: Option<crate::Spatial>,
}

/// The current table of resource `id`; `None` when there is no such resource or it has no current
/// version.
pub(super) fn current_table(c: &Connection, id: &str) -> Result<Option<CurrentTable>> {
    let mut st = c.prepare_cached(
        "SELECT v.schema, v.row_count, v.spatial FROM resources r
         JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version WHERE r.id = ?1",
    )?;
    let Some((schema, rows, spatial)) = st
        .query_row([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let schema: Schema = serde_json::from_str(&schema)
        .map_err(|e| StoreError::Database(format!("the schema of resource {id} cannot be read: {e}")))?;
    let spatial: Option<crate::Spatial> = match spatial {
        Some(s) => Some(serde_json::from_str(&s).map_err(|e| {
            StoreError::Database(format!("the spatial summary of resource {id} cannot be read: {e}"))
        })?),
        None => None,
    };
    let mut columns = Vec::with_capacity(schema.fields.len() + 2);
    columns.push(Column { name: "_id".to_owned(), field_type: FieldType::Integer });
    columns.extend(schema.fields.into_iter().map(|f| Column { name: f.name, field_type: f.field_type }));
    if spatial.as_ref().is_some_and(|s| s.column == crate::GEOMETRY_COLUMN) {
        columns.push(Column { name: crate::GEOMETRY_COLUMN.to_owned(), field_type: FieldType::Geometry });
    }
    Ok(Some(CurrentTable { columns, rows: rows.unsigned_abs(), spatial }))
}

/// A cell as a model value, borrowing its text from the row.
pub(super) fn cell(v: ValueRef<'_>) -> Value<'_> {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t)),
        // Tables hold no blobs; user SQL can make them: shown as PostgreSQL shows bytea.
        ValueRef::Blob(b) => Value::Text(format!("\\x{}", hex::encode(b)).into()),
    }
}

fn sql_value(v: Value<'_>) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(i),
        Value::Real(r) => SqlValue::Real(r),
        Value::Text(t) => SqlValue::Text(t.into_owned()),
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// SQL text with its numbered parameters.
#[derive(Clone, Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) params: Vec<SqlValue>,
}

impl Sql {
    /// Adds a parameter and returns its number.
    pub(super) fn bind(&mut self, v: SqlValue) -> usize {
        self.params.push(v);
        self.params.len()
    }

    /// Adds a parameter and writes its placeholder.
    fn push_bound(&mut self, v: SqlValue) {
        let n = self.bind(v);
        self.text.push_str(&format!("?{n}"));
    }
}

/// A [`RowQuery`] checked against a table.
struct Plan<'a> {
    table: String,
    columns: &'a [Column],
    /// Indexes of the columns to return.
    out: Vec<usize>,
    /// `out` and then the order's columns that `out` lacks (needed for the `next` token).
    select: Vec<usize>,
    /// The full order: (column, descending); ends with `_id` unless distinct.
    order: Vec<(usize, bool)>,
    /// The conditions, ANDed, without `WHERE`; empty for none.
    conditions: Sql,
    /// Whether pages are keyed (`next` tokens), i.e. not distinct.
    keyed: bool,
    fingerprint: String,
}

impl<'a> Plan<'a> {
    fn new(resource_id: &str, columns: &'a [Column], geometry: Option<&str>, q: &RowQuery) -> Result<Self> {
        let col = |name: &str| column_index(columns, name);
        let out: Vec<usize> = match &q.fields {
            // A geometry made from coordinate columns only when asked for: the file did not have it.
            None => (0..columns.len()).filter(|&i| columns[i].name != crate::GEOMETRY_COLUMN).collect(),
            Some(fields) if fields.is_empty() => {
                return Err(StoreError::Invalid(
                    "fields is empty: name at least one column, or leave it out".into(),
                ))
            }
            Some(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    let i = col(f)?;
                    if out.contains(&i) {
                        return Err(StoreError::Invalid(format!("the field {f:?} is named twice")));
                    }
                    out.push(i);
                }
                out
            }
        };
        let keyed = !q.distinct;
        let mut order: Vec<(usize, bool)> = Vec::with_capacity(q.sort.len() + 1);
        for k in &q.sort {
            let i = col(&k.column)?;
            if order.iter().any(|(j, _)| *j == i) {
                continue;
            }
            if q.distinct && !out.contains(&i) {
                return Err(StoreError::Invalid(format!(
                    "with distinct, sort only by the chosen fields; {:?} is not among them",
                    k.column
                )));
            }
            order.push((i, k.desc));
            if i == 0 {
                break; // `_id` is unique: later keys cannot change the order
            }
        }
        if keyed {
            if order.last().is_none_or(|(i, _)| *i != 0) {
                order.push((0, false));
            }
        } else {
            for &i in &out {
                if !order.iter().any(|(j, _)| *j == i) {
                    order.push((i, false));
                }
            }
        }
        let mut select = out.clone();
        if keyed {
            select.extend(order.iter().map(|(i, _)| *i).filter(|i| !out.contains(i)));
        }
        let names: Vec<(&str, bool)> = order.iter().map(|(i, d)| (columns[*i].name.as_str(), *d)).collect();
        let fingerprint = sort_fingerprint(resource_id, &names);
        let mut plan = Plan {
            table: quote_ident(resource_id),
            columns,
            out,
            select,
            order,
            conditions: Sql::default(),
            keyed,
            fingerprint,
        };
        plan.add_filters(q)?;
        plan.add_words(q.q.as_deref().unwrap_or(""))?;
        if let Some(cond) = &q.cond {
            plan.and();
            super::cond::translate(cond, resource_id, columns, geometry, &mut plan.conditions)?;
        }
        Ok(plan)
    }

    fn and(&mut self) {
        if !self.conditions.text.is_empty() {
            self.conditions.text.push_str(" AND ");
        }
    }

    fn add_filters(&mut self, q: &RowQuery) -> Result<()> {
        for f in &q.filters {
            let i = column_index(self.columns, &f.column)?;
            let column = &self.columns[i];
            let (name, t) = (column.name.as_str(), column.field_type);
            let n = f.values.len();
            let arity = |want: &str| {
                StoreError::Invalid(format!(
                    "the filter {} on {name:?} takes {want}; it was given {n}",
                    f.op.name()
                ))
            };
            let typed = |text: &str| {
                parse_value(t, text)
                    .map(sql_value)
                    .map_err(|e| StoreError::Invalid(format!("filter on {name:?}: {e}")))
            };
            let ident = quote_ident(name);
            self.and();
            let sql = &mut self.conditions;
            match f.op {
                Op::Eq | Op::In | Op::Ne => {
                    if n == 0 {
                        return Err(arity("one or more values"));
                    }
                    if n > MAX_FILTER_VALUES {
                        return Err(arity(&format!("at most {MAX_FILTER_VALUES} values")));
                    }
                    let ne = f.op == Op::Ne;
                    if n == 1 {
                        sql.text.push_str(&format!("{ident} {} ", if ne { "IS NOT" } else { "=" }));
                        sql.push_bound(typed(&f.values[0])?);
                    } else {
                        sql.text.push_str(&if ne {
                            format!("({ident} IS NULL OR {ident} NOT IN (")
                        } else {
                            format!("{ident} IN (")
                        });
                        for (k, v) in f.values.iter().enumerate() {
                            if k > 0 {
                                sql.text.push_str(", ");
                            }
                            sql.push_bound(typed(v)?);
                        }
                        sql.text.push_str(if ne { "))" } else { ")" });
                    }
                }
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    if n != 1 {
                        return Err(arity("one value"));
                    }
                    let cmp = match f.op {
                        Op::Lt => "<",
                        Op::Le => "<=",
                        Op::Gt => ">",
                        _ => ">=",
                    };
                    sql.text.push_str(&format!("{ident} {cmp} "));
                    sql.push_bound(typed(&f.values[0])?);
                }
                Op::Contains | Op::StartsWith => {
                    if n != 1 {
                        return Err(arity("one value"));
                    }
                    if Storage::of(t) != Storage::Text {
                        return Err(StoreError::Invalid(format!(
                            "the filter {} works on text columns; {name:?} holds {} values",
                            f.op.name(),
                            t.name()
                        )));
                    }
                    sql.text.push_str(&format!("{ident} LIKE "));
                    sql.push_bound(SqlValue::Text(like_pattern(&f.values[0], f.op == Op::StartsWith)));
                    sql.text.push_str(" ESCAPE '\\'");
                }
                Op::IsNull | Op::NotNull => {
                    if n != 0 {
                        return Err(arity("no values"));
                    }
                    sql.text.push_str(&format!(
                        "{ident} {}",
                        if f.op == Op::IsNull { "IS NULL" } else { "IS NOT NULL" }
                    ));
                }
            }
        }
        Ok(())
    }

    fn add_words(&mut self, q: &str) -> Result<()> {
        let words: Vec<&str> = q.split_whitespace().collect();
        if words.is_empty() {
            return Ok(());
        }
        if words.len() > MAX_WORDS {
            return Err(StoreError::Invalid(format!(
                "q has {} words; at most {MAX_WORDS} are searched",
                words.len()
            )));
        }
        let text: Vec<String> = self
            .columns
            .iter()
            .filter(|c| {
                matches!(
                    c.field_type,
                    FieldType::String | FieldType::Date | FieldType::Datetime | FieldType::Time
                )
            })
            .map(|c| quote_ident(&c.name))
            .collect();
        self.and();
        if text.is_empty() {
            self.conditions.text.push('0'); // no text to search: nothing matches
            return Ok(());
        }
        for (k, w) in words.iter().enumerate() {
            if k > 0 {
                self.conditions.text.push_str(" AND ");
            }
            let p = self.conditions.bind(SqlValue::Text(like_pattern(w, false)));
            let any: Vec<String> = text.iter().map(|c| format!("{c} LIKE ?{p} ESCAPE '\\'")).collect();
            self.conditions.text.push_str(&format!("({})", any.join(" OR ")));
        }
        Ok(())
    }

    /// ` WHERE ...` for the conditions (and `extra`), or nothing.
    fn where_clause(&self, sql: &mut Sql, extra: Option<&str>) {
        match (self.conditions.text.is_empty(), extra) {
            (true, None) => {}
            (true, Some(e)) => sql.text.push_str(&format!(" WHERE {e}")),
            (false, None) => sql.text.push_str(&format!(" WHERE {}", self.conditions.text)),
            (false, Some(e)) => sql.text.push_str(&format!(" WHERE {} AND {e}", self.conditions.text)),
        }
    }

    /// A statement that starts with the conditions' parameters.
    fn sql(&self) -> Sql {
        Sql { text: String::new(), params: self.conditions.params.clone() }
    }

    fn name(&self, i: usize) -> String {
        quote_ident(&self.columns[i].name)
    }

    fn count(&self, c: &Connection, cap: u64, row_count: u64) -> Result<Total> {
        if self.conditions.text.is_empty() && self.keyed {
            return Ok(Total { count: row_count, exact: true });
        }
        let limit = cap.saturating_add(1);
        let mut sql = self.sql();
        if self.keyed {
            sql.text = format!(
                "SELECT COUNT(*), MIN(m), MAX(m) FROM (SELECT {} AS m FROM {}",
                quote_ident("_id"),
                self.table
            );
        } else {
            let fields: Vec<String> = self.out.iter().map(|i| self.name(*i)).collect();
            sql.text = format!(
                "SELECT COUNT(*), NULL, NULL FROM (SELECT DISTINCT {} FROM {}",
                fields.join(", "),
                self.table
            );
        }
        self.where_clause(&mut sql, None);
        sql.text.push_str(" LIMIT ");
        sql.push_bound(SqlValue::Integer(clamp_i64(limit)));
        sql.text.push(')');
        let (n, first, last): (i64, Option<i64>, Option<i64>) = c
            .prepare_cached(&sql.text)?
            .query_row(params_from_iter(&sql.params), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let n = n.unsigned_abs();
        if n <= cap {
            return Ok(Total { count: n, exact: true });
        }
        // More than `cap` match. The scan found the first `n` in `_id` order between `first` and
        // `last`; assume the rest of the table matches at the same rate.
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Total { count: n, exact: false });
        };
        let end: i64 = c
            .prepare_cached(&format!("SELECT MAX({}) FROM {}", quote_ident("_id"), self.table))?
            .query_row([], |r| r.get::<_, Option<i64>>(0).map(Option::unwrap_or_default))?;
        let span = (last - first + 1).max(1) as f64;
        let rest = (end - first + 1).max(1) as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let estimate = ((n as f64) * rest / span).round() as u64;
        Ok(Total { count: estimate.clamp(n, row_count.max(n)), exact: false })
    }

    fn facet(&self, c: &Connection, name: &str, limit: usize) -> Result<Facet> {
        let i = column_index(self.columns, name)?;
        let mut sql = self.sql();
        sql.text = format!("SELECT {}, COUNT(*) FROM {}", self.name(i), self.table);
        self.where_clause(&mut sql, None);
        sql.text.push_str(" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ");
        sql.push_bound(SqlValue::Integer(clamp_i64(limit as u64)));
        let mut st = c.prepare_cached(&sql.text)?;
        let mut rows = st.query(params_from_iter(&sql.params))?;
        let mut values = Vec::new();
        while let Some(r) = rows.next()? {
            values.push(FacetValue {
                value: cell(r.get_ref(0)?).into_owned(),
                count: r.get::<_, i64>(1)?.unsigned_abs(),
            });
        }
        Ok(Facet { column: self.columns[i].name.clone(), values })
    }

    /// The keyset cut after the row with sort values `keys` and `_id` `id`, in the plan's order
    /// (a NULL sorts first ascending, last descending).
    fn cut(&self, sql: &mut Sql, keys: &[Value<'_>], id: i64) -> String {
        let (&(_, id_desc), key_order) = self.order.split_last().unwrap_or((&(0, false), &[]));
        let p = sql.bind(SqlValue::Integer(id));
        let mut expr = format!("{} {} ?{p}", quote_ident("_id"), if id_desc { "<" } else { ">" });
        for (&(i, desc), v) in key_order.iter().zip(keys).rev() {
            let c = self.name(i);
            expr = match (v, desc) {
                (Value::Null, false) => format!("({c} IS NOT NULL OR ({c} IS NULL AND {expr}))"),
                (Value::Null, true) => format!("({c} IS NULL AND {expr})"),
                (v, false) => {
                    let p = sql.bind(sql_value(v.clone()));
                    format!("({c} > ?{p} OR ({c} = ?{p} AND {expr}))")
                }
                (v, true) => {
                    let p = sql.bind(sql_value(v.clone()));
                    format!("({c} < ?{p} OR {c} IS NULL OR ({c} = ?{p} AND {expr}))")
                }
            };
        }
        expr
    }

    /// The sort values and `_id` of the row that `q.after` continues after, checked.
    fn after(&self, q: &RowQuery) -> Result<Option<(Vec<Value<'static>>, i64)>> {
        let Some(token) = &q.after else { return Ok(None) };
        if !self.keyed {
            return Err(StoreError::Invalid(
                "a next token cannot be used with distinct; page with offset".into(),
            ));
        }
        let storage: Vec<Storage> = self.order[..self.order.len() - 1]
            .iter()
            .map(|(i, _)| Storage::of(self.columns[*i].field_type))
            .collect();
        decode_token(token, &self.fingerprint, &storage).map(Some)
    }

    /// The statement of a page: `limit` rows (one more when keyed, to know whether a page follows).
    fn page_sql(&self, q: &RowQuery, after: Option<&(Vec<Value<'static>>, i64)>) -> Sql {
        let mut sql = self.sql();
        let fields: Vec<String> = self.select.iter().map(|i| self.name(*i)).collect();
        sql.text = format!(
            "SELECT {}{} FROM {}",
            if self.keyed { "" } else { "DISTINCT " },
            fields.join(", "),
            self.table
        );
        let cut = after.map(|(keys, id)| self.cut(&mut sql, keys, *id));
        self.where_clause(&mut sql, cut.as_deref());
        let order: Vec<String> = self
            .order
            .iter()
            .map(|(i, desc)| {
                format!("{} {}", self.name(*i), if *desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" })
            })
            .collect();
        sql.text.push_str(&format!(" ORDER BY {} LIMIT ", order.join(", ")));
        let limit = u64::from(q.limit);
        sql.push_bound(SqlValue::Integer(clamp_i64(if self.keyed { limit + 1 } else { limit })));
        sql.text.push_str(" OFFSET ");
        sql.push_bound(SqlValue::Integer(clamp_i64(q.offset)));
        sql
    }

    fn page(
        &self,
        c: &Connection,
        q: &RowQuery,
        after: Option<&(Vec<Value<'static>>, i64)>,
        sink: &mut dyn RowSink,
    ) -> Result<Option<String>> {
        let sql = self.page_sql(q, after);
        let limit = u64::from(q.limit);
        let mut st = c.prepare_cached(&sql.text)?;
        let mut rows = st.query(params_from_iter(&sql.params))?;
        let width = self.select.len();
        let shown = self.out.len();
        let mut n = 0u64;
        let mut last: Option<(Vec<Value<'static>>, i64)> = None;
        while let Some(r) = rows.next()? {
            if self.keyed && n == limit {
                // One row more than asked: there is a next page, after the last row given.
                return Ok(last.map(|(keys, id)| encode_token(&self.fingerprint, &keys, id)));
            }
            let mut values = Vec::with_capacity(width);
            for k in 0..width {
                values.push(cell(r.get_ref(k)?));
            }
            sink.row(&values[..shown])?;
            n += 1;
            if self.keyed && n == limit {
                let at = |i: usize| {
                    self.select.iter().position(|s| *s == i).map_or(Value::Null, |p| values[p].clone())
                };
                let keys =
                    self.order[..self.order.len() - 1].iter().map(|(i, _)| at(*i).into_owned()).collect();
                let id = match at(0) {
                    Value::Int(id) => id,
                    _ => 0,
                };
                last = Some((keys, id));
            }
        }
        Ok(None)
    }
}

/// The index of the column `name`, or an error that lists the valid names.
fn column_index(columns: &[Column], name: &str) -> Result<usize> {
    columns.iter().position(|c| c.name == name).ok_or_else(|| {
        const SHOWN: usize = 60;
        let mut names: Vec<String> = columns.iter().take(SHOWN).map(|c| format!("{:?}", c.name)).collect();
        if columns.len() > SHOWN {
            names.push(format!("and {} more", columns.len() - SHOWN));
        }
        StoreError::Invalid(format!("unknown column {name:?}; the columns are {}", names.join(", ")))
    })
}

/// The null count of `column` of resource `id` when the load counted its values.
fn counted_nulls(c: &Connection, id: &str, column: &str) -> Result<Option<u64>> {
    Ok(c.prepare_cached("SELECT nulls FROM value_count_columns WHERE resource_id = ?1 AND column_name = ?2")?
        .query_row(params![id, column], |r| r.get::<_, i64>(0))
        .optional()?
        .map(i64::unsigned_abs))
}

/// The exact total from the value counts made at load, when the query is one equality (or `In`)
/// filter on a counted column: no scan. `None` when the counts cannot answer.
fn counted_total(c: &Connection, id: &str, columns: &[Column], q: &RowQuery) -> Result<Option<Total>> {
    let [f] = q.filters.as_slice() else { return Ok(None) };
    if q.cond.is_some()
        || q.q.is_some()
        || q.distinct
        || !matches!(f.op, Op::Eq | Op::In)
        || f.values.is_empty()
    {
        return Ok(None);
    }
    let column = &columns[column_index(columns, &f.column)?];
    if counted_nulls(c, id, &column.name)?.is_none() {
        return Ok(None);
    }
    let values = f
        .values
        .iter()
        .map(|v| parse_value(column.field_type, v).map(sql_value))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Invalid(format!("filter on {:?}: {e}", column.name)))?;
    let mut distinct: Vec<SqlValue> = Vec::with_capacity(values.len());
    for v in values {
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    let marks = vec!["?"; distinct.len()].join(", ");
    let sql = format!(
        "SELECT COALESCE(SUM(count), 0) FROM value_counts WHERE resource_id = ? AND column_name = ? AND value IN ({marks})"
    );
    let mut params: Vec<SqlValue> = vec![SqlValue::Text(id.to_owned()), SqlValue::Text(column.name.clone())];
    params.extend(distinct);
    let n: i64 = c.prepare_cached(&sql)?.query_row(params_from_iter(&params), |r| r.get(0))?;
    Ok(Some(Total { count: n.unsigned_abs(), exact: true }))
}

/// A facet of the whole table from the value counts made at load (no filter, no words), in the
/// order a scan gives: most frequent first, ties by value (NULL first).
fn counted_facet(
    c: &Connection,
    id: &str,
    columns: &[Column],
    q: &RowQuery,
    name: &str,
) -> Result<Option<Facet>> {
    if !q.filters.is_empty() || q.cond.is_some() || q.q.is_some() || q.distinct {
        return Ok(None);
    }
    let column = &columns[column_index(columns, name)?];
    let Some(nulls) = counted_nulls(c, id, &column.name)? else { return Ok(None) };
    let limit = i64::try_from(q.facet_limit).unwrap_or(i64::MAX);
    let mut st = c.prepare_cached(
        "SELECT value, count FROM value_counts WHERE resource_id = ?1 AND column_name = ?2
         ORDER BY count DESC, value LIMIT ?3",
    )?;
    let mut rows = st.query(params![id, column.name, limit])?;
    let mut values = Vec::new();
    while let Some(r) = rows.next()? {
        values.push(FacetValue {
            value: cell(r.get_ref(0)?).into_owned(),
            count: r.get::<_, i64>(1)?.unsigned_abs(),
        });
    }
    if nulls > 0 {
        // NULL sorts before every value among equal counts.
        let at = values.iter().position(|v| v.count <= nulls).unwrap_or(values.len());
        values.insert(at, FacetValue { value: Value::Null, count: nulls });
        values.truncate(q.facet_limit);
    }
    Ok(Some(Facet { column: column.name.clone(), values }))
}

impl SqliteStore {
    pub(crate) fn query_rows(
        &self,
        resource_id: &str,
        q: &RowQuery,
        sink: &mut dyn RowSink,
    ) -> Result<Option<String>> {
        self.read(|c| {
            // One read transaction: the count, the facets and the rows see one snapshot.
            let tx = c.unchecked_transaction()?;
            let CurrentTable { columns, rows: row_count, spatial } = current_table(&tx, resource_id)?
                .ok_or_else(|| StoreError::NotFound(format!("resource {resource_id}")))?;
            let plan = Plan::new(resource_id, &columns, spatial.as_ref().map(|s| s.column.as_str()), q)?;
            let after = plan.after(q)?;
            for f in &q.facets {
                column_index(&columns, f)?;
            }
            let total = match q.total {
                Some(cap) => Some(match counted_total(&tx, resource_id, &columns, q)? {
                    Some(t) => t,
                    None => plan.count(&tx, cap, row_count)?,
                }),
                None => None,
            };
            let facets = if q.facet_limit == 0 {
                Vec::new()
            } else {
                q.facets
                    .iter()
                    .map(|f| match counted_facet(&tx, resource_id, &columns, q, f)? {
                        Some(facet) => Ok(facet),
                        None => plan.facet(&tx, f, q.facet_limit),
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            let head =
                Head { columns: plan.out.iter().map(|i| columns[*i].clone()).collect(), total, facets };
            sink.head(&head)?;
            if q.limit == 0 {
                return Ok(None);
            }
            plan.page(&tx, q, after.as_ref(), sink)
        })
    }
}

#[cfg(test)]
mod tests {
    use citydata_model::FieldType as F;
    use citydata_model::Value::{Int, Null, Real};

    use super::*;
    use crate::query::testing::{publish, publish_with_counts, store, t};
    use crate::query::{Filter, RowBuffer, SortKey};
    use crate::Store;

    type Page = (Head, Vec<Vec<Value<'static>>>, Option<String>);

    fn run(store: &Store, id: &str, q: &RowQuery) -> Result<Page> {
        let mut buf = RowBuffer::default();
        let next = store.query_rows(id, q, &mut buf)?;
        Ok((buf.head.expect("a head"), buf.rows, next))
    }

    fn ids(rows: &[Vec<Value<'static>>]) -> Vec<i64> {
        rows.iter()
            .map(|r| match r[0] {
                Int(i) => i,
                ref v => panic!("not an id: {v:?}"),
            })
            .collect()
    }

    const DISTRICTS: [(&str, F); 8] = [
        ("name", F::String),
        ("population", F::Integer),
        ("area", F::Number),
        ("opened", F::Date),
        ("at", F::Datetime),
        ("t", F::Time),
        ("ok", F::Boolean),
        ("note", F::String),
    ];

    /// Eight districts with NULLs and repeated values in several columns.
    fn districts() -> (tempfile::TempDir, Store, String) {
        let (dir, store) = store();
        let row = |name: &str,
                   pop: Option<i64>,
                   area: f64,
                   opened: Option<&str>,
                   at: &str,
                   ok: i64,
                   note: Option<&str>| {
            vec![
                t(name),
                pop.map_or(Null, Int),
                Real(area),
                opened.map_or(Null, t),
                t(&format!("2024-01-0{at}")),
                t(&at[2..]),
                Int(ok),
                note.map_or(Null, t),
            ]
        };
        let rows = vec![
            row(
                "Central and Western",
                Some(243_000),
                12.55,
                Some("2001-05-01"),
                "1T08:00:00",
                1,
                Some("harbour"),
            ),
            row("Wan Chai", Some(166_000), 10.64, Some("2003-02-10"), "2T09:30:00", 0, None),
            row("Eastern", None, 18.56, None, "3T10:00:00", 1, Some("Island east")),
            row("Southern", Some(263_000), 39.4, Some("1999-12-31"), "4T11:15:00", 0, Some("beaches 50%")),
            row("Yau Tsim Mong", Some(318_000), 6.99, Some("2010-07-01"), "5T12:00:00", 1, Some("Kowloon")),
            row("Sham Shui Po", None, 9.35, Some("2010-07-01"), "6T13:45:00", 0, Some("Kowloon west")),
            row("Kowloon City", Some(410_000), 10.02, Some("2005-03-15"), "7T14:00:00", 1, None),
            row("Wong Tai Sin", Some(406_000), 9.3, Some("2001-05-01"), "8T15:30:00", 0, Some("Kowloon_x")),
        ];
        let id = publish(&store, "districts", "districts", &DISTRICTS, &rows);
        (dir, store, id)
    }

    fn filtered(filters: Vec<Filter>) -> RowQuery {
        RowQuery { filters, ..RowQuery::default() }
    }

    #[test]
    fn every_op_on_every_type() {
        let (_d, store, id) = districts();
        let f = |c: &str, op: Op, v: &[&str]| Filter::new(c, op, v.iter().copied());
        for (filters, want) in [
            (vec![f("population", Op::Eq, &["166000"])], vec![2]),
            (vec![f("population", Op::Eq, &["166000", "243000"])], vec![1, 2]),
            (vec![f("population", Op::In, &["410000", " 406000 "])], vec![7, 8]),
            (vec![f("population", Op::Ne, &["166000"])], vec![1, 3, 4, 5, 6, 7, 8]),
            (vec![f("population", Op::Ne, &["166000", "243000"])], vec![3, 4, 5, 6, 7, 8]),
            (vec![f("population", Op::Lt, &["243000"])], vec![2]),
            (vec![f("population", Op::Le, &["243000"])], vec![1, 2]),
            (vec![f("population", Op::Gt, &["400000"])], vec![7, 8]),
            (vec![f("population", Op::Ge, &["100000"])], vec![1, 2, 4, 5, 7, 8]),
            (vec![f("population", Op::Ge, &["99999.5"])], vec![1, 2, 4, 5, 7, 8]),
            (vec![f("population", Op::IsNull, &[])], vec![3, 6]),
            (vec![f("area", Op::Ge, &["10.64"])], vec![1, 2, 3, 4]),
            (vec![f("area", Op::Lt, &["10"])], vec![5, 6, 8]),
            (vec![f("area", Op::Eq, &["9.3"])], vec![8]),
            (vec![f("area", Op::Gt, &["9"]), f("area", Op::Lt, &["10.1"])], vec![6, 7, 8]),
            (vec![f("opened", Op::Eq, &["2010-07-01"])], vec![5, 6]),
            (vec![f("opened", Op::Lt, &["2001-05-01"])], vec![4]),
            (vec![f("opened", Op::Ge, &["2005-3-15"])], vec![5, 6, 7]),
            (vec![f("opened", Op::StartsWith, &["2010"])], vec![5, 6]),
            (vec![f("opened", Op::NotNull, &[])], vec![1, 2, 4, 5, 6, 7, 8]),
            (vec![f("at", Op::Ge, &["2024-01-07"])], vec![7, 8]),
            (vec![f("at", Op::Lt, &["2024-01-02 09:30"])], vec![1]),
            (vec![f("at", Op::Eq, &["2024-01-03T10:00"])], vec![3]),
            (vec![f("t", Op::Gt, &["13:00"])], vec![6, 7, 8]),
            (vec![f("t", Op::Le, &["9:30"])], vec![1, 2]),
            (vec![f("t", Op::Contains, &[":30"])], vec![2, 8]),
            (vec![f("ok", Op::Eq, &["true"])], vec![1, 3, 5, 7]),
            (vec![f("ok", Op::Eq, &["no"])], vec![2, 4, 6, 8]),
            (vec![f("ok", Op::Ne, &["1"])], vec![2, 4, 6, 8]),
            (vec![f("name", Op::Eq, &["Eastern"])], vec![3]),
            (vec![f("name", Op::Eq, &["eastern"])], vec![]),
            (vec![f("name", Op::Gt, &["Wan"])], vec![2, 5, 8]),
            (vec![f("name", Op::Contains, &["ow"])], vec![7]),
            (vec![f("name", Op::Contains, &["WAN"])], vec![2]),
            (vec![f("name", Op::StartsWith, &["w"])], vec![2, 8]),
            (vec![f("note", Op::Contains, &["50%"])], vec![4]),
            (vec![f("note", Op::Contains, &["_"])], vec![8]),
            (vec![f("note", Op::Contains, &["%"])], vec![4]),
            (vec![f("note", Op::IsNull, &[])], vec![2, 7]),
            (vec![f("note", Op::NotNull, &[])], vec![1, 3, 4, 5, 6, 8]),
            (vec![f("ok", Op::Eq, &["true"]), f("population", Op::Gt, &["300000"])], vec![5, 7]),
            (vec![f("_id", Op::Eq, &["3"])], vec![3]),
            (vec![f("_id", Op::In, &["8", "1"])], vec![1, 8]),
            (vec![f("_id", Op::Gt, &["6"])], vec![7, 8]),
        ] {
            let (_, rows, next) = run(&store, &id, &filtered(filters.clone())).unwrap();
            assert_eq!(ids(&rows), want, "{filters:?}");
            assert_eq!(next, None);
        }
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let (_d, store, id) = districts();
        let f = |c: &str, op: Op, v: &[&str]| filtered(vec![Filter::new(c, op, v.iter().copied())]);
        let columns =
            r#"the columns are "_id", "name", "population", "area", "opened", "at", "t", "ok", "note""#;
        for (q, want) in [
            (f("nope", Op::Eq, &["1"]), format!(r#"unknown column "nope"; {columns}"#)),
            (
                f("population", Op::Eq, &["abc"]),
                r#"filter on "population": "abc" is not a number"#.to_owned(),
            ),
            (f("area", Op::Gt, &["NaN"]), r#"filter on "area": "NaN" is not a number"#.to_owned()),
            (
                f("opened", Op::Eq, &["2024-02-30"]),
                r#"filter on "opened": "2024-02-30" is not a date (YYYY-MM-DD or DD/MM/YYYY)"#.to_owned(),
            ),
            (
                f("ok", Op::Eq, &["perhaps"]),
                r#"filter on "ok": "perhaps" is not a boolean (true or false)"#.to_owned(),
            ),
            (f("t", Op::Lt, &["noon"]), r#"filter on "t": "noon" is not a time (HH:MM:SS)"#.to_owned()),
            (
                f("population", Op::Lt, &["1", "2"]),
                r#"the filter lt on "population" takes one value; it was given 2"#.to_owned(),
            ),
            (
                f("population", Op::Eq, &[]),
                r#"the filter eq on "population" takes one or more values; it was given 0"#.to_owned(),
            ),
            (
                f("note", Op::IsNull, &["x"]),
                r#"the filter isnull on "note" takes no values; it was given 1"#.to_owned(),
            ),
            (
                f("population", Op::Contains, &["1"]),
                r#"the filter contains works on text columns; "population" holds integer values"#.to_owned(),
            ),
            (
                RowQuery { sort: vec![SortKey::asc("Name")], ..RowQuery::default() },
                format!(r#"unknown column "Name"; {columns}"#),
            ),
            (
                RowQuery { fields: Some(vec!["x".into()]), ..RowQuery::default() },
                format!(r#"unknown column "x"; {columns}"#),
            ),
            (
                RowQuery { facets: vec!["y".into()], ..RowQuery::default() },
                format!(r#"unknown column "y"; {columns}"#),
            ),
            (
                RowQuery { fields: Some(vec!["name".into(), "name".into()]), ..RowQuery::default() },
                r#"the field "name" is named twice"#.to_owned(),
            ),
            (
                RowQuery { fields: Some(vec![]), ..RowQuery::default() },
                "fields is empty: name at least one column, or leave it out".to_owned(),
            ),
            (
                RowQuery {
                    distinct: true,
                    fields: Some(vec!["ok".into()]),
                    sort: vec![SortKey::asc("name")],
                    ..RowQuery::default()
                },
                r#"with distinct, sort only by the chosen fields; "name" is not among them"#.to_owned(),
            ),
            (
                RowQuery { distinct: true, after: Some("e30".into()), ..RowQuery::default() },
                "a next token cannot be used with distinct; page with offset".to_owned(),
            ),
            (
                RowQuery { after: Some("not a token".into()), ..RowQuery::default() },
                "bad next token: it is not a token this API gave out".to_owned(),
            ),
            (
                RowQuery { after: Some("e30".into()), limit: 0, ..RowQuery::default() },
                "bad next token: it is not a token this API gave out".to_owned(),
            ),
        ] {
            match run(&store, &id, &q) {
                Err(StoreError::Invalid(m)) => assert_eq!(m, want, "{q:?}"),
                other => panic!("{q:?}: {other:?}"),
            }
        }
        assert!(
            matches!(run(&store, "no-such-resource", &RowQuery::default()), Err(StoreError::NotFound(m)) if m == "resource no-such-resource")
        );
    }

    #[test]
    fn sorts_put_nulls_first_ascending_and_break_ties_by_id() {
        let (_d, store, id) = districts();
        for (sort, want) in [
            (vec![], vec![1, 2, 3, 4, 5, 6, 7, 8]),
            (vec![SortKey::asc("population")], vec![3, 6, 2, 1, 4, 5, 8, 7]),
            (vec![SortKey::desc("population")], vec![7, 8, 5, 4, 1, 2, 3, 6]),
            (vec![SortKey::asc("opened")], vec![3, 4, 1, 8, 2, 7, 5, 6]),
            (vec![SortKey::desc("opened")], vec![5, 6, 7, 2, 1, 8, 4, 3]),
            (vec![SortKey::desc("ok"), SortKey::asc("population")], vec![3, 1, 5, 7, 6, 2, 4, 8]),
            (vec![SortKey::desc("opened"), SortKey::desc("_id")], vec![6, 5, 7, 2, 8, 1, 4, 3]),
            (vec![SortKey::desc("_id"), SortKey::asc("name")], vec![8, 7, 6, 5, 4, 3, 2, 1]),
            (vec![SortKey::asc("area")], vec![5, 8, 6, 7, 2, 1, 3, 4]),
            (vec![SortKey::asc("note"), SortKey::asc("note")], vec![2, 7, 3, 5, 6, 8, 4, 1]),
        ] {
            let q = RowQuery { sort: sort.clone(), ..RowQuery::default() };
            assert_eq!(ids(&run(&store, &id, &q).unwrap().1), want, "{sort:?}");
        }
    }

    /// Orders rows as the store must: by the keys with NULL smallest, then by `_id` (column 0).
    fn expected_order(rows: &[Vec<Value<'static>>], keys: &[(usize, bool)]) -> Vec<i64> {
        fn cmp(a: &Value<'_>, b: &Value<'_>) -> std::cmp::Ordering {
            match (a, b) {
                (Null, Null) => std::cmp::Ordering::Equal,
                (Null, _) => std::cmp::Ordering::Less,
                (_, Null) => std::cmp::Ordering::Greater,
                (Int(x), Int(y)) => x.cmp(y),
                (Real(x), Real(y)) => x.total_cmp(y),
                (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
                _ => panic!("mixed types"),
            }
        }
        let mut sorted = rows.to_vec();
        sorted.sort_by(|a, b| {
            keys.iter()
                .map(|(i, desc)| if *desc { cmp(&b[*i], &a[*i]) } else { cmp(&a[*i], &b[*i]) })
                .find(|o| o.is_ne())
                .unwrap_or_else(|| cmp(&a[0], &b[0]))
        });
        ids(&sorted)
    }

    #[test]
    fn keyset_pages_add_up_to_one_sorted_read() {
        let (_d, store) = store();
        let cols = [("a", F::Integer), ("b", F::String), ("c", F::Number), ("d", F::Date)];
        let rows: Vec<Vec<Value<'static>>> = (1..=41i64)
            .map(|i| {
                vec![
                    if i % 5 == 0 { Null } else { Int(i % 4) },
                    [t("x"), t("y"), Null, t("X")][usize::try_from(i % 4).unwrap()].clone(),
                    if i % 6 == 0 {
                        Null
                    } else {
                        Real(f64::from(u8::try_from((i * 7) % 11).unwrap()) / 3.0)
                    },
                    t(&format!("2024-0{}-01", 1 + i % 3)),
                ]
            })
            .collect();
        let id = publish(&store, "pages", "pages", &cols, &rows);
        let with_ids: Vec<Vec<Value<'static>>> = rows
            .iter()
            .zip(1..)
            .map(|(r, i)| std::iter::once(Int(i)).chain(r.iter().cloned()).collect())
            .collect();
        let specs: [&[(&str, bool)]; 8] = [
            &[],
            &[("a", false)],
            &[("a", true)],
            &[("b", false), ("a", true)],
            &[("c", true), ("b", false)],
            &[("_id", true)],
            &[("a", false), ("_id", true)],
            &[("b", true), ("c", false), ("d", true)],
        ];
        let filters = [
            vec![],
            vec![Filter::new("a", Op::Ne, ["2"])],
            vec![Filter::new("c", Op::IsNull, [] as [&str; 0])],
        ];
        for spec in specs {
            let sort: Vec<SortKey> =
                spec.iter().map(|(c, d)| SortKey { column: (*c).to_owned(), desc: *d }).collect();
            let keys: Vec<(usize, bool)> = spec
                .iter()
                .map(|(c, d)| {
                    (if *c == "_id" { 0 } else { 1 + cols.iter().position(|x| x.0 == *c).unwrap() }, *d)
                })
                .collect();
            for filters in &filters {
                let matching: Vec<Vec<Value<'static>>> = with_ids
                    .iter()
                    .filter(|r| match filters.first().map(|f| f.column.as_str()) {
                        Some("a") => r[1] != Int(2),
                        Some(_) => r[3] == Null,
                        None => true,
                    })
                    .cloned()
                    .collect();
                let want = expected_order(&matching, &keys);
                let base = RowQuery { filters: filters.clone(), sort: sort.clone(), ..RowQuery::default() };
                let whole = run(&store, &id, &RowQuery { limit: 1000, ..base.clone() }).unwrap();
                assert_eq!(ids(&whole.1), want, "{spec:?} {filters:?}");
                for size in 1..=7 {
                    // The sort columns left out of the fields must still key the pages.
                    let fields = (size % 2 == 0).then(|| vec!["_id".to_owned(), "d".to_owned()]);
                    let mut got = Vec::new();
                    let mut after = None;
                    let mut pages = 0;
                    loop {
                        let q = RowQuery {
                            limit: size,
                            after: after.clone(),
                            fields: fields.clone(),
                            ..base.clone()
                        };
                        let (head, rows, next) = run(&store, &id, &q).unwrap();
                        assert_eq!(head.columns.len(), if fields.is_some() { 2 } else { 5 });
                        assert!(rows.len() <= size as usize);
                        got.extend(ids(&rows));
                        pages += 1;
                        match next {
                            Some(n) => {
                                assert_eq!(rows.len(), size as usize);
                                after = Some(n);
                            }
                            None => break,
                        }
                    }
                    assert_eq!(got, want, "{spec:?} {filters:?} pages of {size}");
                    assert_eq!(pages, want.len().div_ceil(size as usize).max(1), "no empty last page");
                }
            }
        }
    }

    #[test]
    fn tokens_belong_to_their_sort_and_resource() {
        let (_d, store, id) = districts();
        let q = RowQuery { sort: vec![SortKey::asc("population")], limit: 3, ..RowQuery::default() };
        let token = run(&store, &id, &q).unwrap().2.unwrap();
        let next = RowQuery { after: Some(token.clone()), ..q.clone() };
        assert_eq!(ids(&run(&store, &id, &next).unwrap().1), [1, 4, 5]);
        let mismatch =
            "bad next token: it was made for another resource or sort order; start again without it";
        for other in [
            RowQuery { sort: vec![SortKey::desc("population")], ..next.clone() },
            RowQuery { sort: vec![], ..next.clone() },
            RowQuery { sort: vec![SortKey::asc("area")], ..next.clone() },
        ] {
            assert!(
                matches!(run(&store, &id, &other), Err(StoreError::Invalid(m)) if m == mismatch),
                "{other:?}"
            );
        }
        let id2 = publish(&store, "districts", "copy", &DISTRICTS, &[]);
        assert!(matches!(run(&store, &id2, &next), Err(StoreError::Invalid(m)) if m == mismatch));
        // A token with the right fingerprint but a value of the wrong type.
        let fp = sort_fingerprint(&id, &[("population", false), ("_id", false)]);
        let forged = encode_token(&fp, &[t("many")], 2);
        assert!(matches!(
            run(&store, &id, &RowQuery { after: Some(forged), ..q }),
            Err(StoreError::Invalid(m)) if m == "bad next token: a sort value does not fit its column"
        ));
    }

    #[test]
    fn totals_are_exact_up_to_the_cap() {
        let (_d, store, id) = districts();
        let notnull = vec![Filter::new("population", Op::NotNull, [] as [&str; 0])];
        for (filters, cap, want) in [
            (vec![], 5, Total { count: 8, exact: true }),
            (notnull.clone(), 100, Total { count: 6, exact: true }),
            (notnull.clone(), 6, Total { count: 6, exact: true }),
            (vec![Filter::new("name", Op::Eq, ["none"])], 0, Total { count: 0, exact: true }),
        ] {
            let q = RowQuery { filters, total: Some(cap), limit: 0, ..RowQuery::default() };
            let (head, rows, next) = run(&store, &id, &q).unwrap();
            assert_eq!((head.total, rows.len(), next), (Some(want), 0, None));
        }
        let q = RowQuery { filters: notnull, total: Some(3), limit: 2, ..RowQuery::default() };
        let total = run(&store, &id, &q).unwrap().0.total.unwrap();
        assert!(!total.exact && (4..=8).contains(&total.count), "{total:?}");
        assert_eq!(run(&store, &id, &RowQuery::default()).unwrap().0.total, None);

        // On a larger table, the estimate follows the rate at which rows match.
        let (_d2, big) = self::store();
        let rows: Vec<Vec<Value<'static>>> = (0..2000).map(|i| vec![Int(i % 4)]).collect();
        let id = publish_with_counts(&big, "big", "big", &[("k", F::Integer)], &rows, false);
        for (filter, cap, lo, hi) in [
            (Filter::new("k", Op::Eq, ["1"]), 100, 400, 600),
            (Filter::new("_id", Op::Gt, ["1000"]), 50, 900, 1100),
        ] {
            let q = RowQuery { filters: vec![filter], total: Some(cap), limit: 0, ..RowQuery::default() };
            let total = run(&big, &id, &q).unwrap().0.total.unwrap();
            assert!(!total.exact && (lo..=hi).contains(&total.count), "{total:?}");
        }
        // With the value counts of the load, an equality filter's total is exact at any cap.
        let id = publish(&big, "big", "counted", &[("k", F::Integer)], &rows);
        let q = RowQuery {
            filters: vec![Filter::new("k", Op::Eq, ["1"])],
            total: Some(100),
            limit: 0,
            ..RowQuery::default()
        };
        assert_eq!(run(&big, &id, &q).unwrap().0.total, Some(Total { count: 500, exact: true }));
    }

    #[test]
    fn facets_count_values_among_matching_rows() {
        let (_d, store, id) = districts();
        let q = RowQuery {
            facets: vec!["ok".into(), "opened".into(), "note".into()],
            facet_limit: 2,
            limit: 0,
            ..RowQuery::default()
        };
        let facets = run(&store, &id, &q).unwrap().0.facets;
        let fv = |value: Value<'static>, count: u64| FacetValue { value, count };
        assert_eq!(
            facets,
            [
                Facet { column: "ok".into(), values: vec![fv(Int(0), 4), fv(Int(1), 4)] },
                Facet {
                    column: "opened".into(),
                    values: vec![fv(t("2001-05-01"), 2), fv(t("2010-07-01"), 2)]
                },
                Facet { column: "note".into(), values: vec![fv(Null, 2), fv(t("Island east"), 1)] },
            ]
        );
        let q = RowQuery {
            filters: vec![Filter::new("population", Op::NotNull, [] as [&str; 0])],
            facets: vec!["opened".into()],
            facet_limit: 10,
            ..RowQuery::default()
        };
        let (head, rows, _) = run(&store, &id, &q).unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(
            head.facets[0].values,
            [
                fv(t("2001-05-01"), 2),
                fv(t("1999-12-31"), 1),
                fv(t("2003-02-10"), 1),
                fv(t("2005-03-15"), 1),
                fv(t("2010-07-01"), 1)
            ]
        );
    }

    #[test]
    fn fields_choose_and_order_the_columns() {
        let (_d, store, id) = districts();
        let (head, rows, _) = run(&store, &id, &RowQuery::default()).unwrap();
        let names: Vec<&str> = head.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["_id", "name", "population", "area", "opened", "at", "t", "ok", "note"]);
        assert_eq!(head.columns[4].field_type, F::Date);
        assert_eq!(
            rows[0],
            [
                Int(1),
                t("Central and Western"),
                Int(243_000),
                Real(12.55),
                t("2001-05-01"),
                t("2024-01-01T08:00:00"),
                t("08:00:00"),
                Int(1),
                t("harbour")
            ]
        );
        let q = RowQuery {
            fields: Some(vec!["name".into(), "_id".into()]),
            limit: 2,
            offset: 3,
            ..RowQuery::default()
        };
        let (head, rows, next) = run(&store, &id, &q).unwrap();
        assert_eq!(
            head.columns,
            [
                Column { name: "name".into(), field_type: F::String },
                Column { name: "_id".into(), field_type: F::Integer }
            ]
        );
        assert_eq!(rows, [vec![t("Southern"), Int(4)], vec![t("Yau Tsim Mong"), Int(5)]]);
        assert!(next.is_some());
    }

    #[test]
    fn distinct_rows_page_by_offset() {
        let (_d, store, id) = districts();
        let q = |fields: &[&str], sort: Vec<SortKey>, limit: u32, offset: u64| RowQuery {
            fields: Some(fields.iter().map(|s| (*s).to_owned()).collect()),
            sort,
            limit,
            offset,
            distinct: true,
            total: Some(100),
            ..RowQuery::default()
        };
        let (head, rows, next) = run(&store, &id, &q(&["ok"], vec![], 10, 0)).unwrap();
        assert_eq!(
            (rows, next, head.total),
            (vec![vec![Int(0)], vec![Int(1)]], None, Some(Total { count: 2, exact: true }))
        );
        let all = run(&store, &id, &q(&["opened"], vec![SortKey::desc("opened")], 10, 0)).unwrap().1;
        let want: Vec<Vec<Value<'static>>> =
            ["2010-07-01", "2005-03-15", "2003-02-10", "2001-05-01", "1999-12-31"]
                .iter()
                .map(|d| vec![t(d)])
                .chain([vec![Null]])
                .collect();
        assert_eq!(all, want);
        let (_, page, next) = run(&store, &id, &q(&["opened"], vec![SortKey::desc("opened")], 2, 2)).unwrap();
        assert_eq!((page.as_slice(), next), (&want[2..4], None));
        let pairs = run(&store, &id, &q(&["ok", "opened"], vec![], 100, 0)).unwrap();
        assert_eq!((pairs.1.len(), pairs.0.total), (8, Some(Total { count: 8, exact: true })));
        let capped =
            run(&store, &id, &RowQuery { total: Some(1), ..q(&["ok"], vec![], 10, 0) }).unwrap().0.total;
        assert_eq!(capped, Some(Total { count: 2, exact: false }));
    }

    #[test]
    fn q_finds_every_word_in_some_text_column() {
        let (_d, store, id) = districts();
        for (q, want) in [
            ("kowloon", vec![5, 6, 7, 8]),
            ("KOWLOON west", vec![6]),
            ("2010", vec![5, 6]),
            ("Island  EAST", vec![3]),
            ("50%", vec![4]),
            ("zzz", vec![]),
            ("   ", vec![1, 2, 3, 4, 5, 6, 7, 8]),
        ] {
            let rq = RowQuery { q: Some(q.into()), ..RowQuery::default() };
            assert_eq!(ids(&run(&store, &id, &rq).unwrap().1), want, "{q:?}");
        }
        let numbers = publish(&store, "numbers", "numbers", &[("n", F::Integer)], &[vec![Int(1)]]);
        let rq = RowQuery { q: Some("1".into()), ..RowQuery::default() };
        assert!(run(&store, &numbers, &rq).unwrap().1.is_empty());
    }

    #[test]
    fn limit_zero_gives_the_head_only() {
        let (_d, store, id) = districts();
        let q = RowQuery { limit: 0, total: Some(10), ..RowQuery::default() };
        let (head, rows, next) = run(&store, &id, &q).unwrap();
        assert_eq!(
            (head.columns.len(), head.total, rows.len(), next),
            (9, Some(Total { count: 8, exact: true }), 0, None)
        );
    }

    #[test]
    fn odd_column_names_are_only_identifiers() {
        let (_d, store) = store();
        let evil = "x\"); DROP TABLE t; --";
        let cols = [
            ("a\"b", F::Integer),
            ("x]y", F::String),
            ("`c`", F::Number),
            ("地區 District", F::String),
            (evil, F::Integer),
        ];
        let rows: Vec<Vec<Value<'static>>> = (1..=5i64)
            .map(|i| {
                vec![
                    Int(i % 3),
                    t(&format!("v{i}")),
                    Real(-(i as f64)),
                    t(["中西區", "灣仔", "東區"][usize::try_from(i % 3).unwrap()]),
                    Int(10 - i),
                ]
            })
            .collect();
        let id = publish(&store, "odd", "odd", &cols, &rows);
        for (filter, want) in [
            (Filter::new("a\"b", Op::Eq, ["1"]), vec![1, 4]),
            (Filter::new("x]y", Op::Ge, ["v4"]), vec![4, 5]),
            (Filter::new("`c`", Op::Lt, ["-3.5"]), vec![4, 5]),
            (Filter::new("地區 District", Op::In, ["灣仔", "東區"]), vec![1, 2, 4, 5]),
            (Filter::new("地區 District", Op::Contains, ["西"]), vec![3]),
            (Filter::new(evil, Op::Le, ["6"]), vec![4, 5]),
        ] {
            assert_eq!(
                ids(&run(&store, &id, &filtered(vec![filter.clone()])).unwrap().1),
                want,
                "{filter:?}"
            );
        }
        for (name, _) in cols {
            let q = RowQuery {
                sort: vec![SortKey::desc(name)],
                limit: 2,
                facets: vec![name.into()],
                total: Some(2),
                ..RowQuery::default()
            };
            let (head, first, next) = run(&store, &id, &q).unwrap();
            assert_eq!(head.facets[0].column, name);
            let rest = run(&store, &id, &RowQuery { after: next, limit: 10, ..q.clone() }).unwrap().1;
            let mut got = ids(&first);
            got.extend(ids(&rest));
            got.sort_unstable();
            assert_eq!(got, [1, 2, 3, 4, 5], "{name}");
        }
        let q = RowQuery {
            fields: Some(vec![evil.into(), "地區 District".into()]),
            q: Some("區".into()),
            ..RowQuery::default()
        };
        let (head, rows, _) = run(&store, &id, &q).unwrap();
        assert_eq!(head.columns[0].name, evil);
        assert_eq!(rows, [vec![Int(8), t("東區")], vec![Int(7), t("中西區")], vec![Int(5), t("東區")]]);
        assert!(store.check().unwrap().is_empty());
        assert_eq!(run(&store, &id, &RowQuery::default()).unwrap().1.len(), 5);
    }

    #[test]
    fn lookups_and_default_pages_walk_the_rowid() {
        let (_d, store, id) = districts();
        let plan_of = |q: &RowQuery| -> String {
            store
                .backend
                .read(|c| {
                    let (columns, _) = current_columns(c, &id)?.unwrap();
                    let plan = Plan::new(&id, &columns, None, q)?;
                    let after = plan.after(q)?;
                    let sql = plan.page_sql(q, after.as_ref());
                    let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))?;
                    let lines: Vec<String> = st
                        .query_map(params_from_iter(&sql.params), |r| r.get::<_, String>(3))?
                        .collect::<Result<_, _>>()?;
                    Ok(lines.join("; "))
                })
                .unwrap()
        };
        let lookup = plan_of(&filtered(vec![Filter::new("_id", Op::Eq, ["3"])]));
        assert!(lookup.contains("INTEGER PRIMARY KEY (rowid=?)"), "{lookup}");
        let token = run(&store, &id, &RowQuery { limit: 2, ..RowQuery::default() }).unwrap().2;
        let page = plan_of(&RowQuery { after: token, ..RowQuery::default() });
        assert!(page.contains("INTEGER PRIMARY KEY (rowid>?)") && !page.contains("TEMP B-TREE"), "{page}");
        let back = plan_of(&RowQuery { sort: vec![SortKey::desc("_id")], ..RowQuery::default() });
        assert!(!back.contains("TEMP B-TREE"), "{back}");
    }

    /// Totals and facets answered from the value counts made at load agree with a scan of the table.
    #[test]
    fn value_counts_answer_like_a_scan() {
        let (_dir, store) = store();
        let columns = [("district", F::String), ("n", F::Integer), ("x", F::Number), ("code", F::String)];
        let rows: Vec<Vec<Value<'static>>> = (0..300)
            .map(|i| {
                vec![
                    if i % 7 == 0 { Null } else { t(["Wan Chai", "Sha Tin", "Islands"][i % 3]) },
                    Int(i64::try_from(i % 5).unwrap()),
                    if i % 4 == 0 { Real(-0.0) } else { Real(1.5) },
                    t(if i % 2 == 0 { "007" } else { "7" }),
                ]
            })
            .collect();
        let counted = publish_with_counts(&store, "a", "counted", &columns, &rows, true);
        let scanned = publish_with_counts(&store, "b", "scanned", &columns, &rows, false);
        let queries = [
            vec![Filter::new("district", Op::Eq, ["Sha Tin"])],
            vec![Filter::new("district", Op::In, ["Sha Tin", "Islands", "Sha Tin"])],
            vec![Filter::new("district", Op::Eq, ["Nowhere"])],
            vec![Filter::new("n", Op::Eq, ["3"])],
            vec![Filter::new("n", Op::In, ["1", "2.0"])],
            vec![Filter::new("x", Op::Eq, ["0"])],
            vec![Filter::new("code", Op::Eq, ["007"])],
            vec![Filter::new("code", Op::Eq, ["7"])],
            vec![],
        ];
        for filters in queries {
            let q = RowQuery {
                filters: filters.clone(),
                total: Some(u64::MAX),
                facets: vec!["district".into(), "n".into(), "x".into(), "code".into()],
                facet_limit: 3,
                limit: 0,
                ..RowQuery::default()
            };
            let a = run(&store, &counted, &q).unwrap().0;
            let b = run(&store, &scanned, &q).unwrap().0;
            assert_eq!(a.total, b.total, "{filters:?}");
            assert_eq!(a.facets, b.facets, "{filters:?}");
        }
        assert_eq!(
            run(
                &store,
                &counted,
                &RowQuery { filters: vec![Filter::new("n", Op::Eq, ["x"])], ..RowQuery::default() }
            )
            .unwrap_err()
            .to_string(),
            "filter on \"n\": \"x\" is not a number"
        );
    }
}
