//! A [`Cond`] as a parameterised SQL expression over one resource's table.
//!
//! Every property is checked against the table's columns and every literal converted to the type
//! of what it is compared with before any SQL exists; identifiers reach the text only through
//! [`quote_ident`], values only as bound parameters. The semantics are those documented on [`Cond`].
//!
//! Spatial conditions rely on two things the store sets up for a resource with a geometry: an
//! R*Tree `"{id}~geo"` with columns `(id, minx, maxx, miny, maxy)` keyed by the row's `_id`, and the
//! SQL functions `cd_relate(geometry, other, relation)` (0 or 1) and `cd_distance_m(geometry, lon,
//! lat)` (metres). A spatial condition is an R*Tree prefilter on the bounding box (widened a little,
//! because the R*Tree keeps 32-bit floats) followed by the exact test.
//!
//! **Invariants:** the expression is bounded: at most [`MAX_NODES`] conditions and operands and
//! [`MAX_DEPTH`] levels of nesting, and long `AND`/`OR` lists are written as balanced trees, so
//! SQLite's own expression depth limit is never reached.

use citydata_model::FieldType;
use rusqlite::types::Value as SqlValue;

use super::query::Sql;
use crate::query::{parse_value, ArithOp, Column, Cond, Literal, Operand, SpatialOp, TemporalOp};
use crate::{quote_ident, Result, StoreError};

/// At most this many conditions, operands and list items in one condition.
pub(super) const MAX_NODES: usize = 4000;
/// At most this many levels of nesting.
pub(super) const MAX_DEPTH: usize = 128;
/// The largest exponent of `^`.
const MAX_POWER: i64 = 16;
/// At most this many items in one `IN` list.
const MAX_LIST: usize = 1000;
/// How far (degrees) the R*Tree prefilter widens a box: more than the rounding of 32-bit floats
/// near Hong Kong's longitudes (about 8e-6 degrees).
const BOX_SLACK: f64 = 1e-4;

/// What a value is, for type checks: one per [`FieldType`], geometry apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Bool,
    Text,
    Date,
    Datetime,
    Time,
    Geometry,
}

impl Kind {
    fn of(t: FieldType) -> Kind {
        match t {
            FieldType::Integer | FieldType::Number => Kind::Number,
            FieldType::Boolean => Kind::Bool,
            FieldType::Date => Kind::Date,
            FieldType::Datetime => Kind::Datetime,
            FieldType::Time => Kind::Time,
            FieldType::String => Kind::Text,
            FieldType::Geometry => Kind::Geometry,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Number => "numbers",
            Kind::Bool => "booleans",
            Kind::Text => "strings",
            Kind::Date => "dates",
            Kind::Datetime => "timestamps",
            Kind::Time => "times of day",
            Kind::Geometry => "geometries",
        }
    }

    /// Stored as text (so LIKE applies).
    fn textual(self) -> bool {
        matches!(self, Kind::Text | Kind::Date | Kind::Datetime | Kind::Time)
    }
}

/// The kind of a literal when nothing else says.
fn natural(l: &Literal) -> Kind {
    match l {
        Literal::Text(_) => Kind::Text,
        Literal::Int(_) | Literal::Real(_) => Kind::Number,
        Literal::Bool(_) => Kind::Bool,
        Literal::Date(_) => Kind::Date,
        Literal::Timestamp(_) => Kind::Datetime,
    }
}

fn describe(l: &Literal) -> String {
    match l {
        Literal::Text(s) => format!("the string '{s}'"),
        Literal::Int(i) => format!("the number {i}"),
        Literal::Real(r) => format!("the number {r}"),
        Literal::Bool(b) => format!("the boolean {b}"),
        Literal::Date(d) => format!("DATE('{d}')"),
        Literal::Timestamp(t) => format!("TIMESTAMP('{t}')"),
    }
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Writes `cond` as an SQL expression at the end of `sql`, binding its values. `resource_id` names
/// the table (and its R*Tree), `columns` are its columns (`_id` among them), `geometry` the column
/// that holds each row's WGS 84 GeoJSON geometry, if the resource has one.
///
/// # Errors
/// [`StoreError::Invalid`] for an unknown property, a literal that does not fit the type of what it
/// is compared with, a spatial condition on a resource without geometry, an `ACCENTI`, or a
/// condition over the size limits; each message says which and where.
pub(super) fn translate(
    cond: &Cond,
    resource_id: &str,
    columns: &[Column],
    geometry: Option<&str>,
    sql: &mut Sql,
) -> Result<()> {
    let mut t = Translator { resource_id, columns, geometry, nodes: 0, sql };
    let text = t.cond(cond, 0)?;
    t.sql.text.push_str(&text);
    Ok(())
}

/// One translation: the table and the statement being built.
struct Translator<'a> {
    resource_id: &'a str,
    columns: &'a [Column],
    geometry: Option<&'a str>,
    nodes: usize,
    sql: &'a mut Sql,
}

/// One end of an interval in a temporal comparison.
#[derive(Clone)]
enum End {
    /// An open start (`..`): before every instant.
    Min,
    /// An open end (`..`): after every instant.
    Max,
    /// An SQL expression.
    At(String),
}

/// A part of a temporal condition: known, or an SQL expression.
enum Tri {
    Known(bool),
    Sql(String),
}

