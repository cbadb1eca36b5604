//! Uploads checked by extension and content against an allow-list.

use std::fmt;

use serde::de::IgnoredAny;

use crate::error::Error;

use super::limits::{JsonLimits, saturating_usize};
use super::report::violation_error;
use super::rules::{DEFAULT_MAX_INPUT_SIZE, MaxInputSize};

/// A file type an upload may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileType {
    /// Plain text (`.txt`).
    Txt,
    /// Comma-separated values (`.csv`).
    Csv,
    /// JSON (`.json`).
    Json,
    /// PNG image (`.png`).
    Png,
    /// JPEG image (`.jpg`, `.jpeg`).
    Jpeg,
    /// GIF image (`.gif`).
    Gif,
    /// WebP image (`.webp`).
    Webp,
    /// PDF document (`.pdf`).
    Pdf,
}

impl FileType {
    /// Every supported type.
    pub const ALL: [FileType; 8] = [
        FileType::Txt,
        FileType::Csv,
        FileType::Json,
        FileType::Png,
        FileType::Jpeg,
        FileType::Gif,
        FileType::Webp,
        FileType::Pdf,
    ];

    /// The type named `name` in configuration (`"txt"`, `"jpg"`, ...), or
    /// the type of a file extension; case-insensitive.
    pub fn from_name(name: &str) -> Option<FileType> {
        let name = name.to_ascii_lowercase();
        FileType::ALL.into_iter().find(|t| t.extensions().contains(&name.as_str()))
    }

    /// The extensions of this type, the usual one first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileType::Txt => &["txt"],
            FileType::Csv => &["csv"],
            FileType::Json => &["json"],
            FileType::Png => &["png"],
            FileType::Jpeg => &["jpg", "jpeg"],
            FileType::Gif => &["gif"],
            FileType::Webp => &["webp"],
            FileType::Pdf => &["pdf"],
        }
    }

    /// The media type to serve it with.
    pub fn media_type(self) -> &'static str {
        match self {
            FileType::Txt => "text/plain; charset=utf-8",
            FileType::Csv => "text/csv; charset=utf-8",
            FileType::Json => "application/json",
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Gif => "image/gif",
            FileType::Webp => "image/webp",
            FileType::Pdf => "application/pdf",
        }
    }

    /// Why `content` is not of this type, if it is not.
    fn mismatch(self, content: &[u8], limits: &JsonLimits) -> Option<&'static str> {
        let magic_ok = match self {
            FileType::Txt | FileType::Csv | FileType::Json => {
                return text_mismatch(self, content, limits);
            }
            FileType::Png => content.starts_with(b"\x89PNG\r\n\x1a\n"),
            FileType::Jpeg => content.starts_with(b"\xff\xd8\xff"),
            FileType::Gif => content.starts_with(b"GIF87a") || content.starts_with(b"GIF89a"),
            FileType::Webp => {
                content.len() >= 12 && content.starts_with(b"RIFF") && &content[8..12] == b"WEBP"
            }
            FileType::Pdf => content.starts_with(b"%PDF-"),
        };
        (!magic_ok).then_some("does not have the content its extension says")
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extensions()[0])
    }
}

/// Signatures of executables and archives, which are never text.
const BINARY_SIGNATURES: &[&[u8]] = &[
    b"MZ",               // Windows PE
    b"\x7fELF",          // ELF
    b"\xfe\xed\xfa\xce", // Mach-O
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe", // Mach-O fat binary, Java class
    b"PK\x03\x04",       // zip (docx, jar, apk)
    b"\x1f\x8b",         // gzip
    b"%PDF-",
    b"\x00asm", // WebAssembly
];

/// Tags that make a browser sniff a document as HTML (WHATWG MIME Sniffing,
/// "identifying a resource with an unknown MIME type"), plus XML and SVG.
const MARKUP_STARTS: &[&str] = &[
    "<!doctype html",
    "<html",
    "<head",
    "<script",
    "<iframe",
    "<h1",
    "<div",
    "<font",
    "<table",
    "<a",
    "<style",
    "<title",
    "<b",
    "<body",
    "<br",
    "<p",
    "<!--",
    "<?xml",
    "<svg",
    "<img",
    "<object",
    "<embed",
    "<meta",
    "<link",
    "<base",
    "<form",
    "<math",
];

fn text_mismatch(kind: FileType, content: &[u8], limits: &JsonLimits) -> Option<&'static str> {
    if BINARY_SIGNATURES.iter().any(|sig| content.starts_with(sig)) {
        return Some("is an executable or archive, not text");
    }
    let content = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
    let Ok(text) = std::str::from_utf8(content) else {
        return Some("is not valid UTF-8 text");
    };
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Some("contains control characters");
    }
    if looks_like_markup(text) {
        return Some("is an HTML, XML or SVG document, not plain text");
    }
    if kind == FileType::Json && limits.deserialize::<IgnoredAny>(content).is_err() {
        return Some("is not a valid JSON document");
    }
    None
}

