//! Finding secrets in log output: sensitive field names, and values that
//! look like credentials wherever they appear. See [`Redactor`].

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use crate::sensitive::{DEFAULT_SENSITIVE_NAMES, DEFAULT_SENSITIVE_WORDS, has_word, is_word_at};

/// What a redacted value prints as.
pub const REDACTED: &str = "[REDACTED]";

/// Names whose value in text runs to the end of the line or quoted string
/// (`Cookie: a=1; sid=...`, `Authorization: Basic ...`), not to the first space.
const WHOLE_LINE: &[&str] = &["authorization", "cookie"];

/// Prefixes of well-known vendor tokens.
const TOKEN_PREFIXES: &[&str] = &[
    "sk_live_",
    "sk_test_",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "akia",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Jwt,
    Scheme,
    ApiKey,
    VendorToken,
    PemBlock,
    UrlUserinfo,
    /// A sensitive name: a `=`/`:` after it introduces a secret. A `word`
    /// counts only as a whole word.
    Name {
        whole_line: bool,
        word: bool,
    },
    /// The bare word `key`: only a long, high-entropy value is a secret.
    GenericKey,
}

/// Finds secrets in field names and text: sensitive names (by default
/// [`DEFAULT_SENSITIVE_NAMES`] and [`DEFAULT_SENSITIVE_WORDS`], the list
/// validation messages use too) and, in any text, JWTs, `Bearer`/`Basic`
/// credentials, rampart API keys (`rk_...`), vendor tokens, PEM private keys,
/// URL passwords and `name=value` pairs with a sensitive name.
///
/// ```
/// use rampart::telemetry::Redactor;
///
/// let r = Redactor::default();
/// assert!(r.is_sensitive_name("db_password"));
/// assert!(!r.is_sensitive_name("user_id"));
/// assert_eq!(r.redact("password=hunter2 for bob"), "password=[REDACTED] for bob");
/// ```
///
/// Text is scanned once with an Aho-Corasick automaton for trigger words
/// (`eyJ`, `bearer`, `rk_`, `-----BEGIN`, `://`, `password`, ...); only where
/// one occurs is the careful check run, so clean text costs one pass.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// The spelled names.
    names: AhoCorasick,
    /// Short names that count only as a word of a name.
    words: &'static [&'static str],
    triggers: AhoCorasick,
    kinds: Vec<Trigger>,
}

impl Default for Redactor {
    /// The built-in names and words.
    fn default() -> Redactor {
        Redactor::with_defaults(std::iter::empty::<&str>())
    }
}

impl Redactor {
    /// A redactor for these sensitive names only (see
    /// [`DEFAULT_SENSITIVE_NAMES`] for how they match), plus the built-in
    /// credential patterns.
    pub fn new<I, S>(names: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor::build(names, &[])
    }

    /// The built-in names and words, and `extra` names.
    pub(crate) fn with_defaults<I, S>(extra: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = DEFAULT_SENSITIVE_NAMES.iter().map(|n| (*n).to_owned());
        let extra = extra.into_iter().map(|n| n.as_ref().to_owned());
        Redactor::build(names.chain(extra), DEFAULT_SENSITIVE_WORDS)
    }