impl<'a> Translator<'a> {
    fn count(&mut self, n: usize) -> Result<()> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(invalid(format!(
                "the filter is too large: more than {MAX_NODES} conditions and values"
            )));
        }
        Ok(())
    }

    fn bind(&mut self, v: SqlValue) -> String {
        format!("?{}", self.sql.bind(v))
    }

    fn column(&self, name: &str) -> Result<&'a Column> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            const SHOWN: usize = 20;
            let mut names: Vec<String> =
                self.columns.iter().take(SHOWN).map(|c| format!("{:?}", c.name)).collect();
            if self.columns.len() > SHOWN {
                names.push(format!("and {} more", self.columns.len() - SHOWN));
            }
            invalid(format!("unknown property {name:?}; the properties are {}", names.join(", ")))
        })
    }

    fn cond(&mut self, cond: &Cond, depth: usize) -> Result<String> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the filter nests more than {MAX_DEPTH} levels deep")));
        }
        self.count(1)?;
        Ok(match cond {
            Cond::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
            Cond::And(parts) | Cond::Or(parts) => {
                let and = matches!(cond, Cond::And(_));
                let mut texts = Vec::with_capacity(parts.len());
                for p in parts {
                    texts.push(self.cond(p, depth + 1)?);
                }
                balanced(&texts, if and { "AND" } else { "OR" })
                    .unwrap_or_else(|| if and { "1" } else { "0" }.to_owned())
            }
            Cond::Not(inner) => format!("(NOT {})", self.cond(inner, depth + 1)?),
            Cond::Compare { left, op, right } => {
                let e = self.typed(&[left, right], depth, &format!("the comparison {}", op.symbol()))?;
                format!("({} {} {})", e[0], op.symbol(), e[1])
            }
            Cond::Between { value, low, high } => {
                let e = self.typed(&[value, low, high], depth, "BETWEEN")?;
                format!("({} BETWEEN {} AND {})", e[0], e[1], e[2])
            }
            Cond::In { value, list } => {
                if list.is_empty() {
                    return Err(invalid("IN needs at least one value in its list"));
                }
                if list.len() > MAX_LIST {
                    return Err(invalid(format!(
                        "IN takes at most {MAX_LIST} values; it was given {}",
                        list.len()
                    )));
                }
                self.count(list.len())?;
                let mut all: Vec<&Operand> = Vec::with_capacity(list.len() + 1);
                all.push(value);
                all.extend(list);
                let e = self.typed(&all, depth, "IN")?;
                format!("({} IN ({}))", e[0], e[1..].join(", "))
            }
            Cond::IsNull(op) => {
                let text = match op {
                    // A geometry may be tested for NULL even though it compares with nothing.
                    Operand::Property(name) => quote_ident(&self.column(name)?.name),
                    other => self.expr(other, None, depth)?.0,
                };
                format!("({text} IS NULL)")
            }
            Cond::Like { value, pattern } => self.like(value, pattern, depth)?,
            Cond::Spatial { op, property, geometry, bbox } => self.spatial(*op, property, geometry, *bbox)?,
            Cond::DWithin { lon, lat, metres } => self.dwithin(*lon, *lat, *metres)?,
            Cond::Temporal { op, left, right } => self.temporal(*op, left, right, depth)?,
        })
    }

    /// The kind an operand has by itself; `None` for a literal (it takes the kind of the others).
    fn kind_of(&self, op: &Operand) -> Result<Option<Kind>> {
        Ok(match op {
            Operand::Property(name) => Some(Kind::of(self.column(name)?.field_type)),
            Operand::Literal(_) => None,
            Operand::CaseI(_) => Some(Kind::Text),
            Operand::AccentI(_) => return Err(accenti()),
            Operand::Arith { .. } => Some(Kind::Number),
            Operand::Interval { .. } => {
                return Err(invalid("an INTERVAL can only be an argument of a T_ temporal function"))
            }
        })
    }

    /// SQL for `ops` converted to one kind, for a comparison, BETWEEN or IN (named `what`).
    fn typed(&mut self, ops: &[&Operand], depth: usize, what: &str) -> Result<Vec<String>> {
        let mut kinds = Vec::with_capacity(ops.len());
        for op in ops {
            kinds.push(self.kind_of(op)?);
        }
        // The kind: that of the first non-literal, else of the first literal; a date meeting a
        // timestamp becomes the timestamp of its midnight.
        let mut target = kinds.iter().flatten().next().copied();
        let any_datetime = ops.iter().zip(&kinds).any(|(op, k)| {
            *k == Some(Kind::Datetime) || matches!(op, Operand::Literal(Literal::Timestamp(_)))
        });
        if target.is_none() {
            if let Some(Operand::Literal(l)) = ops.first() {
                target = Some(natural(l));
            }
        }
        let Some(mut target) = target else { return Err(invalid(format!("{what} has no operands"))) };
        if target == Kind::Date && any_datetime {
            target = Kind::Datetime;
        }
        if target == Kind::Geometry {
            return Err(invalid(format!(
                "{} is a geometry: {what} does not apply to it; use a spatial function such as S_INTERSECTS",
                self.subject(ops)
            )));
        }
        let mut out = Vec::with_capacity(ops.len());
        for (op, kind) in ops.iter().zip(&kinds) {
            let Some(k) = kind else {
                if let Operand::Literal(l) = op {
                    let v = convert(l, target, &self.subject(ops))?;
                    out.push(self.bind(v));
                }
                continue;
            };
            let (text, _) = self.expr(op, Some(target), depth)?;
            if *k == target {
                out.push(text);
            } else if *k == Kind::Date && target == Kind::Datetime {
                out.push(format!("({text} || 'T00:00:00')"));
            } else {
                return Err(invalid(format!(
                    "{what} cannot compare {} ({}) with {} ({})",
                    self.subject(ops),
                    kinds.iter().flatten().next().map_or("?", |k| k.name()),
                    label(op),
                    k.name()
                )));
            }
        }
        Ok(out)
    }

    /// How an error names the first non-literal of `ops`.
    fn subject(&self, ops: &[&Operand]) -> String {
        ops.iter()
            .find(|op| !matches!(op, Operand::Literal(_)))
            .map_or_else(|| "the value".to_owned(), |op| label(op))
    }

    /// SQL for a non-interval operand and its kind; a literal takes the kind `want` (or its own).
    fn expr(&mut self, op: &Operand, want: Option<Kind>, depth: usize) -> Result<(String, Kind)> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("the filter nests more than {MAX_DEPTH} levels deep")));
        }
        self.count(1)?;
        Ok(match op {
            Operand::Property(name) => {
                let c = self.column(name)?;
                (quote_ident(&c.name), Kind::of(c.field_type))
            }
            Operand::Literal(l) => {
                let kind = want.unwrap_or_else(|| natural(l));
                let v = convert(l, kind, "the value")?;
                (self.bind(v), kind)
            }
            Operand::CaseI(inner) => {
                let (text, kind) = self.expr(inner, Some(Kind::Text), depth + 1)?;
                if !kind.textual() {
                    return Err(invalid(format!(
                        "CASEI applies to strings; {} holds {}",
                        label(inner),
                        kind.name()
                    )));
                }
                (format!("lower({text})"), Kind::Text)
            }
            Operand::AccentI(_) => return Err(accenti()),
            Operand::Arith { left, op, right } => {
                let mut parts = Vec::with_capacity(2);
                for side in [left, right] {
                    let (text, kind) = self.expr(side, Some(Kind::Number), depth + 1)?;
                    if kind != Kind::Number {
                        return Err(invalid(format!(
                            "arithmetic applies to numbers; {} holds {}",
                            label(side),
                            kind.name()
                        )));
                    }
                    parts.push(text);
                }
                let text = match op {
                    ArithOp::Add => format!("({} + {})", parts[0], parts[1]),
                    ArithOp::Sub => format!("({} - {})", parts[0], parts[1]),
                    ArithOp::Mul => format!("({} * {})", parts[0], parts[1]),
                    // Real division; by zero gives NULL.
                    ArithOp::Div => format!("(CAST({} AS REAL) / {})", parts[0], parts[1]),
                    ArithOp::Mod => format!("({} % {})", parts[0], parts[1]),
                    ArithOp::IntDiv => format!("CAST(CAST({} AS REAL) / {} AS INTEGER)", parts[0], parts[1]),
                    ArithOp::Pow => power(&parts[0], right)?,
                };
                (text, Kind::Number)
            }
            Operand::Interval { .. } => {
                return Err(invalid("an INTERVAL can only be an argument of a T_ temporal function"))
            }
        })
    }

    fn like(&mut self, value: &Operand, pattern: &Operand, depth: usize) -> Result<String> {
        let (text, kind) = match value {
            Operand::Literal(Literal::Text(_)) => self.expr(value, Some(Kind::Text), depth)?,
            Operand::Literal(l) => {
                return Err(invalid(format!("LIKE matches strings; {} is not one", describe(l))))
            }
            other => self.expr(other, None, depth)?,
        };
        if !kind.textual() {
            return Err(invalid(format!("LIKE matches strings; {} holds {}", label(value), kind.name())));
        }
        let (pat, fold) = match pattern {
            Operand::Literal(Literal::Text(p)) => (p, false),
            Operand::CaseI(inner) => match inner.as_ref() {
                Operand::Literal(Literal::Text(p)) => (p, true),
                _ => return Err(invalid("the pattern of LIKE must be a string literal")),
            },
            _ => return Err(invalid("the pattern of LIKE must be a string literal")),
        };
        self.count(1)?;
        let glob = glob_pattern(&if fold { pat.to_ascii_lowercase() } else { pat.clone() })?;
        let p = self.bind(SqlValue::Text(glob));
        Ok(format!("({text} GLOB {p})"))
    }

    /// The geometry column, checked against the property a spatial condition names: its own name,
    /// or `geometry` (the name the feature APIs give every resource's geometry).
    fn geometry(&self, property: Option<&str>, what: &str) -> Result<String> {
        let Some(g) = self.geometry else {
            return Err(invalid(format!("{what}: this resource has no geometry")));
        };
        if let Some(p) = property {
            if p != g && p != crate::query::GEOMETRY_PROPERTY {
                return Err(invalid(format!(
                    "{what} applies to the geometry property {g:?}; {p:?} is not it"
                )));
            }
        }
        Ok(quote_ident(g))
    }

    /// `"_id" IN (SELECT id FROM "{id}~geo" WHERE ...)` for the boxes that `test` selects.
    fn rtree(&mut self, test: &str, b: [f64; 4]) -> String {
        let (x0, y0, x1, y1) = (
            self.bind(SqlValue::Real(b[0] - BOX_SLACK)),
            self.bind(SqlValue::Real(b[1] - BOX_SLACK)),
            self.bind(SqlValue::Real(b[2] + BOX_SLACK)),
            self.bind(SqlValue::Real(b[3] + BOX_SLACK)),
        );
        // Boxes that overlap [x0, x1] x [y0, y1], lie inside it, or hold it (shrunk for the slack).
        let filter = match test {
            "inside" => format!("minx >= {x0} AND maxx <= {x1} AND miny >= {y0} AND maxy <= {y1}"),
            "holds" => {
                let (i0, j0, i1, j1) = (
                    self.bind(SqlValue::Real(b[0] + BOX_SLACK)),
                    self.bind(SqlValue::Real(b[1] + BOX_SLACK)),
                    self.bind(SqlValue::Real(b[2] - BOX_SLACK)),
                    self.bind(SqlValue::Real(b[3] - BOX_SLACK)),
                );
                format!("minx <= {i0} AND maxx >= {i1} AND miny <= {j0} AND maxy >= {j1}")
            }
            _ => format!("minx <= {x1} AND maxx >= {x0} AND miny <= {y1} AND maxy >= {y0}"),
        };
        format!(
            "{} IN (SELECT id FROM {} WHERE {filter})",
            quote_ident("_id"),
            quote_ident(&format!("{}~geo", self.resource_id))
        )
    }

    fn spatial(&mut self, op: SpatialOp, property: &str, geometry: &str, bbox: [f64; 4]) -> Result<String> {
        let what = op.name().to_owned();
        let g = self.geometry(Some(property), &what)?;
        check_box(bbox, &what)?;
        let prefilter = match op {
            SpatialOp::Within => "inside",
            SpatialOp::Contains => "holds",
            _ => "overlaps",
        };
        let rtree = self.rtree(prefilter, bbox);
        let other = self.bind(SqlValue::Text(geometry.to_owned()));
        let exact = format!("cd_relate({g}, {other}, '{}')", op.name()[2..].to_ascii_lowercase());
        Ok(if op == SpatialOp::Disjoint {
            // Rows whose box misses the other's are disjoint without the exact test.
            format!("({g} IS NOT NULL AND (NOT {rtree} OR {exact}))")
        } else {
            format!("({rtree} AND {exact})")
        })
    }

    fn dwithin(&mut self, lon: f64, lat: f64, metres: f64) -> Result<String> {
        let g = self.geometry(None, "a distance filter")?;
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)) {
            return Err(invalid(format!("the point ({lon}, {lat}) is not a WGS 84 longitude and latitude")));
        }
        if !(metres.is_finite() && metres >= 0.0) {
            return Err(invalid(format!("the distance {metres} is not a number of metres >= 0")));
        }
        // Degrees per metre, generously: the box must hold every point within the distance.
        let dlat = metres / 110_000.0 * 1.1;
        let dlon = metres / (111_320.0 * lat.to_radians().cos().max(0.01)) * 1.1;
        let rtree = self.rtree("overlaps", [lon - dlon, lat - dlat, lon + dlon, lat + dlat]);
        let (x, y, d) = (
            self.bind(SqlValue::Real(lon)),
            self.bind(SqlValue::Real(lat)),
            self.bind(SqlValue::Real(metres)),
        );
        Ok(format!("({rtree} AND cd_distance_m({g}, {x}, {y}) <= {d})"))
    }

    fn temporal(&mut self, op: TemporalOp, left: &Operand, right: &Operand, depth: usize) -> Result<String> {
        let what = format!("T_{}", op.name().to_ascii_uppercase());
        // The ends of both sides, then one kind for all of them.
        let mut ends: Vec<Option<&Operand>> = Vec::with_capacity(4);
        for side in [left, right] {
            match side {
                Operand::Interval { start, end } => {
                    ends.push(start.as_deref());
                    ends.push(end.as_deref());
                }
                instant => {
                    ends.push(Some(instant));
                    ends.push(Some(instant));
                }
            }
        }
        let mut kind: Option<Kind> = None;
        for e in ends.iter().flatten() {
            let k = match e {
                Operand::Property(name) => Kind::of(self.column(name)?.field_type),
                Operand::Literal(Literal::Date(_)) => Kind::Date,
                Operand::Literal(Literal::Timestamp(_)) => Kind::Datetime,
                Operand::Literal(Literal::Text(_)) => continue,
                Operand::Literal(l) => {
                    return Err(invalid(format!("{what} compares instants; {} is not one", describe(l))))
                }
                other => {
                    return Err(invalid(format!(
                        "{what} compares instants and intervals; {} is neither",
                        label(other)
                    )))
                }
            };
            if !matches!(k, Kind::Date | Kind::Datetime) {
                return Err(invalid(format!(
                    "{what} compares dates and timestamps; {} holds {}",
                    label(e),
                    k.name()
                )));
            }
            kind = Some(kind.map_or(k, |prev| prev.max_time(k)));
        }
        let kind = kind.unwrap_or(Kind::Datetime);
        let mut sql_ends = Vec::with_capacity(4);
        let mut cache: Vec<(*const Operand, String)> = Vec::new();
        for (i, e) in ends.iter().enumerate() {
            sql_ends.push(match e {
                None if i % 2 == 0 => End::Min,
                None => End::Max,
                Some(op) => {
                    // An instant's two ends are one expression (one bound value).
                    let key: *const Operand = *op;
                    if let Some((_, text)) = cache.iter().find(|(k, _)| std::ptr::eq(*k, key)) {
                        End::At(text.clone())
                    } else {
                        let text = match op {
                            Operand::Property(name) => {
                                let c = self.column(name)?;
                                let t = quote_ident(&c.name);
                                if Kind::of(c.field_type) == Kind::Date && kind == Kind::Datetime {
                                    format!("({t} || 'T00:00:00')")
                                } else {
                                    t
                                }
                            }
                            Operand::Literal(l) => {
                                let v = convert(l, kind, &what)?;
                                self.bind(v)
                            }
                            _ => self.expr(op, Some(kind), depth)?.0,
                        };
                        cache.push((key, text.clone()));
                        End::At(text)
                    }
                }
            });
        }
        let [a0, a1, b0, b1]: [End; 4] = sql_ends.try_into().map_err(|_| invalid("bad interval"))?;
        use std::cmp::Ordering::{Equal as EQ, Greater as GT, Less as LT};
        let c = |x: &End, o: std::cmp::Ordering, y: &End| cmp_end(x, o, y);
        let parts: Vec<Tri> = match op {
            TemporalOp::After => vec![c(&a0, GT, &b1)],
            TemporalOp::Before => vec![c(&a1, LT, &b0)],
            TemporalOp::Contains => vec![c(&a0, LT, &b0), c(&a1, GT, &b1)],
            TemporalOp::Disjoint => {
                return Ok(or2(c(&a1, LT, &b0), c(&a0, GT, &b1)));
            }
            TemporalOp::During => vec![c(&a0, GT, &b0), c(&a1, LT, &b1)],
            TemporalOp::Equals => vec![c(&a0, EQ, &b0), c(&a1, EQ, &b1)],
            TemporalOp::FinishedBy => vec![c(&a0, LT, &b0), c(&a1, EQ, &b1)],
            TemporalOp::Finishes => vec![c(&a0, GT, &b0), c(&a1, EQ, &b1)],
            TemporalOp::Intersects => vec![le(&a0, &b1), ge(&a1, &b0)],
            TemporalOp::Meets => vec![c(&a1, EQ, &b0)],
            TemporalOp::MetBy => vec![c(&a0, EQ, &b1)],
            TemporalOp::OverlappedBy => vec![c(&a0, GT, &b0), c(&a0, LT, &b1), c(&a1, GT, &b1)],
            TemporalOp::Overlaps => vec![c(&a0, LT, &b0), c(&a1, GT, &b0), c(&a1, LT, &b1)],
            TemporalOp::StartedBy => vec![c(&a0, EQ, &b0), c(&a1, GT, &b1)],
            TemporalOp::Starts => vec![c(&a0, EQ, &b0), c(&a1, LT, &b1)],
        };
        Ok(and_all(parts))
    }
}

