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
    without_commas(s, |t| t.parse().ok())
}

/// A decimal number, with or without `,` thousands separators (Rust's reading of `f64`, so also
/// `inf` and `NaN`; callers refuse those where they must).
#[must_use]
pub fn parse_f64(s: &str) -> Option<f64> {
    without_commas(s, |t| t.parse().ok())
}

/// Calls `f` with `s` without its commas. Short texts (every number) are copied on the stack: bulk
/// loads read millions of `1,234`s, and a heap allocation each would cost more than the reading.
fn without_commas<T>(s: &str, f: impl FnOnce(&str) -> T) -> T {
    if !s.as_bytes().contains(&b',') {
        return f(s);
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    for &b in s.as_bytes() {
        if b == b',' {
            continue;
        }
        if n == buf.len() {
            return f(&s.replace(',', ""));
        }
        buf[n] = b;
        n += 1;
    }
    // Only ASCII commas were taken out of valid UTF-8, so what is left is valid UTF-8 too.
    match std::str::from_utf8(&buf[..n]) {
        Ok(t) => f(t),
        Err(_) => f(&s.replace(',', "")),
    }
}

/// Appends `v` (below 10^`width`) in decimal, zero-padded to `width` digits, as `{v:0width$}`
/// does for such values, without the formatting machinery.
fn push_padded(out: &mut String, v: u32, width: u32) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
                                5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let pair = |out: &mut String, v: u32| {
        let i = (v % 100) as usize * 2;
        out.push(char::from(PAIRS[i]));
        out.push(char::from(PAIRS[i + 1]));
    };
    match width {
        2 if v < 100 => pair(out, v),
        4 if v < 10_000 => {
            pair(out, v / 100);
            pair(out, v);
        }
        _ => {
            let digits = v.to_string();
            for _ in digits.len()..width as usize {
                out.push('0');
            }
            out.push_str(&digits);
        }
    }
}

