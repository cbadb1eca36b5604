//! A user-supplied relative path joined under a root, never escaping it.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::validate::violation_error;

use super::filename;

/// Joins `user_path` (a relative path with `/` separators, already
/// percent-decoded once) under `root`, refusing anything that could resolve
/// outside it; returns the resolved path, under the canonical root.
///
/// How it cannot escape:
///
/// 1. **Lexically**, the path is refused if it is absolute, has a `..`
///    component, a backslash or a colon (Windows separators, drive letters,
///    alternate data streams), a remaining `%XX` escape (double encoding:
///    `%2e%2e%2f`), or a component that is not a safe
///    [`file_name`](super::file_name) (control characters, full-width dots
///    and slashes, hidden files such as `.env`, Windows device names, ...).
/// 2. **Through symbolic links**: the root is canonicalized, then each
///    component that exists is looked at in turn; a symbolic link is
///    resolved (all the way, by the operating system) and the result must
///    still be under the canonical root, else the path is refused. Once a
///    component does not exist, the rest is appended as it is: it holds no
///    `..` and, not existing, no link.
///
/// **Limit (time of check to time of use):** this looks at the file system
/// once. Someone who can write under `root` *between this call and the
/// open* can swap a directory for a link that leads out. When local users
/// are not trusted, open relative to a directory handle with
/// `openat2(RESOLVE_BENEATH)` (Linux) or a capability library such as
/// `cap-std` instead.
///
/// # Errors
/// A validation error coded `path` for a refused user path (with the reason,
/// never the path); an internal error when `root` cannot be resolved or the
/// file system cannot be read.
///
/// ```
/// use rampart::sanitize::safe_join;
///
/// let root = std::env::temp_dir();
/// let joined = safe_join(&root, "reports/2024/q1.pdf").unwrap();
/// assert!(joined.starts_with(root.canonicalize().unwrap()));
/// for attack in ["../etc/passwd", "/etc/passwd", "a/../../x", "..\\x", "%2e%2e/x", "C:/x"] {
///     assert_eq!(safe_join(&root, attack).unwrap_err().violations()[0].code, "path");
/// }
/// ```
pub fn safe_join(root: impl AsRef<Path>, user_path: &str) -> Result<PathBuf, Error> {
    let components = components(user_path).map_err(|why| violation_error("", "path", why))?;
    let root = root.as_ref();
    let canonical_root = root
        .canonicalize()
        .map_err(|err| Error::internal(err).context("safe_join: resolving the root"))?;

    let mut resolved = canonical_root.clone();
    let mut rest = components.iter();
    for component in rest.by_ref() {
        let next = resolved.join(component);
        match next.symlink_metadata() {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = match next.canonicalize() {
                    Ok(target) => target,
                    // A dangling link could be pointed anywhere later.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        return Err(violation_error("", "path", "leads to a broken link"));
                    }
                    Err(err) => {
                        return Err(Error::internal(err).context("safe_join: resolving a link"));
                    }
                };
                if !target.starts_with(&canonical_root) {
                    return Err(violation_error("", "path", "leads outside the allowed directory"));
                }
                resolved = target;
            }
            Ok(_) => resolved = next,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                resolved = next;
                break;
            }
            Err(err) => return Err(Error::internal(err).context("safe_join: reading the path")),
        }
    }
    resolved.extend(rest);
    Ok(resolved)
}

