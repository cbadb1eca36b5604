//! File names: a safe name, or a clear rejection.

use crate::error::Error;
use crate::validate::rules::is_invisible;

/// The longest file name accepted, in bytes (the limit of most file systems).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Names Windows reserves for devices, whatever the extension (`con.txt`).
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "conin$", "conout$", "com0", "com1", "com2", "com3", "com4",
    "com5", "com6", "com7", "com8", "com9", "com¹", "com²", "com³", "lpt0", "lpt1", "lpt2", "lpt3",
    "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "lpt¹", "lpt²", "lpt³",
];

/// Characters that some layer may normalize (NFKC) into a separator or a
/// dot: full-width and other look-alikes of `/`, `\` and `.`.
pub(crate) fn looks_like_separator_or_dot(c: char) -> bool {
    matches!(
        c,
        '\u{2215}'
            | '\u{2044}'
            | '\u{29F8}'
            | '\u{29F9}'
            | '\u{FF0F}'
            | '\u{FF3C}'
            | '\u{FE68}'
            | '\u{FF0E}'
            | '\u{2024}'
            | '\u{FE52}'
            | '\u{3002}'
            | '\u{FF61}'
    )
}

/// Characters that change how the name is displayed without being seen:
/// direction overrides (`invoice\u{202E}gpj.exe` shows as `invoiceexe.jpg`),
/// zero-width characters, line separators.
pub(crate) fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            | '\u{2028}' | '\u{2029}'
    ) || (is_invisible(c) && c != ' ')
}

/// Accepts `name` as a file name, unchanged, or says why not.
///
/// Refused: an empty name; more than [`MAX_FILE_NAME_BYTES`] bytes; a path
/// separator (`/`, `\`) or a look-alike that normalization could turn into
/// one or into a dot (full-width `／`, `＼`, `．`, division slash, ...); NUL
/// and every other control character; direction overrides, zero-width and
/// other invisible characters; the characters Windows forbids
/// (`< > : " | ? *`); a leading dot (`.`, `..`, hidden files such as
/// `.htaccess`) or dash (read as an option by command-line tools); a
/// trailing dot or space (Windows drops them, so `evil.php.` is
/// `evil.php`); and the Windows device names (`CON`, `NUL`, `COM1`,
/// `LPT1`, ... also with an extension, `con.txt`).
///
/// The name is never rewritten: there is no "cleaned" result that could end
/// up empty or collide with another; a refused name is refused. To store
/// uploads, a name you generate (a UUID) is better still.
///
/// # Errors
/// A validation error coded `file_name`, whose message says what is wrong.
///
/// ```
/// use rampart::sanitize::file_name;
///
/// assert_eq!(file_name("report 2024.pdf").unwrap(), "report 2024.pdf");
/// for bad in ["", "..", "../x", "a/b", "a\\b", ".env", "con.txt", "x.php.", "a\0b", "a\u{202E}b"] {
///     assert_eq!(file_name(bad).unwrap_err().violations()[0].code, "file_name", "{bad:?}");
/// }
/// ```
pub fn file_name(name: &str) -> Result<&str, Error> {
    match problem(name) {
        None => Ok(name),
        Some(why) => Err(crate::validate::violation_error("", "file_name", why)),
    }
}

/// What is wrong with `name` as a file name, if anything.
pub(crate) fn problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Some("must be at most 255 bytes long");
    }
    if name == "." || name == ".." {
        return Some("must not be a relative path component");
    }
    for c in name.chars() {
        let why = match c {
            '/' | '\\' => "must not contain a path separator",
            c if looks_like_separator_or_dot(c) => {
                "must not contain a character that looks like a path separator or a dot"
            }
            c if c.is_control() => "must not contain control characters",
            c if is_deceptive(c) => "must not contain invisible or direction-changing characters",
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => {
                "must not contain any of the characters < > : \" | ? *"
            }
            _ => continue,
        };
        return Some(why);
    }
    if name.starts_with('.') {
        return Some("must not start with a dot");
    }
    if name.starts_with('-') {
        return Some("must not start with a dash");
    }
    if name.ends_with(['.', ' ']) {
        return Some("must not end with a dot or a space");
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end().to_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Some("is a device name reserved by Windows");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass_unchanged() {
        for ok in [
            "a",
            "report.pdf",
            "Zoë's notes (v2).txt",
            "中文文件.doc",
            "e\u{301}.txt",
            "console.log",
            "company.txt",
            "lpt10.txt",
            "a..b",
            "x-.txt",
        ] {
            assert_eq!(file_name(ok).unwrap(), ok);
        }
        let longest = "a".repeat(MAX_FILE_NAME_BYTES);
        assert!(file_name(&longest).is_ok());
    }

    #[test]
    fn every_rule_refuses_with_its_reason() {
        let cases = [
            ("", "empty"),
            (".", "relative path"),
            ("..", "relative path"),
            ("../etc/passwd", "separator"),
            ("..\\windows", "separator"),
            ("dir/file", "separator"),
            ("．．／etc", "looks like"),
            ("a／b", "looks like"),
            ("a\u{2215}b", "looks like"),
            ("a\0.txt", "control"),
            ("a\n.txt", "control"),
            ("a\u{85}.txt", "control"),
            ("a\u{7f}", "control"),
            ("invoice\u{202E}gpj.exe", "invisible"),
            ("a\u{200B}.txt", "invisible"),
            ("a\u{2028}b", "invisible"),
            ("a<b", "< >"),
            ("file.txt:stream", "< >"),
            ("what?", "< >"),
            (".htaccess", "start with a dot"),
            ("-rf", "dash"),
            ("evil.php.", "end with"),
            ("evil.php ", "end with"),
            ("CON", "reserved"),
            ("con.txt", "reserved"),
            ("Nul.tar.gz", "reserved"),
            ("COM1", "reserved"),
            ("lpt²", "reserved"),
            ("aux .txt", "reserved"),
        ];
        for (name, reason) in cases {
            let why = problem(name).unwrap_or_else(|| panic!("{name:?} was accepted"));
            assert!(why.contains(reason), "{name:?}: {why}");
        }
        let long = "é".repeat(128); // 256 bytes
        assert_eq!(problem(&long), Some("must be at most 255 bytes long"));
    }
}