fn looks_like_markup(text: &str) -> bool {
    let start = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    let head: String = start.chars().take(16).flat_map(char::to_lowercase).collect();
    MARKUP_STARTS.iter().any(|tag| {
        head.strip_prefix(tag).is_some_and(|rest| {
            // "<b" is a tag only when followed by a space or ">" ("<bdi" is not "<b").
            tag.starts_with("<!--")
                || tag.starts_with("<?")
                || rest.is_empty()
                || rest.starts_with([' ', '>', '/', '\t', '\n', '\r', '\x0c'])
        })
    })
}

/// Uploads: the file type is checked by extension **and** by content
/// against an allow-list, within a size cap.
///
/// The extension (the part after the last dot of the file name, compared
/// case-insensitively) must belong to an allowed type, and the content must
/// be of that type:
///
/// - binary types (`png`, `jpg`, `gif`, `pdf`, `webp`) by their magic bytes;
/// - text types, which have no magic bytes (`txt`, `csv`, `json`), by being
///   valid UTF-8 (a BOM is allowed) without NUL or other control characters
///   than tab, CR and LF, without the signature of an executable or archive,
///   and without the start of an HTML, XML or SVG document that a browser
///   would sniff and render (the WHATWG MIME Sniffing patterns); `json` must
///   also parse as JSON within [`JsonLimits`].
///
/// So an executable, an HTML page or an SVG renamed `.txt` or `.png` is a
/// violation (code `file_content`), and an extension off the list is one too
/// (code `file_type`). Too large is a 413. Checking the type does not make
/// the *name* safe to store: pass it through
/// [`sanitize::file_name`](crate::sanitize::file_name) or, better, store
/// under a name of your own.
///
/// ```
/// use rampart::validate::UploadPolicy;
///
/// // From the configuration: `allowed_file_types` and `max_input_size`.
/// let policy = UploadPolicy::new(["txt", "png"], 1024 * 1024).unwrap();
/// assert!(policy.check("notes.txt", b"shopping: eggs, milk\n").is_ok());
///
/// let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0";
/// assert_eq!(policy.check("notes.txt", elf).unwrap_err().violations()[0].code, "file_content");
/// assert_eq!(policy.check("cat.png", b"<svg onload=alert(1)>").unwrap_err().violations()[0].code,
///            "file_content");
/// assert_eq!(policy.check("run.exe", b"MZ").unwrap_err().violations()[0].code, "file_type");
/// ```
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    allowed: Vec<FileType>,
    max_size: MaxInputSize,
}

impl Default for UploadPolicy {
    /// `txt`, `json` and `csv`, up to 1 MiB.
    fn default() -> UploadPolicy {
        UploadPolicy {
            allowed: vec![FileType::Txt, FileType::Json, FileType::Csv],
            max_size: MaxInputSize::new(DEFAULT_MAX_INPUT_SIZE),
        }
    }
}

