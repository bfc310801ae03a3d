//! The one function that turns a name into an SQL identifier.

/// Quotes `name` as an SQL identifier: wrapped in double quotes, inner double quotes doubled, NUL
/// characters (which no SQL engine accepts in a name) replaced by U+FFFD. This is the only way a
/// name reaches SQL text in citydata; the result is valid for SQLite and PostgreSQL alike.
#[must_use]
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        for (name, want) in [
            ("a", "\"a\""),
            ("地區 District", "\"地區 District\""),
            ("x\"; DROP TABLE t; --", "\"x\"\"; DROP TABLE t; --\""),
            ("a\0b", "\"a\u{fffd}b\""),
            ("", "\"\""),
        ] {
            assert_eq!(quote_ident(name), want);
        }
    }

    #[test]
    fn quoted_names_survive_sqlite() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let evil = "x\"); DROP TABLE t; --";
        c.execute_batch(&format!("CREATE TABLE t ({} INTEGER)", quote_ident(evil))).unwrap();
        let name: String = c.query_row("SELECT name FROM pragma_table_info('t')", [], |r| r.get(0)).unwrap();
        assert_eq!(name, evil);
    }
}
