//! Typed row queries and user SQL: what a caller asks for and what comes back, the same for every
//! backend.
//!
//! A [`RowQuery`] names columns by their names in the published file; the store checks every name
//! against the table and converts every filter value to the column's type before any SQL exists.
//! Results stream into a [`RowSink`]: first one [`Head`] (columns, total, facets), then the rows, so
//! no page is ever collected whole by the store.
//!
//! # Semantics the backends share
//! - **Order.** Rows sort by the [`SortKey`]s, then by `_id` (ascending unless `_id` itself is a key),
//!   so every order is total. A NULL sorts before every value: first when ascending, last when
//!   descending.
//! - **Filters** are ANDed. Comparisons use the column's type: `population >= 100000` compares numbers,
//!   dates compare as `YYYY-MM-DD`, datetimes as their ISO 8601 text (exact between values written
//!   with the same zone). [`Op::Eq`]/[`Op::In`] with several values match any of them;
//!   [`Op::Ne`] with several values matches none of them, and a NULL counts as not equal. Ordering
//!   comparisons never match NULL. [`Op::Contains`] and [`Op::StartsWith`] work on text columns
//!   (strings, dates, times, geometries) and ignore the case of ASCII letters.
//! - **`cond`** is a boolean condition tree ([`Cond`]: what CQL2 filters become), ANDed with the
//!   filters and `q`, with SQL's three-valued logic, typed literals and spatial and temporal
//!   relations; see [`Cond`] for its semantics.
//! - **`q`** is split on white space; every word must appear, ignoring ASCII case, as a substring of at
//!   least one text column of the row (string, date, datetime and time columns; not geometries).
//! - **Paging.** `offset` skips rows (CKAN style, cost grows with the offset); `after` takes the
//!   `next` token of the previous page and continues after its last row with no scan of what came
//!   before (keyset paging). A token is only valid for the resource and sort order that made it.
//! - **Totals** are exact up to the caller's cap; past it the count is an estimate marked inexact.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use citydata_model::{FieldType, Value};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// A query over the rows of one resource's current table.
#[derive(Debug, Clone, PartialEq)]
pub struct RowQuery {
    /// Conditions that every row must meet (ANDed).
    pub filters: Vec<Filter>,
    /// Words that must each appear in some text column of the row (see the module notes).
    pub q: Option<String>,
    /// The order; `_id` is always the last tie-breaker.
    pub sort: Vec<SortKey>,
    /// The columns to return, in this order; `None` for all of them, `_id` first.
    pub fields: Option<Vec<String>>,
    /// The most rows to return (the caller caps it); 0 returns the head only.
    pub limit: u32,
    /// Rows to skip (CKAN style paging).
    pub offset: u64,
    /// The `next` token of the previous page (keyset paging).
    pub after: Option<String>,
    /// `Some(cap)`: count the matching rows exactly up to `cap`, estimate beyond it.
    pub total: Option<u64>,
    /// Columns whose most frequent values to count among the matching rows.
    pub facets: Vec<String>,
    /// How many values each facet lists.
    pub facet_limit: usize,
    /// Only distinct combinations of the chosen fields (CKAN's `distinct`); pages by `offset` only.
    pub distinct: bool,
    /// A boolean condition (a CQL2 filter, say) that every row must meet, ANDed with `filters` and
    /// `q`; see [`Cond`].
    pub cond: Option<Cond>,
}

impl Default for RowQuery {
    fn default() -> Self {
        Self {
            filters: Vec::new(),
            q: None,
            sort: Vec::new(),
            fields: None,
            limit: 100,
            offset: 0,
            after: None,
            total: None,
            facets: Vec::new(),
            facet_limit: 10,
            distinct: false,
            cond: None,
        }
    }
}

/// One condition on a column; its values are text, converted by the store to the column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column name as in the file.
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// The operands: one for most operators, one or more for `Eq`, `Ne` and `In`, none for
    /// `IsNull` and `NotNull`.
    pub values: Vec<String>,
}

