//! JSON Pointers (RFC 6901): how a violation says where it is.

use std::borrow::Cow;

/// Appends one reference token to `pointer`, escaping `~` as `~0` and `/` as `~1`.
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    pointer.push_str(&escape_token(token));
}

/// Escapes one reference token: `~` becomes `~0`, `/` becomes `~1`.
pub(crate) fn escape_token(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// Splits a pointer into its unescaped reference tokens (`""` has none).
pub(crate) fn tokens(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer.split('/').skip(1).map(|token| {
        if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_escaped_and_unescaped_in_the_right_order() {
        let mut pointer = String::new();
        push_token(&mut pointer, "a/b");
        push_token(&mut pointer, "m~n");
        push_token(&mut pointer, "~1");
        assert_eq!(pointer, "/a~1b/m~0n/~01");
        let back: Vec<_> = tokens(&pointer).collect();
        assert_eq!(back, ["a/b", "m~n", "~1"]);
        // The pointer resolves in serde_json as RFC 6901 says it must.
        let doc = serde_json::json!({"a/b": {"m~n": {"~1": 7}}});
        assert_eq!(doc.pointer(&pointer), Some(&serde_json::json!(7)));
    }

    #[test]
    fn the_whole_document_has_no_tokens() {
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("/").collect::<Vec<_>>(), [""]);
    }
}
