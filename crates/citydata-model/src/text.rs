//! How text is read as typed values: numbers (with `,` thousands separators), booleans, dates
//! (ISO and the Hong Kong habit `DD/MM/YYYY`), times and datetimes. One reading for the whole
//! system: type inference of published files and the filters of queries take values the same way.

/// The shape of a number's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    /// No fraction and no exponent.
    pub integer: bool,
    /// Written with `,` thousands separators.
    pub grouped: bool,
}

/// Checks the shape of a number: sign, digits with optional `,` thousands groups, fraction, exponent.
/// Integers must fit 64 bits, other numbers have at most 15 significant digits, and no leading zeros.
#[must_use]
pub fn parse_number(s: &str) -> Option<Number> {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_start = i;
    let mut digits = 0usize;
    let mut grouped = false;
    let mut group_len = 0usize;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => {
                digits += 1;
                group_len += 1;
            }
            b',' => {
                // The first group has 1..=3 digits, every later one exactly 3.
                if digits == 0 || (grouped && group_len != 3) || (!grouped && group_len > 3) {
                    return None;
                }
                grouped = true;
                group_len = 0;
            }
            _ => break,
        }
        i += 1;
    }
    if grouped && group_len != 3 {
        return None;
    }
    let int_digits = digits;
    if int_digits > 1 && b[int_start] == b'0' {
        return None;
    }
    let mut integer = true;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        integer = false;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_digits += 1;
            i += 1;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        integer = false;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 3 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    // `-0` is no integer (an integer column would give it back as `0`); as a number it is -0.0.
    if integer && b.first() == Some(&b'-') && b[int_start..].iter().all(|c| *c == b'0' || *c == b',') {
        integer = false;
    }
    if integer {
        if int_digits > 19 || (int_digits == 19 && parse_int(s).is_none()) {
            return None;
        }
    } else {
        let significant = s
            .bytes()
            .take_while(|c| *c != b'e' && *c != b'E')
            .filter(u8::is_ascii_digit)
            .skip_while(|c| *c == b'0')
            .count();
        if significant > 15 {
            return None;
        }
    }
    Some(Number { integer, grouped })
}

/// An integer, with or without `,` thousands separators.
#[must_use]
pub fn parse_int(s: &str) -> Option<i64> {
    if s.contains(',') {
        s.replace(',', "").parse().ok()
    } else {
        s.parse().ok()
    }
}

/// `true`/`false` or `yes`/`no`, in any case.
#[must_use]
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// Days in month `m` of year `y` (0 for no such month).
#[must_use]
pub fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn valid_date(y: u32, m: u32, d: u32) -> Option<(u32, u32, u32)> {
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

/// `YYYY-MM-DD` (also `YYYY-M-D`) or the Hong Kong habit `DD/MM/YYYY` (also `D/M/YYYY`). Returns the date and whether
/// it was day-first.
#[must_use]
pub fn parse_date(s: &str) -> Option<((u32, u32, u32), bool)> {
    if s.len() >= 8 && s.as_bytes()[4] == b'-' {
        let mut parts = s.split('-');
        let y = digits(parts.next()?, 4, 4)?;
        let m = digits(parts.next()?, 1, 2)?;
        let d = digits(parts.next()?, 1, 2)?;
        if parts.next().is_some() {
            return None;
        }
        return valid_date(y, m, d).map(|v| (v, false));
    }
    let mut parts = s.split('/');
    let d = digits(parts.next()?, 1, 2)?;
    let m = digits(parts.next()?, 1, 2)?;
    let y = digits(parts.next()?, 4, 4)?;
    if parts.next().is_some() {
        return None;
    }
    valid_date(y, m, d).map(|v| (v, true))
}

/// A time of day as read: hour, minute, second and the fraction's digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time<'a> {
    h: u32,
    m: u32,
    s: u32,
    frac: &'a str,
}

impl Time<'_> {
    /// `HH:MM:SS` (with the fraction when there was one).
    #[must_use]
    pub fn canonical(&self) -> String {
        let Time { h, m, s, frac } = self;
        if frac.is_empty() {
            format!("{h:02}:{m:02}:{s:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}.{frac}")
        }
    }
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` (hour may have one digit).
#[must_use]
pub fn parse_time(s: &str) -> Option<Time<'_>> {
    let mut parts = s.splitn(3, ':');
    let h = digits(parts.next()?, 1, 2)?;
    let m = digits(parts.next()?, 2, 2)?;
    let sec = parts.next();
    let (sec_whole, frac) = match sec {
        None => ("00", ""),
        Some(x) => match x.split_once('.') {
            Some((w, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
            Some(_) => return None,
            None => (x, ""),
        },
    };
    let sv = digits(sec_whole, 2, 2)?;
    if h > 23 || m > 59 || sv > 60 {
        return None;
    }
    Some(Time { h, m, s: sv, frac })
}

/// A date and time as read, and whether the date was day-first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime<'a> {
    /// Year, month, day.
    pub date: (u32, u32, u32),
    time: Time<'a>,
    zone: &'a str,
    /// The date was written day first (`DD/MM/YYYY`).
    pub day_first: bool,
}

impl DateTime<'_> {
    /// `YYYY-MM-DDTHH:MM:SS` with the zone as written.
    #[must_use]
    pub fn canonical(&self) -> String {
        let (y, mo, d) = self.date;
        format!("{y:04}-{mo:02}-{d:02}T{}{}", self.time.canonical(), self.zone)
    }
}

/// A date, `T` or a space, a time, and an optional zone (`Z`, `+08:00`, `+0800`).
#[must_use]
pub fn parse_datetime(s: &str) -> Option<DateTime<'_>> {
    let sep = s.find(['T', ' '])?;
    let ((y, mo, d), day_first) = parse_date(&s[..sep])?;
    let rest = &s[sep + 1..];
    let (time, zone) = match rest.find(['Z', '+']).or_else(|| rest.rfind('-')) {
        Some(z) => (&rest[..z], &rest[z..]),
        None => (rest, ""),
    };
    let time = parse_time(time)?;
    let zone_ok = match zone.as_bytes() {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    zone_ok.then_some(DateTime { date: (y, mo, d), time, zone, day_first })
}
