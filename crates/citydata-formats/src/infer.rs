//! Type inference over every value of a column, and conversion of cells to the inferred types.
//!
//! A column starts with every type possible; each value rules out the types it cannot be. The column
//! gets the narrowest type left, in this order: integer, number, boolean, date, datetime, time,
//! geometry, else string. Inference never loses a value: a text whose typed form would not give the
//! same value back (leading zeros as in `007`, integers beyond 64 bits, numbers beyond 15 significant
//! digits) keeps its column a string.

use std::borrow::Cow;

use citydata_model::text::{
    parse_bool, parse_date, parse_datetime, parse_f64, parse_int, parse_number, parse_time, push_date,
};
use citydata_model::{Field, FieldType, Value, NULL_MARKERS};

use crate::{Cell, RowBatch, Slot};

const INT: u8 = 1;
const NUM: u8 = 2;
const BOOL: u8 = 4;
const DATE: u8 = 8;
const DATETIME: u8 = 16;
const TIME: u8 = 32;
const GEOM: u8 = 64;
const TEXT_TYPES: u8 = INT | NUM | BOOL | DATE | DATETIME | TIME;

/// What the values of one column allow so far.
#[derive(Debug, Clone)]
pub struct Inference {
    possible: u8,
    seen_value: bool,
    grouped: bool,
    day_first: bool,
    /// Values seen (nulls not counted).
    values: u64,
    /// The first value that turned a typed column into text: the type it had until then, the
    /// value's ordinal among the column's values, and the value (shortened).
    fallback: Option<(FieldType, u64, String)>,
    /// The smallest and largest of the first [`RANGE_SAMPLE`] numbers (for finding coordinate columns).
    range: Option<(f64, f64)>,
    /// How many numbers `range` has seen.
    ranged: u32,
}

/// How many numbers of a column its [`Inference::range`] looks at: enough to tell longitudes from
/// grid eastings, cheap on a column of millions.
const RANGE_SAMPLE: u32 = 10_000;

impl Default for Inference {
    fn default() -> Self {
        Self {
            possible: TEXT_TYPES | GEOM,
            seen_value: false,
            grouped: false,
            day_first: false,
            values: 0,
            fallback: None,
            range: None,
            ranged: 0,
        }
    }
}

impl Inference {
    /// Narrows the column's possible types by one cell.
    pub fn add(&mut self, cell: &Cell<'_>) {
        match cell {
            Cell::Null => {}
            Cell::Text(s) => {
                if is_null_marker(s) {
                    return;
                }
                self.seen_value = true;
                self.values += 1;
                if self.possible & TEXT_TYPES != 0 {
                    let (types, grouped, day_first) = text_types(trim(s), self.possible);
                    if self.fallback.is_none() && self.values > 1 && self.possible & types & TEXT_TYPES == 0 {
                        let before = self.field_type();
                        if before != FieldType::String {
                            let shown: String = s.chars().take(40).collect();
                            self.fallback = Some((before, self.values, shown));
                        }
                    }
                    self.possible &= types;
                    self.grouped |= grouped && self.possible & (INT | NUM) != 0;
                    if types & NUM != 0 && !grouped && self.ranged < RANGE_SAMPLE {
                        if let Ok(x) = trim(s).parse::<f64>() {
                            self.widen(x);
                        }
                    }
                    self.day_first |= day_first;
                } else {
                    self.possible = 0;
                }
            }
            Cell::Int(i) => {
                self.typed(INT | NUM);
                #[allow(clippy::cast_precision_loss)]
                self.widen(*i as f64);
            }
            Cell::Num(x) => {
                self.typed(NUM);
                self.widen(*x);
            }
            Cell::Bool(_) => self.typed(BOOL),
            Cell::Geometry(_) => self.typed(GEOM),
        }
    }

    /// What decides the column's type so far: two states alike give the same [`Inference::field_type`].
    pub(crate) fn state(&self) -> (u8, bool) {
        (self.possible, self.seen_value)
    }