impl Filter {
    /// A filter on `column`.
    pub fn new<S: Into<String>>(
        column: impl Into<String>,
        op: Op,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        Self { column: column.into(), op, values: values.into_iter().map(Into::into).collect() }
    }
}

/// A comparison in a [`Filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Equal to (any of) the values.
    Eq,
    /// Equal to none of the values (NULL included).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Equal to one of the values.
    In,
    /// Holds the text (ASCII case ignored).
    Contains,
    /// Starts with the text (ASCII case ignored).
    StartsWith,
    /// Has no value.
    IsNull,
    /// Has a value.
    NotNull,
}

impl Op {
    /// Every operator, for callers that list them.
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::In,
        Op::Contains,
        Op::StartsWith,
        Op::IsNull,
        Op::NotNull,
    ];

    /// The operator's short name (`eq`, `ne`, `lt`, ..., `startswith`, `isnull`, `notnull`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "startswith",
            Op::IsNull => "isnull",
            Op::NotNull => "notnull",
        }
    }

    /// The operator named `name` (as [`Op::name`] gives it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The column name.
    pub column: String,
    /// Descending instead of ascending.
    pub desc: bool,
}

impl SortKey {
    /// Ascending on `column`.
    pub fn asc(column: impl Into<String>) -> Self {
        Self { column: column.into(), desc: false }
    }

    /// Descending on `column`.
    pub fn desc(column: impl Into<String>) -> Self {
        Self { column: column.into(), desc: true }
    }
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type (what its [`Value`]s mean: booleans are 0/1, dates ISO 8601 text, ...).
    pub field_type: FieldType,
}

/// What comes before the rows of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// The columns of every row, in order.
    pub columns: Vec<Column>,
    /// The number of matching rows, when asked for.
    pub total: Option<Total>,
    /// The facets asked for, in the order asked.
    pub facets: Vec<Facet>,
}

/// A count of matching rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// The count, or its estimate when not `exact` (then more rows than the cap match).
    pub count: u64,
    /// Whether `count` is exact.
    pub exact: bool,
}

/// The most frequent values of one column among the matching rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Facet {
    /// The column.
    pub column: String,
    /// Its values, most frequent first (ties by value); NULL is a value here.
    pub values: Vec<FacetValue>,
}

/// One value of a [`Facet`] and how many matching rows hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetValue {
    /// The value.
    pub value: Value<'static>,
    /// The number of rows.
    pub count: u64,
}

/// Receives a result: [`RowSink::head`] once, then [`RowSink::row`] for each row.
pub trait RowSink {
    /// The columns, total and facets, before any row.
    ///
    /// # Errors
    /// Whatever stops the sink (a closed connection, say); the query ends with it.
    fn head(&mut self, head: &Head) -> Result<()>;

    /// One row, its values in the order of the head's columns.
    ///
    /// # Errors
    /// As for [`RowSink::head`].
    fn row(&mut self, values: &[Value<'_>]) -> Result<()>;
}

/// A [`RowSink`] that keeps everything: for small results and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBuffer {
    /// The head, once received.
    pub head: Option<Head>,
    /// The rows.
    pub rows: Vec<Vec<Value<'static>>>,
}

impl RowSink for RowBuffer {
    fn head(&mut self, head: &Head) -> Result<()> {
        self.head = Some(head.clone());
        Ok(())
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<()> {
        self.rows.push(values.iter().cloned().map(Value::into_owned).collect());
        Ok(())
    }
}

/// The bounds of one user SQL query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlLimits {
    /// The most time the database may spend on the query (time spent in the sink not counted).
    pub time: Duration,
    /// The most rows to return; more end the result as truncated.
    pub max_rows: u64,
    /// How long to wait for a free sandbox connection before answering "busy".
    pub wait: Duration,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self { time: Duration::from_secs(1), max_rows: 1000, wait: Duration::from_secs(2) }
    }
}