impl UploadPolicy {
    /// A policy from the configuration's `allowed_file_types` and a size cap
    /// in bytes (its `max_input_size`).
    ///
    /// # Errors
    /// A configuration error (key `allowed_file_types`) for an unknown type
    /// or an empty list.
    pub fn new<I, S>(allowed_file_types: I, max_size: u64) -> Result<UploadPolicy, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for name in allowed_file_types {
            let kind =
                FileType::from_name(name.as_ref().trim_start_matches('.')).ok_or_else(|| {
                    let known: Vec<&str> =
                        FileType::ALL.iter().flat_map(|t| t.extensions()).copied().collect();
                    Error::configuration(
                        "allowed_file_types",
                        format!(
                            "an entry is not a supported file type (supported: {})",
                            known.join(", ")
                        ),
                    )
                })?;
            if !allowed.contains(&kind) {
                allowed.push(kind);
            }
        }
        if allowed.is_empty() {
            return Err(Error::configuration("allowed_file_types", "the list is empty"));
        }
        Ok(UploadPolicy { allowed, max_size: MaxInputSize::new(saturating_usize(max_size)) })
    }

    /// The allowed types.
    pub fn allowed(&self) -> &[FileType] {
        &self.allowed
    }

    /// Checks an upload named `file_name` with `content`; returns its type.
    ///
    /// # Errors
    /// 413 over the size cap; otherwise a validation error coded
    /// `file_type` (extension missing or not allowed) or `file_content`
    /// (the content is not of the extension's type).
    pub fn check(&self, file_name: &str, content: &[u8]) -> Result<FileType, Error> {
        self.max_size.check(content)?;
        let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
        let extension = base.rsplit_once('.').map(|(_, ext)| ext).unwrap_or_default();
        let Some(kind) = FileType::from_name(extension).filter(|t| self.allowed.contains(t)) else {
            let allowed: Vec<String> = self.allowed.iter().map(ToString::to_string).collect();
            return Err(violation_error(
                "",
                "file_type",
                format!("must be a file of type {}", allowed.join(", ")),
            ));
        };
        let limits = JsonLimits::default().max_size(self.max_size.bytes());
        match kind.mismatch(content, &limits) {
            None => Ok(kind),
            Some(why) => Err(violation_error("", "file_content", why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn refused(policy: &UploadPolicy, name: &str, content: &[u8]) -> String {
        let err = policy.check(name, content).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::Validation);
        err.violations()[0].code.to_string()
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff";
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0";

    #[test]
    fn the_default_allows_text_json_and_csv() {
        let policy = UploadPolicy::default();
        assert_eq!(policy.check("a.txt", b"hello\r\n\tworld").unwrap(), FileType::Txt);
        assert_eq!(policy.check("A.JSON", br#"{"a": [1]}"#).unwrap(), FileType::Json);
        assert_eq!(
            policy.check("data.csv", "name,city\nZoë,Zürich\n".as_bytes()).unwrap(),
            FileType::Csv
        );
        assert_eq!(policy.check("bom.txt", b"\xef\xbb\xbfhi").unwrap(), FileType::Txt);
        assert_eq!(policy.check("empty.txt", b"").unwrap(), FileType::Txt);
        assert_eq!(refused(&policy, "cat.png", PNG), "file_type");
    }

    #[test]
    fn executables_and_markup_renamed_are_refused() {
        let policy =
            UploadPolicy::new(["txt", "csv", "json", "png", "jpg", "gif", "pdf"], 1 << 20).unwrap();
        let deep = "[".repeat(1_000);
        let cases: &[(&str, &[u8])] = &[
            ("setup.txt", PE),
            ("setup.png", PE),
            ("tool.csv", ELF),
            ("tool.jpg", ELF),
            ("page.txt", b"<!DOCTYPE html><script>alert(1)</script>"),
            ("page.txt", b"  \n<html><body>hi</body></html>"),
            ("page.csv", b"<b onmouseover=alert(1)>x</b>"),
            ("image.txt", b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"),
            ("image.txt", b"<?xml version=\"1.0\"?><svg/>"),
            ("image.png", b"<svg onload=alert(1)>"),
            ("page.gif", b"<html>"),
            ("doc.pdf", PNG),
            ("a.png", b"\x89PNX"),
            ("nul.txt", b"abc\0def"),
            ("bell.txt", b"ding\x07"),
            ("latin1.txt", b"caf\xe9"),
            ("overlong.txt", b"\xc0\xaf"),
            ("zip.txt", b"PK\x03\x04\x14\0"),
            ("broken.json", br#"{"a": "#),
            ("deep.json", deep.as_bytes()),
            ("html.json", b"<html></html>"),
        ];
        for (name, content) in cases {
            assert_eq!(refused(&policy, name, content), "file_content", "{name}: {content:?}");
        }
        assert_eq!(policy.check("ok.png", PNG).unwrap(), FileType::Png);
        assert_eq!(policy.check("ok.JPEG", b"\xff\xd8\xff\xe0").unwrap(), FileType::Jpeg);
        // Text that merely mentions tags is still text.
        assert!(policy.check("notes.txt", b"use <b> for bold, <3").is_ok());
        assert!(policy.check("notes.txt", b"<bdi> is not <b>").is_ok());
    }

    #[test]
    fn the_extension_must_be_the_last_one_and_allowed() {
        let policy = UploadPolicy::default();
        for name in [
            "noext",
            "archive.tar.gz",
            "shell.php",
            "a.txt.exe",
            "a.txt.",
            "a.txt ",
            "a.t\u{200B}xt",
            "a.ｔｘｔ",
            "a.tx\u{202E}t",
            ".txt/evil",
        ] {
            assert_eq!(refused(&policy, name, b"hello"), "file_type", "{name:?}");
        }
        assert!(policy.check("report.2024.txt", b"x").is_ok());
        assert!(
            policy.check("../../etc/x.txt", b"x").is_ok(),
            "the name is not the type's concern"
        );
    }

    #[test]
    fn the_size_cap_is_a_413() {
        let policy = UploadPolicy::new(["txt"], 4).unwrap();
        assert!(policy.check("a.txt", b"1234").is_ok());
        let err = policy.check("a.txt", b"12345").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
    }

    #[test]
    fn configuration_names_are_checked() {
        let err = UploadPolicy::new(["txt", "exe"], 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert_eq!(err.config_key(), Some("allowed_file_types"));
        assert!(UploadPolicy::new(Vec::<String>::new(), 10).is_err());
        let policy = UploadPolicy::new([".PNG", "jpeg", "jpg"], 10).unwrap();
        assert_eq!(policy.allowed(), [FileType::Png, FileType::Jpeg]);
    }
}
