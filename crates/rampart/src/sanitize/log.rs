//! Log lines that user input cannot forge or hide things in.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` must be written as an escape in a log line: the backslash
/// (so escapes are unambiguous), control characters (CR and LF forge new
/// lines, ESC drives terminals), Unicode line and paragraph separators,
/// direction overrides and isolates (which reorder what a reader sees), and
/// zero-width characters (which hide text).
fn must_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{200B}'..='\u{200F}' | '\u{061C}' | '\u{2060}' | '\u{FEFF}'
        )
}

fn write_escaped(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\\' => out.write_str("\\\\"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// Neutralizes `text` for one log line: CR, LF, tab, every other control
/// character, Unicode line separators, direction overrides and zero-width
/// characters are written as visible escapes (`\r`, `\n`, `\u{202e}`), and a
/// backslash as `\\`, so the line cannot be split, forged or disguised, and
/// the original can be told back. Text with none of them comes back as it
/// is, without allocating.
///
/// For structured (JSON) logs the encoder already escapes control
/// characters; this is for text logs, and for values a human reads in a
/// terminal.
///
/// ```
/// use rampart::sanitize::neutralize;
///
/// let user = "alice\n2024-01-01 INFO admin logged in";
/// assert_eq!(neutralize(user), "alice\\n2024-01-01 INFO admin logged in");
/// assert_eq!(neutralize("file\u{202E}txt.exe"), "file\\u{202e}txt.exe");
/// ```
pub fn neutralize(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(must_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if must_escape(c) {
            let _ = write_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Neutralizes bytes that may not be UTF-8: valid text as [`neutralize`]
/// does, each invalid byte as `\x{ff}`.
///
/// ```
/// use rampart::sanitize::neutralize_bytes;
///
/// assert_eq!(neutralize_bytes(b"caf\xe9\r\n"), "caf\\x{e9}\\r\\n");
/// ```
pub fn neutralize_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return neutralize(text);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&neutralize(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{{{byte:x}}}");
        }
    }
    Cow::Owned(out)
}

/// Displays a string neutralized, without allocating: for log fields.
///
/// ```
/// use rampart::sanitize::Neutralized;
///
/// let name = "eve\r\nFAKE ENTRY";
/// tracing::warn!(target: "rampart::example", user = %Neutralized(name), "login failed");
/// assert_eq!(Neutralized(name).to_string(), "eve\\r\\nFAKE ENTRY");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Neutralized<'a>(pub &'a str);

impl fmt::Display for Neutralized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(must_escape) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            write_escaped(f, c)?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_line_breaking_or_hiding_character_is_escaped() {
        let cases = [
            ("a\r\nb", "a\\r\\nb"),
            ("a\u{85}b", "a\\u{85}b"), // NEL
            ("a\u{2028}b\u{2029}", "a\\u{2028}b\\u{2029}"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"), // ANSI escape
            ("a\0b\u{7f}", "a\\u{0}b\\u{7f}"),
            ("x\u{2066}y\u{2069}", "x\\u{2066}y\\u{2069}"),
            ("zero\u{200B}width", "zero\\u{200b}width"),
            ("C:\\path\\n", "C:\\\\path\\\\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(neutralize(input), expected, "{input:?}");
            assert_eq!(Neutralized(input).to_string(), expected, "{input:?}");
        }
        assert!(matches!(neutralize("ordinary text, é 中文 ｆｕｌｌ"), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(neutralize_bytes(b"ok"), "ok");
        assert_eq!(neutralize_bytes(b"\xff\xfe\n"), "\\x{ff}\\x{fe}\\n");
        assert_eq!(neutralize_bytes(b"\xc0\xaf"), "\\x{c0}\\x{af}"); // overlong '/'
        assert_eq!(neutralize_bytes(b"\xed\xa0\x80"), "\\x{ed}\\x{a0}\\x{80}"); // a surrogate
    }

    /// Inverts the escaping: proves it loses nothing.
    fn unescape(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                }
                other => panic!("unexpected escape {other:?}"),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn output_is_one_clean_line_and_reversible(text in any::<String>()) {
            let out = neutralize(&text);
            let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
            prop_assert!(!out.chars().any(breaks), "{:?}", out);
            prop_assert_eq!(unescape(&out), text);
        }
    }
}
