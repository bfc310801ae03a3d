//! CQL2 (OGC 21-065, Common Query Language 1.0) in its text and JSON encodings, parsed into the
//! store's [`Cond`]; and the other filters of OGC API - Features (`bbox`, `datetime`) as conditions.
//!
//! Supported: comparisons (`= <> < <= > >=`), `AND`/`OR`/`NOT` with the usual precedence and
//! parentheses, `[NOT] LIKE` (`%`, `_`, `\` escapes), `[NOT] BETWEEN`, `[NOT] IN (...)`,
//! `IS [NOT] NULL`, `CASEI`/`ACCENTI`, arithmetic (`+ - * / % div ^`), boolean, string (`''` escapes a
//! quote), number, `DATE('...')`, `TIMESTAMP('...')` and `INTERVAL(..., ...)` literals, the spatial
//! functions `S_INTERSECTS`, `S_DISJOINT`, `S_WITHIN`, `S_CONTAINS`, `S_TOUCHES`, `S_CROSSES`,
//! `S_OVERLAPS`, `S_EQUALS` with WKT (`POINT`, `LINESTRING`, `POLYGON`, `MULTI*`,
//! `GEOMETRYCOLLECTION`, optionally `Z`), `BBOX(...)` or GeoJSON geometries, and every `T_` temporal
//! function. Property names are plain identifiers or double-quoted (`"地區 名稱"`, `""` escapes a
//! quote). Keywords and function names are case-insensitive. Not supported: array functions (`A_`),
//! custom functions; each is a clear error.
//!
//! Geometry literals are in the filter's CRS; the caller passes `to_wgs84`, which maps each `(x, y)`
//! in that CRS to WGS 84 `(longitude, latitude)` ([`filter_crs`] gives it for CRS84 and EPSG:4326).
//!
//! **Invariants:** parsing is bounded: at most [`MAX_LEN`] bytes of input and [`MAX_DEPTH`] levels
//! of nesting (parentheses, functions, JSON objects), so hostile input cannot exhaust the stack;
//! no input panics. Errors say where (the character, counted from 1, or the JSON path) and what was
//! expected.

use citydata_model::text;
use citydata_store::{ArithOp, CmpOp, Cond, Literal, Operand, SpatialOp, TemporalOp};
use serde_json::Value as Json;

use crate::ApiError;

/// The longest filter accepted, in bytes.
pub(crate) const MAX_LEN: usize = 64 * 1024;
/// The deepest nesting accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// The most items in one `IN` list.
const MAX_LIST: usize = 1000;

/// What is wrong with a filter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Cql2Error {
    /// CQL2 text that does not follow the grammar (or a literal in it that is not valid).
    #[error("CQL2 syntax error at character {at}: {message}")]
    Syntax {
        /// The character (counted from 1) where the problem is.
        at: usize,
        /// What was expected and found.
        message: String,
    },
    /// CQL2 JSON that is not JSON or not a CQL2 expression.
    #[error("CQL2 JSON error at {path}: {message}")]
    Json {
        /// Where: a JSON path such as `$.args[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The filter is longer than [`MAX_LEN`].
    #[error("the filter is {0} bytes long; at most {MAX_LEN} are accepted")]
    TooLong(usize),
    /// A query parameter other than the filter itself (`filter-lang`, `filter-crs`, `bbox`,
    /// `datetime`) has a value that is not supported.
    #[error("{0}")]
    Parameter(String),
}

impl From<Cql2Error> for ApiError {
    fn from(e: Cql2Error) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// The filter languages (`filter-lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterLang {
    /// `cql2-text` (the default).
    Text,
    /// `cql2-json`.
    Json,
}

impl FilterLang {
    /// The language of a `filter-lang` value; `None` (the parameter absent) is CQL2 text.
    pub(crate) fn parse(value: Option<&str>) -> Result<FilterLang, Cql2Error> {
        match value.map(str::trim) {
            None | Some("cql2-text") => Ok(FilterLang::Text),
            Some("cql2-json") => Ok(FilterLang::Json),
            Some(other) => Err(Cql2Error::Parameter(format!(
                "filter-lang {other:?} is not supported; use cql2-text or cql2-json"
            ))),
        }
    }
}

/// A map from the coordinates of a CRS to WGS 84 `(longitude, latitude)`.
pub(crate) type ToWgs84 = dyn Fn(f64, f64) -> (f64, f64);

pub(crate) fn parse(lang: FilterLang, input: &str, to_wgs84: &ToWgs84) -> Result<Cond, Cql2Error> {
    match lang {
        FilterLang::Text => parse_text(input, to_wgs84),
        FilterLang::Json => parse_json(input, to_wgs84),
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry literals

/// A geometry literal with WGS 84 positions (`[lon, lat]` or `[lon, lat, z]`).
#[derive(Debug, Clone, PartialEq)]
enum Geom {
    Point(Vec<f64>),
    LineString(Vec<Vec<f64>>),
    Polygon(Vec<Vec<Vec<f64>>>),
    MultiPoint(Vec<Vec<f64>>),
    MultiLineString(Vec<Vec<Vec<f64>>>),
    MultiPolygon(Vec<Vec<Vec<Vec<f64>>>>),
    Collection(Vec<Geom>),
}

impl Geom {
    fn to_json(&self) -> Json {
        let (kind, key, value) = match self {
            Geom::Point(p) => ("Point", "coordinates", serde_json::json!(p)),
            Geom::LineString(l) => ("LineString", "coordinates", serde_json::json!(l)),
            Geom::Polygon(p) => ("Polygon", "coordinates", serde_json::json!(p)),
            Geom::MultiPoint(p) => ("MultiPoint", "coordinates", serde_json::json!(p)),
            Geom::MultiLineString(l) => ("MultiLineString", "coordinates", serde_json::json!(l)),
            Geom::MultiPolygon(p) => ("MultiPolygon", "coordinates", serde_json::json!(p)),
            Geom::Collection(g) => {
                ("GeometryCollection", "geometries", Json::Array(g.iter().map(Geom::to_json).collect()))
            }
        };
        let mut m = serde_json::Map::new();
        m.insert("type".into(), kind.into());
        m.insert(key.into(), value);
        Json::Object(m)
    }

    fn positions<'a>(&'a self, out: &mut Vec<&'a [f64]>) {
        match self {
            Geom::Point(p) => out.push(p),
            Geom::LineString(l) | Geom::MultiPoint(l) => out.extend(l.iter().map(Vec::as_slice)),
            Geom::Polygon(p) | Geom::MultiLineString(p) => {
                out.extend(p.iter().flatten().map(Vec::as_slice));
            }
            Geom::MultiPolygon(m) => out.extend(m.iter().flatten().flatten().map(Vec::as_slice)),
            Geom::Collection(g) => g.iter().for_each(|g| g.positions(out)),
        }
    }

    /// `[min lon, min lat, max lon, max lat]`; `None` when there is no position.
    fn bbox(&self) -> Option<[f64; 4]> {
        let mut all = Vec::new();
        self.positions(&mut all);
        let first = all.first()?;
        let mut b = [first[0], first[1], first[0], first[1]];
        for p in &all {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].min(p[1]);
            b[2] = b[2].max(p[0]);
            b[3] = b[3].max(p[1]);
        }
        Some(b)
    }

    /// Checks the shape rules of Simple Features that a relation test relies on.
    fn check(&self) -> Result<(), String> {
        let line = |l: &[Vec<f64>]| {
            if l.len() < 2 {
                Err(format!("a line string needs at least 2 positions; this one has {}", l.len()))
            } else {
                Ok(())
            }
        };
        let ring = |r: &[Vec<f64>]| {
            if r.len() < 4 {
                Err(format!("a polygon ring needs at least 4 positions; this one has {}", r.len()))
            } else if r.first().map(|p| &p[..2]) != r.last().map(|p| &p[..2]) {
                Err("a polygon ring must end where it starts".to_owned())
            } else {
                Ok(())
            }
        };
        let polygon = |p: &[Vec<Vec<f64>>]| {
            if p.is_empty() {
                return Err("a polygon needs at least one ring".to_owned());
            }
            p.iter().try_for_each(|r| ring(r))
        };
        match self {
            Geom::Point(_) => Ok(()),
            Geom::LineString(l) => line(l),
            Geom::Polygon(p) => polygon(p),
            Geom::MultiPoint(p) if p.is_empty() => Err("a multipoint needs at least one point".into()),
            Geom::MultiPoint(_) => Ok(()),
            Geom::MultiLineString(m) if m.is_empty() => {
                Err("a multilinestring needs at least one line string".into())
            }
            Geom::MultiLineString(m) => m.iter().try_for_each(|l| line(l)),
            Geom::MultiPolygon(m) if m.is_empty() => Err("a multipolygon needs at least one polygon".into()),
            Geom::MultiPolygon(m) => m.iter().try_for_each(|p| polygon(p)),
            Geom::Collection(g) if g.is_empty() => {
                Err("a geometry collection needs at least one geometry".into())
            }
            Geom::Collection(g) => g.iter().try_for_each(Geom::check),
        }
    }
}

/// A position from coordinates in the filter's CRS, mapped to WGS 84 and checked.
fn position(coords: &[f64], to_wgs84: &ToWgs84) -> Result<Vec<f64>, String> {
    let (x, y) = match coords {
        [x, y] | [x, y, _] => (*x, *y),
        _ => return Err(format!("a position has 2 or 3 coordinates; this one has {}", coords.len())),
    };
    if !coords.iter().all(|c| c.is_finite()) {
        return Err("a coordinate is not a finite number".to_owned());
    }
    let (lon, lat) = to_wgs84(x, y);
    if !(lon.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lon)
        && (-90.0..=90.0).contains(&lat))
    {
        return Err(format!(
            "the position ({x}, {y}) is not a longitude and latitude in WGS 84 (longitude -180..180, \
             latitude -90..90) in the filter's CRS"
        ));
    }
    let mut p = vec![lon, lat];
    if let [_, _, z] = coords {
        p.push(*z);
    }
    Ok(p)
}

/// The geometry of a bounding box given as 4 or 6 numbers (`minx, miny, [minz,] maxx, maxy,
/// [maxz]`) in the filter's CRS: a WGS 84 polygon through its four corners.
fn bbox_geom(values: &[f64], to_wgs84: &ToWgs84) -> Result<Geom, String> {
    let (x0, y0, x1, y1) = match values {
        [x0, y0, x1, y1] | [x0, y0, _, x1, y1, _] => (*x0, *y0, *x1, *y1),
        _ => return Err(format!("a bounding box has 4 or 6 numbers; this one has {}", values.len())),
    };
    if !values.iter().all(|v| v.is_finite()) {
        return Err("a bounding box number is not finite".to_owned());
    }
    if x0 > x1 || y0 > y1 {
        return Err(format!(
            "the bounding box ({x0}, {y0}, {x1}, {y1}) has its minimum above its maximum; boxes across \
             the antimeridian are not supported"
        ));
    }
    let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
    let mut ring = Vec::with_capacity(5);
    for (x, y) in corners {
        ring.push(position(&[x, y], to_wgs84)?);
    }
    Ok(Geom::Polygon(vec![ring]))
}