impl Kind {
    /// The common kind of two temporal kinds: a timestamp when either is one.
    fn max_time(self, other: Kind) -> Kind {
        if self == Kind::Datetime || other == Kind::Datetime {
            Kind::Datetime
        } else {
            self
        }
    }
}

fn accenti() -> StoreError {
    invalid("ACCENTI is not supported: accent-insensitive comparison is not available")
}

/// `base ^ exponent` as a product: SQLite (as bundled) has no `pow`, so the exponent must be a
/// whole number from 0 to [`MAX_POWER`].
fn power(base: &str, exponent: &Operand) -> Result<String> {
    match exponent {
        Operand::Literal(Literal::Int(k)) if (0..=MAX_POWER).contains(k) && base.len() <= 1000 => {
            Ok(if *k == 0 {
                format!("(CASE WHEN {base} IS NULL THEN NULL ELSE 1 END)")
            } else {
                let factors = vec![base; usize::try_from(*k).unwrap_or(1)];
                format!("({})", factors.join(" * "))
            })
        }
        _ => Err(invalid(format!(
            "^ takes a whole number from 0 to {MAX_POWER} as its exponent; {} is not one",
            label(exponent)
        ))),
    }
}

/// How an error names an operand.
fn label(op: &Operand) -> String {
    match op {
        Operand::Property(name) => format!("the property {name:?}"),
        Operand::Literal(l) => describe(l),
        Operand::CaseI(inner) => format!("CASEI({})", label(inner)),
        Operand::AccentI(inner) => format!("ACCENTI({})", label(inner)),
        Operand::Arith { .. } => "an arithmetic expression".to_owned(),
        Operand::Interval { .. } => "an INTERVAL".to_owned(),
    }
}

