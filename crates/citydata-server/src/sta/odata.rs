//! The query options of SensorThings (an OData subset): `$filter` and `$orderby` expressions into
//! the store's [`Expr`], `$expand` with nested options, `$select`, `$top`, `$skip`, `$count`.
//!
//! Bounded: an option's text is at most [`MAX_LEN`] bytes, expressions nest at most [`MAX_DEPTH`]
//! deep, `$expand` at most [`MAX_EXPAND_DEPTH`] levels; anything else is a [`ParseError`] saying what
//! and where, never a panic.

use citydata_store::sensors::{parse_time, ArithOp, CmpOp, Expr, Func, SVal};
use serde_json::{json, Value as Json};

/// The longest option text accepted.
pub(crate) const MAX_LEN: usize = 8192;
/// The deepest expression nesting accepted.
pub(crate) const MAX_DEPTH: usize = 32;
/// The deepest `$expand` nesting accepted.
pub(crate) const MAX_EXPAND_DEPTH: usize = 6;
/// The default `$top`.
pub(crate) const DEFAULT_TOP: u32 = 100;
/// The largest `$top`; more is taken as this.
pub(crate) const MAX_TOP: u32 = 10_000;

/// A query option that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

/// The options of one collection or entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Options {
    pub(crate) filter: Option<Expr>,
    pub(crate) orderby: Vec<(Expr, bool)>,
    pub(crate) top: Option<u32>,
    pub(crate) skip: u64,
    pub(crate) count: bool,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) expand: Vec<Expand>,
}

/// One navigation property to expand, with its options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expand {
    pub(crate) nav: String,
    pub(crate) options: Options,
}

impl Options {
    /// Reads the options from `(name, value)` pairs (already percent-decoded). Names that do not
    /// start with `$` are not options and are left alone.
    pub(crate) fn parse<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        depth: usize,
    ) -> Result<Self, ParseError> {
        let mut o = Options::default();
        let mut seen = Vec::new();
        for (name, value) in pairs {
            if !name.starts_with('$') {
                continue;
            }
            if value.len() > MAX_LEN {
                return err(format!("{name} is longer than {MAX_LEN} bytes"));
            }
            if seen.contains(&name) {
                return err(format!("{name} is given twice"));
            }
            seen.push(name);
            let at = |e: ParseError| ParseError(format!("{name}: {}", e.0));
            match name {
                "$filter" => o.filter = Some(parse_expr(value).map_err(at)?),
                "$orderby" => o.orderby = parse_orderby(value).map_err(at)?,
                "$top" => {
                    let n: u64 = value
                        .trim()
                        .parse()
                        .map_err(|_| ParseError(format!("$top must be a whole number, not {value:?}")))?;
                    o.top = Some(u32::try_from(n.min(u64::from(MAX_TOP))).unwrap_or(MAX_TOP));
                }
                "$skip" => {
                    o.skip = value
                        .trim()
                        .parse()
                        .map_err(|_| ParseError(format!("$skip must be a whole number, not {value:?}")))?;
                }
                "$count" => {
                    o.count = match value.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return err(format!("$count must be true or false, not {value:?}")),
                    }
                }
                "$select" => {
                    let names: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
                    if names.iter().any(|n| n.is_empty() || n.contains(|c: char| !is_ident(c))) {
                        return err(format!(
                            "$select takes property names separated by commas, not {value:?}"
                        ));
                    }
                    o.select = Some(names);
                }
                "$expand" => o.expand = parse_expand(value, depth).map_err(at)?,
                "$resultFormat" if value == "dataArray" => {
                    return err("$resultFormat=dataArray is not supported; ask without it");
                }
                _ => return err(format!("unknown query option {name}")),
            }
        }
        Ok(o)
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '@' || c == '.'
}