/// A spatial condition from its relation, the property and a geometry literal.
fn spatial(op: SpatialOp, property: String, g: &Geom) -> Result<Cond, String> {
    g.check()?;
    let bbox = g.bbox().ok_or("the geometry has no positions")?;
    Ok(Cond::Spatial { op, property, geometry: g.to_json().to_string(), bbox })
}

// ---------------------------------------------------------------------------------------------
// Literals shared by both encodings

fn date_literal(s: &str) -> Result<Literal, String> {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' && text::parse_date(s).is_some() {
        Ok(Literal::Date(s.to_owned()))
    } else {
        Err(format!("'{s}' is not a date (YYYY-MM-DD)"))
    }
}

fn timestamp_literal(s: &str) -> Result<Literal, String> {
    let ok = s.len() >= 19
        && s.as_bytes().get(10) == Some(&b'T')
        && s.get(..10).is_some_and(|d| date_literal(d).is_ok())
        && text::parse_datetime(s).is_some();
    if ok {
        Ok(Literal::Timestamp(s.to_owned()))
    } else {
        Err(format!("'{s}' is not a timestamp (YYYY-MM-DDTHH:MM:SSZ)"))
    }
}

/// One end of an interval given as a string: `..` (open), a date or a timestamp.
fn interval_end(s: &str) -> Result<Option<Box<Operand>>, String> {
    if s == ".." {
        return Ok(None);
    }
    let lit = if s.len() == 10 { date_literal(s)? } else { timestamp_literal(s)? };
    Ok(Some(Box::new(Operand::Literal(lit))))
}

fn spatial_op(name: &str) -> Option<SpatialOp> {
    SpatialOp::from_name(name.strip_prefix("s_")?)
}

fn temporal_op(name: &str) -> Option<TemporalOp> {
    TemporalOp::from_name(name.strip_prefix("t_")?)
}

fn cmp_op(s: &str) -> Option<CmpOp> {
    Some(match s {
        "=" => CmpOp::Eq,
        "<>" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        _ => return None,
    })
}

fn arith_op(s: &str) -> Option<ArithOp> {
    Some(match s {
        "+" => ArithOp::Add,
        "-" => ArithOp::Sub,
        "*" => ArithOp::Mul,
        "/" => ArithOp::Div,
        "%" => ArithOp::Mod,
        "div" => ArithOp::IntDiv,
        "^" => ArithOp::Pow,
        _ => return None,
    })
}

fn not(c: Cond) -> Cond {
    Cond::Not(Box::new(c))
}

// ---------------------------------------------------------------------------------------------
// CQL2 text

/// Parses CQL2 text.
pub(crate) fn parse_text(input: &str, to_wgs84: &ToWgs84) -> Result<Cond, Cql2Error> {
    if input.len() > MAX_LEN {
        return Err(Cql2Error::TooLong(input.len()));
    }
    let tokens = tokenize(input)?;
    let mut p = Parser { tokens, pos: 0, depth: 0, to_wgs84 };
    let at = p.peek_at();
    let e = p.or()?;
    if !matches!(p.peek(), Tok::End) {
        return Err(p.expected("AND, OR or the end of the filter"));
    }
    p.condition(e, at)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted identifier or keyword.
    Word(String),
    /// A double-quoted identifier.
    Quoted(String),
    /// A single-quoted string.
    Str(String),
    /// A number, and its value as an integer when written as one.
    Num(f64, Option<i64>),
    /// Punctuation or an operator.
    Sym(&'static str),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("\"{w}\""),
            Tok::Quoted(w) => format!("the property \"{w}\""),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Num(n, Some(i)) if *n == *i as f64 => format!("the number {i}"),
            Tok::Num(n, _) => format!("the number {n}"),
            Tok::Sym(s) => format!("\"{s}\""),
            Tok::End => "end of text".to_owned(),
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }
}

struct Token {
    tok: Tok,
    /// The first character, counted from 1.
    at: usize,
}

fn syntax(at: usize, message: impl Into<String>) -> Cql2Error {
    Cql2Error::Syntax { at, message: message.into() }
}

fn tokenize(input: &str) -> Result<Vec<Token>, Cql2Error> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(syntax(
                                at,
                                if c == '\'' {
                                    "this string has no closing ' (write '' for a quote inside it)"
                                } else {
                                    "this property name has no closing \""
                                },
                            ))
                        }
                        Some(&q) if q == c => {
                            if chars.get(i + 1) == Some(&c) {
                                s.push(c);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&x) => {
                            s.push(x);
                            i += 1;
                        }
                    }
                }
                if c == '\'' {
                    Tok::Str(s)
                } else {
                    Tok::Quoted(s)
                }
            }
            c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let mut int = true;
                if chars.get(i) == Some(&'.') && chars.get(i + 1) != Some(&'.') {
                    int = false;
                    i += 1;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let mut j = i + 1;
                    if matches!(chars.get(j), Some('+' | '-')) {
                        j += 1;
                    }
                    if chars.get(j).is_some_and(char::is_ascii_digit) {
                        int = false;
                        i = j;
                        while chars.get(i).is_some_and(char::is_ascii_digit) {
                            i += 1;
                        }
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| syntax(at, format!("{text} is not a number")))?;
                if !n.is_finite() {
                    return Err(syntax(at, format!("the number {text} is too large")));
                }
                Tok::Num(n, if int { text.parse::<i64>().ok() } else { None })
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':')) {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let sym = match two.as_str() {
                    "<>" => "<>",
                    "<=" => "<=",
                    ">=" => ">=",
                    "!=" => {
                        return Err(syntax(
                            at,
                            "expected a comparison operator, found \"!=\"; CQL2 writes <>",
                        ))
                    }
                    _ => match c {
                        '=' => "=",
                        '<' => "<",
                        '>' => ">",
                        '(' => "(",
                        ')' => ")",
                        '[' => "[",
                        ']' => "]",
                        ',' => ",",
                        '+' => "+",
                        '-' => "-",
                        '*' => "*",
                        '/' => "/",
                        '%' => "%",
                        '^' => "^",
                        other => {
                            return Err(syntax(at, format!("unexpected character {other:?}")));
                        }
                    },
                };
                i += sym.chars().count();
                out.push(Token { tok: Tok::Sym(sym), at });
                continue;
            }
        };
        out.push(Token { tok, at });
    }
    out.push(Token { tok: Tok::End, at: chars.len() + 1 });
    Ok(out)
}

/// What a part of a CQL2 text expression is, before it is known to be a condition or a value.
enum Expr {
    Cond(Cond),
    Value(Operand),
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    to_wgs84: &'a ToWgs84,
}