/// Appends a date as `YYYY-MM-DD`.
pub fn push_date(out: &mut String, (y, m, d): (u32, u32, u32)) {
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
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

/// The value of `b` when it is `min..=max` ASCII digits.
fn digits(b: &[u8], min: usize, max: usize) -> Option<u32> {
    if b.len() < min || b.len() > max {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0')))
}

/// `b` cut at its first two `sep`s: exactly three parts, or `None`.
fn three(b: &[u8], sep: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let i = b.iter().position(|&c| c == sep)?;
    let rest = &b[i + 1..];
    let j = rest.iter().position(|&c| c == sep)?;
    let last = &rest[j + 1..];
    (!last.contains(&sep)).then_some((&b[..i], &rest[..j], last))
}

fn valid_date(y: u32, m: u32, d: u32) -> Option<(u32, u32, u32)> {
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

/// `YYYY-MM-DD` (also `YYYY-M-D`) or the Hong Kong habit `DD/MM/YYYY` (also `D/M/YYYY`). Returns the date and whether
/// it was day-first.
#[must_use]
pub fn parse_date(s: &str) -> Option<((u32, u32, u32), bool)> {
    let b = s.as_bytes();
    if b.len() >= 8 && b[4] == b'-' {
        let (y, m, d) = three(b, b'-')?;
        return valid_date(digits(y, 4, 4)?, digits(m, 1, 2)?, digits(d, 1, 2)?).map(|v| (v, false));
    }
    let (d, m, y) = three(b, b'/')?;
    let (d, m, y) = (digits(d, 1, 2)?, digits(m, 1, 2)?, digits(y, 4, 4)?);
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
        let mut out = String::with_capacity(8 + self.frac.len() + 1);
        self.push_canonical(&mut out);
        out
    }

    /// Appends [`Time::canonical`] to `out`.
    pub fn push_canonical(&self, out: &mut String) {
        let Time { h, m, s, frac } = *self;
        push_padded(out, h, 2);
        out.push(':');
        push_padded(out, m, 2);
        out.push(':');
        push_padded(out, s, 2);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    }
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` (hour may have one digit).
#[must_use]
pub fn parse_time(s: &str) -> Option<Time<'_>> {
    let b = s.as_bytes();
    let i = b.iter().position(|&c| c == b':')?;
    let h = digits(&b[..i], 1, 2)?;
    let rest = &s[i + 1..];
    let (m, sec) = match rest.as_bytes().iter().position(|&c| c == b':') {
        Some(j) => (&rest.as_bytes()[..j], Some(&rest[j + 1..])),
        None => (rest.as_bytes(), None),
    };
    let m = digits(m, 2, 2)?;
    let (sec_whole, frac) = match sec {
        None => ("00", ""),
        Some(x) => match x.split_once('.') {
            Some((w, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
            Some(_) => return None,
            None => (x, ""),
        },
    };
    let sv = digits(sec_whole.as_bytes(), 2, 2)?;
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
        let mut out = String::with_capacity(25);
        self.push_canonical(&mut out);
        out
    }

    /// Appends [`DateTime::canonical`] to `out`.
    pub fn push_canonical(&self, out: &mut String) {
        push_date(out, self.date);
        out.push('T');
        self.time.push_canonical(out);
        out.push_str(self.zone);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_forms() {
        let t = parse_time("9:05").unwrap();
        assert_eq!(t.canonical(), "09:05:00");
        assert_eq!(parse_time("23:59:59.125").unwrap().canonical(), "23:59:59.125");
        let dt = parse_datetime("31/01/2024 9:05+08:00").unwrap();
        assert_eq!(dt.canonical(), "2024-01-31T09:05:00+08:00");
        let mut s = String::new();
        push_date(&mut s, (24, 2, 9));
        assert_eq!(s, "0024-02-09");
        s.clear();
        push_padded(&mut s, 12345, 4);
        assert_eq!(s, "12345");
    }

    /// The readings as first written (with `str::split`), kept as the oracle of the byte-level ones.
    mod oracle {
        fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
            if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }

        pub fn parse_date(s: &str) -> Option<((u32, u32, u32), bool)> {
            if s.len() >= 8 && s.as_bytes()[4] == b'-' {
                let mut parts = s.split('-');
                let y = digits(parts.next()?, 4, 4)?;
                let m = digits(parts.next()?, 1, 2)?;
                let d = digits(parts.next()?, 1, 2)?;
                if parts.next().is_some() {
                    return None;
                }
                return super::valid_date(y, m, d).map(|v| (v, false));
            }
            let mut parts = s.split('/');
            let d = digits(parts.next()?, 1, 2)?;
            let m = digits(parts.next()?, 1, 2)?;
            let y = digits(parts.next()?, 4, 4)?;
            if parts.next().is_some() {
                return None;
            }
            super::valid_date(y, m, d).map(|v| (v, true))
        }

        pub fn parse_time(s: &str) -> Option<(u32, u32, u32, &str)> {
            let mut parts = s.splitn(3, ':');
            let h = digits(parts.next()?, 1, 2)?;
            let m = digits(parts.next()?, 2, 2)?;
            let (sec_whole, frac) = match parts.next() {
                None => ("00", ""),
                Some(x) => match x.split_once('.') {
                    Some((w, f))
                        if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        (w, f)
                    }
                    Some(_) => return None,
                    None => (x, ""),
                },
            };
            let sv = digits(sec_whole, 2, 2)?;
            if h > 23 || m > 59 || sv > 60 {
                return None;
            }
            Some((h, m, sv, frac))
        }
    }

    proptest! {
        /// The byte-level readings of dates and times agree with the first ones on any text.
        #[test]
        fn dates_and_times_read_as_before(
            s in "[0-9]{0,5}([-/:.][0-9]{0,5}){0,4}|[0-9 :./T+Z-]{0,24}|\\PC{0,12}|[0-3]?[0-9]/[01]?[0-9]/[0-9]{4}\
                  |[0-9]{4}-[01]?[0-9]-[0-3]?[0-9]|[0-2]?[0-9]:[0-6][0-9](:[0-6][0-9](\\.[0-9]{0,10})?)?"
        ) {
            prop_assert_eq!(parse_date(&s), oracle::parse_date(&s));
            prop_assert_eq!(parse_time(&s).map(|t| (t.h, t.m, t.s, t.frac)), oracle::parse_time(&s));
        }

        /// The digits written by hand are those of `format!`.
        #[test]
        fn padded_digits_match_format(v in 0u32..100_000, width in 1u32..6) {
            let mut s = String::new();
            push_padded(&mut s, v, width);
            prop_assert_eq!(s, format!("{v:0w$}", w = width as usize));
        }

        /// Reading without commas on the stack reads as the allocating way does.
        #[test]
        fn numbers_without_commas(s in "[-+]?[0-9,]{0,30}(\\.[0-9,]{0,10})?|[0-9,]{60,80}|\\PC{0,10}") {
            prop_assert_eq!(parse_int(&s), s.replace(',', "").parse::<i64>().ok());
            let want = s.replace(',', "").parse::<f64>().ok();
            let got = parse_f64(&s);
            prop_assert!(want == got || (want.is_some_and(f64::is_nan) && got.is_some_and(f64::is_nan)));
        }
    }
}