/// How a user SQL query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlOutcome {
    /// Rows given to the sink.
    pub rows: u64,
    /// Whether more rows followed than [`SqlLimits::max_rows`].
    pub truncated: bool,
}

/// How a column's values are stored: what a value in a filter or a token must become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Int,
    Real,
    Text,
}

impl Storage {
    pub(crate) fn of(t: FieldType) -> Self {
        match t {
            FieldType::Integer | FieldType::Boolean => Storage::Int,
            FieldType::Number => Storage::Real,
            _ => Storage::Text,
        }
    }
}

/// Converts a filter operand to a value of type `t`, in the form the tables store (dates as
/// `YYYY-MM-DD`, datetimes as `YYYY-MM-DDTHH:MM:SS` with the zone if given, times as `HH:MM:SS`,
/// booleans as 0/1). Values are read as published files are (`citydata_model::text`): `1,234`,
/// `31/12/2023` and `9:30` are understood. An integer column also takes a decimal number, so that
/// `n < 2.5` works.
pub(crate) fn parse_value(t: FieldType, text: &str) -> Result<Value<'static>, String> {
    use citydata_model::text;
    let v = text.trim();
    let bad = |what: &str| format!("{text:?} is not {what}");
    let number = |v: &str| -> Option<f64> {
        let plain =
            if text::parse_number(v).is_some_and(|n| n.grouped) { v.replace(',', "") } else { v.to_owned() };
        plain.parse::<f64>().ok().filter(|n| n.is_finite())
    };
    let date = |v: &str| text::parse_date(v).map(|((y, m, d), _)| format!("{y:04}-{m:02}-{d:02}"));
    Ok(match t {
        FieldType::String | FieldType::Geometry => Value::Text(Cow::Owned(text.to_owned())),
        FieldType::Integer => match text::parse_int(v) {
            Some(i) => Value::Int(i),
            None => Value::Real(number(v).ok_or_else(|| bad("a number"))?),
        },
        FieldType::Number => Value::Real(number(v).ok_or_else(|| bad("a number"))?),
        FieldType::Boolean => Value::Int(match v.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => 1,
            "false" | "f" | "no" | "n" | "0" => 0,
            _ => return Err(bad("a boolean (true or false)")),
        }),
        FieldType::Date => {
            Value::Text(Cow::Owned(date(v).ok_or_else(|| bad("a date (YYYY-MM-DD or DD/MM/YYYY)"))?))
        }
        FieldType::Datetime => Value::Text(Cow::Owned(
            text::parse_datetime(v)
                .map(|dt| dt.canonical())
                .or_else(|| date(v).map(|d| format!("{d}T00:00:00")))
                .ok_or_else(|| bad("a date and time (YYYY-MM-DDTHH:MM:SS)"))?,
        )),
        FieldType::Time => Value::Text(Cow::Owned(
            text::parse_time(v).map(|t| t.canonical()).ok_or_else(|| bad("a time (HH:MM:SS)"))?,
        )),
    })
}

/// A LIKE pattern (with `\` as the escape character) matching text that contains `text`, or that
/// starts with it when `prefix`.
pub(crate) fn like_pattern(text: &str, prefix: bool) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    if !prefix {
        p.push('%');
    }
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The fingerprint of an order on a resource, kept in a token so that it is not used with another.
pub(crate) fn sort_fingerprint(resource_id: &str, order: &[(&str, bool)]) -> String {
    let mut h = Sha256::new();
    h.update(resource_id.as_bytes());
    for (column, desc) in order {
        h.update([0]);
        h.update(column.as_bytes());
        h.update([0, u8::from(*desc)]);
    }
    hex::encode(&h.finalize()[..8])
}