const PREDICATE_OPS: &str = "a comparison (=, <>, <, <=, >, >=), LIKE, BETWEEN, IN or IS NULL";

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::End, |t| &t.tok)
    }

    fn peek_at(&self) -> usize {
        self.tokens.get(self.pos).or(self.tokens.last()).map_or(1, |t| t.at)
    }

    fn peek2(&self) -> &Tok {
        self.tokens.get(self.pos + 1).map_or(&Tok::End, |t| &t.tok)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expected(&self, what: &str) -> Cql2Error {
        syntax(self.peek_at(), format!("expected {what}, found {}", self.peek().describe()))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek().is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(x) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str, after: &str) -> Result<(), Cql2Error> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.expected(&format!("\"{s}\" {after}")))
        }
    }

    fn enter(&mut self) -> Result<(), Cql2Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax(
                self.peek_at(),
                format!("the filter nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// An expression that must be a condition (`at` locates it for the error).
    fn condition(&self, e: Expr, at: usize) -> Result<Cond, Cql2Error> {
        match e {
            Expr::Cond(c) => Ok(c),
            Expr::Value(Operand::Literal(Literal::Bool(b))) => Ok(Cond::Bool(b)),
            Expr::Value(Operand::Property(p)) => Err(syntax(
                at,
                format!(
                    "expected a condition, found the property \"{p}\" alone; follow it with {PREDICATE_OPS}"
                ),
            )),
            Expr::Value(_) => Err(syntax(
                at,
                format!("expected a condition, found a value; follow it with {PREDICATE_OPS}"),
            )),
        }
    }

    /// An expression that must be a value.
    fn value(&self, e: Expr, at: usize) -> Result<Operand, Cql2Error> {
        match e {
            Expr::Value(v) => Ok(v),
            Expr::Cond(_) => Err(syntax(at, "expected a value, found a condition")),
        }
    }

    fn or(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let first = self.and()?;
        if !self.peek().is_word("or") {
            return Ok(first);
        }
        let mut parts = vec![self.condition(first, at)?];
        while self.eat_word("or") {
            let at = self.peek_at();
            let e = self.and()?;
            parts.push(self.condition(e, at)?);
        }
        Ok(Expr::Cond(Cond::Or(parts)))
    }

    fn and(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let first = self.not()?;
        if !self.peek().is_word("and") {
            return Ok(first);
        }
        let mut parts = vec![self.condition(first, at)?];
        while self.eat_word("and") {
            let at = self.peek_at();
            let e = self.not()?;
            parts.push(self.condition(e, at)?);
        }
        Ok(Expr::Cond(Cond::And(parts)))
    }

    fn not(&mut self) -> Result<Expr, Cql2Error> {
        if self.eat_word("not") {
            self.enter()?;
            let at = self.peek_at();
            let e = self.not()?;
            self.leave();
            return Ok(Expr::Cond(not(self.condition(e, at)?)));
        }
        self.predicate()
    }

    /// A value followed by a predicate operator, or a condition by itself.
    fn predicate(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let left = self.additive()?;
        let negated = self.peek().is_word("not")
            && (self.peek2().is_word("like")
                || self.peek2().is_word("between")
                || self.peek2().is_word("in"));
        if negated {
            self.pos += 1;
        }
        let op_at = self.peek_at();
        let cond = match self.peek().clone() {
            Tok::Sym(s) if cmp_op(s).is_some() => {
                self.pos += 1;
                let left = self.value(left, at)?;
                let right = self.operand(&format!("a value after \"{s}\""))?;
                Cond::Compare { left, op: cmp_op(s).unwrap_or(CmpOp::Eq), right }
            }
            t if t.is_word("like") => {
                self.pos += 1;
                let value = self.value(left, at)?;
                let pattern = self.operand("a pattern after LIKE")?;
                Cond::Like { value, pattern }
            }
            t if t.is_word("between") => {
                self.pos += 1;
                let value = self.value(left, at)?;
                let low = self.operand("a value after BETWEEN")?;
                if !self.eat_word("and") {
                    return Err(self.expected("AND between the bounds of BETWEEN"));
                }
                let high = self.operand("a value after BETWEEN ... AND")?;
                Cond::Between { value, low, high }
            }
            t if t.is_word("in") => {
                self.pos += 1;
                let value = self.value(left, at)?;
                self.expect_sym("(", "after IN")?;
                let mut list = Vec::new();
                loop {
                    if list.len() == MAX_LIST {
                        return Err(syntax(self.peek_at(), format!("IN takes at most {MAX_LIST} values")));
                    }
                    list.push(self.operand("a value in the list of IN")?);
                    if self.eat_sym(")") {
                        break;
                    }
                    self.expect_sym(",", "or \")\" in the list of IN")?;
                }
                Cond::In { value, list }
            }
            t if t.is_word("is") && !negated => {
                self.pos += 1;
                let value = self.value(left, at)?;
                let is_not = self.eat_word("not");
                if !self.eat_word("null") {
                    return Err(self.expected(if is_not {
                        "NULL after IS NOT"
                    } else {
                        "NULL or NOT NULL after IS"
                    }));
                }
                let c = Cond::IsNull(value);
                return Ok(Expr::Cond(if is_not { not(c) } else { c }));
            }
            _ if negated => return Err(syntax(op_at, "expected LIKE, BETWEEN or IN after NOT")),
            _ => return Ok(left),
        };
        Ok(Expr::Cond(if negated { not(cond) } else { cond }))
    }

    /// A value (an operand of a predicate), `what` naming it in the error.
    fn operand(&mut self, what: &str) -> Result<Operand, Cql2Error> {
        if matches!(self.peek(), Tok::End | Tok::Sym(")" | ",")) || self.peek().is_word("and") {
            return Err(self.expected(what));
        }
        let at = self.peek_at();
        let e = self.additive()?;
        self.value(e, at)
    }

    fn additive(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let mut left = self.multiplicative()?;
        while let Tok::Sym(s @ ("+" | "-")) = self.peek().clone() {
            self.pos += 1;
            let l = self.value(left, at)?;
            let r_at = self.peek_at();
            let r = self.multiplicative()?;
            let r = self.value(r, r_at)?;
            left = Expr::Value(arith(l, s, r));
        }
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let mut left = self.power()?;
        loop {
            let s = match self.peek().clone() {
                Tok::Sym(s @ ("*" | "/" | "%")) => s,
                t if t.is_word("div") => "div",
                _ => break,
            };
            self.pos += 1;
            let l = self.value(left, at)?;
            let r_at = self.peek_at();
            let r = self.power()?;
            let r = self.value(r, r_at)?;
            left = Expr::Value(arith(l, s, r));
        }
        Ok(left)
    }

    /// `a ^ b`, right-associative.
    fn power(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        let base = self.unary()?;
        if !self.eat_sym("^") {
            return Ok(base);
        }
        let l = self.value(base, at)?;
        self.enter()?;
        let r_at = self.peek_at();
        let r = self.power()?;
        self.leave();
        let r = self.value(r, r_at)?;
        Ok(Expr::Value(arith(l, "^", r)))
    }

    fn unary(&mut self) -> Result<Expr, Cql2Error> {
        if self.eat_sym("-") {
            let at = self.peek_at();
            self.enter()?;
            let e = self.unary()?;
            self.leave();
            return Ok(Expr::Value(match self.value(e, at)? {
                Operand::Literal(Literal::Int(i)) => Operand::Literal(Literal::Int(-i)),
                Operand::Literal(Literal::Real(r)) => Operand::Literal(Literal::Real(-r)),
                other => arith(Operand::Literal(Literal::Int(0)), "-", other),
            }));
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek_at();
        match self.next() {
            Tok::Sym("(") => {
                self.enter()?;
                let e = self.or()?;
                self.expect_sym(")", "to close the \"(\"")?;
                self.leave();
                Ok(e)
            }
            Tok::Str(s) => Ok(Expr::Value(Operand::Literal(Literal::Text(s)))),
            Tok::Num(_, Some(i)) => Ok(Expr::Value(Operand::Literal(Literal::Int(i)))),
            Tok::Num(n, None) => Ok(Expr::Value(Operand::Literal(Literal::Real(n)))),
            Tok::Quoted(name) => Ok(Expr::Value(Operand::Property(name))),
            Tok::Word(w) => {
                let lower = w.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => return Ok(Expr::Value(Operand::Literal(Literal::Bool(true)))),
                    "false" => return Ok(Expr::Value(Operand::Literal(Literal::Bool(false)))),
                    "and" | "or" | "not" | "like" | "between" | "in" | "is" | "null" => {
                        self.pos -= 1;
                        return Err(self.expected("a value or a condition"));
                    }
                    _ => {}
                }
                if !matches!(self.peek(), Tok::Sym("(")) {
                    if is_geometry_keyword(&lower) {
                        self.pos -= 1;
                        return Err(syntax(
                            at,
                            format!("a {} geometry can only be an argument of a spatial function such as S_INTERSECTS", w.to_ascii_uppercase()),
                        ));
                    }
                    return Ok(Expr::Value(Operand::Property(w)));
                }
                self.pos += 1; // "("
                self.enter()?;
                let e = self.function(&w, &lower, at)?;
                self.leave();
                Ok(e)
            }
            Tok::End => {
                self.pos = self.tokens.len().saturating_sub(1);
                Err(syntax(at, "expected a value or a condition, found end of text"))
            }
            other => {
                self.pos -= 1;
                Err(syntax(at, format!("expected a value or a condition, found {}", other.describe())))
            }
        }
    }

    /// The rest of a function call after `name(`.
    fn function(&mut self, name: &str, lower: &str, at: usize) -> Result<Expr, Cql2Error> {
        let upper = name.to_ascii_uppercase();
        match lower {
            "date" | "timestamp" => {
                let s_at = self.peek_at();
                let Tok::Str(s) = self.next() else {
                    self.pos -= 1;
                    return Err(self.expected(&format!("a quoted string in {upper}('...')")));
                };
                let lit = if lower == "date" { date_literal(&s) } else { timestamp_literal(&s) }
                    .map_err(|m| syntax(s_at, m))?;
                self.expect_sym(")", &format!("to close {upper}("))?;
                Ok(Expr::Value(Operand::Literal(lit)))
            }
            "interval" => {
                let start = self.interval_end()?;
                self.expect_sym(",", "between the ends of INTERVAL")?;
                let end = self.interval_end()?;
                self.expect_sym(")", "to close INTERVAL(")?;
                Ok(Expr::Value(Operand::Interval { start, end }))
            }
            "casei" | "accenti" => {
                let inner = self.operand(&format!("a value in {upper}(...)"))?;
                self.expect_sym(")", &format!("to close {upper}("))?;
                Ok(Expr::Value(if lower == "casei" {
                    Operand::CaseI(Box::new(inner))
                } else {
                    Operand::AccentI(Box::new(inner))
                }))
            }
            _ => {
                if let Some(op) = spatial_op(lower) {
                    return self.spatial(op, &upper, at).map(Expr::Cond);
                }
                if let Some(op) = temporal_op(lower) {
                    let left = self.temporal_arg(&upper)?;
                    self.expect_sym(",", &format!("between the arguments of {upper}"))?;
                    let right = self.temporal_arg(&upper)?;
                    self.expect_sym(")", &format!("to close {upper}("))?;
                    return Ok(Expr::Cond(Cond::Temporal { op, left, right }));
                }
                if lower.starts_with("a_") {
                    return Err(syntax(at, format!("the array function {upper} is not supported")));
                }
                if is_geometry_keyword(lower) {
                    return Err(syntax(
                        at,
                        format!("a {upper} geometry can only be an argument of a spatial function such as S_INTERSECTS"),
                    ));
                }
                Err(syntax(
                    at,
                    format!(
                        "unknown function {name}; the functions are CASEI, ACCENTI, DATE, TIMESTAMP, INTERVAL, \
                         S_INTERSECTS, S_DISJOINT, S_WITHIN, S_CONTAINS, S_TOUCHES, S_CROSSES, S_OVERLAPS, \
                         S_EQUALS and the T_ temporal functions"
                    ),
                ))
            }
        }
    }

    fn interval_end(&mut self) -> Result<Option<Box<Operand>>, Cql2Error> {
        let at = self.peek_at();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.pos += 1;
                interval_end(&s).map_err(|m| syntax(at, m))
            }
            _ => {
                let e = self.operand("an end of INTERVAL: '..', a date, a timestamp or a property")?;
                match e {
                    Operand::Literal(Literal::Date(_) | Literal::Timestamp(_)) | Operand::Property(_) => {
                        Ok(Some(Box::new(e)))
                    }
                    _ => Err(syntax(
                        at,
                        "expected '..', a date, a timestamp or a property as an end of INTERVAL",
                    )),
                }
            }
        }
    }

    fn temporal_arg(&mut self, f: &str) -> Result<Operand, Cql2Error> {
        let at = self.peek_at();
        let e = self.operand(&format!("an instant or an interval in {f}"))?;
        match e {
            Operand::Property(_)
            | Operand::Interval { .. }
            | Operand::Literal(Literal::Date(_) | Literal::Timestamp(_)) => Ok(e),
            _ => Err(syntax(
                at,
                format!("expected a property, DATE('...'), TIMESTAMP('...') or INTERVAL(...) in {f}"),
            )),
        }
    }

    /// The arguments of a spatial function after its `(`.
    fn spatial(&mut self, op: SpatialOp, f: &str, at: usize) -> Result<Cond, Cql2Error> {
        let a = self.spatial_arg(f)?;
        self.expect_sym(",", &format!("between the arguments of {f}"))?;
        let b = self.spatial_arg(f)?;
        self.expect_sym(")", &format!("to close {f}("))?;
        let (property, geom, op) = match (a, b) {
            (Err(p), Ok(g)) => (p, g, op),
            (Ok(g), Err(p)) => (p, g, op.converse()),
            (Err(_), Err(_)) => {
                return Err(syntax(
                    at,
                    format!("{f} between two properties is not supported; give one geometry literal"),
                ))
            }
            (Ok(_), Ok(_)) => {
                return Err(syntax(at, format!("{f} needs the geometry property as one of its arguments")))
            }
        };
        spatial(op, property, &geom).map_err(|m| syntax(at, m))
    }

    /// A geometry literal (`Ok`) or a property name (`Err`).
    fn spatial_arg(&mut self, f: &str) -> Result<Result<Geom, String>, Cql2Error> {
        let at = self.peek_at();
        match self.peek().clone() {
            Tok::Word(w) if is_geometry_keyword(&w.to_ascii_lowercase()) => {
                self.pos += 1;
                self.enter()?;
                let g = self.wkt(&w.to_ascii_lowercase(), at)?;
                self.leave();
                Ok(Ok(g))
            }
            Tok::Word(w) | Tok::Quoted(w) if !matches!(self.peek2(), Tok::Sym("(")) => {
                self.pos += 1;
                Ok(Err(w))
            }
            _ => Err(self.expected(&format!(
                "the geometry property or a geometry (POINT(...), BBOX(...), ...) in {f}"
            ))),
        }
    }

    /// A WKT geometry or a BBOX, its keyword (`kind`, in lower case) already read.
    fn wkt(&mut self, kind: &str, at: usize) -> Result<Geom, Cql2Error> {
        let upper = kind.to_ascii_uppercase();
        if kind == "bbox" {
            self.expect_sym("(", "after BBOX")?;
            let mut values = Vec::with_capacity(6);
            loop {
                values.push(self.number("a number in BBOX(...)")?);
                if self.eat_sym(")") {
                    break;
                }
                if values.len() == 6 {
                    return Err(self.expected("\")\" after the 6 numbers of BBOX"));
                }
                self.expect_sym(",", "or \")\" in BBOX(...)")?;
            }
            return bbox_geom(&values, self.to_wgs84).map_err(|m| syntax(at, m));
        }
        let z = self.eat_word("z");
        if self.peek().is_word("empty") {
            return Err(syntax(self.peek_at(), format!("an EMPTY {upper} is not supported")));
        }
        let g = self.wkt_body(kind, z, &upper)?;
        g.check().map_err(|m| syntax(at, m))?;
        Ok(g)
    }

    fn wkt_body(&mut self, kind: &str, z: bool, upper: &str) -> Result<Geom, Cql2Error> {
        Ok(match kind {
            "point" => {
                self.expect_sym("(", &format!("after {upper}"))?;
                let p = self.wkt_position(z)?;
                self.expect_sym(")", &format!("to close {upper}("))?;
                Geom::Point(p)
            }
            "linestring" => Geom::LineString(self.wkt_positions(z)?),
            "polygon" => Geom::Polygon(self.wkt_rings(z)?),
            "multipoint" => {
                // Both MULTIPOINT((1 2), (3 4)) and MULTIPOINT(1 2, 3 4).
                self.expect_sym("(", &format!("after {upper}"))?;
                let mut points = Vec::new();
                loop {
                    if self.eat_sym("(") {
                        points.push(self.wkt_position(z)?);
                        self.expect_sym(")", "to close the point")?;
                    } else {
                        points.push(self.wkt_position(z)?);
                    }
                    if self.eat_sym(")") {
                        break;
                    }
                    self.expect_sym(",", "or \")\" between points")?;
                }
                Geom::MultiPoint(points)
            }
            "multilinestring" => Geom::MultiLineString(self.wkt_list(|p| p.wkt_positions(z), upper)?),
            "multipolygon" => Geom::MultiPolygon(self.wkt_list(|p| p.wkt_rings(z), upper)?),
            "geometrycollection" => {
                self.expect_sym("(", &format!("after {upper}"))?;
                let mut parts = Vec::new();
                loop {
                    let at = self.peek_at();
                    let Tok::Word(w) = self.next() else {
                        self.pos -= 1;
                        return Err(
                            self.expected("a geometry (POINT, LINESTRING, ...) in GEOMETRYCOLLECTION")
                        );
                    };
                    let lower = w.to_ascii_lowercase();
                    if !is_geometry_keyword(&lower) || lower == "bbox" {
                        return Err(syntax(
                            at,
                            format!("expected a geometry in GEOMETRYCOLLECTION, found \"{w}\""),
                        ));
                    }
                    self.enter()?;
                    parts.push(self.wkt(&lower, at)?);
                    self.leave();
                    if self.eat_sym(")") {
                        break;
                    }
                    self.expect_sym(",", "or \")\" between geometries")?;
                }
                Geom::Collection(parts)
            }
            _ => return Err(syntax(self.peek_at(), format!("unknown geometry {upper}"))),
        })
    }

    fn wkt_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, Cql2Error>,
        upper: &str,
    ) -> Result<Vec<T>, Cql2Error> {
        self.expect_sym("(", &format!("after {upper}"))?;
        self.enter()?;
        let mut out = Vec::new();
        loop {
            out.push(item(self)?);
            if self.eat_sym(")") {
                break;
            }
            self.expect_sym(",", &format!("or \")\" in {upper}"))?;
        }
        self.leave();
        Ok(out)
    }

    fn wkt_rings(&mut self, z: bool) -> Result<Vec<Vec<Vec<f64>>>, Cql2Error> {
        self.expect_sym("(", "to start the rings of a polygon")?;
        self.enter()?;
        let mut rings = Vec::new();
        loop {
            rings.push(self.wkt_positions(z)?);
            if self.eat_sym(")") {
                break;
            }
            self.expect_sym(",", "or \")\" between rings")?;
        }
        self.leave();
        Ok(rings)
    }

    fn wkt_positions(&mut self, z: bool) -> Result<Vec<Vec<f64>>, Cql2Error> {
        self.expect_sym("(", "to start a list of positions")?;
        let mut out = Vec::new();
        loop {
            out.push(self.wkt_position(z)?);
            if self.eat_sym(")") {
                break;
            }
            self.expect_sym(",", "or \")\" between positions")?;
        }
        Ok(out)
    }

    fn wkt_position(&mut self, z: bool) -> Result<Vec<f64>, Cql2Error> {
        let at = self.peek_at();
        let mut coords = vec![self.number("a coordinate")?, self.number("a second coordinate")?];
        if z || matches!(self.peek(), Tok::Num(..) | Tok::Sym("-")) {
            coords.push(self.number("a third coordinate")?);
        }
        position(&coords, self.to_wgs84).map_err(|m| syntax(at, m))
    }

    fn number(&mut self, what: &str) -> Result<f64, Cql2Error> {
        let minus = self.eat_sym("-");
        match self.peek().clone() {
            Tok::Num(n, _) => {
                self.pos += 1;
                Ok(if minus { -n } else { n })
            }
            _ => Err(self.expected(what)),
        }
    }
}

