//! HTML: escape text for an HTML page, or clean untrusted HTML against an
//! allow-list (feature `html`).

use std::borrow::Cow;
#[cfg(feature = "html")]
use std::sync::LazyLock;

/// Escapes `text` for HTML text content and **quoted** attribute values:
/// `&`, `<`, `>`, `"` and `'` become `&amp;`, `&lt;`, `&gt;`, `&quot;` and
/// `&#x27;`. Text without them is returned as it is, without allocating.
///
/// Not for other contexts: an unquoted attribute, a `<script>` or `<style>`
/// body, a URL (check the scheme with
/// [`rules::Url`](crate::validate::rules::Url)) or CSS need their own
/// encoding; keep untrusted data out of them.
///
/// ```
/// use rampart::sanitize::escape;
///
/// let name = r#""><img src=x onerror=alert(1)>"#;
/// let html = format!(r#"<input value="{}">"#, escape(name));
/// assert_eq!(html, r#"<input value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">"#);
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| ENTITY[usize::from(b)] != 0) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + text.len() / 8 + 8);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let entity = ENTITY[usize::from(b)];
        if entity != 0 {
            // Every replaced byte is ASCII, so `i` is a char boundary.
            out.push_str(&text[start..i]);
            out.push_str(ENTITIES[usize::from(entity)]);
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
    Cow::Owned(out)
}

/// The replacements, indexed by [`ENTITY`].
const ENTITIES: [&str; 6] = ["", "&amp;", "&lt;", "&gt;", "&quot;", "&#x27;"];

/// For each byte, its index in [`ENTITIES`] (0: kept as it is).
static ENTITY: [u8; 256] = {
    let mut table = [0; 256];
    table[b'&' as usize] = 1;
    table[b'<' as usize] = 2;
    table[b'>' as usize] = 3;
    table[b'"' as usize] = 4;
    table[b'\'' as usize] = 5;
    table
};

#[cfg(feature = "html")]
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    // Foreign content (SVG, MathML) is where namespace-confusion bypasses of
    // HTML sanitizers live: never allowed, whatever the default becomes.
    builder.rm_tags(["svg", "math"]);
    builder
});

/// Cleans untrusted HTML for display, keeping only an allow-list of tags
/// and attributes (ammonia's defaults: formatting, lists, tables, links and
/// images with safe URL schemes; no SVG, no MathML, no scripts, styles,
/// event handlers, forms or frames). Links get `rel="noopener noreferrer"`.
///
/// Use it only where rich text must be kept; for anything else,
/// [`escape`] is simpler and safer.
///
/// ```
/// use rampart::sanitize::clean;
///
/// assert_eq!(clean("<b onclick=steal()>hi</b><script>x()</script>"), "<b>hi</b>");
/// assert_eq!(clean("<a href='javascript:alert(1)'>x</a>"), "<a rel=\"noopener noreferrer\">x</a>");
/// ```
#[cfg(feature = "html")]
pub fn clean(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escape_leaves_safe_text_alone_and_keeps_unicode() {
        assert!(matches!(escape("plain text, é ñ 中文"), Cow::Borrowed(_)));
        assert_eq!(escape("a<b>&\"'c"), "a&lt;b&gt;&amp;&quot;&#x27;c");
        assert_eq!(escape("&amp;"), "&amp;amp;", "entities are escaped again, not trusted");
        assert_eq!(escape("\u{202E}<x>"), "\u{202E}&lt;x&gt;");
        assert_eq!(escape("ｅ\u{301}＜"), "ｅ\u{301}＜", "full-width ＜ is not markup");
    }

    #[cfg(feature = "html")]
    #[test]
    fn svg_and_math_never_survive_clean() {
        for payload in [
            "<svg><script>alert(1)</script></svg>",
            "<svg onload=alert(1)>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<svg><style><img src=x onerror=alert(1)></style></svg>",
        ] {
            let out = clean(payload);
            assert!(!out.contains("<svg") && !out.contains("<math"), "{payload} -> {out}");
            assert!(!out.contains("onerror") && !out.contains("onload"), "{payload} -> {out}");
        }
    }

    /// Every byte of `out` that is markup-significant is part of an entity
    /// that `escape` itself writes.
    fn only_escaped(out: &str) -> bool {
        let mut rest = out;
        while let Some(i) = rest.find(['<', '>', '"', '\'', '&']) {
            let tail = &rest[i..];
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;"]
                .into_iter()
                .find(|e| tail.starts_with(e));
            match entity {
                Some(e) => rest = &tail[e.len()..],
                None => return false,
            }
        }
        true
    }

    proptest! {
        #[test]
        fn escape_output_never_holds_a_raw_markup_character(text in any::<String>()) {
            let out = escape(&text);
            prop_assert!(only_escaped(&out), "{:?} -> {:?}", text, out);
        }

        #[test]
        fn escape_of_markup_heavy_text_is_reversible(text in "[<>&\"'a-z;#x0-9 ]{0,64}") {
            let out = escape(&text);
            prop_assert!(only_escaped(&out));
            let back = out
                .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                .replace("&#x27;", "'").replace("&amp;", "&");
            prop_assert_eq!(back, text);
        }
    }
}
