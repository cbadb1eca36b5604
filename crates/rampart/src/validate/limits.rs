//! JSON limits against resource exhaustion, and duplicate keys, checked
//! before parsing.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::Error;

use super::pointer::push_token;
use super::report::violation_error;
use super::rules::{DEFAULT_MAX_INPUT_SIZE, DEFAULT_MAX_STRING_CHARS, MaxInputSize};

/// The deepest nesting [`JsonLimits::max_depth`] accepts: below serde_json's
/// own recursion limit (128), so the limit reported is always rampart's.
pub const MAX_DEPTH_CEILING: usize = 100;

/// JSON limits against resource exhaustion: total size, nesting depth, keys
/// per object, array length and string length, enforced by a streaming scan
/// of the bytes **before** any tree is built or any type deserialized.
///
/// The scan reads each byte once, keeps one small frame per open container
/// (so at most `max_depth` frames) and stops at the first limit crossed: a
/// nesting bomb of a hundred thousand `[` is refused at byte `max_depth`,
/// an object with a million keys after `max_object_keys` of them, without
/// recursion and so without any risk to the stack.
///
/// ```
/// use rampart::validate::JsonLimits;
///
/// let limits = JsonLimits::default().max_depth(4);
/// assert!(limits.check(br#"{"a": [1, {"b": null}]}"#).is_ok());
///
/// let bomb = "[".repeat(100_000);
/// let err = limits.check(bomb.as_bytes()).unwrap_err();
/// assert_eq!(err.violations()[0].code, "json_depth");
///
/// // Parsing and deserializing check the limits first.
/// let value: serde_json::Value = limits.parse(br#"{"a": 1}"#).unwrap();
/// assert_eq!(value["a"], 1);
/// ```
///
/// The defaults suit an API request body:
///
/// | limit | default |
/// |---|---|
/// | total size | 1 MiB (the config's `max_input_size`) |
/// | nesting depth | 32 |
/// | keys per object | 1,000 |
/// | items per array | 10,000 |
/// | characters per string (and per key) | 10,000 |
/// | a key named twice in one object | refused ([`allow_duplicate_keys`](JsonLimits::allow_duplicate_keys)) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    max_size: usize,
    max_depth: usize,
    max_object_keys: usize,
    max_array_len: usize,
    max_string_chars: usize,
    allow_duplicate_keys: bool,
}

impl Default for JsonLimits {
    fn default() -> JsonLimits {
        JsonLimits {
            max_size: DEFAULT_MAX_INPUT_SIZE,
            max_depth: 32,
            max_object_keys: 1_000,
            max_array_len: 10_000,
            max_string_chars: DEFAULT_MAX_STRING_CHARS,
            allow_duplicate_keys: false,
        }
    }
}

/// The bytes the scan acts on; it skips every other byte.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 7 {
        table[b"\"{}[],:"[i] as usize] = true;
        i += 1;
    }
    table
};

/// One open container during the scan.
struct Frame {
    object: bool,
    /// Keys seen (objects) or items started (arrays).
    count: usize,
    /// Where this object's keys start in the scan's key list.
    keys_from: usize,
}

/// A key of an open object: its decoded bytes and the offset of its quote.
type Key<'a> = (Cow<'a, [u8]>, usize);

impl JsonLimits {
    /// The default limits with the configuration's `max_input_size` (bytes).
    pub fn with_max_input_size(max_input_size: u64) -> JsonLimits {
        JsonLimits::default().max_size(saturating_usize(max_input_size))
    }

    /// Sets the maximum size of the document in bytes (over it: 413).
    #[must_use]
    pub const fn max_size(mut self, bytes: usize) -> JsonLimits {
        self.max_size = bytes;
        self
    }

    /// Sets the maximum nesting depth (a scalar document has depth 0,
    /// `[[1]]` depth 2), at most [`MAX_DEPTH_CEILING`].
    #[must_use]
    pub const fn max_depth(mut self, depth: usize) -> JsonLimits {
        self.max_depth = if depth < MAX_DEPTH_CEILING { depth } else { MAX_DEPTH_CEILING };
        self
    }

    /// Sets the maximum number of keys in one object.
    #[must_use]
    pub const fn max_object_keys(mut self, keys: usize) -> JsonLimits {
        self.max_object_keys = keys;
        self
    }