fn arith(left: Operand, op: &str, right: Operand) -> Operand {
    Operand::Arith { left: Box::new(left), op: arith_op(op).unwrap_or(ArithOp::Add), right: Box::new(right) }
}

fn is_geometry_keyword(lower: &str) -> bool {
    matches!(
        lower,
        "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
            | "bbox"
    )
}

// ---------------------------------------------------------------------------------------------
// CQL2 JSON

/// Parses CQL2 JSON.
pub(crate) fn parse_json(input: &str, to_wgs84: &ToWgs84) -> Result<Cond, Cql2Error> {
    if input.len() > MAX_LEN {
        return Err(Cql2Error::TooLong(input.len()));
    }
    let json: Json = serde_json::from_str(input)
        .map_err(|e| Cql2Error::Json { path: "$".into(), message: format!("not JSON: {e}") })?;
    JsonParser { to_wgs84 }.cond(&json, "$", 0)
}

struct JsonParser<'a> {
    to_wgs84: &'a ToWgs84,
}

fn jerr(path: &str, message: impl Into<String>) -> Cql2Error {
    Cql2Error::Json { path: path.to_owned(), message: message.into() }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl JsonParser<'_> {
    fn depth(path: &str, depth: usize) -> Result<(), Cql2Error> {
        if depth > MAX_DEPTH {
            Err(jerr(path, format!("the filter nests more than {MAX_DEPTH} levels deep")))
        } else {
            Ok(())
        }
    }

    /// `{"op": ..., "args": [...]}`: the op in lower case and the args.
    fn op<'j>(v: &'j Json, path: &str) -> Result<Option<(String, &'j [Json])>, Cql2Error> {
        let Json::Object(m) = v else { return Ok(None) };
        let Some(op) = m.get("op") else { return Ok(None) };
        let Json::String(op) = op else {
            return Err(jerr(&format!("{path}.op"), format!("expected a string, found {}", kind_of(op))));
        };
        let args = match m.get("args") {
            Some(Json::Array(a)) => a.as_slice(),
            Some(other) => {
                return Err(jerr(
                    &format!("{path}.args"),
                    format!("expected an array, found {}", kind_of(other)),
                ))
            }
            None => return Err(jerr(path, format!("the operation \"{op}\" has no \"args\""))),
        };
        if let Some(k) = m.keys().find(|k| *k != "op" && *k != "args") {
            return Err(jerr(path, format!("unexpected member \"{k}\" beside \"op\" and \"args\"")));
        }
        Ok(Some((op.to_ascii_lowercase(), args)))
    }

    fn arity<'j>(args: &'j [Json], n: usize, op: &str, path: &str) -> Result<&'j [Json], Cql2Error> {
        if args.len() == n {
            Ok(args)
        } else {
            Err(jerr(path, format!("\"{op}\" takes {n} arguments; it was given {}", args.len())))
        }
    }

    fn cond(&self, v: &Json, path: &str, depth: usize) -> Result<Cond, Cql2Error> {
        Self::depth(path, depth)?;
        if let Json::Bool(b) = v {
            return Ok(Cond::Bool(*b));
        }
        let Some((op, args)) = Self::op(v, path)? else {
            return Err(jerr(
                path,
                format!(
                    "expected a condition ({{\"op\": ..., \"args\": [...]}} or a boolean), found {}",
                    kind_of(v)
                ),
            ));
        };
        let arg = |i: usize| format!("{path}.args[{i}]");
        Ok(match op.as_str() {
            "and" | "or" => {
                if args.len() < 2 {
                    return Err(jerr(
                        path,
                        format!("\"{op}\" takes at least 2 arguments; it was given {}", args.len()),
                    ));
                }
                let parts = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| self.cond(a, &arg(i), depth + 1))
                    .collect::<Result<_, _>>()?;
                if op == "and" {
                    Cond::And(parts)
                } else {
                    Cond::Or(parts)
                }
            }
            "not" => {
                let a = Self::arity(args, 1, &op, path)?;
                not(self.cond(&a[0], &arg(0), depth + 1)?)
            }
            "=" | "<>" | "<" | "<=" | ">" | ">=" => {
                let a = Self::arity(args, 2, &op, path)?;
                Cond::Compare {
                    left: self.value(&a[0], &arg(0), depth + 1)?,
                    op: cmp_op(&op).unwrap_or(CmpOp::Eq),
                    right: self.value(&a[1], &arg(1), depth + 1)?,
                }
            }
            "like" => {
                let a = Self::arity(args, 2, &op, path)?;
                Cond::Like {
                    value: self.value(&a[0], &arg(0), depth + 1)?,
                    pattern: self.value(&a[1], &arg(1), depth + 1)?,
                }
            }
            "between" => {
                let a = Self::arity(args, 3, &op, path)?;
                Cond::Between {
                    value: self.value(&a[0], &arg(0), depth + 1)?,
                    low: self.value(&a[1], &arg(1), depth + 1)?,
                    high: self.value(&a[2], &arg(2), depth + 1)?,
                }
            }
            "in" => {
                let a = Self::arity(args, 2, &op, path)?;
                let Json::Array(list) = &a[1] else {
                    return Err(jerr(
                        &arg(1),
                        format!("expected an array of values, found {}", kind_of(&a[1])),
                    ));
                };
                if list.len() > MAX_LIST {
                    return Err(jerr(&arg(1), format!("IN takes at most {MAX_LIST} values")));
                }
                Cond::In {
                    value: self.value(&a[0], &arg(0), depth + 1)?,
                    list: list
                        .iter()
                        .enumerate()
                        .map(|(i, x)| self.value(x, &format!("{}[{i}]", arg(1)), depth + 1))
                        .collect::<Result<_, _>>()?,
                }
            }
            "isnull" => {
                let a = Self::arity(args, 1, &op, path)?;
                Cond::IsNull(self.value(&a[0], &arg(0), depth + 1)?)
            }
            s if spatial_op(s).is_some() => {
                let a = Self::arity(args, 2, &op, path)?;
                let sop = spatial_op(s).unwrap_or(SpatialOp::Intersects);
                let first = self.spatial_arg(&a[0], &arg(0), depth + 1)?;
                let second = self.spatial_arg(&a[1], &arg(1), depth + 1)?;
                let (property, geom, sop) = match (first, second) {
                    (Err(p), Ok(g)) => (p, g, sop),
                    (Ok(g), Err(p)) => (p, g, sop.converse()),
                    (Err(_), Err(_)) => {
                        return Err(jerr(path, format!("\"{op}\" between two properties is not supported")))
                    }
                    (Ok(_), Ok(_)) => {
                        return Err(jerr(
                            path,
                            format!("\"{op}\" needs the geometry property as an argument"),
                        ))
                    }
                };
                spatial(sop, property, &geom).map_err(|m| jerr(path, m))?
            }
            s if temporal_op(s).is_some() => {
                let a = Self::arity(args, 2, &op, path)?;
                Cond::Temporal {
                    op: temporal_op(s).unwrap_or(TemporalOp::Equals),
                    left: self.temporal_arg(&a[0], &arg(0), depth + 1)?,
                    right: self.temporal_arg(&a[1], &arg(1), depth + 1)?,
                }
            }
            s if s.starts_with("a_") => {
                return Err(jerr(path, format!("the array function \"{op}\" is not supported")))
            }
            _ => return Err(jerr(&format!("{path}.op"), format!("\"{op}\" is not a CQL2 condition"))),
        })
    }

    fn value(&self, v: &Json, path: &str, depth: usize) -> Result<Operand, Cql2Error> {
        Self::depth(path, depth)?;
        Ok(Operand::Literal(match v {
            Json::String(s) => Literal::Text(s.clone()),
            Json::Bool(b) => Literal::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Literal::Int(i),
                None => Literal::Real(
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| jerr(path, "the number is too large"))?,
                ),
            },
            Json::Object(m) => {
                if let Some((op, args)) = Self::op(v, path)? {
                    let arg = |i: usize| format!("{path}.args[{i}]");
                    return match op.as_str() {
                        "casei" | "accenti" => {
                            let a = Self::arity(args, 1, &op, path)?;
                            let inner = Box::new(self.value(&a[0], &arg(0), depth + 1)?);
                            Ok(if op == "casei" { Operand::CaseI(inner) } else { Operand::AccentI(inner) })
                        }
                        s if arith_op(s).is_some() => {
                            let a = Self::arity(args, 2, &op, path)?;
                            Ok(Operand::Arith {
                                left: Box::new(self.value(&a[0], &arg(0), depth + 1)?),
                                op: arith_op(s).unwrap_or(ArithOp::Add),
                                right: Box::new(self.value(&a[1], &arg(1), depth + 1)?),
                            })
                        }
                        _ => Err(jerr(
                            &format!("{path}.op"),
                            format!("expected a value; \"{op}\" is not a function that gives one"),
                        )),
                    };
                }
                if m.len() != 1 {
                    return Err(jerr(path, "expected a value: {\"property\": ...}, {\"date\": ...}, {\"timestamp\": ...}, {\"interval\": [...]} or a literal"));
                }
                match m.iter().next() {
                    Some((k, Json::String(p))) if k == "property" => return Ok(Operand::Property(p.clone())),
                    Some((k, Json::String(d))) if k == "date" => {
                        date_literal(d).map_err(|e| jerr(path, e))?
                    }
                    Some((k, Json::String(t))) if k == "timestamp" => {
                        timestamp_literal(t).map_err(|e| jerr(path, e))?
                    }
                    Some((k, Json::Array(ends))) if k == "interval" => {
                        return self.interval(ends, &format!("{path}.interval"), depth)
                    }
                    Some((k, other)) => {
                        return Err(jerr(
                            &format!("{path}.{k}"),
                            format!("unexpected {} here", kind_of(other)),
                        ))
                    }
                    None => return Err(jerr(path, "expected a value, found an empty object")),
                }
            }
            other => return Err(jerr(path, format!("expected a value, found {}", kind_of(other)))),
        }))
    }

    fn interval(&self, ends: &[Json], path: &str, depth: usize) -> Result<Operand, Cql2Error> {
        if ends.len() != 2 {
            return Err(jerr(path, format!("an interval has 2 ends; this one has {}", ends.len())));
        }
        let mut out = Vec::with_capacity(2);
        for (i, e) in ends.iter().enumerate() {
            let p = format!("{path}[{i}]");
            out.push(match e {
                Json::String(s) => interval_end(s).map_err(|m| jerr(&p, m))?,
                other => match self.value(other, &p, depth + 1)? {
                    o @ (Operand::Property(_)
                    | Operand::Literal(Literal::Date(_) | Literal::Timestamp(_))) => Some(Box::new(o)),
                    _ => return Err(jerr(&p, "expected \"..\", a date, a timestamp or a property")),
                },
            });
        }
        let end = out.pop().flatten();
        let start = out.pop().flatten();
        Ok(Operand::Interval { start, end })
    }

    fn temporal_arg(&self, v: &Json, path: &str, depth: usize) -> Result<Operand, Cql2Error> {
        match self.value(v, path, depth)? {
            o @ (Operand::Property(_)
            | Operand::Interval { .. }
            | Operand::Literal(Literal::Date(_) | Literal::Timestamp(_))) => Ok(o),
            _ => Err(jerr(
                path,
                "expected a property, {\"date\": ...}, {\"timestamp\": ...} or {\"interval\": [...]}",
            )),
        }
    }

    /// A geometry (`Ok`) or a property name (`Err`).
    fn spatial_arg(&self, v: &Json, path: &str, depth: usize) -> Result<Result<Geom, String>, Cql2Error> {
        Self::depth(path, depth)?;
        let Json::Object(m) = v else {
            return Err(jerr(path, format!("expected a property or a geometry, found {}", kind_of(v))));
        };
        if let Some(p) = m.get("property") {
            return match p {
                Json::String(p) => Ok(Err(p.clone())),
                other => Err(jerr(
                    &format!("{path}.property"),
                    format!("expected a string, found {}", kind_of(other)),
                )),
            };
        }
        // A GeoJSON geometry may carry its own "bbox" member: "type" decides.
        if let (None, Some(b)) = (m.get("type"), m.get("bbox")) {
            let Json::Array(values) = b else {
                return Err(jerr(&format!("{path}.bbox"), "expected an array of 4 or 6 numbers"));
            };
            let nums: Option<Vec<f64>> = values.iter().map(Json::as_f64).collect();
            let nums =
                nums.ok_or_else(|| jerr(&format!("{path}.bbox"), "expected an array of 4 or 6 numbers"))?;
            return bbox_geom(&nums, self.to_wgs84).map(Ok).map_err(|m| jerr(path, m));
        }
        let g = self.geojson(v, path, depth)?;
        g.check().map_err(|m| jerr(path, m))?;
        Ok(Ok(g))
    }

    fn geojson(&self, v: &Json, path: &str, depth: usize) -> Result<Geom, Cql2Error> {
        Self::depth(path, depth)?;
        let kind = v.get("type").and_then(Json::as_str).ok_or_else(|| {
            jerr(
                path,
                "expected a property ({\"property\": ...}), a bbox ({\"bbox\": [...]}) or a GeoJSON geometry",
            )
        })?;
        if kind == "GeometryCollection" {
            let Some(Json::Array(parts)) = v.get("geometries") else {
                return Err(jerr(path, "a GeometryCollection needs \"geometries\": [...]"));
            };
            return parts
                .iter()
                .enumerate()
                .map(|(i, g)| self.geojson(g, &format!("{path}.geometries[{i}]"), depth + 1))
                .collect::<Result<_, _>>()
                .map(Geom::Collection);
        }
        let c =
            v.get("coordinates").ok_or_else(|| jerr(path, format!("the {kind} has no \"coordinates\"")))?;
        let cp = format!("{path}.coordinates");
        let pos = |c: &Json, p: &str| self.position(c, p);
        let list = |c: &Json, p: &str| -> Result<Vec<Vec<f64>>, Cql2Error> {
            let Json::Array(a) = c else { return Err(jerr(p, "expected an array of positions")) };
            a.iter().enumerate().map(|(i, x)| pos(x, &format!("{p}[{i}]"))).collect()
        };
        let lists = |c: &Json, p: &str| -> Result<Vec<Vec<Vec<f64>>>, Cql2Error> {
            let Json::Array(a) = c else { return Err(jerr(p, "expected an array of arrays of positions")) };
            a.iter().enumerate().map(|(i, x)| list(x, &format!("{p}[{i}]"))).collect()
        };
        Ok(match kind {
            "Point" => Geom::Point(pos(c, &cp)?),
            "LineString" => Geom::LineString(list(c, &cp)?),
            "MultiPoint" => Geom::MultiPoint(list(c, &cp)?),
            "Polygon" => Geom::Polygon(lists(c, &cp)?),
            "MultiLineString" => Geom::MultiLineString(lists(c, &cp)?),
            "MultiPolygon" => {
                let Json::Array(a) = c else { return Err(jerr(&cp, "expected an array of polygons")) };
                Geom::MultiPolygon(
                    a.iter()
                        .enumerate()
                        .map(|(i, x)| lists(x, &format!("{cp}[{i}]")))
                        .collect::<Result<_, _>>()?,
                )
            }
            other => {
                return Err(jerr(
                    &format!("{path}.type"),
                    format!("\"{other}\" is not a GeoJSON geometry type"),
                ))
            }
        })
    }

    fn position(&self, c: &Json, path: &str) -> Result<Vec<f64>, Cql2Error> {
        let coords: Option<Vec<f64>> = match c {
            Json::Array(a) => a.iter().map(Json::as_f64).collect(),
            _ => None,
        };
        let coords = coords.ok_or_else(|| jerr(path, "expected a position: an array of 2 or 3 numbers"))?;
        position(&coords, self.to_wgs84).map_err(|m| jerr(path, m))
    }
}