    fn widen(&mut self, x: f64) {
        if self.ranged < RANGE_SAMPLE && x.is_finite() {
            self.ranged += 1;
            self.range = Some(self.range.map_or((x, x), |(a, b)| (a.min(x), b.max(x))));
        }
    }

    /// The smallest and largest of the column's first numbers (a sample: the first ten thousand),
    /// when it is a number column.
    #[must_use]
    pub fn range(&self) -> Option<(f64, f64)> {
        if self.possible & NUM == 0 {
            return None;
        }
        self.range
    }

    fn typed(&mut self, allowed: u8) {
        self.seen_value = true;
        self.possible &= allowed;
    }

    /// The type the column gets.
    #[must_use]
    pub fn field_type(&self) -> FieldType {
        let p = self.possible;
        if !self.seen_value {
            FieldType::String
        } else if p & INT != 0 {
            FieldType::Integer
        } else if p & NUM != 0 {
            FieldType::Number
        } else if p & BOOL != 0 {
            FieldType::Boolean
        } else if p & DATE != 0 {
            FieldType::Date
        } else if p & DATETIME != 0 {
            FieldType::Datetime
        } else if p & TIME != 0 {
            FieldType::Time
        } else if p & GEOM != 0 {
            FieldType::Geometry
        } else {
            FieldType::String
        }
    }

    /// Why a column that looked typed is text: the first value that was not of its type, said so
    /// that the publisher can find and fix it. `None` when the column was never anything but text.
    #[must_use]
    pub fn fallback_note(&self) -> Option<String> {
        let (before, n, value) = self.fallback.as_ref()?;
        (self.field_type() == FieldType::String).then(|| {
            format!(
                "kept as text: value {n} of the column, {value:?}, is not {} like the {} before it",
                article(*before),
                n - 1
            )
        })
    }

    /// The field for a column named `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Field {
        let t = self.field_type();
        let mut f = Field::new(name, t);
        f.description = self.fallback_note();
        if self.grouped && matches!(t, FieldType::Integer | FieldType::Number) {
            f.group_char = Some(",".to_owned());
        }
        if self.day_first && matches!(t, FieldType::Date | FieldType::Datetime) {
            f.format = Some(if t == FieldType::Date { "%d/%m/%Y" } else { "%d/%m/%Y %H:%M:%S" }.to_owned());
        }
        f
    }
}

fn is_null_marker(s: &str) -> bool {
    s.len() <= 4 && NULL_MARKERS.contains(&trim(s))
}

/// The types a text (already trimmed) can be, among `wanted`: a bit set, and whether it used a
/// thousands separator or a day-first date.
fn text_types(s: &str, wanted: u8) -> (u8, bool, bool) {
    let mut out = 0;
    let mut grouped = false;
    let mut day_first = false;
    if wanted & (INT | NUM) != 0 {
        if let Some(n) = parse_number(s) {
            grouped = n.grouped;
            if n.integer {
                out |= INT | NUM;
            } else {
                out |= NUM;
            }
        }
    }
    if wanted & BOOL != 0 && parse_bool(s).is_some() {
        out |= BOOL;
    }
    if wanted & (DATE | DATETIME) != 0 {
        if let Some((_, df)) = parse_date(s) {
            // A plain date is also a datetime at midnight, so a column mixing the two is a
            // datetime column (spreadsheets write midnight values as plain dates).
            out |= DATE | DATETIME;
            day_first |= df;
        }
    }
    if wanted & DATETIME != 0 {
        if let Some(dt) = parse_datetime(s) {
            out |= DATETIME;
            day_first |= dt.day_first;
        }
    }
    if wanted & TIME != 0 && parse_time(s).is_some() {
        out |= TIME;
    }
    (out & wanted, grouped, day_first)
}