    /// Sets the maximum number of items in one array.
    #[must_use]
    pub const fn max_array_len(mut self, items: usize) -> JsonLimits {
        self.max_array_len = items;
        self
    }

    /// Sets the maximum length of one string or key, in characters.
    #[must_use]
    pub const fn max_string_chars(mut self, chars: usize) -> JsonLimits {
        self.max_string_chars = chars;
        self
    }

    /// Accepts objects that name one key twice. By default they are
    /// refused: parsers disagree on which value counts (serde_json keeps the
    /// last, many keep the first), so a duplicate lets a body pass a
    /// validator with one value and reach the service with another.
    #[must_use]
    pub const fn allow_duplicate_keys(mut self) -> JsonLimits {
        self.allow_duplicate_keys = true;
        self
    }

    /// The maximum document size in bytes.
    pub const fn size_limit(&self) -> usize {
        self.max_size
    }

    /// Checks `input` against every limit, without building anything.
    ///
    /// This checks the limits, not the whole JSON grammar: a malformed
    /// document within the limits passes here and fails in
    /// [`parse`](JsonLimits::parse) or [`deserialize`](JsonLimits::deserialize),
    /// which read exactly the structure the scan measured.
    ///
    /// # Errors
    /// [`PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge) over the size
    /// limit; otherwise a validation error whose violation has the code
    /// `json_depth`, `json_object_keys`, `json_array_length`,
    /// `json_string_length`, `json_duplicate_key` or `json_syntax`
    /// (unbalanced brackets) and names the byte offset. Its pointer is `""`,
    /// except for a duplicate key, which it names.
    pub fn check(&self, input: &[u8]) -> Result<(), Error> {
        MaxInputSize::new(self.max_size).check(input)?;
        let mut stack: Vec<Frame> = Vec::with_capacity(self.max_depth.min(16));
        // The keys of every open object, innermost last; and the last string
        // read, which is a key when a colon follows it.
        let mut keys: Vec<Key<'_>> = Vec::new();
        let mut last_string = None;
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            if !STRUCTURAL[usize::from(byte)] {
                i += 1;
                continue;
            }
            match byte {
                b'"' => {
                    let start = i;
                    i = self.skip_string(input, i + 1)?;
                    last_string = Some((start, i));
                    continue;
                }
                b'{' | b'[' => {
                    if stack.len() >= self.max_depth {
                        return Err(limit(
                            "json_depth",
                            format!("nests deeper than {} levels", self.max_depth),
                            i,
                        ));
                    }
                    // An array's first item is counted here, the others at their commas.
                    let first_item = byte == b'['
                        && input[i + 1..]
                            .iter()
                            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                            .is_some_and(|&b| b != b']');
                    let frame = Frame {
                        object: byte == b'{',
                        count: usize::from(first_item),
                        keys_from: keys.len(),
                    };
                    self.check_array_len(&frame, i)?;
                    stack.push(frame);
                }
                b'}' | b']' => match stack.pop() {
                    Some(frame) if frame.object == (byte == b'}') => {
                        if frame.object && !self.allow_duplicate_keys {
                            if let Some(at) = find_duplicate(&mut keys[frame.keys_from..]) {
                                let (name, offset) = &keys[frame.keys_from + at];
                                let mut pointer = pointer_to(&stack, &keys, frame.keys_from);
                                push_token(&mut pointer, &String::from_utf8_lossy(name));
                                let why = format!("names this key twice (at byte {offset})");
                                return Err(violation_error(pointer, "json_duplicate_key", why));
                            }
                            keys.truncate(frame.keys_from);
                        }
                    }
                    _ => return Err(limit("json_syntax", "has an unbalanced bracket", i)),
                },
                b',' => {
                    if let Some(frame) = stack.last_mut().filter(|frame| !frame.object) {
                        frame.count += 1;
                        self.check_array_len(frame, i)?;
                    }
                }
                // b':'
                _ => {
                    if let Some(frame) = stack.last_mut().filter(|frame| frame.object) {
                        frame.count += 1;
                        if frame.count > self.max_object_keys {
                            return Err(limit(
                                "json_object_keys",
                                format!(
                                    "has an object with more than {} keys",
                                    self.max_object_keys
                                ),
                                i,
                            ));
                        }
                        // Without a string before it the colon is malformed:
                        // the parser says so.
                        if let Some(span) =
                            last_string.take().filter(|_| !self.allow_duplicate_keys)
                        {
                            keys.push(key(input, span));
                        }
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    fn check_array_len(&self, frame: &Frame, at: usize) -> Result<(), Error> {
        if !frame.object && frame.count > self.max_array_len {
            Err(limit(
                "json_array_length",
                format!("has an array with more than {} items", self.max_array_len),
                at,
            ))
        } else {
            Ok(())
        }
    }

    /// Skips a string whose content starts at `start`; returns the index
    /// after its closing quote.
    fn skip_string(&self, input: &[u8], start: usize) -> Result<usize, Error> {
        let mut i = start;
        while let Some(end) = find_quote_or_backslash(input, i) {
            i = end;
            if input[i] == b'\\' {
                i += 2;
                continue;
            }
            // A character takes at least one byte: count only long strings.
            if i - start > self.max_string_chars
                && decoded_chars(&input[start..i]) > self.max_string_chars
            {
                return Err(limit(
                    "json_string_length",
                    format!("has a string longer than {} characters", self.max_string_chars),
                    start - 1,
                ));
            }
            return Ok(i + 1);
        }
        Err(limit("json_syntax", "has an unterminated string", start - 1))
    }

    /// Checks the limits, then parses `input` into a JSON value.
    ///
    /// # Errors
    /// As [`check`](JsonLimits::check), plus `json_syntax` for malformed JSON
    /// (including invalid UTF-8 and lone surrogates in strings).
    pub fn parse(&self, input: &[u8]) -> Result<Value, Error> {
        self.check(input)?;
        // A `Value` accepts any well-formed JSON: only syntax errors remain,
        // and they need no path.
        serde_json::from_slice(input).map_err(syntax_error)
    }

    /// Checks the limits, then deserializes `input` into `T`. A value of the
    /// wrong shape is a violation located by a JSON Pointer; its message
    /// never contains the value.
    ///
    /// # Errors
    /// As [`parse`](JsonLimits::parse), plus violations coded `type`,
    /// `required`, `unknown_field`, `duplicate_field` or `invalid`.
    pub fn deserialize<T: DeserializeOwned>(&self, input: &[u8]) -> Result<T, Error> {
        self.check(input)?;
        let mut de = serde_json::Deserializer::from_slice(input);
        let value = serde_path_to_error::deserialize(&mut de).map_err(deserialize_error)?;
        de.end().map_err(syntax_error)?;
        Ok(value)
    }
}

/// The key spanning `quoted` (its quotes included), decoded when it has
/// escapes, so `"a"` and `"\u0061"` are the same key. A key that does not
/// decode is left to the parser to refuse.
fn key(input: &[u8], (start, end): (usize, usize)) -> Key<'_> {
    let raw = &input[start + 1..end - 1];
    if !raw.contains(&b'\\') {
        return (Cow::Borrowed(raw), start);
    }
    match serde_json::from_slice::<String>(&input[start..end]) {
        Ok(decoded) => (Cow::Owned(decoded.into_bytes()), start),
        Err(_) => (Cow::Borrowed(raw), start),
    }
}

/// The index of a key that appears earlier in `keys` too (sorting them
/// when there are many).
fn find_duplicate(keys: &mut [Key<'_>]) -> Option<usize> {
    // Most objects are small: comparing pairs beats sorting them.
    if keys.len() <= 16 {
        return (1..keys.len()).find(|&j| keys[..j].iter().any(|k| k.0 == keys[j].0));
    }
    keys.sort_unstable();
    keys.windows(2).position(|pair| pair[0].0 == pair[1].0).map(|i| i + 1)
}

/// The JSON Pointer of the object being closed, from its open ancestors:
/// an array's current item is its last counted one, an object's current
/// member its last key (the keys of `stack[i]` end where the next open
/// object's begin; the innermost's at `end`).
fn pointer_to(stack: &[Frame], keys: &[Key<'_>], end: usize) -> String {
    let mut pointer = String::new();
    for (i, frame) in stack.iter().enumerate() {
        if frame.object {
            let keys_end = stack[i + 1..].iter().find(|f| f.object).map_or(end, |f| f.keys_from);
            let name = keys_end.checked_sub(1).and_then(|last| keys.get(last));
            push_token(&mut pointer, &String::from_utf8_lossy(name.map_or(&[][..], |k| &k.0)));
        } else {
            push_token(&mut pointer, &frame.count.saturating_sub(1).to_string());
        }
    }
    pointer
}

/// The index of the next `"` or `\\` at or after `from`. Most strings in a
/// document are short: a plain loop finds their end sooner than memchr's
/// vectorized search, which takes over for long ones.
fn find_quote_or_backslash(input: &[u8], from: usize) -> Option<usize> {
    let rest = input.get(from..)?;
    let head = rest.len().min(16);
    if let Some(j) = rest[..head].iter().position(|&b| b == b'"' || b == b'\\') {
        return Some(from + j);
    }
    memchr::memchr2(b'"', b'\\', &rest[head..]).map(|j| from + head + j)
}

/// A configured byte count as a `usize` (a limit beyond the address space
/// is no limit).
pub(crate) fn saturating_usize(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

fn limit(code: &'static str, what: impl Into<String>, at: usize) -> Error {
    violation_error("", code, format!("{} (at byte {at})", what.into()))
}

/// The characters a JSON string's raw content decodes to: an escape is one
/// character, a surrogate pair of `\u` escapes too.
fn decoded_chars(raw: &[u8]) -> usize {
    let mut chars = 0;
    let mut i = 0;
    while let Some(&byte) = raw.get(i) {
        if byte == b'\\' {
            if raw.get(i + 1) == Some(&b'u') {
                // A high surrogate (\uD800-\uDBFF) and its low partner are one character.
                let high = matches!(raw.get(i + 2), Some(b'd' | b'D'))
                    && matches!(raw.get(i + 3), Some(b'8' | b'9' | b'a' | b'b' | b'A' | b'B'));
                chars += usize::from(!high);
                i += 6;
            } else {
                chars += 1;
                i += 2;
            }
        } else {
            // Count UTF-8 lead bytes, not continuation bytes.
            chars += usize::from(byte & 0xC0 != 0x80);
            i += 1;
        }
    }
    chars
}

/// A syntax error as a violation; serde_json's own text (which names what it
/// expected, never a value) stays as the source, for the log.
fn syntax_error(err: serde_json::Error) -> Error {
    let message = format!("is not valid JSON (line {}, column {})", err.line(), err.column());
    violation_error("", "json_syntax", message).with_source(err)
}

/// A deserialization failure as a violation located where it happened. The
/// message of a serde error may quote the value (`invalid type: string
/// "hunter2"`), so only its kind is used.
fn deserialize_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let mut pointer = String::new();
    for segment in err.path().iter() {
        match segment {
            Segment::Seq { index } => push_token(&mut pointer, &index.to_string()),
            Segment::Map { key } => push_token(&mut pointer, key),
            Segment::Enum { variant } => push_token(&mut pointer, variant),
            Segment::Unknown => break,
        }
    }
    let inner = err.into_inner();
    if !inner.is_data() {
        return syntax_error(inner);
    }
    // A data error's text may hold the value: it is neither shown nor logged.
    let text = inner.to_string();
    let (code, message) = if let Some(rest) = text.strip_prefix("missing field `") {
        // The name comes from the type, not from the input.
        if let Some((field, _)) = rest.split_once('`') {
            push_token(&mut pointer, field);
        }
        ("required", "is required")
    } else if text.starts_with("unknown field `") {
        ("unknown_field", "has a member that is not allowed")
    } else if text.starts_with("duplicate field `") {
        ("duplicate_field", "has a member more than once")
    } else if text.starts_with("invalid type: ") {
        ("type", "has the wrong type")
    } else {
        ("invalid", "has an invalid value")
    };
    violation_error(pointer, code, message)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde::Deserialize;

    use super::*;
    use crate::ErrorKind;

    fn code(result: Result<(), Error>) -> String {
        let err = result.expect_err("a limit is crossed");
        assert_eq!(err.kind(), ErrorKind::Validation);
        err.violations()[0].code.to_string()
    }

    #[test]
    fn depth_counts_open_containers() {
        let limits = JsonLimits::default().max_depth(2);
        assert!(limits.check(b"[[1], {\"a\": 2}]").is_ok());
        assert_eq!(code(limits.check(b"[[1], {\"a\": []}]")), "json_depth");
        assert!(limits.check(b"\"[[[[[\"").is_ok(), "brackets in strings do not count");
        assert_eq!(code(limits.check(b"[[[1]]]")), "json_depth");
        assert_eq!(code(limits.check(b"{\"a\": {\"b\": {}}}")), "json_depth");
        assert_eq!(JsonLimits::default().max_depth(1_000), JsonLimits::default().max_depth(100));
    }

    #[test]
    fn a_nesting_bomb_is_refused_at_once() {
        let limits = JsonLimits::default();
        for bomb in ["[".repeat(100_000), "{\"a\":".repeat(100_000), "[{\"a\":".repeat(50_000)] {
            let started = Instant::now();
            let err = limits.parse(bomb.as_bytes()).unwrap_err();
            assert_eq!(err.violations()[0].code, "json_depth");
            assert!(err.violations()[0].message.contains("at byte"), "{:?}", err.violations());
            // Generous: a debug build on a loaded machine; the refusal reads ~32 levels.
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    }

    #[test]
    fn a_huge_object_is_refused_after_max_keys() {
        let limits = JsonLimits::default().max_size(64 << 20);
        let mut doc = String::from("{");
        for i in 0..1_000_000 {
            doc.push_str(&format!("\"k{i}\":0,"));
        }
        doc.push_str("\"end\":0}");
        let started = Instant::now();
        let err = limits.check(doc.as_bytes()).unwrap_err();
        assert_eq!(err.violations()[0].code, "json_object_keys");
        assert!(started.elapsed() < Duration::from_secs(1));
        // Exactly at the limit passes; colons inside strings are not keys.
        let limits = JsonLimits::default().max_object_keys(2);
        assert!(limits.check(br#"{"a:b": "c:d", "e": {"f": 1, "g": 2}}"#).is_ok());
        assert_eq!(code(limits.check(br#"{"a": 1, "b": 2, "c": 3}"#)), "json_object_keys");
    }

    #[test]
    fn array_length_counts_items() {
        let limits = JsonLimits::default().max_array_len(3);
        assert!(limits.check(b"[]").is_ok());
        assert!(limits.check(b"[ ]").is_ok());
        assert!(limits.check(b"[1, \"a,b\", [4, 5, 6]]").is_ok());
        assert_eq!(code(limits.check(b"[1,2,3,4]")), "json_array_length");
        assert_eq!(code(limits.check(b"[[], [], [], []]")), "json_array_length");
        assert_eq!(code(limits.check(b"[\"a\",\"b\",\"c\",\"d\"]")), "json_array_length");
        let none = JsonLimits::default().max_array_len(0);
        assert!(none.check(b"[]").is_ok());
        assert_eq!(code(none.check(b"[null]")), "json_array_length");
    }

    #[test]
    fn string_length_counts_decoded_characters() {
        let limits = JsonLimits::default().max_string_chars(3);
        assert!(limits.check("\"héé\"".as_bytes()).is_ok()); // 3 chars, 5 bytes
        assert!(limits.check(br#""\u00e9\n\"""#).is_ok()); // 3 escapes
        assert!(limits.check(br#""\ud83d\ude00ab""#).is_ok()); // a surrogate pair is one char
        assert!(limits.check("\"ｅ\u{301}ｆ\"".as_bytes()).is_ok()); // full-width + combining
        assert_eq!(code(limits.check(b"\"abcd\"")), "json_string_length");
        assert_eq!(code(limits.check(br#"{"abcd": 1}"#)), "json_string_length");
        assert_eq!(code(limits.check(b"\"abc\\\"\"")), "json_string_length");
        assert_eq!(code(limits.check(b"\"abc")), "json_syntax");
    }

    #[test]
    fn a_key_named_twice_in_one_object_is_refused() {
        let limits = JsonLimits::default();
        let err = limits.check(br#"{"role": "user", "role": "admin"}"#).unwrap_err();
        let violation = &err.violations()[0];
        assert_eq!((violation.pointer.as_str(), &*violation.code), ("/role", "json_duplicate_key"));
        assert!(violation.message.ends_with("(at byte 17)"), "{violation:?}");
        assert!(!violation.message.contains("admin"));
        // The same key spelled with escapes is the same key.
        assert_eq!(code(limits.check(br#"{"role": 1, "r\u006fle": 2}"#)), "json_duplicate_key");
        // Deep inside, and in a large object (sorted, not compared in pairs).
        assert_eq!(
            code(limits.check(br#"[{"a": {"b": 1, "c": {}, "b": 2}}]"#)),
            "json_duplicate_key"
        );
        let mut big: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        assert!(limits.check(format!("{{{}}}", big.join(",")).as_bytes()).is_ok());
        big.push("\"k42\": 0".to_owned());
        assert_eq!(
            code(limits.check(format!("{{{}}}", big.join(",")).as_bytes())),
            "json_duplicate_key"
        );
        // The same key in sibling or nested objects, and strings that only
        // look like keys, are fine.
        for fine in [
            &br#"[{"a": 1}, {"a": 2}]"#[..],
            br#"{"a": {"a": {"a": 1}}, "b": "a"}"#,
            br#"{"a": "b:c", "b": ["a", "a"]}"#,
            br#"{"A": 1, "a": 2}"#,
        ] {
            assert!(limits.check(fine).is_ok(), "{}", String::from_utf8_lossy(fine));
        }
        assert!(limits.allow_duplicate_keys().check(br#"{"a": 1, "a": 2}"#).is_ok());
        // Malformed colons are left to the parser, never a panic.
        for bad in [&b"{:1}"[..], b"{\"a\":1, :2}", b":", b"{\"\\u12\": 1, \"\\u12\": 2}"] {
            let _ = limits.check(bad);
            assert!(limits.parse(bad).is_err());
        }
    }

    #[test]
    fn unbalanced_brackets_are_syntax_errors() {
        let limits = JsonLimits::default();
        assert_eq!(code(limits.check(b"]")), "json_syntax");
        assert_eq!(code(limits.check(b"[}")), "json_syntax");
    }

    #[test]
    fn the_size_limit_is_a_413() {
        let limits = JsonLimits::with_max_input_size(8);
        assert!(limits.check(b"[1,2,3]").is_ok());
        let err = limits.parse(b"[1,2,3,4,5]").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
    }

    #[test]
    fn invalid_utf8_and_lone_surrogates_are_refused_by_the_parser() {
        let limits = JsonLimits::default();
        for bad in [&b"\"\xff\""[..], b"\"\xc0\xae\"", b"\"\\ud800\"", b"{\"a\": 1} x", b"{"] {
            let err = limits.parse(bad).unwrap_err();
            assert_eq!(err.violations()[0].code, "json_syntax", "{bad:?}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
        note: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Item {
        unit_price: u32,
        sku: String,
    }

    fn violation(input: &str) -> (String, String, String) {
        let err = JsonLimits::default().deserialize::<Order>(input.as_bytes()).unwrap_err();
        let v = &err.violations()[0];
        (v.pointer.clone(), v.code.to_string(), v.message.to_string())
    }

    #[test]
    fn deserialization_errors_are_located_and_never_quote_the_value() {
        let (pointer, code, message) = violation(
            r#"{"items": [{"unitPrice": 1, "sku": "a"}, {"unitPrice": "CANARY", "sku": "b"}]}"#,
        );
        assert_eq!((pointer.as_str(), code.as_str()), ("/items/1/unitPrice", "type"));
        assert!(!message.contains("CANARY"));
        let (pointer, code, _) = violation(r#"{"items": [{"unitPrice": 1}]}"#);
        assert_eq!((pointer.as_str(), code.as_str()), ("/items/0/sku", "required"));
        // The pointer names the unexpected member (the client's own key).
        let (pointer, code, _) = violation(r#"{"items": [], "a/b": 1}"#);
        assert_eq!((pointer.as_str(), code.as_str()), ("/a~1b", "unknown_field"));
        let (pointer, code, _) = violation(r#"{"items": [{"unitPrice": -1, "sku": "x"}]}"#);
        assert_eq!((pointer.as_str(), code.as_str()), ("/items/0/unitPrice", "invalid"));
        // A duplicate is refused by the scan, before serde sees it.
        let (pointer, code, _) = violation(r#"{"items": [], "items": []}"#);
        assert_eq!((pointer.as_str(), code.as_str()), ("/items", "json_duplicate_key"));
    }
}