/// A literal as a value of kind `kind`, compared with `subject` (for the error message).
fn convert(l: &Literal, kind: Kind, subject: &str) -> Result<SqlValue> {
    let mismatch = || {
        let hint = match (l, kind) {
            (Literal::Text(_), Kind::Number) => "; write the number without quotes",
            (Literal::Int(_) | Literal::Real(_), Kind::Text) => "; quote it as a string: '...'",
            (_, Kind::Date) => "; write a date as DATE('YYYY-MM-DD')",
            (_, Kind::Datetime) => "; write a timestamp as TIMESTAMP('YYYY-MM-DDTHH:MM:SSZ')",
            _ => "",
        };
        invalid(format!("{subject} holds {}; {} is not one of them{hint}", kind.name(), describe(l)))
    };
    let parsed = |t: FieldType, s: &str| {
        parse_value(t, s).map_err(|e| invalid(format!("{subject} holds {}: {e}", kind.name())))
    };
    let text = |v: citydata_model::Value<'_>| match v {
        citydata_model::Value::Text(t) => SqlValue::Text(t.into_owned()),
        _ => SqlValue::Null,
    };
    Ok(match (kind, l) {
        (Kind::Number, Literal::Int(i)) => SqlValue::Integer(*i),
        (Kind::Number, Literal::Real(r)) if r.is_finite() => SqlValue::Real(*r),
        (Kind::Bool, Literal::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (Kind::Text, Literal::Text(s)) => SqlValue::Text(s.clone()),
        (Kind::Date, Literal::Date(s) | Literal::Text(s)) => text(parsed(FieldType::Date, s)?),
        (Kind::Datetime, Literal::Date(s)) => match text(parsed(FieldType::Date, s)?) {
            SqlValue::Text(d) => SqlValue::Text(format!("{d}T00:00:00")),
            other => other,
        },
        (Kind::Datetime, Literal::Timestamp(s) | Literal::Text(s)) => {
            match text(parsed(FieldType::Datetime, s)?) {
                // Wall clock: a UTC designator is dropped (see `Cond`).
                SqlValue::Text(t) => SqlValue::Text(t.strip_suffix('Z').map(str::to_owned).unwrap_or(t)),
                other => other,
            }
        }
        (Kind::Time, Literal::Text(s)) => text(parsed(FieldType::Time, s)?),
        _ => return Err(mismatch()),
    })
}