// ---------------------------------------------------------------------------------------------
// bbox and datetime parameters

/// The condition of a `datetime` parameter on the instant in `property`: an instant (a date or a
/// timestamp) it equals, or an interval `start/end` (either end `..` or empty for open) it lies in,
/// ends included.
pub(crate) fn datetime_cond(param: &str, property: &str) -> Result<Cond, Cql2Error> {
    let bad = |m: String| Cql2Error::Parameter(format!("bad datetime {param:?}: {m}"));
    let instant = |s: &str| -> Result<Operand, Cql2Error> {
        let s = s.trim();
        let lit = if s.len() == 10 { date_literal(s) } else { timestamp_literal(s) };
        lit.map(Operand::Literal).map_err(|m| bad(format!("{m}; write a date, a timestamp or start/end")))
    };
    let p = Operand::Property(property.to_owned());
    Ok(match param.split_once('/') {
        None => Cond::Temporal { op: TemporalOp::Equals, left: p, right: instant(param)? },
        Some((a, b)) => {
            let end = |s: &str| -> Result<Option<Box<Operand>>, Cql2Error> {
                let s = s.trim();
                if s.is_empty() || s == ".." {
                    Ok(None)
                } else {
                    instant(s).map(|o| Some(Box::new(o)))
                }
            };
            let (start, end) = (end(a)?, end(b)?);
            if start.is_none() && end.is_none() {
                return Err(bad("both ends are open; leave datetime out instead".into()));
            }
            let mut parts = Vec::with_capacity(2);
            if let Some(s) = start {
                parts.push(Cond::Compare { left: p.clone(), op: CmpOp::Ge, right: *s });
            }
            if let Some(e) = end {
                parts.push(Cond::Compare { left: p.clone(), op: CmpOp::Le, right: *e });
            }
            Cond::all(parts)
        }
    })
}