/// The set of types a single text could be, by name; for tests and tools.
#[must_use]
pub fn infer_text(s: &str) -> FieldType {
    let mut inf = Inference::default();
    inf.add(&Cell::Text(Cow::Borrowed(s)));
    inf.field_type()
}

/// Converts one cell to a column's type, giving the text of the error when it does not fit. The
/// owned form of [`convert_into`], for tests and tools.
///
/// # Errors
/// A value the field's type cannot hold, such as `abc` in an integer column set by a schema override.
pub fn convert(cell: &Cell<'_>, field: &Field, missing: &[String]) -> Result<Value<'static>, String> {
    let mut batch = RowBatch::default();
    let slot = convert_into(cell, field, missing, &mut batch)?;
    Ok(batch.value(slot).into_owned())
}

/// Converts one cell to a column's type: numbers into the slot, texts (the cell's own, or the
/// canonical form of a date or time) appended to `batch`'s text buffer. Allocates nothing but the
/// buffer's growth.
///
/// # Errors
/// A value the field's type cannot hold, such as `abc` in an integer column set by a schema override.
pub fn convert_into(
    cell: &Cell<'_>,
    field: &Field,
    missing: &[String],
    batch: &mut RowBatch,
) -> Result<Slot, String> {
    let t = field.field_type;
    let mismatch = |found: &dyn std::fmt::Display| format!("expected {}, found {found}", article(t));
    Ok(match cell {
        Cell::Null => Slot::Null,
        Cell::Text(s) => {
            let v = trim(s);
            if is_null_marker(s) || missing.iter().any(|m| m == v) {
                return Ok(Slot::Null);
            }
            let bad = || mismatch(&format_args!("{s:?}"));
            match t {
                FieldType::String | FieldType::Geometry => batch.push_text(s),
                FieldType::Integer => Slot::Int(parse_int(v).ok_or_else(bad)?),
                FieldType::Number => {
                    let n = parse_f64(v).ok_or_else(bad)?;
                    if !n.is_finite() {
                        return Err(bad());
                    }
                    Slot::Real(n)
                }
                FieldType::Boolean => Slot::Int(i64::from(parse_bool(v).ok_or_else(bad)?)),
                FieldType::Date => {
                    let (date, _) = parse_date(v).ok_or_else(bad)?;
                    push_with(batch, |out| push_date(out, date))
                }
                FieldType::Datetime => match parse_datetime(v) {
                    Some(dt) => push_with(batch, |out| dt.push_canonical(out)),
                    // A column of datetimes may hold plain dates (midnight).
                    None => {
                        let (date, _) = parse_date(v).ok_or_else(bad)?;
                        push_with(batch, |out| {
                            push_date(out, date);
                            out.push_str("T00:00:00");
                        })
                    }
                },
                FieldType::Time => {
                    let time = parse_time(v).ok_or_else(bad)?;
                    push_with(batch, |out| time.push_canonical(out))
                }
            }
        }
        Cell::Int(i) => match t {
            FieldType::Integer => Slot::Int(*i),
            #[allow(clippy::cast_precision_loss)]
            FieldType::Number => Slot::Real(*i as f64),
            FieldType::Boolean if *i == 0 || *i == 1 => Slot::Int(*i),
            FieldType::String => batch.push_text(&i.to_string()),
            _ => return Err(mismatch(i)),
        },
        Cell::Num(n) => match t {
            FieldType::Number => Slot::Real(*n),
            #[allow(clippy::cast_possible_truncation)]
            FieldType::Integer if n.fract() == 0.0 && n.abs() < 9.0e15 => Slot::Int(*n as i64),
            FieldType::String => batch.push_text(&n.to_string()),
            _ => return Err(mismatch(n)),
        },
        Cell::Bool(b) => match t {
            FieldType::Boolean | FieldType::Integer => Slot::Int(i64::from(*b)),
            FieldType::String => batch.push_text(if *b { "true" } else { "false" }),
            _ => return Err(mismatch(b)),
        },
        Cell::Geometry(g) => match t {
            FieldType::Geometry | FieldType::String => batch.push_text(g),
            _ => return Err(mismatch(&"a geometry")),
        },
    })
}

/// Appends what `write` writes to `batch`'s buffer, as one text slot.
fn push_with(batch: &mut RowBatch, write: impl FnOnce(&mut String)) -> Slot {
    let start = batch.text.len();
    write(&mut batch.text);
    Slot::Text(start, batch.text.len())
}

/// `s` without surrounding white space, as [`str::trim`]; a value that starts and ends with a
/// visible ASCII character (nearly every value of a file) is returned without a look inside.
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| (b'!'..=b'~').contains(&b));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