/// The components of a user path, or why it is refused.
fn components(user_path: &str) -> Result<Vec<&str>, &'static str> {
    if user_path.is_empty() {
        return Err("must not be empty");
    }
    if user_path.starts_with('/') {
        return Err("must be a relative path");
    }
    if user_path.contains('\\') {
        return Err("must not contain a backslash");
    }
    if user_path.contains(':') {
        return Err("must not contain a colon");
    }
    let bytes = user_path.as_bytes();
    if bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    {
        return Err("must not contain percent-encoded characters");
    }
    let mut parts = Vec::new();
    for part in user_path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("must not go up a directory"),
            part => match filename::problem(part) {
                None => parts.push(part),
                Some(_) => return Err("has a component that is not a safe file name"),
            },
        }
    }
    if parts.is_empty() {
        return Err("must name something under the directory");
    }
    Ok(parts)
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs;

    use proptest::prelude::*;

    use super::*;
    use crate::ErrorKind;

    fn refused(root: &Path, user_path: &str) -> String {
        let err = safe_join(root, user_path).expect_err(user_path);
        assert_eq!(err.kind(), ErrorKind::Validation, "{user_path}");
        assert_eq!(err.violations()[0].code, "path");
        err.violations()[0].message.to_string()
    }

    #[test]
    fn traversal_attempts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for attack in [
            "..",
            "../",
            "../etc/passwd",
            "a/../../etc/passwd",
            "a/b/../../../x",
            "./../x",
            "/etc/passwd",
            "//etc/passwd",
            "..\\..\\windows\\win.ini",
            "a\\..\\..\\x",
            "C:\\Windows",
            "C:/Windows",
            "\\\\server\\share",
            "file.txt::$DATA",
            "%2e%2e/x",
            "%2E%2E%2Fetc",
            "..%2fetc",
            "%252e%252e/x",
            "%c0%ae%c0%ae/x",
            "．．/etc",
            "a／..／b",
            "a/\0/b",
            "a/\n/b",
            ".git/config",
            "a/.env",
            "",
            ".",
            "./",
            "a/con/b",
            "a/b.",
            "a/\u{202E}b",
        ] {
            refused(dir.path(), attack);
        }
    }

    #[test]
    fn ordinary_paths_are_joined_under_the_canonical_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        assert_eq!(safe_join(dir.path(), "a/b/c.txt").unwrap(), root.join("a/b/c.txt"));
        assert_eq!(safe_join(dir.path(), "./a//b/").unwrap(), root.join("a/b"));
        assert_eq!(safe_join(dir.path(), "new/dir/f").unwrap(), root.join("new/dir/f"));
        assert_eq!(safe_join(dir.path(), "a...b/x").unwrap(), root.join("a...b/x"));
    }

    #[test]
    fn symlinks_leading_out_are_refused_and_those_staying_in_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("inside")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("inside/passwd")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("inside/up")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("inside", root.join("alias")).unwrap();

        assert!(refused(&root, "escape/secret").contains("outside"));
        assert!(refused(&root, "escape").contains("outside"));
        assert!(refused(&root, "inside/passwd").contains("outside"));
        assert!(refused(&root, "inside/up/etc").contains("outside"));
        assert!(refused(&root, "dangling/x").contains("broken"));
        assert_eq!(safe_join(&root, "alias/f").unwrap(), root.join("inside/f"));
        // The root itself may be reached through a link.
        let link_to_root = outside.path().join("root-link");
        std::os::unix::fs::symlink(&root, &link_to_root).unwrap();
        assert_eq!(safe_join(&link_to_root, "inside").unwrap(), root.join("inside"));
    }

    #[test]
    fn a_missing_root_is_an_internal_error() {
        let err = safe_join("/nonexistent/rampart-root", "a").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_result_is_always_under_the_root(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("..".to_owned()), Just(".".to_owned()), Just("".to_owned()),
                    Just("link".to_owned()), Just("sub".to_owned()), Just("%2e%2e".to_owned()),
                    Just("\\..".to_owned()), Just("/".to_owned()), Just("．．".to_owned()),
                    "[a-z.]{1,4}", any::<String>(),
                ],
                1..6,
            )
        ) {
            let (dir, root) = fixture();
            let user_path = parts.join("/");
            if let Ok(joined) = safe_join(dir.path(), &user_path) {
                prop_assert!(joined.starts_with(&root), "{:?} -> {:?}", user_path, joined);
                // Whatever exists of it also resolves under the root.
                let mut existing = joined.as_path();
                while !existing.exists() {
                    existing = existing.parent().unwrap_or(&root);
                }
                prop_assert!(existing.canonicalize().unwrap().starts_with(&root));
            }
        }
    }

    /// A root with a directory, and a link out of it.
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().canonicalize().expect("it resolves");
        fs::create_dir(root.join("sub")).expect("a directory");
        std::os::unix::fs::symlink("/", root.join("link")).expect("a link");
        std::os::unix::fs::symlink("/", root.join("sub/link")).expect("a link");
        (dir, root)
    }
}