/// `x o y` for interval ends, known when an end is open.
fn cmp_end(x: &End, o: std::cmp::Ordering, y: &End) -> Tri {
    let rank = |e: &End| match e {
        End::Min => 0,
        End::At(_) => 1,
        End::Max => 2,
    };
    match (x, y) {
        (End::At(a), End::At(b)) => Tri::Sql(format!(
            "({a} {} {b})",
            match o {
                std::cmp::Ordering::Less => "<",
                std::cmp::Ordering::Equal => "=",
                std::cmp::Ordering::Greater => ">",
            }
        )),
        _ => Tri::Known(rank(x).cmp(&rank(y)) == o),
    }
}

fn le(x: &End, y: &End) -> Tri {
    or_tri(cmp_end(x, std::cmp::Ordering::Less, y), cmp_end(x, std::cmp::Ordering::Equal, y))
}

fn ge(x: &End, y: &End) -> Tri {
    or_tri(cmp_end(x, std::cmp::Ordering::Greater, y), cmp_end(x, std::cmp::Ordering::Equal, y))
}

fn or_tri(a: Tri, b: Tri) -> Tri {
    match (a, b) {
        (Tri::Known(true), _) | (_, Tri::Known(true)) => Tri::Known(true),
        (Tri::Known(false), x) | (x, Tri::Known(false)) => x,
        (Tri::Sql(a), Tri::Sql(b)) => Tri::Sql(format!("({a} OR {b})")),
    }
}

fn or2(a: Tri, b: Tri) -> String {
    match or_tri(a, b) {
        Tri::Known(k) => if k { "1" } else { "0" }.to_owned(),
        Tri::Sql(s) => s,
    }
}

fn and_all(parts: Vec<Tri>) -> String {
    let mut texts = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Tri::Known(false) => return "0".to_owned(),
            Tri::Known(true) => {}
            Tri::Sql(s) => texts.push(s),
        }
    }
    balanced(&texts, "AND").unwrap_or_else(|| "1".to_owned())
}

/// `parts` joined by `op` as a balanced tree of parentheses (depth log n); `None` when empty.
fn balanced(parts: &[String], op: &str) -> Option<String> {
    match parts {
        [] => None,
        [one] => Some(one.clone()),
        _ => {
            let (a, b) = parts.split_at(parts.len() / 2);
            Some(format!("({} {op} {})", balanced(a, op)?, balanced(b, op)?))
        }
    }
}

/// A CQL2 LIKE pattern (`%`, `_`, `\` escapes) as an SQLite GLOB pattern (case-sensitive).
fn glob_pattern(like: &str) -> Result<String> {
    let mut out = String::with_capacity(like.len() + 8);
    let mut chars = like.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(n) => literal_glob(&mut out, n),
                None => {
                    return Err(invalid(format!(
                    "the LIKE pattern '{like}' ends with the escape character \\; write \\\\ for a backslash"
                )))
                }
            },
            c => literal_glob(&mut out, c),
        }
    }
    Ok(out)
}

fn literal_glob(out: &mut String, c: char) {
    match c {
        '*' => out.push_str("[*]"),
        '?' => out.push_str("[?]"),
        '[' => out.push_str("[[]"),
        c => out.push(c),
    }
}

fn check_box(b: [f64; 4], what: &str) -> Result<()> {
    if b.iter().all(|v| v.is_finite()) && b[0] <= b[2] && b[1] <= b[3] {
        Ok(())
    } else {
        Err(invalid(format!("{what}: the bounding box {b:?} is not [min x, min y, max x, max y]")))
    }
}

#[cfg(test)]
mod tests {
    use citydata_model::FieldType as F;
    use citydata_model::Value::{self, Int, Null, Real};

    use super::*;
    use crate::query::testing::{publish, store, t};
    use crate::query::CmpOp;
    use crate::query::{RowBuffer, RowQuery};
    use crate::Store;

    const COLUMNS: [(&str, F); 9] = [
        ("name", F::String),
        ("population", F::Integer),
        ("area", F::Number),
        ("opened", F::Date),
        ("at", F::Datetime),
        ("t", F::Time),
        ("ok", F::Boolean),
        ("地區 名稱", F::String),
        ("shape", F::Geometry),
    ];

    /// Six districts with NULLs in several columns.
    fn districts() -> (tempfile::TempDir, Store, String) {
        let (dir, store) = store();
        let row =
            |name: &str, pop: Option<i64>, area: f64, opened: Option<&str>, at: &str, ok: i64, zh: &str| {
                vec![
                    t(name),
                    pop.map_or(Null, Int),
                    Real(area),
                    opened.map_or(Null, t),
                    t(at),
                    t(&at[11..]),
                    Int(ok),
                    t(zh),
                    Null,
                ]
            };
        let rows = vec![
            row(
                "Central and Western",
                Some(243_000),
                12.55,
                Some("2001-05-01"),
                "2024-01-01T08:00:00",
                1,
                "中西區",
            ),
            row("Wan Chai", Some(166_000), 10.64, Some("2003-02-10"), "2024-01-02T09:30:00", 0, "灣仔區"),
            row("Eastern", None, 18.56, None, "2024-01-03T10:00:00", 1, "東區"),
            row("Southern 50%", Some(263_000), 39.4, Some("1999-12-31"), "2024-01-04T11:15:00", 0, "南區"),
            row(
                "Yau Tsim Mong",
                Some(318_000),
                6.99,
                Some("2010-07-01"),
                "2024-01-05T12:00:00",
                1,
                "油尖旺區",
            ),
            row("sham shui po", None, 9.35, Some("2010-07-01"), "2024-01-06T13:45:00", 0, "深水埗區"),
        ];
        let id = publish(&store, "districts", "districts", &COLUMNS, &rows);
        (dir, store, id)
    }

    fn run(store: &Store, id: &str, cond: Cond) -> Result<Vec<i64>> {
        let mut buf = RowBuffer::default();
        store.query_rows(id, &RowQuery { cond: Some(cond), ..RowQuery::default() }, &mut buf)?;
        Ok(buf
            .rows
            .iter()
            .map(|r| match r[0] {
                Value::Int(i) => i,
                ref v => panic!("not an id: {v:?}"),
            })
            .collect())
    }