/// A `next` token: URL-safe base64 (no padding) of `{"s": fingerprint, "k": [sort values], "i": _id}`,
/// where a number column's value is written as text so that it reads back exactly.
pub(crate) fn encode_token(fingerprint: &str, keys: &[Value<'_>], id: i64) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|v| match v {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            // As text in Rust's shortest exact form: JSON numbers may come back a unit off.
            Value::Real(r) => format!("{r:e}").into(),
            Value::Text(t) => t.as_ref().into(),
        })
        .collect();
    let json = serde_json::json!({ "s": fingerprint, "k": keys, "i": id });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Reads a `next` token made by [`encode_token`] for the order with `fingerprint`, whose keys are
/// stored as `storage`: the sort values of the last row and its `_id`.
pub(crate) fn decode_token(
    token: &str,
    fingerprint: &str,
    storage: &[Storage],
) -> Result<(Vec<Value<'static>>, i64)> {
    let bad = |why: &str| StoreError::Invalid(format!("bad next token: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| bad("it is not a token this API gave out"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("it is not a token this API gave out"))?;
    let (Some(s), Some(keys), Some(id)) = (json["s"].as_str(), json["k"].as_array(), json["i"].as_i64())
    else {
        return Err(bad("it is not a token this API gave out"));
    };
    if s != fingerprint || keys.len() != storage.len() {
        return Err(bad("it was made for another resource or sort order; start again without it"));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (k, st) in keys.iter().zip(storage) {
        out.push(match (k, st) {
            (serde_json::Value::Null, _) => Value::Null,
            (k, Storage::Int) if k.is_i64() => Value::Int(k.as_i64().unwrap_or_default()),
            (serde_json::Value::Number(n), Storage::Real) => Value::Real(n.as_f64().unwrap_or_default()),
            (serde_json::Value::String(t), Storage::Real) => {
                Value::Real(t.parse().map_err(|_| bad("a sort value does not fit its column"))?)
            }
            (serde_json::Value::String(t), Storage::Text) => Value::Text(Cow::Owned(t.clone())),
            _ => return Err(bad("a sort value does not fit its column")),
        });
    }
    Ok((out, id))
}

/// The name by which a [`Cond::Spatial`] may always name the resource's geometry, whatever its
/// column is called.
pub const GEOMETRY_PROPERTY: &str = "geometry";

/// A boolean condition on the rows of one resource: what a CQL2 filter (or any other filter
/// language) becomes before the store turns it into SQL. Backend-neutral; the store checks every
/// property name against the table and every literal against the type of what it is compared with.
///
/// # Semantics
/// - **Three-valued logic**, as in SQL: a comparison with a NULL operand is *unknown*; `And` is
///   false when any part is false, `Or` true when any part is true, `Not` of unknown is unknown, and
///   a row matches only when the whole condition is true. So `NOT (x = 1)` does not match a row whose
///   `x` is NULL; `IsNull` is the way to ask for those.
/// - **Typed comparisons.** A property compares with a literal of its column's [`FieldType`]:
///   numbers with integer and number columns, booleans with boolean columns, strings with string
///   columns; dates with date columns (`YYYY-MM-DD` text), timestamps with datetime columns (ISO 8601
///   text, compared by wall clock: a zone written in the literal is ignored, so
///   `TIMESTAMP('2024-01-01T08:00:00Z')` equals a stored `2024-01-01T08:00:00`), and a string literal
///   that reads as a date, a datetime or a time with such columns. A date column compared with a
///   timestamp is the midnight starting that day. Anything else (a string with an integer column,
///   say) is an error that names the property and both types. Geometry columns take part only in
///   [`Cond::Spatial`], [`Cond::DWithin`] and [`Cond::IsNull`].
/// - **`Like`** patterns use `%` (any run of characters), `_` (one character) and `\` (the next
///   character literally); matching is case-sensitive unless both sides are wrapped in
///   [`Operand::CaseI`], which folds ASCII letters only.
/// - **Spatial** conditions apply to the resource's geometry (WGS 84 longitude/latitude); a row
///   without a geometry matches none of them.
/// - **Temporal** conditions take instants (dates, timestamps, date and datetime properties) and
///   intervals ([`Operand::Interval`], either end open) and follow the CQL2 definitions (Allen's
///   interval relations); an instant is an interval whose ends are equal.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Always true or always false.
    Bool(bool),
    /// True when every part is (true when empty).
    And(Vec<Cond>),
    /// True when some part is (false when empty).
    Or(Vec<Cond>),
    /// True when the part is false.
    Not(Box<Cond>),
    /// `left op right`.
    Compare {
        /// The left operand.
        left: Operand,
        /// The comparison.
        op: CmpOp,
        /// The right operand.
        right: Operand,
    },
    /// `value LIKE pattern`; the pattern is a string literal, perhaps in [`Operand::CaseI`].
    Like {
        /// What is matched: a string property, perhaps in [`Operand::CaseI`].
        value: Operand,
        /// The pattern.
        pattern: Operand,
    },
    /// `low <= value AND value <= high`.
    Between {
        /// The value tested.
        value: Operand,
        /// The lower bound (included).
        low: Operand,
        /// The upper bound (included).
        high: Operand,
    },
    /// `value` equals one of `list` (at most 1000 items).
    In {
        /// The value tested.
        value: Operand,
        /// The candidates.
        list: Vec<Operand>,
    },
    /// The operand has no value.
    IsNull(Operand),
    /// The resource's geometry stands in the relation `op` to `geometry`.
    Spatial {
        /// The relation: `geometry_of_row op geometry`.
        op: SpatialOp,
        /// The property named in the filter; it must be the resource's geometry property.
        property: String,
        /// The other geometry: GeoJSON geometry text in WGS 84 longitude/latitude.
        geometry: String,
        /// Its bounding box `[min lon, min lat, max lon, max lat]`.
        bbox: [f64; 4],
    },
    /// The resource's geometry comes within `metres` of the point (`lon`, `lat`) in WGS 84.
    DWithin {
        /// Longitude in degrees.
        lon: f64,
        /// Latitude in degrees.
        lat: f64,
        /// The distance in metres.
        metres: f64,
    },
    /// `left op right` between instants or intervals.
    Temporal {
        /// The relation.
        op: TemporalOp,
        /// The left operand: an instant (date or datetime property or literal) or an interval.
        left: Operand,
        /// The right operand.
        right: Operand,
    },
}

impl Cond {
    /// `parts` ANDed, without nesting a single part.
    #[must_use]
    pub fn all(mut parts: Vec<Cond>) -> Cond {
        if parts.len() == 1 {
            parts.pop().unwrap_or(Cond::Bool(true))
        } else {
            Cond::And(parts)
        }
    }
}

/// An operand of a [`Cond`].
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A property: a column name as in the published file (or `_id`).
    Property(String),
    /// A literal value.
    Literal(Literal),
    /// The operand with ASCII letters folded to lower case (CQL2 `CASEI`).
    CaseI(Box<Operand>),
    /// The operand with accents removed (CQL2 `ACCENTI`); the SQLite store rejects it.
    AccentI(Box<Operand>),
    /// Arithmetic on numbers.
    Arith {
        /// The left operand.
        left: Box<Operand>,
        /// The operator.
        op: ArithOp,
        /// The right operand.
        right: Box<Operand>,
    },
    /// A time interval for [`Cond::Temporal`]; `None` for an open end (`..`).
    Interval {
        /// The start (an instant literal or a date/datetime property).
        start: Option<Box<Operand>>,
        /// The end.
        end: Option<Box<Operand>>,
    },
}

impl Operand {
    /// The property `name`.
    pub fn property(name: impl Into<String>) -> Self {
        Operand::Property(name.into())
    }

    /// A string literal.
    pub fn text(s: impl Into<String>) -> Self {
        Operand::Literal(Literal::Text(s.into()))
    }
}

/// A literal in a [`Cond`].
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent (finite).
    Real(f64),
    /// A boolean.
    Bool(bool),
    /// A date, `YYYY-MM-DD`.
    Date(String),
    /// A timestamp, ISO 8601 (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`).
    Timestamp(String),
}

