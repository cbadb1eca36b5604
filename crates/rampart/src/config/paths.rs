//! File paths written in the configuration file are relative to that file,
//! not to the working directory: the same file then names the same files
//! wherever the service, or `rampart config check`, is started (and a file
//! planted in the working directory is never picked up instead).

use std::path::Path;

use figment::value::{Dict, Value};

/// The keys whose values are paths; `[]` stands for each table of an array.
const PATH_KEYS: &[&[&str]] = &[
    &["audit", "key_file"],
    &["audit", "file", "dir"],
    &["audit", "file", "checkpoints"],
    &["auth", "jwt", "keys[]", "public_key_file"],
    &["auth", "jwt", "jwks", "file"],
    &["tls", "cert_path"],
    &["tls", "key_path"],
];

/// Makes the relative paths among the file's values absolute, against
/// `dir`, the directory of the configuration file.
pub(super) fn resolve(dict: &mut Dict, dir: &Path) {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for key in PATH_KEYS {
        resolve_in(dict, key, &dir);
    }
}

fn resolve_in(dict: &mut Dict, key: &[&str], dir: &Path) {
    let Some((first, rest)) = key.split_first() else { return };
    let name = first.strip_suffix("[]").unwrap_or(first);
    match (dict.get_mut(name), rest.is_empty()) {
        (Some(Value::String(_, path)), true) if Path::new(path.as_str()).is_relative() => {
            *path = dir.join(path.as_str()).to_string_lossy().into_owned();
        }
        (Some(Value::Dict(_, inner)), false) => resolve_in(inner, rest, dir),
        (Some(Value::Array(_, items)), false) if first.ends_with("[]") => {
            for item in items {
                if let Value::Dict(_, inner) = item {
                    resolve_in(inner, rest, dir);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_joined_to_the_directory_and_absolute_ones_kept() {
        let text = "[audit]\nkey_file = \"keys/audit.key\"\n[audit.file]\ndir = \"/var/audit\"\n\
                    [[auth.jwt.keys]]\nkid = \"a\"\n[[auth.jwt.keys]]\npublic_key_file = \"ec.pem\"\n\
                    [tls]\ncert_path = \"../cert.pem\"\n";
        let mut dict: Dict = toml::from_str(text).expect("toml");
        resolve(&mut dict, Path::new("/etc/app"));
        let value = Value::from(dict);
        let at = |path: &str| value.find_ref(path).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(at("audit.key_file").as_deref(), Some("/etc/app/keys/audit.key"));
        assert_eq!(at("audit.file.dir").as_deref(), Some("/var/audit"));
        assert_eq!(at("tls.cert_path").as_deref(), Some("/etc/app/../cert.pem"));
        let keys = value.find_ref("auth.jwt.keys").and_then(Value::as_array).expect("keys");
        assert_eq!(
            keys[1].find_ref("public_key_file").and_then(Value::as_str),
            Some("/etc/app/ec.pem")
        );
    }
}
