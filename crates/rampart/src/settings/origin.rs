//! What an origin is: the one rule for every setting that lists browser
//! origins (`cors.allowed_origins`, `auth.session.allowed_origins`).

/// `scheme://host[:port]`, as browsers send in `Origin`: `http` or `https`,
/// no user information, no path (not even `/`), no query.
pub(crate) fn is_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<http::Uri>() else { return false };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.authority().is_some_and(|a| !a.as_str().contains('@') && !a.host().is_empty())
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
        && !text.ends_with('/');
    scheme_ok && bare
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_bare_origins() {
        for good in ["https://app.example.com", "http://localhost:3000", "https://[::1]:8443"] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a.example/x",
            "https://a.example?x=1",
            "ftp://a.example",
            "https://u:p@a.example",
            "https://u@a.example",
            "https://",
            "",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