    fn p(name: &str) -> Operand {
        Operand::property(name)
    }
    fn s(text: &str) -> Operand {
        Operand::text(text)
    }
    fn n(i: i64) -> Operand {
        Operand::Literal(Literal::Int(i))
    }
    fn r(x: f64) -> Operand {
        Operand::Literal(Literal::Real(x))
    }
    fn date(d: &str) -> Operand {
        Operand::Literal(Literal::Date(d.into()))
    }
    fn ts(d: &str) -> Operand {
        Operand::Literal(Literal::Timestamp(d.into()))
    }
    fn cmp(left: Operand, op: CmpOp, right: Operand) -> Cond {
        Cond::Compare { left, op, right }
    }
    fn casei(o: Operand) -> Operand {
        Operand::CaseI(Box::new(o))
    }
    fn interval(a: Option<Operand>, b: Option<Operand>) -> Operand {
        Operand::Interval { start: a.map(Box::new), end: b.map(Box::new) }
    }
    fn temporal(op: TemporalOp, left: Operand, right: Operand) -> Cond {
        Cond::Temporal { op, left, right }
    }

    #[test]
    fn conditions_select_rows_with_three_valued_logic() {
        use crate::query::CmpOp::*;
        let (_d, store, id) = districts();
        let like = |v: Operand, pat: Operand| Cond::Like { value: v, pattern: pat };
        let not = |c: Cond| Cond::Not(Box::new(c));
        let arith = |l: Operand, op: ArithOp, r: Operand| Operand::Arith {
            left: Box::new(l),
            op,
            right: Box::new(r),
        };
        for (cond, want) in [
            (cmp(p("population"), Eq, n(166_000)), vec![2]),
            (cmp(p("population"), Ne, n(166_000)), vec![1, 4, 5]),
            (not(cmp(p("population"), Eq, n(166_000))), vec![1, 4, 5]),
            (cmp(n(250_000), Lt, p("population")), vec![4, 5]),
            (cmp(p("population"), Ge, r(243_000.0)), vec![1, 4, 5]),
            (cmp(p("area"), Gt, n(12)), vec![1, 3, 4]),
            (cmp(p("area"), Le, p("area")), vec![1, 2, 3, 4, 5, 6]),
            (cmp(p("name"), Eq, s("Eastern")), vec![3]),
            (cmp(p("name"), Eq, s("eastern")), vec![]),
            (cmp(casei(p("name")), Eq, casei(s("EASTERN"))), vec![3]),
            (cmp(p("地區 名稱"), Eq, s("東區")), vec![3]),
            (cmp(p("ok"), Eq, Operand::Literal(Literal::Bool(true))), vec![1, 3, 5]),
            (cmp(p("opened"), Eq, date("2010-07-01")), vec![5, 6]),
            (cmp(p("opened"), Lt, s("2001-05-01")), vec![4]),
            (cmp(p("opened"), Ge, ts("2010-07-01T00:00:00Z")), vec![5, 6]),
            (cmp(p("opened"), Gt, ts("2010-07-01T00:00:01Z")), vec![]),
            (cmp(p("at"), Eq, ts("2024-01-03T10:00:00Z")), vec![3]),
            (cmp(p("at"), Lt, date("2024-01-02")), vec![1]),
            (cmp(p("t"), Gt, s("12:00")), vec![6]),
            (cmp(p("_id"), Eq, n(4)), vec![4]),
            (Cond::Bool(false), vec![]),
            (Cond::And(vec![]), vec![1, 2, 3, 4, 5, 6]),
            (Cond::Or(vec![]), vec![]),
            (Cond::Or(vec![cmp(p("population"), Lt, n(200_000)), cmp(p("area"), Gt, n(30))]), vec![2, 4]),
            (
                Cond::And(vec![
                    cmp(p("ok"), Eq, Operand::Literal(Literal::Bool(false))),
                    not(Cond::IsNull(p("population"))),
                ]),
                vec![2, 4],
            ),
            (Cond::IsNull(p("population")), vec![3, 6]),
            (Cond::IsNull(p("shape")), vec![1, 2, 3, 4, 5, 6]),
            (not(Cond::IsNull(p("opened"))), vec![1, 2, 4, 5, 6]),
            (Cond::Between { value: p("area"), low: n(9), high: r(10.64) }, vec![2, 6]),
            (
                Cond::Between { value: p("opened"), low: date("2001-01-01"), high: date("2005-12-31") },
                vec![1, 2],
            ),
            (not(Cond::Between { value: p("population"), low: n(0), high: n(250_000) }), vec![4, 5]),
            (
                Cond::In { value: p("name"), list: vec![s("Wan Chai"), s("Eastern"), s("Nowhere")] },
                vec![2, 3],
            ),
            (Cond::In { value: p("population"), list: vec![n(263_000), n(1)] }, vec![4]),
            (not(Cond::In { value: p("population"), list: vec![n(263_000)] }), vec![1, 2, 5]),
            (like(p("name"), s("%an%")), vec![1, 2]),
            (like(p("name"), s("S%")), vec![4]),
            (like(casei(p("name")), casei(s("S%"))), vec![4, 6]),
            (like(p("name"), s("Wan Cha_")), vec![2]),
            (like(p("name"), s(r"%50\%")), vec![4]),
            (like(p("name"), s(r"%5_\%")), vec![4]),
            (like(p("name"), s("%*%")), vec![]),
            (like(p("opened"), s("2010-%")), vec![5, 6]),
            (like(p("地區 名稱"), s("%水%")), vec![6]),
            (like(p("name"), s("%a%")), vec![1, 2, 3, 5, 6]),
            (not(like(p("name"), s("%a%"))), vec![4]),
            (cmp(arith(p("population"), ArithOp::Div, p("area")), Gt, n(40_000)), vec![5]),
            (cmp(arith(p("area"), ArithOp::Mul, n(2)), Gt, n(70)), vec![4]),
            (cmp(arith(p("population"), ArithOp::Mod, n(7)), Eq, n(2)), vec![1, 2]),
            (cmp(arith(p("population"), ArithOp::IntDiv, n(100_000)), Eq, n(2)), vec![1, 4]),
            (cmp(arith(n(-7), ArithOp::IntDiv, n(2)), Eq, n(-3)), vec![1, 2, 3, 4, 5, 6]),
            (cmp(arith(p("area"), ArithOp::Pow, n(2)), Gt, n(300)), vec![3, 4]),
            (cmp(arith(p("area"), ArithOp::Div, n(0)), Gt, n(0)), vec![]),
            (cmp(arith(p("area"), ArithOp::Pow, n(0)), Eq, n(1)), vec![1, 2, 3, 4, 5, 6]),
            (cmp(arith(p("population"), ArithOp::Pow, n(1)), Eq, n(166_000)), vec![2]),
            (cmp(arith(p("area"), ArithOp::Add, n(1)), Lt, arith(n(8), ArithOp::Sub, n(0))), vec![5]),
            (temporal(TemporalOp::After, p("opened"), date("2005-01-01")), vec![5, 6]),
            (temporal(TemporalOp::Before, p("opened"), date("2001-05-01")), vec![4]),
            (temporal(TemporalOp::Equals, p("opened"), date("2001-05-01")), vec![1]),
            (temporal(TemporalOp::Disjoint, p("opened"), date("2001-05-01")), vec![2, 4, 5, 6]),
            (temporal(TemporalOp::Intersects, p("at"), ts("2024-01-03T10:00:00Z")), vec![3]),
            (
                temporal(
                    TemporalOp::During,
                    p("at"),
                    interval(Some(ts("2024-01-02T00:00:00Z")), Some(ts("2024-01-04T00:00:00Z"))),
                ),
                vec![2, 3],
            ),
            (temporal(TemporalOp::During, p("at"), interval(Some(date("2024-01-05")), None)), vec![5, 6]),
            (temporal(TemporalOp::During, p("at"), interval(None, Some(s("2024-01-02")))), vec![1]),
            (
                temporal(
                    TemporalOp::Intersects,
                    p("opened"),
                    interval(Some(s("2003-01-01")), Some(s("2010-07-01"))),
                ),
                vec![2, 5, 6],
            ),
            (
                temporal(
                    TemporalOp::Intersects,
                    interval(Some(p("opened")), Some(p("at"))),
                    date("2005-05-05"),
                ),
                vec![1, 2, 4],
            ),
            (
                temporal(TemporalOp::Contains, interval(Some(p("opened")), None), date("2005-05-05")),
                vec![1, 2, 4],
            ),
            (temporal(TemporalOp::After, p("at"), p("opened")), vec![1, 2, 4, 5, 6]),
            (
                temporal(
                    TemporalOp::Meets,
                    interval(Some(date("2000-01-01")), Some(p("opened"))),
                    p("opened"),
                ),
                vec![1, 2, 4, 5, 6],
            ),
            (
                temporal(
                    TemporalOp::Overlaps,
                    interval(Some(date("2000-01-01")), Some(date("2004-01-01"))),
                    interval(Some(p("opened")), None),
                ),
                vec![1, 2],
            ),
        ] {
            assert_eq!(run(&store, &id, cond.clone()).unwrap(), want, "{cond:?}");
        }
    }