/// A comparison in [`Cond::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as SQL and CQL2 write it.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// An arithmetic operator in [`Operand::Arith`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (a division by zero gives NULL)
    Div,
    /// `%`: the remainder of the division of the operands truncated to integers (by zero: NULL)
    Mod,
    /// `div`: the quotient truncated toward zero (by zero: NULL)
    IntDiv,
    /// `^`: the power (the SQLite store takes whole exponents from 0 to 16)
    Pow,
}

/// A spatial relation in [`Cond::Spatial`]: the DE-9IM predicates of Simple Features, as the
/// geometry crate defines and tests them.
pub use citydata_geo::SpatialOp;

/// A temporal relation in [`Cond::Temporal`], as CQL2 defines them on intervals `a` and `b`
/// (an instant is an interval whose ends are equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporalOp {
    /// `a.start > b.end`
    After,
    /// `a.end < b.start`
    Before,
    /// `a.start < b.start AND a.end > b.end`
    Contains,
    /// `a.end < b.start OR a.start > b.end`
    Disjoint,
    /// `a.start > b.start AND a.end < b.end`
    During,
    /// `a.start = b.start AND a.end = b.end`
    Equals,
    /// `a.start < b.start AND a.end = b.end`
    FinishedBy,
    /// `a.start > b.start AND a.end = b.end`
    Finishes,
    /// `a.start <= b.end AND a.end >= b.start`
    Intersects,
    /// `a.end = b.start`
    Meets,
    /// `a.start = b.end`
    MetBy,
    /// `a.start > b.start AND a.start < b.end AND a.end > b.end`
    OverlappedBy,
    /// `a.start < b.start AND a.end > b.start AND a.end < b.end`
    Overlaps,
    /// `a.start = b.start AND a.end > b.end`
    StartedBy,
    /// `a.start = b.start AND a.end < b.end`
    Starts,
}