fn article(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer => "an integer",
        FieldType::Number => "a number",
        FieldType::Boolean => "a boolean (true/false, yes/no)",
        FieldType::Date => "a date (YYYY-MM-DD or DD/MM/YYYY)",
        FieldType::Datetime => "a date and time (YYYY-MM-DDTHH:MM:SS)",
        FieldType::Time => "a time (HH:MM:SS)",
        FieldType::String => "text",
        FieldType::Geometry => "a GeoJSON geometry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn column(values: &[&str]) -> Field {
        let mut inf = Inference::default();
        for v in values {
            inf.add(&Cell::Text(Cow::Borrowed(v)));
        }
        inf.field("c")
    }

    #[test]
    fn infers_column_types() {
        let cases: &[(&[&str], FieldType)] = &[
            (&["1", "-2", "+3", "1,234", "12,345,678"], FieldType::Integer),
            (&["1", "2.5", "1,234.5", "-1e5", ".5"], FieldType::Number),
            // `-0` would come back from an integer column as `0`.
            (&["1", "-0", "2"], FieldType::Number),
            (&["true", "False", "yes", "NO"], FieldType::Boolean),
            (&["2024-02-29", "31/12/2023", "1/2/2024"], FieldType::Date),
            (
                &["2024-01-01T10:00:00", "2024-01-01 10:00", "31/01/2024 23:59:59", "2024-01-01T00:00Z"],
                FieldType::Datetime,
            ),
            (&["2024-01-01T10:00:00+08:00", "2024-01-01T10:00:00.5-0300"], FieldType::Datetime),
            (&["9:30", "23:59:59", "00:00:00.123"], FieldType::Time),
            (&["1", "N/A", "", "-", "--", "NA", "null"], FieldType::Integer),
            (&["N/A", ""], FieldType::String),
            (&["007", "8"], FieldType::String),
            (&["1,23"], FieldType::String),
            (&["1,2345"], FieldType::String),
            (&["12345678901234567890"], FieldType::String),
            (&["0.1234567890123456"], FieldType::String),
            (&["2023-02-29"], FieldType::String),
            (&["32/01/2024"], FieldType::String),
            (&["24:00"], FieldType::String),
            (&["1", "x"], FieldType::String),
            (&["NaN", "inf"], FieldType::String),
            (&["2024-01-01", "2024-01-01T10:00:00"], FieldType::Datetime),
            (&["31/12/2023", "31/12/2023 10:00"], FieldType::Datetime),
        ];
        for (values, want) in cases {
            assert_eq!(column(values).field_type, *want, "{values:?}");
        }
        assert_eq!(column(&["1,234"]).group_char.as_deref(), Some(","));
        // A stray value far down turns a column into text, and the field says which value did.
        let mut stray: Vec<&str> = vec!["12"; 5000];
        stray.push("12a");
        let f = column(&stray);
        assert_eq!(f.field_type, FieldType::String);
        assert_eq!(
            f.description.as_deref(),
            Some(
                "kept as text: value 5001 of the column, \"12a\", is not an integer like the 5000 before it"
            )
        );
        assert_eq!(column(&["x", "y"]).description, None);
        assert_eq!(column(&["1", "2.5"]).description, None);
        assert_eq!(column(&["31/12/2023"]).format.as_deref(), Some("%d/%m/%Y"));
    }

    #[test]
    fn converts_to_canonical_values() {
        let conv = |v: &str, t: FieldType| {
            convert(&Cell::Text(Cow::Borrowed(v)), &Field::new("c", t), &[]).map(Value::into_owned)
        };
        let text = |s: &str| Value::Text(Cow::Owned(s.to_owned()));
        assert_eq!(conv("1,234", FieldType::Integer), Ok(Value::Int(1234)));
        assert_eq!(conv(" 42 ", FieldType::Integer), Ok(Value::Int(42)));
        assert_eq!(conv("1,234.5", FieldType::Number), Ok(Value::Real(1234.5)));
        assert_eq!(conv("Yes", FieldType::Boolean), Ok(Value::Int(1)));
        assert_eq!(conv("1/2/2024", FieldType::Date), Ok(text("2024-02-01")));
        assert_eq!(conv("31/01/2024 9:05", FieldType::Datetime), Ok(text("2024-01-31T09:05:00")));
        assert_eq!(conv("2024-01-31", FieldType::Datetime), Ok(text("2024-01-31T00:00:00")));
        assert_eq!(conv("9:05", FieldType::Time), Ok(text("09:05:00")));
        assert_eq!(conv("N/A", FieldType::Integer), Ok(Value::Null));
        assert_eq!(conv("abc", FieldType::Integer), Err("expected an integer, found \"abc\"".to_owned()));
        let f = Field::new("c", FieldType::String);
        assert_eq!(convert(&Cell::Int(5), &f, &[]), Ok(Value::Text(Cow::Owned("5".into()))));
    }

    proptest! {
        /// Whatever a column holds, converting each value to the inferred type keeps it: the typed value
        /// reads back as the same number, date or text, and only null markers become null.
        #[test]
        fn inference_never_loses_a_value(values in proptest::collection::vec(
            prop_oneof![
                "-?[0-9]{1,20}",
                "-?[0-9]{1,3}(,[0-9]{3}){0,3}(\\.[0-9]{0,4})?",
                "[0-9]{1,2}/[0-9]{1,2}/20[0-9]{2}",
                "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
                "(true|false|yes|no|N/A|-|)",
                "[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?",
                "\\PC{0,8}",
            ], 1..20)) {
            let field = column(&values.iter().map(String::as_str).collect::<Vec<_>>());
            for v in &values {
                let cell = Cell::Text(Cow::Borrowed(v.as_str()));
                let got = convert(&cell, &field, &[]).map_err(|e| TestCaseError::fail(format!("{v:?}: {e}")))?;
                match got {
                    Value::Null => prop_assert!(is_null_marker(v), "{v:?} became null"),
                    Value::Int(i) => match field.field_type {
                        FieldType::Boolean => prop_assert_eq!(i == 1, parse_bool(v.trim()).unwrap()),
                        _ => prop_assert_eq!(i.to_string(), v.trim().replace(',', "").trim_start_matches('+').to_owned()),
                    },
                    Value::Real(r) => {
                        let orig: f64 = v.trim().replace(',', "").parse().unwrap();
                        prop_assert_eq!(r, orig);
                        // The shortest form of the double reads back as the same decimal.
                        prop_assert_eq!(r.to_string().parse::<f64>().unwrap(), orig);
                    }
                    Value::Text(t) => match field.field_type {
                        FieldType::String => prop_assert_eq!(t.as_ref(), v.as_str()),
                        FieldType::Date => {
                            let ((y, m, d), _) = parse_date(v.trim()).unwrap();
                            prop_assert_eq!(t.as_ref(), format!("{y:04}-{m:02}-{d:02}"));
                        }
                        _ => {}
                    },
                }
            }
        }
    }
}