    fn build<I, S>(names: I, words: &'static [&'static str]) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut spelled = Vec::new();
        for name in names {
            let name = name.as_ref().trim().to_ascii_lowercase();
            let words: Vec<&str> =
                name.split(['_', '-', '.', ' ']).filter(|w| !w.is_empty()).collect();
            if words.is_empty() {
                continue;
            }
            for sep in ["_", "-", ".", ""] {
                let variant = words.join(sep);
                if !spelled.contains(&variant) {
                    spelled.push(variant);
                }
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut kinds = Vec::new();
        let mut add = |pattern: &str, kind| {
            patterns.push(pattern.to_owned());
            kinds.push(kind);
        };
        add("eyj", Trigger::Jwt);
        add("bearer", Trigger::Scheme);
        add("basic", Trigger::Scheme);
        add("rk_", Trigger::ApiKey);
        add("-----begin", Trigger::PemBlock);
        add("://", Trigger::UrlUserinfo);
        add("key", Trigger::GenericKey);
        for prefix in TOKEN_PREFIXES {
            add(prefix, Trigger::VendorToken);
        }
        for name in &spelled {
            let whole_line = WHOLE_LINE.iter().any(|w| name.contains(w));
            add(name, Trigger::Name { whole_line, word: false });
        }
        for word in words {
            add(word, Trigger::Name { whole_line: false, word: true });
        }
        Redactor {
            names: build(&spelled, MatchKind::Standard),
            words,
            triggers: build(&patterns, MatchKind::LeftmostLongest),
            kinds,
        }
    }

    /// Whether a field of this name is redacted whatever its value.
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        self.names.is_match(name) || has_word(name, self.words)
    }

    /// `text` with every credential-looking part replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = String::new();
        let mut last = 0;
        self.for_each_secret(text, |start, end| {
            out.push_str(&text[last..start]);
            out.push_str(REDACTED);
            last = end;
        });
        if last == 0 && out.is_empty() {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// Calls `found(start, end)` for each secret in `text`, in order, never
    /// overlapping; both ends are on char boundaries.
    ///
    /// Text holding `%XX` escapes is also scanned as it reads decoded
    /// (`password%3Dhunter2`, `%22token%22%3A...`), and what is found there
    /// is redacted in the text as written.
    pub(crate) fn for_each_secret(&self, text: &str, mut found: impl FnMut(usize, usize)) {
        let Some(decoded) = PercentDecoded::of(text) else {
            self.scan(text.as_bytes(), found);
            return;
        };
        let mut spans = Vec::new();
        self.scan(text.as_bytes(), |start, end| spans.push((start, end)));
        self.scan(&decoded.bytes, |start, end| spans.push(decoded.span_in(text, start, end)));
        spans.sort_unstable();
        let mut current: Option<(usize, usize)> = None;
        for (start, end) in spans.into_iter().filter(|(start, end)| start < end) {
            current = match current {
                Some((from, to)) if start <= to => Some((from, to.max(end))),
                Some((from, to)) => {
                    found(from, to);
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((from, to)) = current {
            found(from, to);
        }
    }

    /// [`for_each_secret`](Redactor::for_each_secret) over bytes as they are.
    fn scan(&self, bytes: &[u8], mut found: impl FnMut(usize, usize)) {
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(m) = self.triggers.find(Input::new(bytes).span(pos..bytes.len())) else {
                break;
            };
            match check(self.kinds[m.pattern().as_usize()], bytes, m.start(), m.end()) {
                Some((start, end)) if start < end => {
                    found(start, end);
                    pos = end;
                }
                // Triggers start with ASCII, so one byte on is a char boundary.
                _ => pos = m.start() + 1,
            }
        }
    }
}

/// Text with its `%XX` escapes decoded, and where each byte came from.
struct PercentDecoded {
    bytes: Vec<u8>,
    /// The offset in the text of each decoded byte, and the text's length last.
    origin: Vec<usize>,
}

impl PercentDecoded {
    /// `None` when `text` holds no `%XX` escape (the usual case: no copy made).
    fn of(text: &str) -> Option<PercentDecoded> {
        let b = text.as_bytes();
        let hex = |at: usize| b.get(at).and_then(|&c| (c as char).to_digit(16));
        let escape_at = |at: usize| Some(hex(at + 1)? * 16 + hex(at + 2)?);
        memchr::memchr_iter(b'%', b).find(|&at| escape_at(at).is_some())?;
        let mut bytes = Vec::with_capacity(b.len());
        let mut origin = Vec::with_capacity(b.len() + 1);
        let mut i = 0;
        while i < b.len() {
            origin.push(i);
            match (b[i], escape_at(i)) {
                // Two hex digits make at most 255.
                (b'%', Some(value)) => {
                    bytes.push(u8::try_from(value).unwrap_or(b'%'));
                    i += 3;
                }
                (c, _) => {
                    bytes.push(c);
                    i += 1;
                }
            }
        }
        origin.push(b.len());
        Some(PercentDecoded { bytes, origin })
    }

    /// The span of `text` that decodes to `start..end`, widened to char boundaries.
    fn span_in(&self, text: &str, start: usize, end: usize) -> (usize, usize) {
        let mut from = self.origin[start];
        let mut to = self.origin[end];
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        while !text.is_char_boundary(to) {
            to += 1;
        }
        (from, to)
    }
}

fn build<P: AsRef<[u8]>>(patterns: &[P], kind: MatchKind) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(kind)
        .build(patterns)
        // Building fails only past limits that a few dozen short words never reach.
        .expect("a few dozen short patterns build")
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The end of the run of bytes from `from` that satisfy `ok`.
fn run(bytes: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    bytes[from..].iter().position(|&b| !ok(b)).map_or(bytes.len(), |n| from + n)
}

fn starts_word(bytes: &[u8], at: usize) -> bool {
    at == 0 || !is_word(bytes[at - 1])
}

/// Where the secret introduced by a trigger at `start..end` is, if any.
fn check(kind: Trigger, b: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    match kind {
        Trigger::Jwt => {
            let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            if &b[start..end] != b"eyJ"
                || (start > 0 && (b64url(b[start - 1]) || b[start - 1] == b'.'))
            {
                return None;
            }
            let stop = run(b, start, |c| b64url(c) || c == b'.');
            let mut parts = b[start..stop].split(|&c| c == b'.');
            let header = parts.next().map_or(0, <[u8]>::len);
            let payload = parts.next().map_or(0, <[u8]>::len);
            let jws = header >= 4 && payload >= 2 && parts.next().is_some();
            jws.then_some((start, stop))
        }
        Trigger::Scheme => {
            let token = run(b, end, |c| c == b' ');
            if !starts_word(b, start) || token == end {
                return None;
            }
            let stop = run(b, token, is_token68);
            let value = &b[token..stop];
            let varied = value.iter().any(|&c| !c.is_ascii_alphabetic());
            (value.len() >= 8 && varied).then_some((token, stop))
        }
        Trigger::ApiKey | Trigger::VendorToken => {
            let stop = run(b, end, |c| is_word(c) || c == b'-');
            let long = if kind == Trigger::ApiKey { stop - end >= 8 } else { stop - start >= 16 };
            (starts_word(b, start) && long).then_some((start, stop))
        }
        Trigger::PemBlock => {
            let header_end = find(b, end, b"-----")?;
            if header_end - end > 40 || !b[end..header_end].ends_with(b"PRIVATE KEY") {
                return None;
            }
            let stop = find(b, header_end + 5, b"-----END")
                .and_then(|at| find(b, at + 8, b"-----").map(|close| close + 5))
                .unwrap_or(b.len());
            Some((start, stop))
        }
        Trigger::UrlUserinfo => {
            // The userinfo ends at the authority's last `@`: a password may
            // hold an unencoded `@` of its own.
            let authority = run(b, end, |c| {
                !matches!(c, b'/' | b'?' | b'#' | b'"' | b'\'') && !c.is_ascii_whitespace()
            });
            let at = end + b[end..authority].iter().rposition(|&c| c == b'@')?;
            let colon = end + b[end..at].iter().position(|&c| c == b':')?;
            Some((colon + 1, at))
        }
        Trigger::Name { whole_line, word } => {
            if word && !is_word_at(b, start, end) {
                return None;
            }
            assigned_value(b, end, whole_line).or_else(|| paired_value(b, start, end, whole_line))
        }
        Trigger::GenericKey => {
            let (from, to) = assigned_value(b, end, false)?;
            (to - from >= 16 && entropy(&b[from..to]) >= 3.0).then_some((from, to))
        }
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|at| from + at)
}

/// The value after a name: `name=value`, `name: value`, `"name": "value"`,
/// `name=\"value\"` (inside Debug-escaped text).
fn assigned_value(b: &[u8], mut i: usize, whole_line: bool) -> Option<(usize, usize)> {
    let mut skipped = 0;
    while i < b.len() && matches!(b[i], b'"' | b'\'' | b'\\') && skipped < 2 {
        i += 1;
        skipped += 1;
    }
    i = run(b, i, |c| c == b' ' || c == b'\t');
    match b.get(i) {
        Some(b'=') => i += 1,
        // `::` is a Rust path, not an assignment.
        Some(b':') if b.get(i + 1) != Some(&b':') => i += 1,
        _ => return None,
    }
    value_at(b, run(b, i, |c| c == b' ' || c == b'\t'), whole_line)
}

/// The value of a `("name", value)` pair, as a list of headers prints
/// with `{:?}`; the name was found at `start..end`.
fn paired_value(b: &[u8], start: usize, end: usize, whole_line: bool) -> Option<(usize, usize)> {
    let is_name = |c: u8| is_word(c) || c == b'-' || c == b'.';
    let from = start - b[..start].iter().rev().take_while(|&&c| is_name(c)).count();
    let to = run(b, end, is_name);
    let before = b[..from].strip_suffix(b"\"")?;
    let opened = before.iter().rev().find(|c| !c.is_ascii_whitespace()) == Some(&b'(');
    if !opened || b.get(to..to + 2) != Some(b"\",".as_slice()) {
        return None;
    }
    value_at(b, run(b, to + 2, |c| c.is_ascii_whitespace()), whole_line)
}

/// The value starting at `i`: a quoted string's content, a Debug-printed
/// value (`Some(..)`, `Name(..)`, `Name { .. }`, a list, tuple or map) up to
/// its matching close, or a word.
fn value_at(b: &[u8], i: usize, whole_line: bool) -> Option<(usize, usize)> {
    let escaped = b.get(i) == Some(&b'\\') && matches!(b.get(i + 1), Some(b'"' | b'\''));
    let quote = match b.get(i + usize::from(escaped)) {
        Some(&q @ (b'"' | b'\'')) => Some(q),
        _ => None,
    };
    let start = i + usize::from(escaped) + usize::from(quote.is_some());
    let stop = match quote {
        Some(q) => {
            let mut j = start;
            loop {
                match b.get(j) {
                    None => break j,
                    Some(&c) if c == q && !escaped && (j == start || b[j - 1] != b'\\') => break j,
                    Some(b'\\') if escaped && b.get(j + 1) == Some(&q) => break j,
                    Some(_) => j += 1,
                }
            }
        }
        None => match debug_value_end(b, start) {
            Some(stop) => stop,
            None if whole_line => run(b, start, |c| c != b'\n' && c != b'\r'),
            None => run(b, start, |c| {
                !c.is_ascii_whitespace()
                    && !matches!(c, b',' | b';' | b'&' | b')' | b']' | b'}' | b'"' | b'\'' | b'\\')
            }),
        },
    };
    (stop > start).then_some((start, stop))
}

/// Where a Debug-printed value starting at `i` ends: `Some(..)` or
/// `Name(..)`, `Name { .. }`, or a bare `[..]`, `(..)`, `{..}`, through the
/// matching close (strings skipped), or the end of the text if it never
/// closes. `None` if no such value starts at `i`.
fn debug_value_end(b: &[u8], i: usize) -> Option<usize> {
    let name_end = run(b, i, |c| is_word(c) || c == b':');
    let open = run(b, name_end, |c| c == b' ');
    let named = name_end > i;
    let shaped = match b.get(open)? {
        b'(' => open == name_end,
        b'{' => true,
        b'[' => !named,
        _ => false,
    };
    if !shaped || (!named && open != i) {
        return None;
    }
    let mut depth = 0usize;
    let mut j = open;
    while j < b.len() {
        match b[j] {
            b'"' => {
                // Past the string, escapes included.
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Some(b.len())
}

/// Shannon entropy in bits per byte.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = f64::from(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::default().redact(text).into_owned()
    }

    const JWT: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn names_match_in_any_spelling() {
        let red = Redactor::default();
        for name in [
            "password",
            "DB_PASSWORD",
            "apiKey",
            "x-api-key",
            "api.key",
            "set-cookie",
            "session_id",
            "refresh_token",
            "client_secret",
            "privateKey",
        ] {
            assert!(red.is_sensitive_name(name), "{name}");
        }
        for name in ["user_id", "request_id", "path", "status", "kind", "message"] {
            assert!(!red.is_sensitive_name(name), "{name}");
        }
        let custom = Redactor::new(["ssn", "tax id"]);
        assert!(custom.is_sensitive_name("user_ssn") && custom.is_sensitive_name("taxId"));
        assert!(!custom.is_sensitive_name("password"));
    }

    #[test]
    fn credentials_are_replaced_wherever_they_appear() {
        let cases = [
            (format!("token {JWT} rejected"), "token [REDACTED] rejected".to_owned()),
            (format!("jwt={JWT}."), "jwt=[REDACTED]".to_owned()),
            ("Authorization: Bearer abc.DEF-123_x".into(), "Authorization: [REDACTED]".into()),
            ("sent bearer  0a1b2c3d4e5f6a7b".into(), "sent bearer  [REDACTED]".into()),
            ("header Basic dXNlcjpodW50ZXIy".into(), "header Basic [REDACTED]".into()),
            ("key rk_live_01HZX3_9fQwErTy7uIoP_c4 revoked".into(), "key [REDACTED] revoked".into()),
            ("stripe sk_live_51Habcdefghijklmn".into(), "stripe [REDACTED]".into()),
            ("aws AKIAIOSFODNN7EXAMPLE".into(), "aws [REDACTED]".into()),
            (
                "postgres://app:s3cr3t@db:5432/x".into(),
                "postgres://app:[REDACTED]@db:5432/x".into(),
            ),
            ("password=hunter2&user=bob".into(), "password=[REDACTED]&user=bob".into()),
            (
                "{\"password\": \"hunter 2\", \"user\": \"bob\"}".into(),
                "{\"password\": \"[REDACTED]\", \"user\": \"bob\"}".into(),
            ),
            (
                "Login { user: \"bob\", passwd: \"hunter2\" }".into(),
                "Login { user: \"bob\", passwd: \"[REDACTED]\" }".into(),
            ),
            (
                r#"body "{\"api_key\":\"abc123\"}""#.into(),
                r#"body "{\"api_key\":\"[REDACTED]\"}""#.into(),
            ),
            (
                "Cookie: theme=dark; sid=abc\r\nHost: x".into(),
                "Cookie: [REDACTED]\r\nHost: x".into(),
            ),
            ("key=Zx81Lq0v9TmWc2Hs7Rb4".into(), "key=[REDACTED]".into()),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done"
                    .into(),
                "[REDACTED] done".into(),
            ),
            ("-----BEGIN PRIVATE KEY-----\nMIIE cut".into(), "[REDACTED]".into()),
        ];
        for (input, expected) in cases {
            assert_eq!(r(&input), expected, "{input}");
        }
    }

    #[test]
    fn debug_printed_values_are_replaced_whole() {
        let url = url::Url::parse("postgres://app:s3cr3t@db:5432/orders").expect("url");
        let cases = [
            (
                "Login { user: \"bob\", password: Some(\"hunter2\") }".to_owned(),
                "Login { user: \"bob\", password: [REDACTED] }".to_owned(),
            ),
            (
                "Creds { token: ApiToken(\"t-1)2\\\"3\"), id: 7 }".into(),
                "Creds { token: [REDACTED], id: 7 }".into(),
            ),
            (
                "Conf { secret: Inner { a: \"x\", b: (\"y\", [1, 2]) }, n: 1 }".into(),
                "Conf { secret: [REDACTED], n: 1 }".into(),
            ),
            (
                "Login {\n    password: Some(\n        \"hunter2\",\n    ),\n}".into(),
                "Login {\n    password: [REDACTED],\n}".into(),
            ),
            (
                "[(\"accept\", \"*/*\"), (\"x-api-key\", \"k-123\")]".into(),
                "[(\"accept\", \"*/*\"), (\"x-api-key\", \"[REDACTED]\")]".into(),
            ),
            (
                "(\n    \"Cookie\",\n    \"sid=1\",\n)".into(),
                "(\n    \"Cookie\",\n    \"[REDACTED]\",\n)".into(),
            ),
            (format!("{url:?}"), format!("{url:?}").replace("Some(\"s3cr3t\")", "[REDACTED]")),
            ("session: Some(unclosed \"x".into(), "session: [REDACTED]".into()),
        ];
        for (input, expected) in cases {
            assert_eq!(r(&input), expected, "{input}");
        }
    }

    #[test]
    fn percent_encoded_credentials_are_replaced_where_they_are_written() {
        let cases = [
            (format!("next=%2Fa%3Ftoken%3D{JWT}"), "next=%2Fa%3Ftoken%3D[REDACTED]".to_owned()),
            (format!("t=%3D{JWT}"), "t=%3D[REDACTED]".to_owned()),
            ("q=password%3Dhunter2%26x%3D1".into(), "q=password%3D[REDACTED]%26x%3D1".into()),
            (
                "body=%7B%22password%22%3A%22hunter2%22%7D".into(),
                "body=%7B%22password%22%3A%22[REDACTED]%22%7D".into(),
            ),
            (
                "h=Authorization%3A%20Bearer%20abc.DEF-123_x".into(),
                "h=Authorization%3A%20[REDACTED]".into(),
            ),
            ("é=%C3%A9 password%3Dh%C3%A9llo w".into(), "é=%C3%A9 password%3D[REDACTED] w".into()),
        ];
        for (input, expected) in cases {
            assert_eq!(r(&input), expected, "{input}");
        }
    }

    #[test]
    fn a_url_password_ends_at_the_last_at_sign() {
        let cases = [
            ("redis://:p4ss@w0rd-tail@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
            ("postgres://u:a@b@c@db/x?y=z@w", "postgres://u:[REDACTED]@db/x?y=z@w"),
            (
                "see https://example.com/a@b and mail bob@x.org",
                "see https://example.com/a@b and mail bob@x.org",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(r(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "request completed in 12ms",
            "invalid password for user bob",
            "cache key=user:42",
            "monkey=banana",
            "network_interface_name eth0",
            "see https://example.com/docs?a=1",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "basic authentication failed",
            "tokens=12 session started",
            "std::collections::HashMap key::value",
            "héllo wörld ✓ eyJ",
            "50% of 100% done, /search?q=a%20b%C3%A9",
            "Some(42) items at Point { x: 1, y: 2 }",
            "http://user@host/path",
        ] {
            assert_eq!(r(text), text);
        }
    }
}