impl TemporalOp {
    /// Every relation.
    pub const ALL: [TemporalOp; 15] = [
        TemporalOp::After,
        TemporalOp::Before,
        TemporalOp::Contains,
        TemporalOp::Disjoint,
        TemporalOp::During,
        TemporalOp::Equals,
        TemporalOp::FinishedBy,
        TemporalOp::Finishes,
        TemporalOp::Intersects,
        TemporalOp::Meets,
        TemporalOp::MetBy,
        TemporalOp::OverlappedBy,
        TemporalOp::Overlaps,
        TemporalOp::StartedBy,
        TemporalOp::Starts,
    ];

    /// The relation's name in lower case, as after `T_` in CQL2 (`after`, `before`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TemporalOp::After => "after",
            TemporalOp::Before => "before",
            TemporalOp::Contains => "contains",
            TemporalOp::Disjoint => "disjoint",
            TemporalOp::During => "during",
            TemporalOp::Equals => "equals",
            TemporalOp::FinishedBy => "finishedby",
            TemporalOp::Finishes => "finishes",
            TemporalOp::Intersects => "intersects",
            TemporalOp::Meets => "meets",
            TemporalOp::MetBy => "metby",
            TemporalOp::OverlappedBy => "overlappedby",
            TemporalOp::Overlaps => "overlaps",
            TemporalOp::StartedBy => "startedby",
            TemporalOp::Starts => "starts",
        }
    }

    /// The relation named `name` (as [`TemporalOp::name`] gives it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<TemporalOp> {
        TemporalOp::ALL.into_iter().find(|op| op.name() == name)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Publishing small tables for the tests of the query code.

    use std::io::Cursor;

    use citydata_model::{Field, FieldType, Schema, Slug, Value};
    use sha2::{Digest, Sha256};

    use crate::{NewVersion, Store};

    /// A store in a fresh temporary directory (kept alive by the returned guard).
    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    /// Publishes `rows` under `columns` as resource `name` of dataset `dataset`, with the value
    /// counts of every column as the publish pipeline makes them; returns its id.
    pub(crate) fn publish(
        store: &Store,
        dataset: &str,
        name: &str,
        columns: &[(&str, FieldType)],
        rows: &[Vec<Value<'static>>],
    ) -> String {
        publish_with_counts(store, dataset, name, columns, rows, true)
    }

    /// The same, with or without value counts.
    pub(crate) fn publish_with_counts(
        store: &Store,
        dataset: &str,
        name: &str,
        columns: &[(&str, FieldType)],
        rows: &[Vec<Value<'static>>],
        counted: bool,
    ) -> String {
        let schema = Schema::new(columns.iter().map(|(n, t)| Field::new(*n, *t)).collect());
        let bytes = format!("{name} {columns:?} {rows:?}").into_bytes();
        let sha = hex::encode(Sha256::digest(&bytes));
        let slug = Slug::parse(dataset).unwrap();
        let mut tx = store.begin_publish(&slug, None, "test").unwrap();
        let geometry = columns.iter().position(|(_, t)| *t == FieldType::Geometry);
        let nv = NewVersion {
            resource: name,
            title: citydata_model::LangText::en(name),
            description: citydata_model::LangText::default(),
            sha256: &sha,
            filename: "data.csv",
            format: "csv",
            media_type: "text/csv",
            encoding: "utf-8",
            schema: &schema,
            skipped: Vec::new(),
            // A geometry column (WGS 84 GeoJSON text) makes the table spatial.
            spatial: geometry
                .map(|g| crate::NewSpatial { column: columns[g].0.to_owned(), source: "test".into() }),
        };
        let mut loader = tx.add_version(&nv, &mut Cursor::new(bytes.clone())).unwrap();
        if let Some(g) = geometry {
            let boxes: Vec<Option<[f64; 4]>> = rows
                .iter()
                .map(|r| match &r[g] {
                    Value::Text(t) => serde_json::from_str(t)
                        .ok()
                        .and_then(|j| citydata_geo::parse_geojson(&j).ok())
                        .and_then(|g| citydata_geo::bbox(&g)),
                    _ => None,
                })
                .collect();
            let flat: Vec<Value<'static>> = rows.iter().flatten().cloned().collect();
            loader.insert_located(&flat, &boxes).unwrap();
        } else {
            // The bulk path (many rows per statement, then the rest one by one), then single rows.
            let half = rows.len() / 2;
            let flat: Vec<Value<'static>> = rows[..half].iter().flatten().cloned().collect();
            loader.insert_many(&flat).unwrap();
            for r in &rows[half..] {
                loader.insert(r).unwrap();
            }
        }
        if counted {
            let counts = columns
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let mut values: Vec<(Value<'static>, u64)> = Vec::new();
                    for r in rows {
                        match values.iter_mut().find(|(v, _)| *v == r[i]) {
                            Some((_, n)) => *n += 1,
                            None => values.push((r[i].clone(), 1)),
                        }
                    }
                    crate::ValueCounts { column: (*name).to_owned(), values }
                })
                .collect();
            loader.set_value_counts(counts);
        }
        loader.finish().unwrap();
        tx.commit().unwrap();
        let ds = store.dataset(dataset).unwrap().unwrap();
        let res = ds.resources.iter().find(|r| r.name == name).unwrap();
        assert_eq!(res.current().unwrap().row_count, i64::try_from(rows.len()).unwrap());
        res.id.clone()
    }

    /// A text value.
    pub(crate) fn t(s: &str) -> Value<'static> {
        Value::Text(s.to_owned().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_to_the_column_type() {
        use FieldType as F;
        let t = |s: &str| Ok(Value::Text(Cow::Owned(s.to_owned())));
        for (ty, input, want) in [
            (F::Integer, " 42 ", Ok(Value::Int(42))),
            (F::Integer, "-7", Ok(Value::Int(-7))),
            (F::Integer, "2.5", Ok(Value::Real(2.5))),
            (F::Integer, "abc", Err("\"abc\" is not a number".to_owned())),
            (F::Number, "1e3", Ok(Value::Real(1000.0))),
            (F::Number, "inf", Err("\"inf\" is not a number".to_owned())),
            (F::Boolean, "Yes", Ok(Value::Int(1))),
            (F::Boolean, "false", Ok(Value::Int(0))),
            (F::Boolean, "maybe", Err("\"maybe\" is not a boolean (true or false)".to_owned())),
            (F::Date, "2024-3-5", t("2024-03-05")),
            (
                F::Date,
                "2024-02-30",
                Err("\"2024-02-30\" is not a date (YYYY-MM-DD or DD/MM/YYYY)".to_owned()),
            ),
            (F::Date, "05/03/2024", t("2024-03-05")),
            (
                F::Date,
                "32/03/2024",
                Err("\"32/03/2024\" is not a date (YYYY-MM-DD or DD/MM/YYYY)".to_owned()),
            ),
            (F::Integer, "1,234", Ok(Value::Int(1234))),
            (F::Number, "1,234.5", Ok(Value::Real(1234.5))),
            (F::Datetime, "2024-03-05", t("2024-03-05T00:00:00")),
            (F::Datetime, "2024-03-05 9:30", t("2024-03-05T09:30:00")),
            (F::Datetime, "2024-03-05T09:30:00+08:00", t("2024-03-05T09:30:00+08:00")),
            (
                F::Datetime,
                "2024-03-05T25:00",
                Err("\"2024-03-05T25:00\" is not a date and time (YYYY-MM-DDTHH:MM:SS)".to_owned()),
            ),
            (F::Time, "9:05", t("09:05:00")),
            (F::Time, "09:05:07.25", t("09:05:07.25")),
            (F::Time, "9h", Err("\"9h\" is not a time (HH:MM:SS)".to_owned())),
            (F::String, " as is ", t(" as is ")),
        ] {
            assert_eq!(parse_value(ty, input), want, "{ty:?} {input:?}");
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_a\\b", false), "%50\\%\\_a\\\\b%");
        assert_eq!(like_pattern("Kow", true), "Kow%");
    }

    #[test]
    fn tokens_round_trip_and_reject_others() {
        let fp = sort_fingerprint("r", &[("a", false), ("_id", false)]);
        let keys = [
            Value::Int(3),
            Value::Null,
            Value::Real(0.1 + 0.2),
            Value::Real(1.0 / 3.0),
            Value::Real(-1e-300),
            Value::Real(f64::MAX),
            Value::Text("地區 \"x\"".into()),
        ];
        let st = [
            Storage::Int,
            Storage::Text,
            Storage::Real,
            Storage::Real,
            Storage::Real,
            Storage::Real,
            Storage::Text,
        ];
        let token = encode_token(&fp, &keys, 77);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        let (back, id) = decode_token(&token, &fp, &st).unwrap();
        assert_eq!((back.as_slice(), id), (&keys[..], 77));

        let other = sort_fingerprint("r", &[("a", true), ("_id", false)]);
        assert_ne!(fp, other);
        let err = |r: Result<(Vec<Value<'static>>, i64)>| r.unwrap_err().to_string();
        assert_eq!(
            err(decode_token(&token, &other, &st)),
            "bad next token: it was made for another resource or sort order; start again without it"
        );
        assert_eq!(err(decode_token("!!", &fp, &st)), "bad next token: it is not a token this API gave out");
        assert_eq!(
            err(decode_token(&token[..token.len() - 3], &fp, &st)),
            "bad next token: it is not a token this API gave out"
        );
        let swapped = [
            Storage::Text,
            Storage::Text,
            Storage::Real,
            Storage::Real,
            Storage::Real,
            Storage::Real,
            Storage::Text,
        ];
        assert_eq!(
            err(decode_token(&token, &fp, &swapped)),
            "bad next token: a sort value does not fit its column"
        );
    }

    #[test]
    fn ops_have_names() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Op::from_name("like"), None);
    }
}