/// Splits `s` at `sep` outside parentheses and quotes.
fn split_top(s: &str, sep: char) -> Result<Vec<&str>, ParseError> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1).ok_or_else(|| ParseError(format!("unbalanced ')' at {i}")))?;
            }
            c if c == sep && !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return err("unbalanced parentheses or quotes");
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_expand(s: &str, depth: usize) -> Result<Vec<Expand>, ParseError> {
    if depth >= MAX_EXPAND_DEPTH {
        return err(format!("$expand nests more than {MAX_EXPAND_DEPTH} levels"));
    }
    let mut out: Vec<Expand> = Vec::new();
    for item in split_top(s, ',')? {
        let item = item.trim();
        let (path, opts) = match item.find('(') {
            Some(i) => {
                let Some(inner) = item[i + 1..].strip_suffix(')') else {
                    return err(format!("{item:?}: the options of an expansion end with ')'"));
                };
                (&item[..i], inner)
            }
            None => (item, ""),
        };
        let segs: Vec<&str> = path.split('/').map(str::trim).collect();
        if segs.iter().any(|s| s.is_empty() || s.contains(|c: char| !is_ident(c))) {
            return err(format!("{item:?} is not a navigation path"));
        }
        let pairs = split_top(opts, ';')?
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(a, b)| (a.trim(), b))
                    .ok_or_else(|| ParseError(format!("{p:?} is not an option")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = Options::parse(pairs.into_iter(), depth + 1)?;
        // `A/B(opts)` expands A, and B inside it with the options.
        let mut node = Expand { nav: (*segs.last().unwrap_or(&"")).to_owned(), options };
        for seg in segs[..segs.len() - 1].iter().rev() {
            node = Expand {
                nav: (*seg).to_owned(),
                options: Options { expand: vec![node], ..Options::default() },
            };
        }
        merge(&mut out, node);
    }
    Ok(out)
}

/// Adds `e` to `list`, merging with an expansion of the same navigation property.
fn merge(list: &mut Vec<Expand>, e: Expand) {
    if let Some(same) = list.iter_mut().find(|x| x.nav == e.nav) {
        for inner in e.options.expand {
            merge(&mut same.options.expand, inner);
        }
        if e.options.filter.is_some() {
            same.options.filter = e.options.filter;
        }
        if !e.options.orderby.is_empty() {
            same.options.orderby = e.options.orderby;
        }
        same.options.top = e.options.top.or(same.options.top);
        same.options.count |= e.options.count;
        if e.options.select.is_some() {
            same.options.select = e.options.select;
        }
    } else {
        list.push(e);
    }
}

fn parse_orderby(s: &str) -> Result<Vec<(Expr, bool)>, ParseError> {
    let mut out = Vec::new();
    for part in split_top(s, ',')? {
        let part = part.trim();
        let (e, desc) = if let Some(p) = part.strip_suffix(" desc") {
            (p, true)
        } else if let Some(p) = part.strip_suffix(" asc") {
            (p, false)
        } else {
            (part, false)
        };
        out.push((parse_expr(e)?, desc));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Num(f64),
    Time(i64),
    Geo(Json),
    LParen,
    RParen,
    Comma,
}

/// Reads `s` as a `$filter` expression.
pub(crate) fn parse_expr(s: &str) -> Result<Expr, ParseError> {
    if s.len() > MAX_LEN {
        return err(format!("the expression is longer than {MAX_LEN} bytes"));
    }
    let toks = lex(s)?;
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return err(format!("unexpected {} after a complete expression", p.show(p.pos)));
    }
    Ok(e)
}

fn lex(s: &str) -> Result<Vec<Tok>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b'\'' => {
                let (text, next) = quoted(s, i)?;
                out.push(Tok::Str(text));
                i = next;
            }
            b'0'..=b'9' | b'-' => {
                let start = i;
                i += 1;
                // A date and time: 2024-01-02T03:04:05Z, with fraction and offset.
                let looks_time =
                    c != b'-' && b.len() >= start + 10 && b[start + 4] == b'-' && b[start + 7] == b'-';
                if looks_time {
                    while i < b.len() && (b[i].is_ascii_digit() || b"-:T.Z+".contains(&b[i])) {
                        i += 1;
                    }
                    let text = &s[start..i];
                    let t = parse_time(text).map_err(ParseError)?;
                    out.push(Tok::Time(t));
                    continue;
                }
                while i < b.len()
                    && (b[i].is_ascii_digit()
                        || b[i] == b'.'
                        || b[i] == b'e'
                        || b[i] == b'E'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let text = &s[start..i];
                if text == "-" {
                    out.push(Tok::Ident("-".into()));
                    continue;
                }
                // OData type suffixes: 1.5d, 2L, 3m, 1.0f.
                if i < b.len()
                    && matches!(b[i], b'd' | b'D' | b'L' | b'l' | b'm' | b'M' | b'f' | b'F')
                    && !b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric())
                {
                    i += 1;
                }
                if let Ok(n) = text.parse::<i64>() {
                    out.push(Tok::Int(n));
                } else if let Ok(f) = text.parse::<f64>() {
                    if !f.is_finite() {
                        return err(format!("{text} is not a finite number"));
                    }
                    out.push(Tok::Num(f));
                } else {
                    return err(format!("{text:?} at {start} is not a number"));
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_@./".contains(&b[i]) || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &s[start..i];
                // geography'POINT(1 2)' and geometry'...'
                if (word == "geography" || word == "geometry") && b.get(i) == Some(&b'\'') {
                    let (text, next) = quoted(s, i)?;
                    out.push(Tok::Geo(wkt(&text)?));
                    i = next;
                    continue;
                }
                if word.ends_with('/') || word.contains("//") || word.starts_with('/') {
                    return err(format!("{word:?} is not a property path"));
                }
                out.push(Tok::Ident(word.to_owned()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(format!("unexpected character {ch:?} at {i}"));
            }
        }
        if out.len() > 4096 {
            return err("the expression has too many parts");
        }
    }
    Ok(out)
}

/// A quoted string starting at byte `i` (a quote); `''` is a quote inside. Returns it and the
/// index after the closing quote.
fn quoted(s: &str, i: usize) -> Result<(String, usize), ParseError> {
    let b = s.as_bytes();
    let mut j = i + 1;
    let mut text = String::new();
    loop {
        let Some(rel) = s[j..].find('\'') else {
            return err(format!("the string starting at {i} has no end"));
        };
        text.push_str(&s[j..j + rel]);
        j += rel + 1;
        if b.get(j) == Some(&b'\'') {
            text.push('\'');
            j += 1;
        } else {
            return Ok((text, j));
        }
    }
}

/// Reads well-known text (POINT, LINESTRING, POLYGON, MULTIPOINT) as GeoJSON.
fn wkt(text: &str) -> Result<Json, ParseError> {
    let t = text.trim();
    let open = t.find('(').ok_or_else(|| ParseError(format!("{t:?} is not well-known text")))?;
    let kind = t[..open].trim().to_ascii_uppercase();
    let body = t[open..].trim();
    let coords = |s: &str| -> Result<Vec<Json>, ParseError> {
        let s = s.trim().trim_start_matches('(').trim_end_matches(')');
        s.split(',')
            .map(|p| {
                let nums: Vec<f64> = p
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| ParseError(format!("{p:?} in {t:?} is not a coordinate pair")))?;
                match nums.as_slice() {
                    [x, y] | [x, y, _] if x.is_finite() && y.is_finite() => Ok(json!([x, y])),
                    _ => err(format!("{p:?} in {t:?} is not a coordinate pair")),
                }
            })
            .collect()
    };
    let inner = body
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| ParseError(format!("{t:?} is not well-known text")))?;
    Ok(match kind.as_str() {
        "POINT" => {
            let c = coords(inner)?;
            if c.len() != 1 {
                return err(format!("{t:?}: a point has one coordinate pair"));
            }
            json!({"type": "Point", "coordinates": c[0]})
        }
        "LINESTRING" => json!({"type": "LineString", "coordinates": coords(inner)?}),
        "MULTIPOINT" => json!({"type": "MultiPoint", "coordinates": coords(&inner.replace(['(', ')'], ""))?}),
        "POLYGON" => {
            let rings = split_top(inner, ',')?.into_iter().map(coords).collect::<Result<Vec<_>, _>>()?;
            json!({"type": "Polygon", "coordinates": rings})
        }
        _ => {
            return err(format!(
                "{kind} geometries are not supported (POINT, LINESTRING, POLYGON, MULTIPOINT)"
            ))
        }
    })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn word(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(w)) => Some(w.as_str()),
        _ => None,
    }
}

