//! SQL: quote identifiers, escape LIKE patterns. Values never go into SQL
//! text: they go as bind parameters (`$1`, `?`), always.

use crate::error::Error;
use crate::validate::violation_error;

/// The longest identifier accepted, in bytes: PostgreSQL silently truncates
/// longer ones to 63 bytes, which could make two names one.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Quotes `name` as an SQL identifier (a table or column name) in the
/// standard way PostgreSQL and SQLite use: wrapped in double quotes, with
/// each `"` doubled. The quoted name is taken literally (case included), so
/// nothing in it can end the identifier.
///
/// Identifiers cannot be bind parameters, which is why this exists. Still,
/// when the name comes from a user (a sort column), match it against the
/// list of names you allow first; quote what you then put in the query.
/// **Values** (including LIKE patterns) always go as bind parameters, never
/// through this function.
///
/// # Errors
/// A validation error coded `sql_identifier` for an empty name, a name
/// longer than [`MAX_IDENTIFIER_BYTES`], or one holding NUL or another
/// control character.
///
/// ```
/// use rampart::sanitize::quote_identifier;
///
/// let column = quote_identifier(r#"name"; DROP TABLE users; --"#).unwrap();
/// assert_eq!(column, r#""name""; DROP TABLE users; --""#);
/// let sql = format!("SELECT {column} FROM users WHERE id = $1");
/// # let _ = sql;
/// ```
pub fn quote_identifier(name: &str) -> Result<String, Error> {
    let why = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        Some("must be at most 63 bytes long")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(violation_error("", "sql_identifier", why));
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Ok(quoted)
}

/// Escapes the LIKE wildcards `%` and `_` (and the escape character `\`
/// itself) in `text`, so that it matches literally inside a LIKE pattern.
/// Use the result as a **bind parameter** with an explicit escape clause:
///
/// ```
/// use rampart::sanitize::escape_like;
///
/// let term = "50%_off";
/// let pattern = format!("%{}%", escape_like(term)); // contains, literally
/// assert_eq!(pattern, "%50\\%\\_off%");
/// let sql = r"SELECT name FROM products WHERE name LIKE $1 ESCAPE '\'";
/// // client.query(sql, &[&pattern])
/// # let _ = sql;
/// ```
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_bad_ones_refused() {
        assert_eq!(quote_identifier("users").unwrap(), "\"users\"");
        assert_eq!(quote_identifier("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(quote_identifier("\"").unwrap(), "\"\"\"\"");
        assert_eq!(quote_identifier("naïve ｔａｂｌｅ").unwrap(), "\"naïve ｔａｂｌｅ\"");
        for bad in ["", "a\0b", "a\nb", &"x".repeat(64)] {
            let err = quote_identifier(bad).unwrap_err();
            assert_eq!(err.violations()[0].code, "sql_identifier");
        }
        assert!(quote_identifier(&"é".repeat(31)).is_ok()); // 62 bytes
        assert!(quote_identifier(&"é".repeat(32)).is_err()); // 64 bytes
    }

    #[test]
    fn like_wildcards_and_the_escape_are_escaped() {
        assert_eq!(escape_like("plain"), "plain");
        assert_eq!(escape_like(r"a%b_c\d"), r"a\%b\_c\\d");
        assert_eq!(escape_like("O'Brian"), "O'Brian", "quotes are the bind parameter's business");
    }
}