    #[test]
    fn conditions_narrow_counts_pages_and_facets() {
        let (_d, store, id) = districts();
        let cond = Cond::Like { value: p("name"), pattern: s("%a%") };
        let q = RowQuery {
            cond: Some(cond),
            limit: 1,
            total: Some(100),
            facets: vec!["ok".into()],
            ..RowQuery::default()
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let mut buf = RowBuffer::default();
            let next =
                store.query_rows(&id, &RowQuery { after: after.clone(), ..q.clone() }, &mut buf).unwrap();
            let head = buf.head.unwrap();
            assert_eq!(head.total.map(|t| (t.count, t.exact)), Some((5, true)));
            let facet: Vec<(Value<'static>, u64)> =
                head.facets[0].values.iter().map(|v| (v.value.clone(), v.count)).collect();
            assert_eq!(facet, vec![(Int(1), 3), (Int(0), 2)]);
            seen.extend(buf.rows.iter().map(|r| r[0].clone()));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, vec![Int(1), Int(2), Int(3), Int(5), Int(6)]);
        let mut buf = RowBuffer::default();
        store.query_rows(&id, &RowQuery { offset: 2, after: None, ..q.clone() }, &mut buf).unwrap();
        assert_eq!(buf.rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), vec![Int(3)]);
        // One equality filter (answered from the value counts without a condition) and a condition.
        let mut buf = RowBuffer::default();
        let q = RowQuery {
            filters: vec![crate::Filter::new("ok", crate::Op::Eq, ["true"])],
            cond: Some(cmp(p("area"), CmpOp::Gt, n(12))),
            total: Some(100),
            ..RowQuery::default()
        };
        store.query_rows(&id, &q, &mut buf).unwrap();
        assert_eq!(buf.head.unwrap().total.map(|t| t.count), Some(2));
        assert_eq!(buf.rows.len(), 2);
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        use crate::query::CmpOp::*;
        let (_d, store, id) = districts();
        let err = |c: Cond| run(&store, &id, c).unwrap_err().to_string();
        for (cond, want) in [
            (
                cmp(p("nope"), Eq, n(1)),
                r#"unknown property "nope"; the properties are "_id", "name", "population", "area", "opened", "at", "t", "ok", "地區 名稱", "shape""#,
            ),
            (
                cmp(p("population"), Eq, s("many")),
                "the property \"population\" holds numbers; the string 'many' is not one of them; write the number without quotes",
            ),
            (
                cmp(s("x"), Eq, p("name")),
                "", // fine: a literal on the left
            ),
            (
                cmp(p("name"), Eq, n(5)),
                "the property \"name\" holds strings; the number 5 is not one of them; quote it as a string: '...'",
            ),
            (
                cmp(p("opened"), Eq, s("someday")),
                "the property \"opened\" holds dates: \"someday\" is not a date (YYYY-MM-DD or DD/MM/YYYY)",
            ),
            (
                cmp(p("name"), Lt, p("area")),
                "the comparison < cannot compare the property \"name\" (strings) with the property \"area\" (numbers)",
            ),
            (
                cmp(p("shape"), Eq, s("x")),
                "the property \"shape\" is a geometry: the comparison = does not apply to it; use a spatial function such as S_INTERSECTS",
            ),
            (
                Cond::Like { value: p("population"), pattern: s("1%") },
                "LIKE matches strings; the property \"population\" holds numbers",
            ),
            (
                Cond::Like { value: p("name"), pattern: p("name") },
                "the pattern of LIKE must be a string literal",
            ),
            (Cond::In { value: p("name"), list: vec![] }, "IN needs at least one value in its list"),
            (
                cmp(Operand::AccentI(Box::new(p("name"))), Eq, s("x")),
                "ACCENTI is not supported: accent-insensitive comparison is not available",
            ),
            (
                temporal(TemporalOp::After, p("population"), date("2020-01-01")),
                "T_AFTER compares dates and timestamps; the property \"population\" holds numbers",
            ),
            (
                Cond::DWithin { lon: 114.0, lat: 22.3, metres: 100.0 },
                "", // the resource has a geometry column: this fails later, in SQLite (no R*Tree here)
            ),
            (
                Cond::Spatial { op: SpatialOp::Intersects, property: "geom".into(), geometry: "{}".into(), bbox: [0.0, 0.0, 1.0, 1.0] },
                "S_INTERSECTS applies to the geometry property \"shape\"; \"geom\" is not it",
            ),
            (
                cmp(
                    Operand::Arith { left: Box::new(p("area")), op: ArithOp::Pow, right: Box::new(r(0.5)) },
                    Eq,
                    n(1),
                ),
                "^ takes a whole number from 0 to 16 as its exponent; the number 0.5 is not one",
            ),
            (
                cmp(Operand::Interval { start: None, end: None }, Eq, n(1)),
                "an INTERVAL can only be an argument of a T_ temporal function",
            ),
        ] {
            let got = run(&store, &id, cond.clone());
            match (want.is_empty(), got) {
                (true, Ok(_)) => {}
                (true, Err(e)) => assert!(!e.to_string().contains("Invalid"), "{cond:?}: {e}"),
                (false, _) => assert_eq!(err(cond.clone()), want, "{cond:?}"),
            }
        }
        // Too large: a list of more than MAX_NODES comparisons.
        let big = Cond::Or((0..MAX_NODES as i64).map(|i| cmp(p("population"), Eq, n(i))).collect());
        assert!(err(big).starts_with("the filter is too large"));
        let mut deep = Cond::Bool(true);
        for _ in 0..=MAX_DEPTH {
            deep = Cond::Not(Box::new(deep));
        }
        assert_eq!(err(deep), format!("the filter nests more than {MAX_DEPTH} levels deep"));
    }