/// The map of coordinates already in WGS 84.
#[cfg(test)]
fn identity(x: f64, y: f64) -> (f64, f64) {
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Cond, Cql2Error> {
        parse_text(s, &identity)
    }

    fn json(s: &str) -> Result<Cond, Cql2Error> {
        parse_json(s, &identity)
    }

    fn p(name: &str) -> Operand {
        Operand::property(name)
    }

    fn int(i: i64) -> Operand {
        Operand::Literal(Literal::Int(i))
    }

    fn cmp(left: Operand, op: CmpOp, right: Operand) -> Cond {
        Cond::Compare { left, op, right }
    }

    #[test]
    fn text_and_json_mean_the_same() {
        for (t, j) in [
            ("name = 'Wan Chai'", r#"{"op":"=","args":[{"property":"name"},"Wan Chai"]}"#),
            ("population<>5", r#"{"op":"<>","args":[{"property":"population"},5]}"#),
            ("population < -2.5e3", r#"{"op":"<","args":[{"property":"population"},-2500.0]}"#),
            ("a <= 1 AND b >= 2", r#"{"op":"and","args":[{"op":"<=","args":[{"property":"a"},1]},{"op":">=","args":[{"property":"b"},2]}]}"#),
            ("a > 1 or b < 2", r#"{"op":"or","args":[{"op":">","args":[{"property":"a"},1]},{"op":"<","args":[{"property":"b"},2]}]}"#),
            ("NOT ok = TRUE", r#"{"op":"not","args":[{"op":"=","args":[{"property":"ok"},true]}]}"#),
            ("\"地區 名稱\" LIKE '%灣%'", r#"{"op":"like","args":[{"property":"地區 名稱"},"%灣%"]}"#),
            ("name NOT LIKE 'K_w%'", r#"{"op":"not","args":[{"op":"like","args":[{"property":"name"},"K_w%"]}]}"#),
            ("CASEI(name) LIKE casei('kow%')", r#"{"op":"like","args":[{"op":"casei","args":[{"property":"name"}]},{"op":"casei","args":["kow%"]}]}"#),
            ("ACCENTI(name) = accenti('é')", r#"{"op":"=","args":[{"op":"accenti","args":[{"property":"name"}]},{"op":"accenti","args":["é"]}]}"#),
            ("area BETWEEN 1 AND 2.5", r#"{"op":"between","args":[{"property":"area"},1,2.5]}"#),
            ("area NOT BETWEEN 1 AND 2", r#"{"op":"not","args":[{"op":"between","args":[{"property":"area"},1,2]}]}"#),
            ("kind IN ('a', 'b''c')", r#"{"op":"in","args":[{"property":"kind"},["a","b'c"]]}"#),
            ("kind NOT IN (1, 2)", r#"{"op":"not","args":[{"op":"in","args":[{"property":"kind"},[1,2]]}]}"#),
            ("note IS NULL", r#"{"op":"isNull","args":[{"property":"note"}]}"#),
            ("note IS NOT NULL", r#"{"op":"not","args":[{"op":"isNull","args":[{"property":"note"}]}]}"#),
            ("TRUE", "true"),
            ("(FALSE)", "false"),
            ("opened = DATE('2020-01-31')", r#"{"op":"=","args":[{"property":"opened"},{"date":"2020-01-31"}]}"#),
            ("at > TIMESTAMP('2020-01-31T08:00:00Z')", r#"{"op":">","args":[{"property":"at"},{"timestamp":"2020-01-31T08:00:00Z"}]}"#),
            ("T_AFTER(at, TIMESTAMP('2020-01-31T08:00:00Z'))", r#"{"op":"t_after","args":[{"property":"at"},{"timestamp":"2020-01-31T08:00:00Z"}]}"#),
            ("t_during(opened, INTERVAL('2020-01-01', '..'))", r#"{"op":"t_during","args":[{"property":"opened"},{"interval":["2020-01-01",".."]}]}"#),
            ("T_INTERSECTS(INTERVAL(a, b), INTERVAL(DATE('2020-01-01'), '2021-01-01T00:00:00Z'))", r#"{"op":"t_intersects","args":[{"interval":[{"property":"a"},{"property":"b"}]},{"interval":[{"date":"2020-01-01"},"2021-01-01T00:00:00Z"]}]}"#),
            ("pop / area > 1000 + 1", r#"{"op":">","args":[{"op":"/","args":[{"property":"pop"},{"property":"area"}]},{"op":"+","args":[1000,1]}]}"#),
            ("a % 2 = b div 3", r#"{"op":"=","args":[{"op":"%","args":[{"property":"a"},2]},{"op":"div","args":[{"property":"b"},3]}]}"#),
            ("2 * a ^ 3 ^ 2 = 1", r#"{"op":"=","args":[{"op":"*","args":[2,{"op":"^","args":[{"property":"a"},{"op":"^","args":[3,2]}]}]},1]}"#),
            ("S_INTERSECTS(geometry, POINT(114.1 22.3))", r#"{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Point","coordinates":[114.1,22.3]}]}"#),
            ("s_within(geometry, BBOX(114, 22, 115, 23))", r#"{"op":"s_within","args":[{"property":"geometry"},{"bbox":[114,22,115,23]}]}"#),
            ("S_CONTAINS(POLYGON((114 22, 115 22, 115 23, 114 22)), geometry)", r#"{"op":"s_within","args":[{"property":"geometry"},{"type":"Polygon","coordinates":[[[114,22],[115,22],[115,23],[114,22]]]}]}"#),
            ("S_DISJOINT(geometry, LINESTRING(114 22, 115 23))", r#"{"op":"s_disjoint","args":[{"type":"LineString","coordinates":[[114,22],[115,23]]},{"property":"geometry"}]}"#),
            ("S_TOUCHES(geometry, MULTIPOINT((114 22), (115 23)))", r#"{"op":"s_touches","args":[{"property":"geometry"},{"type":"MultiPoint","coordinates":[[114,22],[115,23]]}]}"#),
            ("S_CROSSES(geometry, MULTIPOINT(114 22, 115 23))", r#"{"op":"s_crosses","args":[{"property":"geometry"},{"type":"MultiPoint","coordinates":[[114,22],[115,23]]}]}"#),
            ("S_OVERLAPS(geometry, MULTILINESTRING((114 22, 115 23), (1 2, 3 4)))", r#"{"op":"s_overlaps","args":[{"property":"geometry"},{"type":"MultiLineString","coordinates":[[[114,22],[115,23]],[[1,2],[3,4]]]}]}"#),
            ("S_EQUALS(geometry, MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((2 2, 3 2, 3 3, 2 2), (2.1 2.1, 2.2 2.1, 2.2 2.2, 2.1 2.1))))", r#"{"op":"s_equals","args":[{"property":"geometry"},{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]],[[2.1,2.1],[2.2,2.1],[2.2,2.2],[2.1,2.1]]]]}]}"#),
            ("S_INTERSECTS(geometry, GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(3 4, 5 6)))", r#"{"op":"s_intersects","args":[{"property":"geometry"},{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[3,4],[5,6]]}]}]}"#),
            ("S_INTERSECTS(geometry, POINT(114 22))", r#"{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Point","coordinates":[114,22],"bbox":[0,0,1,1]}]}"#),
            ("S_INTERSECTS(geometry, POINT Z(114 22 30))", r#"{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Point","coordinates":[114,22,30]}]}"#),
        ] {
            let (a, b) = (text(t), json(j));
            assert!(a.is_ok(), "{t}: {a:?}");
            assert_eq!(a, b, "{t} vs {j}");
        }
    }

    #[test]
    fn precedence_and_shapes() {
        let c = text("a = 1 OR b = 2 AND NOT c = 3").unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                cmp(p("a"), CmpOp::Eq, int(1)),
                Cond::And(vec![cmp(p("b"), CmpOp::Eq, int(2)), not(cmp(p("c"), CmpOp::Eq, int(3)))]),
            ])
        );
        let c = text("(a = 1 OR b = 2) AND (c + 1) * 2 >= -x").unwrap();
        let Cond::And(parts) = c else { panic!("{c:?}") };
        assert_eq!(parts[0], Cond::Or(vec![cmp(p("a"), CmpOp::Eq, int(1)), cmp(p("b"), CmpOp::Eq, int(2))]));
        assert_eq!(
            parts[1],
            cmp(arith(arith(p("c"), "+", int(1)), "*", int(2)), CmpOp::Ge, arith(int(0), "-", p("x")))
        );
        assert_eq!(text("1 = a").unwrap(), cmp(int(1), CmpOp::Eq, p("a")));
        assert_eq!(text("\"and\" = 'x'").unwrap(), cmp(p("and"), CmpOp::Eq, Operand::text("x")));
        assert_eq!(
            text("\"say \"\"hi\"\"\" = 'it''s'").unwrap(),
            cmp(p("say \"hi\""), CmpOp::Eq, Operand::text("it's"))
        );
        assert_eq!(
            text("n = 99999999999999999999").unwrap(),
            cmp(p("n"), CmpOp::Eq, Operand::Literal(Literal::Real(1e20)))
        );
        assert_eq!(
            text("x.y:z = .5").unwrap(),
            cmp(p("x.y:z"), CmpOp::Eq, Operand::Literal(Literal::Real(0.5)))
        );
        // Keywords in any case; AND chains stay flat.
        let c = text("a=1 and b=2 AnD c=3").unwrap();
        assert!(matches!(&c, Cond::And(v) if v.len() == 3), "{c:?}");
        // BETWEEN's AND binds to BETWEEN.
        let c = text("a BETWEEN 1 AND 2 AND b = 3").unwrap();
        assert!(matches!(&c, Cond::And(v) if v.len() == 2 && matches!(v[0], Cond::Between { .. })), "{c:?}");
    }

    #[test]
    fn geometry_literals_become_wgs84_geojson() {
        let c = text("S_INTERSECTS(geometry, POLYGON((114 22, 115 22, 115 23, 114 23, 114 22)))").unwrap();
        assert_eq!(
            c,
            Cond::Spatial {
                op: SpatialOp::Intersects,
                property: "geometry".into(),
                geometry: r#"{"type":"Polygon","coordinates":[[[114.0,22.0],[115.0,22.0],[115.0,23.0],[114.0,23.0],[114.0,22.0]]]}"#.into(),
                bbox: [114.0, 22.0, 115.0, 23.0],
            }
        );
        // EPSG:4326 literals are latitude first.
        let swap = |lat: f64, lon: f64| (lon, lat);
        let c = parse_text("S_INTERSECTS(geometry, POINT(22.3 114.1))", &swap).unwrap();
        assert!(matches!(&c, Cond::Spatial { bbox, .. } if *bbox == [114.1, 22.3, 114.1, 22.3]), "{c:?}");
        let c =
            parse_json(r#"{"op":"s_intersects","args":[{"property":"g"},{"bbox":[22,114,23,115]}]}"#, &swap)
                .unwrap();
        assert!(matches!(&c, Cond::Spatial { bbox, .. } if *bbox == [114.0, 22.0, 115.0, 23.0]), "{c:?}");
        // Any map: a projected CRS given by the caller.
        let grid = |e: f64, n: f64| (114.0 + (e - 836_000.0) / 100_000.0, 22.0 + (n - 820_000.0) / 100_000.0);
        let c = parse_text("S_WITHIN(g, BBOX(836000, 820000, 846000, 830000))", &grid).unwrap();
        assert!(
            matches!(&c, Cond::Spatial { op: SpatialOp::Within, bbox, .. } if *bbox == [114.0, 22.0, 114.1, 22.1]),
            "{c:?}"
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        for (input, want) in [
            ("name =", "CQL2 syntax error at character 7: expected a value after \"=\", found end of text"),
            ("population = ", "CQL2 syntax error at character 14: expected a value after \"=\", found end of text"),
            ("", "CQL2 syntax error at character 1: expected a value or a condition, found end of text"),
            ("this_is_not_a_queryable", "CQL2 syntax error at character 1: expected a condition, found the property \"this_is_not_a_queryable\" alone; follow it with a comparison (=, <>, <, <=, >, >=), LIKE, BETWEEN, IN or IS NULL"),
            ("a = 1 b = 2", "CQL2 syntax error at character 7: expected AND, OR or the end of the filter, found \"b\""),
            ("a = 'open", "CQL2 syntax error at character 5: this string has no closing ' (write '' for a quote inside it)"),
            ("\"a = 1", "CQL2 syntax error at character 1: this property name has no closing \""),
            ("a != 1", "CQL2 syntax error at character 3: expected a comparison operator, found \"!=\"; CQL2 writes <>"),
            ("a = 1 AND", "CQL2 syntax error at character 10: expected a value or a condition, found end of text"),
            ("(a = 1", "CQL2 syntax error at character 7: expected \")\" to close the \"(\", found end of text"),
            ("a IN (1, 2", "CQL2 syntax error at character 11: expected \",\" or \")\" in the list of IN, found end of text"),
            ("a IS 5", "CQL2 syntax error at character 6: expected NULL or NOT NULL after IS, found the number 5"),
            ("a NOT = 1", "CQL2 syntax error at character 3: expected AND, OR or the end of the filter, found \"NOT\""),
            ("a BETWEEN 1 OR 2", "CQL2 syntax error at character 13: expected AND between the bounds of BETWEEN, found \"OR\""),
            ("d = DATE('2020-02-30')", "CQL2 syntax error at character 10: '2020-02-30' is not a date (YYYY-MM-DD)"),
            ("d = DATE(2020)", "CQL2 syntax error at character 10: expected a quoted string in DATE('...'), found the number 2020"),
            ("t = TIMESTAMP('2020-01-01')", "CQL2 syntax error at character 15: '2020-01-01' is not a timestamp (YYYY-MM-DDTHH:MM:SSZ)"),
            ("FOO(a) = 1", "CQL2 syntax error at character 1: unknown function FOO; the functions are CASEI, ACCENTI, DATE, TIMESTAMP, INTERVAL, S_INTERSECTS, S_DISJOINT, S_WITHIN, S_CONTAINS, S_TOUCHES, S_CROSSES, S_OVERLAPS, S_EQUALS and the T_ temporal functions"),
            ("A_CONTAINS(a, ('x'))", "CQL2 syntax error at character 1: the array function A_CONTAINS is not supported"),
            ("S_INTERSECTS(geometry, POINT(200 22))", "CQL2 syntax error at character 30: the position (200, 22) is not a longitude and latitude in WGS 84 (longitude -180..180, latitude -90..90) in the filter's CRS"),
            ("S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 1 1)))", "CQL2 syntax error at character 24: a polygon ring needs at least 4 positions; this one has 3"),
            ("S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 1 1, 0 1)))", "CQL2 syntax error at character 24: a polygon ring must end where it starts"),
            ("S_INTERSECTS(geometry, LINESTRING(0 0))", "CQL2 syntax error at character 24: a line string needs at least 2 positions; this one has 1"),
            ("S_INTERSECTS(geometry, BBOX(1, 2, 3))", "CQL2 syntax error at character 24: a bounding box has 4 or 6 numbers; this one has 3"),
            ("S_INTERSECTS(geometry, BBOX(3, 2, 1, 4))", "CQL2 syntax error at character 24: the bounding box (3, 2, 1, 4) has its minimum above its maximum; boxes across the antimeridian are not supported"),
            ("S_INTERSECTS(a, b)", "CQL2 syntax error at character 1: S_INTERSECTS between two properties is not supported; give one geometry literal"),
            ("S_INTERSECTS(POINT(1 2), POINT(1 2))", "CQL2 syntax error at character 1: S_INTERSECTS needs the geometry property as one of its arguments"),
            ("S_INTERSECTS(geometry, 5)", "CQL2 syntax error at character 24: expected the geometry property or a geometry (POINT(...), BBOX(...), ...) in S_INTERSECTS, found the number 5"),
            ("POINT(1 2) = a", "CQL2 syntax error at character 1: a POINT geometry can only be an argument of a spatial function such as S_INTERSECTS"),
            ("T_AFTER(a, 5)", "CQL2 syntax error at character 12: expected a property, DATE('...'), TIMESTAMP('...') or INTERVAL(...) in T_AFTER"),
            ("T_AFTER(a, INTERVAL('x', '..'))", "CQL2 syntax error at character 21: 'x' is not a timestamp (YYYY-MM-DDTHH:MM:SSZ)"),
            ("a = 1 % ", "CQL2 syntax error at character 9: expected a value or a condition, found end of text"),
            ("a = (b = 1)", "CQL2 syntax error at character 5: expected a value, found a condition"),
            ("a = 1 AND 5", "CQL2 syntax error at character 11: expected a condition, found a value; follow it with a comparison (=, <>, <, <=, >, >=), LIKE, BETWEEN, IN or IS NULL"),
            ("a = 1 ; DROP TABLE x", "CQL2 syntax error at character 7: unexpected character ';'"),
            ("地區 = 1 AND ＝", "CQL2 syntax error at character 12: unexpected character '＝'"),
        ] {
            assert_eq!(text(input).map_err(|e| e.to_string()), Err(want.to_owned()), "{input}");
        }
        for (input, want) in [
            ("{", "CQL2 JSON error at $: not JSON: EOF while parsing an object at line 1 column 1"),
            ("5", "CQL2 JSON error at $: expected a condition ({\"op\": ..., \"args\": [...]} or a boolean), found a number"),
            (r#"{"op":"=","args":[{"property":"a"}]}"#, "CQL2 JSON error at $: \"=\" takes 2 arguments; it was given 1"),
            (r#"{"op":"and","args":[true]}"#, "CQL2 JSON error at $: \"and\" takes at least 2 arguments; it was given 1"),
            (r#"{"op":"and","args":[true,{"op":"=","args":[{"property":"a"},[1]]}]}"#, "CQL2 JSON error at $.args[1].args[1]: expected a value, found an array"),
            (r#"{"op":"nope","args":[]}"#, "CQL2 JSON error at $.op: \"nope\" is not a CQL2 condition"),
            (r#"{"op":"=","args":[1,2],"x":1}"#, "CQL2 JSON error at $: unexpected member \"x\" beside \"op\" and \"args\""),
            (r#"{"op":"=","args":[{"date":"2020-13-01"},1]}"#, "CQL2 JSON error at $.args[0]: '2020-13-01' is not a date (YYYY-MM-DD)"),
            (r#"{"op":"s_intersects","args":[{"property":"g"},{"type":"Point","coordinates":[1]}]}"#, "CQL2 JSON error at $.args[1].coordinates: a position has 2 or 3 coordinates; this one has 1"),
            (r#"{"op":"s_intersects","args":[{"property":"g"},{"type":"Circle","coordinates":[1,2]}]}"#, "CQL2 JSON error at $.args[1].type: \"Circle\" is not a GeoJSON geometry type"),
            (r#"{"op":"in","args":[{"property":"a"},1]}"#, "CQL2 JSON error at $.args[1]: expected an array of values, found a number"),
            (r#"{"op":"t_after","args":[{"property":"a"},{"interval":["2020-01-01"]}]}"#, "CQL2 JSON error at $.args[1].interval: an interval has 2 ends; this one has 1"),
        ] {
            assert_eq!(json(input).map_err(|e| e.to_string()), Err(want.to_owned()), "{input}");
        }
        assert_eq!(FilterLang::parse(None), Ok(FilterLang::Text));
        assert_eq!(FilterLang::parse(Some("cql2-json")), Ok(FilterLang::Json));
        assert_eq!(
            FilterLang::parse(Some("ecql")).unwrap_err().to_string(),
            "filter-lang \"ecql\" is not supported; use cql2-text or cql2-json"
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let long = format!("a = '{}'", "x".repeat(MAX_LEN));
        assert_eq!(text(&long).unwrap_err(), Cql2Error::TooLong(MAX_LEN + 6));
        assert_eq!(json(&long).unwrap_err(), Cql2Error::TooLong(MAX_LEN + 6));
        let deep = |open: &str, n: usize| format!("{}a = 1", open.repeat(n));
        for input in [
            deep("(", 20_000),
            deep("NOT ", 10_000),
            format!("a = {}1", "-".repeat(20_000)),
            deep("(", MAX_DEPTH + 1),
        ] {
            let e = text(&input).unwrap_err().to_string();
            assert!(e.ends_with(&format!("the filter nests more than {MAX_DEPTH} levels deep")), "{e}");
        }
        assert!(text(&format!("{}a = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH))).is_ok());
        let nested =
            format!("S_INTERSECTS(g, {}POINT(1 2){})", "GEOMETRYCOLLECTION(".repeat(200), ")".repeat(200));
        assert!(text(&nested).unwrap_err().to_string().contains("nests more than"));
        let nots = |n: usize| {
            let mut j = String::from("true");
            for _ in 0..n {
                j = format!(r#"{{"op":"not","args":[{j}]}}"#);
            }
            j
        };
        assert!(json(&nots(60)).is_ok());
        // Each level is two JSON levels: serde_json's own limit (128) or ours ends it.
        let e = json(&nots(MAX_DEPTH + 1)).unwrap_err().to_string();
        assert!(e.contains("nests more than") || e.contains("recursion limit"), "{e}");
        // Deeper than serde_json's own limit: an error, not a crash.
        let very = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(json(&very)
            .unwrap_err()
            .to_string()
            .starts_with("CQL2 JSON error at $: not JSON: recursion limit"));
        let list = format!("a IN ({})", vec!["1"; MAX_LIST + 1].join(","));
        assert!(text(&list)
            .unwrap_err()
            .to_string()
            .ends_with(&format!("IN takes at most {MAX_LIST} values")));
    }

    #[test]
    fn datetime_parameters() {
        let at = |s: &str| Operand::Literal(Literal::Timestamp(s.into()));
        let day = |s: &str| Operand::Literal(Literal::Date(s.into()));
        assert_eq!(
            datetime_cond("2024-01-02T03:04:05Z", "at").unwrap(),
            Cond::Temporal { op: TemporalOp::Equals, left: p("at"), right: at("2024-01-02T03:04:05Z") }
        );
        assert_eq!(datetime_cond("2024-01-01/..", "at").unwrap(), cmp(p("at"), CmpOp::Ge, day("2024-01-01")));
        assert_eq!(
            datetime_cond("/2024-01-01T00:00:00Z", "at").unwrap(),
            cmp(p("at"), CmpOp::Le, at("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            datetime_cond("2024-01-01/2024-02-01", "d").unwrap(),
            Cond::And(vec![
                cmp(p("d"), CmpOp::Ge, day("2024-01-01")),
                cmp(p("d"), CmpOp::Le, day("2024-02-01"))
            ])
        );
        assert_eq!(
            datetime_cond("../..", "d").unwrap_err().to_string(),
            "bad datetime \"../..\": both ends are open; leave datetime out instead"
        );
        assert_eq!(
            datetime_cond("yesterday", "d").unwrap_err().to_string(),
            "bad datetime \"yesterday\": 'yesterday' is not a timestamp (YYYY-MM-DDTHH:MM:SSZ); write a date, a timestamp or start/end"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(s in ".{0,200}") {
            let _ = text(&s);
            let _ = json(&s);
        }

        #[test]
        fn no_token_soup_panics(words in proptest::collection::vec(proptest::sample::select(vec![
            "a", "\"b c\"", "'x'", "''", "1", "-", "2.5e3", "(", ")", ",", "=", "<>", "<", ">=", "AND", "OR", "NOT",
            "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "CASEI", "DATE", "TIMESTAMP", "INTERVAL", "'..'",
            "'2020-01-01'", "S_INTERSECTS", "T_AFTER", "POINT", "POLYGON", "BBOX", "Z", "GEOMETRYCOLLECTION",
            "+", "*", "/", "%", "A_CONTAINS",
        ]), 0..40)) {
            let _ = text(&words.join(" "));
        }

        #[test]
        fn no_json_soup_panics(words in proptest::collection::vec(proptest::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"op\"", "\"args\"", "\"=\"", "\"and\"", "\"not\"", "\"in\"",
            "\"property\"", "\"a\"", "1", "true", "null", "\"s_intersects\"", "\"bbox\"", "\"type\"",
            "\"Point\"", "\"coordinates\"", "\"interval\"", "\"..\"", "\"t_after\"", "\"casei\"", "\"+\"",
        ]), 0..60)) {
            let _ = json(&words.concat());
        }
    }
}

#[cfg(test)]
mod end_to_end {
    //! CQL2 text through the store to rows of a real SQLite table.

    use citydata_model::{Field, FieldType as F, LangText, Schema, Slug, Value};
    use citydata_store::{NewVersion, RowBuffer, RowQuery, Store};

    use super::*;

    fn store() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let columns = [
            ("name", F::String),
            ("地區", F::String),
            ("population", F::Integer),
            ("area", F::Number),
            ("opened", F::Date),
            ("updated", F::Datetime),
            ("ok", F::Boolean),
        ];
        let schema = Schema::new(columns.iter().map(|(n, t)| Field::new(*n, *t)).collect());
        let t = |s: &str| Value::Text(s.to_owned().into());
        let rows = [
            [
                t("Central and Western"),
                t("中西區"),
                Value::Int(243_000),
                Value::Real(12.55),
                t("2001-05-01"),
                t("2024-01-01T08:00:00"),
                Value::Int(1),
            ],
            [
                t("Wan Chai"),
                t("灣仔區"),
                Value::Int(166_000),
                Value::Real(10.64),
                t("2003-02-10"),
                t("2024-01-02T09:30:00"),
                Value::Int(0),
            ],
            [
                t("Eastern"),
                t("東區"),
                Value::Null,
                Value::Real(18.56),
                Value::Null,
                t("2024-01-03T10:00:00"),
                Value::Int(1),
            ],
            [
                t("Kowloon City"),
                t("九龍城區"),
                Value::Int(410_000),
                Value::Real(10.02),
                t("2005-03-15"),
                t("2024-01-04T11:15:00"),
                Value::Int(0),
            ],
        ];
        let slug = Slug::parse("districts").unwrap();
        let mut tx = store.begin_publish(&slug, None, "test").unwrap();
        let bytes = b"districts".to_vec();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let nv = NewVersion {
            resource: "districts",
            title: LangText::en("districts"),
            description: LangText::default(),
            sha256: &sha,
            filename: "d.csv",
            format: "csv",
            media_type: "text/csv",
            encoding: "utf-8",
            schema: &schema,
            skipped: Vec::new(),
            spatial: None,
        };
        let mut loader = tx.add_version(&nv, &mut std::io::Cursor::new(bytes)).unwrap();
        for r in &rows {
            loader.insert(r).unwrap();
        }
        loader.finish().unwrap();
        tx.commit().unwrap();
        let id = store.dataset("districts").unwrap().unwrap().resources[0].id.clone();
        (dir, store, id)
    }

    fn names(store: &Store, id: &str, lang: FilterLang, filter: &str) -> Result<Vec<String>, String> {
        let cond = parse(lang, filter, &identity).map_err(|e| e.to_string())?;
        let mut buf = RowBuffer::default();
        let q = RowQuery { cond: Some(cond), fields: Some(vec!["name".into()]), ..RowQuery::default() };
        store.query_rows(id, &q, &mut buf).map_err(|e| e.to_string())?;
        Ok(buf
            .rows
            .into_iter()
            .map(|r| match &r[0] {
                Value::Text(t) => t.to_string(),
                other => format!("{other:?}"),
            })
            .collect())
    }

    /// Whatever parses becomes SQL that SQLite accepts, or a clear error: never a database error.
    #[test]
    fn parsed_filters_always_make_valid_sql() {
        use proptest::prelude::{prop_oneof, Just};
        use proptest::sample::select;
        use proptest::strategy::Strategy;
        let (_d, store, id) = store();
        let value = || {
            select(vec![
                "name",
                "population",
                "area",
                "opened",
                "updated",
                "ok",
                "\"地區\"",
                "_id",
                "'Wan Chai'",
                "'%a_\\%'",
                "1",
                "-2.5",
                "TRUE",
                "DATE('2003-01-01')",
                "TIMESTAMP('2024-01-02T00:00:00Z')",
                "'2024-01-01'",
                "'10:00'",
                "CASEI(name)",
                "CASEI('X%')",
                "(area * 2)",
                "(population / area)",
                "(1 + ok)",
                "(area ^ 2)",
                "(population % 7)",
                "(area div 2)",
            ])
        };
        let instant = || {
            select(vec![
                "opened",
                "updated",
                "name",
                "DATE('2002-01-01')",
                "TIMESTAMP('2024-01-02T10:00:00Z')",
                "INTERVAL('2002-01-01', '..')",
                "INTERVAL('..', '2024-01-03T00:00:00Z')",
                "INTERVAL(opened, updated)",
            ])
        };
        let cmp = select(vec!["=", "<>", "<", "<=", ">", ">="]);
        let temporal = select(vec![
            "T_AFTER",
            "T_BEFORE",
            "T_CONTAINS",
            "T_DISJOINT",
            "T_DURING",
            "T_EQUALS",
            "T_FINISHEDBY",
            "T_FINISHES",
            "T_INTERSECTS",
            "T_MEETS",
            "T_METBY",
            "T_OVERLAPPEDBY",
            "T_OVERLAPS",
            "T_STARTEDBY",
            "T_STARTS",
        ]);
        let leaf = prop_oneof![
            (value(), cmp, value()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            (value(), select(vec!["", "NOT "]), value()).prop_map(|(a, n, b)| format!("{a} {n}LIKE {b}")),
            (value(), value(), value()).prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
            (value(), value(), value()).prop_map(|(a, b, c)| format!("{a} NOT IN ({b}, {c})")),
            (value(), select(vec!["", "NOT "])).prop_map(|(a, n)| format!("{a} IS {n}NULL")),
            (temporal, instant(), instant()).prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            Just("FALSE".to_owned()),
        ];
        let filters = leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (inner.clone(), select(vec!["AND", "OR"]), inner.clone())
                    .prop_map(|(a, o, b)| format!("{a} {o} {b}")),
                inner.clone().prop_map(|a| format!("NOT ({a})")),
                inner.prop_map(|a| format!("({a})")),
            ]
        });
        let config = proptest::test_runner::Config { cases: 1500, ..Default::default() };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let ran = std::cell::Cell::new(0u32);
        runner
            .run(&filters, |filter| {
                let cond = parse_text(&filter, &identity);
                proptest::prop_assert!(cond.is_ok(), "{filter}: {cond:?}");
                let q = RowQuery {
                    cond: cond.ok(),
                    total: Some(10),
                    facets: vec!["ok".into()],
                    ..RowQuery::default()
                };
                match store.query_rows(&id, &q, &mut RowBuffer::default()) {
                    Ok(_) => ran.set(ran.get() + 1),
                    Err(citydata_store::StoreError::Invalid(_)) => {}
                    Err(e) => proptest::prop_assert!(false, "{filter}: {e}"),
                }
                Ok(())
            })
            .unwrap();
        // Many filters mix types (an error each); enough of them must run.
        assert!(ran.get() > 100, "only {} of the filters ran", ran.get());
    }
    #[test]
    fn filters_select_rows() {
        let (_d, store, id) = store();
        let all = ["Central and Western", "Wan Chai", "Eastern", "Kowloon City"];
        let pick = |ix: &[usize]| -> Vec<String> { ix.iter().map(|i| all[*i].to_owned()).collect() };
        for (filter, want) in [
            ("population > 200000", pick(&[0, 3])),
            ("population < 200000 OR population IS NULL", pick(&[1, 2])),
            ("NOT population > 200000", pick(&[1])),
            ("\"地區\" LIKE '%龍%'", pick(&[3])),
            ("CASEI(name) LIKE casei('%WAN%')", pick(&[1])),
            ("name IN ('Eastern', 'Nowhere')", pick(&[2])),
            ("area BETWEEN 10 AND 12.55 AND ok = FALSE", pick(&[1, 3])),
            ("opened < DATE('2003-01-01')", pick(&[0])),
            ("T_AFTER(updated, TIMESTAMP('2024-01-02T09:30:00Z'))", pick(&[2, 3])),
            ("T_DURING(opened, INTERVAL('2002-01-01', '..'))", pick(&[1, 3])),
            ("population / area > 30000", pick(&[3])),
            ("TRUE", pick(&[0, 1, 2, 3])),
        ] {
            assert_eq!(names(&store, &id, FilterLang::Text, filter), Ok(want), "{filter}");
        }
        assert_eq!(
            names(
                &store,
                &id,
                FilterLang::Json,
                r#"{"op":"and","args":[{"op":">","args":[{"property":"area"},11]},{"op":"isNull","args":[{"property":"opened"}]}]}"#
            ),
            Ok(pick(&[2]))
        );
        for (filter, want) in [
            ("nope = 1", "unknown property \"nope\"; the properties are \"_id\", \"name\", \"地區\", \"population\", \"area\", \"opened\", \"updated\", \"ok\""),
            ("population = 'many'", "the property \"population\" holds numbers; the string 'many' is not one of them; write the number without quotes"),
            ("S_INTERSECTS(geometry, POINT(114 22))", "S_INTERSECTS: this resource has no geometry"),
        ] {
            assert_eq!(names(&store, &id, FilterLang::Text, filter), Err(want.to_owned()), "{filter}");
        }
    }
}