impl Parser {
    fn show(&self, i: usize) -> String {
        match self.toks.get(i) {
            None => "the end".into(),
            Some(Tok::Ident(w)) => format!("{w:?}"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Int(n)) => n.to_string(),
            Some(Tok::Num(n)) => n.to_string(),
            Some(Tok::Time(_)) => "a time".into(),
            Some(Tok::Geo(_)) => "a geometry".into(),
            Some(Tok::LParen) => "'('".into(),
            Some(Tok::RParen) => "')'".into(),
            Some(Tok::Comma) => "','".into(),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("the expression nests more than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn peek_word(&self) -> Option<&str> {
        word(self.toks.get(self.pos))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut l = self.and()?;
        while self.peek_word() == Some("or") {
            self.pos += 1;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        self.depth -= 1;
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.not()?;
        while self.peek_word() == Some("and") {
            self.pos += 1;
            let r = self.not()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.peek_word() == Some("not") {
            self.pos += 1;
            self.enter()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let l = self.add()?;
        let op = match self.peek_word() {
            Some("eq") => CmpOp::Eq,
            Some("ne") => CmpOp::Ne,
            Some("gt") => CmpOp::Gt,
            Some("ge") => CmpOp::Ge,
            Some("lt") => CmpOp::Lt,
            Some("le") => CmpOp::Le,
            _ => return Ok(l),
        };
        self.pos += 1;
        let r = self.add()?;
        Ok(Expr::Cmp(op, Box::new(l), Box::new(r)))
    }

    fn add(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.mul()?;
        loop {
            let op = match self.peek_word() {
                Some("add") => ArithOp::Add,
                Some("sub") => ArithOp::Sub,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.mul()?;
            l = Expr::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn mul(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek_word() {
                Some("mul") => ArithOp::Mul,
                Some("div") => ArithOp::Div,
                Some("mod") => ArithOp::Mod,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek_word() == Some("-") {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.pos;
        let Some(t) = self.toks.get(at).cloned() else { return err("the expression ends too early") };
        self.pos += 1;
        Ok(match t {
            Tok::Str(s) => Expr::Lit(SVal::Text(s)),
            Tok::Int(n) => Expr::Lit(SVal::Int(n)),
            Tok::Num(f) => Expr::Lit(SVal::Num(f)),
            Tok::Time(t) => Expr::Lit(SVal::Time(t)),
            Tok::Geo(g) => Expr::Lit(SVal::Json(g)),
            Tok::LParen => {
                let e = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return err(format!("expected ')' but found {}", self.show(self.pos)));
                }
                self.pos += 1;
                e
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => Expr::Lit(SVal::Bool(true)),
                "false" => Expr::Lit(SVal::Bool(false)),
                "null" => Expr::Lit(SVal::Null),
                _ if self.toks.get(self.pos) == Some(&Tok::LParen) => {
                    let f = function(&w)?;
                    self.pos += 1;
                    self.enter()?;
                    let mut args = Vec::new();
                    if self.toks.get(self.pos) == Some(&Tok::RParen) {
                        self.pos += 1;
                    } else {
                        loop {
                            args.push(self.or()?);
                            match self.toks.get(self.pos) {
                                Some(Tok::Comma) => self.pos += 1,
                                Some(Tok::RParen) => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => {
                                    return err(format!(
                                        "expected ',' or ')' in {w}(...) but found {}",
                                        self.show(self.pos)
                                    ))
                                }
                            }
                            if args.len() > 8 {
                                return err(format!("{w} has too many arguments"));
                            }
                        }
                    }
                    self.depth -= 1;
                    Expr::Call(f, args)
                }
                "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "and" | "or" | "add" | "sub" | "mul" | "div"
                | "mod" => return err(format!("expected a value but found the operator {w:?}")),
                _ => Expr::Path(w.split('/').map(str::to_owned).collect()),
            },
            Tok::RParen | Tok::Comma => return err(format!("expected a value but found {}", self.show(at))),
        })
    }
}

fn function(name: &str) -> Result<Func, ParseError> {
    Ok(match name {
        "substringof" => Func::SubstringOf,
        "startswith" => Func::StartsWith,
        "endswith" => Func::EndsWith,
        "length" => Func::Length,
        "tolower" => Func::ToLower,
        "toupper" => Func::ToUpper,
        "indexof" => Func::IndexOf,
        "trim" => Func::Trim,
        "concat" => Func::Concat,
        "substring" => Func::Substring,
        "year" => Func::Year,
        "month" => Func::Month,
        "day" => Func::Day,
        "hour" => Func::Hour,
        "minute" => Func::Minute,
        "second" => Func::Second,
        "fractionalseconds" => Func::FractionalSeconds,
        "date" => Func::Date,
        "now" => Func::Now,
        "mindatetime" => Func::MinDateTime,
        "maxdatetime" => Func::MaxDateTime,
        "round" => Func::Round,
        "floor" => Func::Floor,
        "ceiling" => Func::Ceiling,
        "geo.intersects" | "st_intersects" => Func::GeoIntersects,
        "st_within" => Func::StWithin,
        "st_contains" => Func::StContains,
        "st_disjoint" => Func::StDisjoint,
        "st_equals" => Func::StEquals,
        "geo.distance" => Func::GeoDistance,
        "geo.length" => Func::GeoLength,
        _ => return err(format!("unknown function {name}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse_expr(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn path(s: &str) -> Box<Expr> {
        Box::new(Expr::Path(s.split('/').map(str::to_owned).collect()))
    }

    #[test]
    fn expressions() {
        use Expr::*;
        assert_eq!(p("result gt 5"), Cmp(CmpOp::Gt, path("result"), Box::new(Lit(SVal::Int(5)))));
        assert_eq!(
            p("name eq 'it''s' and not (result le -1.5)"),
            And(
                Box::new(Cmp(CmpOp::Eq, path("name"), Box::new(Lit(SVal::Text("it's".into()))))),
                Box::new(Not(Box::new(Cmp(CmpOp::Le, path("result"), Box::new(Lit(SVal::Num(-1.5)))))))
            )
        );
        // `and` binds tighter than `or`; `mul` tighter than `add`.
        assert_eq!(
            p("a eq 1 or b eq 2 and c eq 3"),
            Or(
                Box::new(Cmp(CmpOp::Eq, path("a"), Box::new(Lit(SVal::Int(1))))),
                Box::new(And(
                    Box::new(Cmp(CmpOp::Eq, path("b"), Box::new(Lit(SVal::Int(2))))),
                    Box::new(Cmp(CmpOp::Eq, path("c"), Box::new(Lit(SVal::Int(3)))))
                ))
            )
        );
        assert_eq!(
            p("result add 1 mul 2 gt 3"),
            Cmp(
                CmpOp::Gt,
                Box::new(Arith(
                    ArithOp::Add,
                    path("result"),
                    Box::new(Arith(
                        ArithOp::Mul,
                        Box::new(Lit(SVal::Int(2 - 1))),
                        Box::new(Lit(SVal::Int(2)))
                    ))
                )),
                Box::new(Lit(SVal::Int(3)))
            )
        );
        assert_eq!(
            p("phenomenonTime ge 2024-01-02T03:04:05.5Z"),
            Cmp(CmpOp::Ge, path("phenomenonTime"), Box::new(Lit(SVal::Time(1_704_164_645_500_000))))
        );
        assert_eq!(
            p("Datastream/Thing/properties/owner eq 'x'"),
            Cmp(CmpOp::Eq, path("Datastream/Thing/properties/owner"), Box::new(Lit(SVal::Text("x".into()))))
        );
        assert_eq!(
            p("st_within(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')"),
            Call(
                Func::StWithin,
                vec![
                    Expr::Path(vec!["location".into()]),
                    Lit(SVal::Json(
                        json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]})
                    ))
                ]
            )
        );
        assert_eq!(
            p("year(now()) ge 2024"),
            Cmp(
                CmpOp::Ge,
                Box::new(Call(Func::Year, vec![Call(Func::Now, vec![])])),
                Box::new(Lit(SVal::Int(2024)))
            )
        );
        assert!(matches!(
            p("geo.intersects(feature, geometry'POINT(114.1 22.3)')"),
            Call(Func::GeoIntersects, _)
        ));
        assert!(matches!(p("substringof('PM', name)"), Call(Func::SubstringOf, _)));
    }

    #[test]
    fn bad_expressions_say_why() {
        for (s, says) in [
            ("name eq", "ends too early"),
            ("name eq 'x", "has no end"),
            ("(name eq 'x'", "expected ')'"),
            ("name eq 'x')", "unexpected ')'"),
            ("frobnicate(name)", "unknown function frobnicate"),
            ("name ~ 1", "unexpected character '~'"),
            ("time gt 2024-13-01T00:00:00Z", "not an ISO 8601"),
            ("st_within(location, geography'CIRCLE(1 2)')", "CIRCLE geometries are not supported"),
            ("st_within(location, geography'POINT(1)')", "not a coordinate pair"),
            ("eq eq 1", "operator"),
            ("result gt 1e999", "not a finite number"),
        ] {
            let e = parse_expr(s).unwrap_err();
            assert!(e.0.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}a eq 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&deep).unwrap_err().0.contains("longer than"));
        let deep = format!("{}a eq 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_expr(&deep).unwrap_err().0.contains("nests more than"));
        let nots = format!("{}a eq 1", "not ".repeat(1000));
        assert!(parse_expr(&nots).is_err());
        let negs = format!("a eq {}1", "-".repeat(2000));
        assert!(parse_expr(&negs).is_err());
        let many = vec!["a eq 1"; 800].join(" or ");
        assert!(parse_expr(&many).is_ok() || parse_expr(&many).is_err());
        let expand = "Datastreams(".repeat(20) + &")".repeat(20);
        let o = Options::parse([("$expand", expand.as_str())].into_iter(), 0);
        assert!(o.is_err());
        // Every prefix of a valid expression, and a few mangled ones, end in Ok or a ParseError.
        let full = "substringof('a', name) and result add 1 gt -2.5 or st_within(location, geography'POLYGON((0 0,1 0,1 1,0 0))') and time lt 2024-01-01T00:00:00Z";
        for i in 0..=full.len() {
            if full.is_char_boundary(i) {
                let _ = parse_expr(&full[..i]);
                let _ = parse_expr(&full[i..]);
            }
        }
        for s in [
            "'",
            "''",
            "(",
            ")",
            ",",
            "-",
            "--1",
            "geography'",
            "geography''",
            "a/",
            "/a",
            "a//b",
            "é eq 'ü'",
            "9999999999999999999999",
        ] {
            let _ = parse_expr(s);
        }
    }

    proptest::proptest! {
        /// Any text, and any text made of the language's own pieces, is an expression or an error.
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse_expr(&s);
            let _ = Options::parse([("$expand", s.as_str()), ("$orderby", s.as_str())].into_iter(), 0);
        }

        #[test]
        fn pieces_never_panic(parts in proptest::collection::vec(proptest::sample::select(vec![
            "(", ")", ",", "'", "''", " eq ", " and ", " or ", "not ", " add ", "-", "1", "2.5e3", "name",
            "Datastream/Thing/name", "substringof(", "geography'POINT(1 2)'", "2024-01-01T00:00:00Z",
            "$top=1", ";", "$expand=", "Observations", "now()", "geo.intersects(", "geography'", "POLYGON((",
        ]), 0..60)) {
            let s: String = parts.concat();
            let _ = parse_expr(&s);
            let _ = Options::parse([("$expand", s.as_str())].into_iter(), 0);
        }
    }

    #[test]
    fn options_and_expansions() {
        let o = Options::parse(
            [
                ("$expand", "Datastreams($filter=name eq 'a;b';$expand=Observations($top=1;$orderby=phenomenonTime desc)),Locations"),
                ("$top", "20000"),
                ("$count", "true"),
                ("$select", "name,id"),
                ("other", "ignored"),
            ]
            .into_iter(),
            0,
        )
        .unwrap();
        assert_eq!(o.top, Some(MAX_TOP));
        assert!(o.count);
        assert_eq!(o.select, Some(vec!["name".to_owned(), "id".to_owned()]));
        assert_eq!(o.expand.len(), 2);
        let ds = &o.expand[0];
        assert_eq!(ds.nav, "Datastreams");
        assert!(ds.options.filter.is_some());
        let obs = &ds.options.expand[0];
        assert_eq!((obs.nav.as_str(), obs.options.top), ("Observations", Some(1)));
        assert_eq!(obs.options.orderby.len(), 1);
        assert!(obs.options.orderby[0].1);
        // A path expands each step.
        let o =
            Options::parse([("$expand", "Datastreams/Sensor,Datastreams/ObservedProperty")].into_iter(), 0)
                .unwrap();
        assert_eq!(o.expand.len(), 1);
        assert_eq!(o.expand[0].options.expand.len(), 2);
        for (name, value, says) in [
            ("$top", "-1", "whole number"),
            ("$count", "yes", "true or false"),
            ("$frobnicate", "1", "unknown query option"),
            ("$expand", "Datastreams($top=1", "unbalanced"),
            ("$select", "a b", "property names"),
        ] {
            let e = Options::parse([(name, value)].into_iter(), 0).unwrap_err();
            assert!(e.0.contains(says), "{name}={value}: {e}");
        }
    }
}