    /// The SQL of `cond` over the districts' columns, with `geometry` as the geometry column.
    fn sql_of(cond: &Cond, geometry: Option<&str>) -> Result<(String, Vec<SqlValue>)> {
        let mut columns = vec![Column { name: "_id".into(), field_type: F::Integer }];
        columns.extend(COLUMNS.iter().map(|(n, t)| Column { name: (*n).into(), field_type: *t }));
        let mut sql = Sql::default();
        translate(cond, "res-1", &columns, geometry, &mut sql)?;
        Ok((sql.text, sql.params))
    }

    #[test]
    fn spatial_conditions_prefilter_with_the_rtree_then_test_exactly() {
        let poly = r#"{"type":"Polygon","coordinates":[[[114,22],[115,22],[115,23],[114,22]]]}"#;
        let spatial = |op| Cond::Spatial {
            op,
            property: "shape".into(),
            geometry: poly.into(),
            bbox: [114.0, 22.0, 115.0, 23.0],
        };
        let (text, params) = sql_of(&spatial(SpatialOp::Intersects), Some("shape")).unwrap();
        assert_eq!(
            text,
            r#"("_id" IN (SELECT id FROM "res-1~geo" WHERE minx <= ?3 AND maxx >= ?1 AND miny <= ?4 AND maxy >= ?2) AND cd_relate("shape", ?5, 'intersects'))"#
        );
        assert_eq!(
            params,
            vec![
                SqlValue::Real(114.0 - BOX_SLACK),
                SqlValue::Real(22.0 - BOX_SLACK),
                SqlValue::Real(115.0 + BOX_SLACK),
                SqlValue::Real(23.0 + BOX_SLACK),
                SqlValue::Text(poly.into())
            ]
        );
        let (text, _) = sql_of(&spatial(SpatialOp::Within), Some("shape")).unwrap();
        assert!(text.contains("WHERE minx >= ?1 AND maxx <= ?3 AND miny >= ?2 AND maxy <= ?4) AND cd_relate(\"shape\", ?5, 'within')"), "{text}");
        let (text, _) = sql_of(&spatial(SpatialOp::Contains), Some("shape")).unwrap();
        assert!(text.contains("WHERE minx <= ?5 AND maxx >= ?7 AND miny <= ?6 AND maxy >= ?8) AND cd_relate(\"shape\", ?9, 'contains')"), "{text}");
        let (text, _) = sql_of(&spatial(SpatialOp::Disjoint), Some("shape")).unwrap();
        assert!(
            text.starts_with(r#"("shape" IS NOT NULL AND (NOT "_id" IN (SELECT id FROM "res-1~geo""#),
            "{text}"
        );
        assert!(text.ends_with(r#"OR cd_relate("shape", ?5, 'disjoint')))"#), "{text}");
        for op in SpatialOp::ALL {
            let (text, _) = sql_of(&spatial(op), Some("shape")).unwrap();
            assert!(text.contains(&format!("'{}')", op.name()[2..].to_ascii_lowercase())), "{text}");
        }
        let (text, params) =
            sql_of(&Cond::DWithin { lon: 114.17, lat: 22.3, metres: 500.0 }, Some("shape")).unwrap();
        assert!(text.ends_with(r#"AND cd_distance_m("shape", ?5, ?6) <= ?7)"#), "{text}");
        let (SqlValue::Real(x0), SqlValue::Real(x1), SqlValue::Real(y0), SqlValue::Real(y1)) =
            (&params[0], &params[2], &params[1], &params[3])
        else {
            panic!("{params:?}")
        };
        // The box holds every point 500 m away: about 0.0049 degrees of longitude, 0.0045 of latitude.
        assert!(114.17 - x0 > 0.0049 && x1 - 114.17 > 0.0049 && 114.17 - x0 < 0.01, "{x0} {x1}");
        assert!(22.3 - y0 > 0.0045 && y1 - 22.3 > 0.0045 && 22.3 - y0 < 0.01, "{y0} {y1}");
        assert_eq!(params[4..], [SqlValue::Real(114.17), SqlValue::Real(22.3), SqlValue::Real(500.0)]);

        let err = |c: &Cond, g| sql_of(c, g).unwrap_err().to_string();
        assert_eq!(err(&spatial(SpatialOp::Intersects), None), "S_INTERSECTS: this resource has no geometry");
        assert_eq!(
            err(&Cond::DWithin { lon: 114.0, lat: 22.0, metres: 1.0 }, None),
            "a distance filter: this resource has no geometry"
        );
        assert_eq!(
            err(&Cond::DWithin { lon: 114.0, lat: 95.0, metres: 1.0 }, Some("shape")),
            "the point (114, 95) is not a WGS 84 longitude and latitude"
        );
        assert_eq!(
            err(&Cond::DWithin { lon: 114.0, lat: 22.0, metres: -1.0 }, Some("shape")),
            "the distance -1 is not a number of metres >= 0"
        );
        let bad_box = Cond::Spatial {
            op: SpatialOp::Within,
            property: "shape".into(),
            geometry: poly.into(),
            bbox: [1.0, 0.0, 0.0, 1.0],
        };
        assert_eq!(
            err(&bad_box, Some("shape")),
            "S_WITHIN: the bounding box [1.0, 0.0, 0.0, 1.0] is not [min x, min y, max x, max y]"
        );
    }

    #[test]
    fn like_patterns_become_globs() {
        for (like, glob) in [
            ("Kow%", "Kow*"),
            ("_a%", "?a*"),
            ("50\\%", "50%"),
            ("a\\_b", "a_b"),
            ("x*y?[z]", "x[*]y[?][[]z]"),
            ("back\\\\slash", "back\\slash"),
            ("中環%", "中環*"),
        ] {
            assert_eq!(glob_pattern(like).unwrap(), glob, "{like}");
        }
        assert!(glob_pattern("bad\\").unwrap_err().to_string().contains("ends with the escape"));
    }

    #[test]
    fn long_lists_nest_as_balanced_trees() {
        let parts: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let text = balanced(&parts, "AND").unwrap();
        let mut depth = 0usize;
        let mut max = 0usize;
        for c in text.chars() {
            match c {
                '(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        assert_eq!(max, 10);
        assert!(text.starts_with("((((") && text.contains("c999"));
    }
}
