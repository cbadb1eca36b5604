//! Which names are sensitive: the one list that log redaction
//! ([`Redactor`](crate::telemetry::Redactor)) and validation messages
//! ([`SensitiveFields`](crate::validate::SensitiveFields)) both use, so a
//! field is secret to both or to neither.

/// Names of secrets. A name is sensitive when it contains one of these,
/// ignoring case and `_`, `-`, `.` or nothing between the words (`api_key`
/// matches `apiKey`, `X-API-KEY` and `api.key`; `password` matches
/// `newPassword`).
pub const DEFAULT_SENSITIVE_NAMES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "access_key",
    "private_key",
    "authorization",
    "cookie",
    "session",
    "credential",
    "credit_card",
    "card_number",
];

/// Short names of secrets, sensitive only as a word of a name (`pin`,
/// `user_pin`, `userPin`, `PIN`): as parts of a word they would match
/// innocent names (`shipping` holds `pin`). Words are separated by anything
/// but a letter or digit, and by a lower-case letter followed by an upper-case one.
pub const DEFAULT_SENSITIVE_WORDS: &[&str] = &["pwd", "pin", "cvv", "cvc", "ssn", "otp"];

/// Whether `name` (a field name, or one token of a JSON Pointer) is
/// sensitive by the two lists. The reference rule: the redactor finds the
/// same with an automaton, and a test holds the two to it.
pub(crate) fn is_sensitive_name(name: &str) -> bool {
    let joined = joined_lowercase(name);
    DEFAULT_SENSITIVE_NAMES.iter().any(|part| joined.contains(&joined_lowercase(part)))
        || has_word(name, DEFAULT_SENSITIVE_WORDS)
}

/// Whether one of the words of `name` (see [`is_word_at`] for where words
/// end) is one of `words`, ignoring ASCII case.
pub(crate) fn has_word(name: &str, words: &[&str]) -> bool {
    let b = name.as_bytes();
    let mut start = 0;
    for i in 1..=b.len() {
        if i == b.len() || is_boundary(b[i - 1], b[i]) {
            let word = &b[start..i];
            if words.iter().any(|w| word.eq_ignore_ascii_case(w.as_bytes())) {
                return true;
            }
            start = i;
        }
    }
    false
}

/// `name` in lower case without `_`, `-`, `.` and spaces.
fn joined_lowercase(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `bytes[start..end]` is a whole word: at each end, the edge of
/// the text, a byte that is not a letter or digit, or a change from a
/// lower-case letter to an upper-case one (`userPin`, `pinCode`).
pub(crate) fn is_word_at(bytes: &[u8], start: usize, end: usize) -> bool {
    let starts = start == 0 || is_boundary(bytes[start - 1], bytes[start]);
    let ends = end == bytes.len() || is_boundary(bytes[end - 1], bytes[end]);
    starts && ends
}

/// Whether a word ends between `before` and `after`.
fn is_boundary(before: u8, after: u8) -> bool {
    !before.is_ascii_alphanumeric()
        || !after.is_ascii_alphanumeric()
        || (before.is_ascii_lowercase() && after.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Redactor;
    use crate::validate::SensitiveFields;

    /// Each entry of the list in the spellings code and clients use, and
    /// innocent names that hold a short word inside a longer one.
    fn names() -> (Vec<String>, Vec<&'static str>) {
        let mut sensitive = Vec::new();
        for entry in DEFAULT_SENSITIVE_NAMES.iter().chain(DEFAULT_SENSITIVE_WORDS) {
            let camel: String = entry
                .split('_')
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_owned() } else { w[..1].to_uppercase() + &w[1..] })
                .collect();
            let upper = entry.to_ascii_uppercase().replace('_', "-");
            sensitive.extend([
                (*entry).to_owned(),
                format!("user_{entry}"),
                format!("new{}", camel[..1].to_uppercase() + &camel[1..]),
                format!("x-{upper}"),
                camel,
            ]);
        }
        let innocent = vec![
            "user_id",
            "request_id",
            "shipping",
            "spinner",
            "topping",
            "descvvx",
            "assnet",
            "hotpot",
            "lapwdx",
            "quantity",
            "SHIPPING",
        ];
        (sensitive, innocent)
    }

    /// The log redactor and the validation messages agree with the one
    /// rule on every name: neither has a list of its own.
    #[test]
    fn redaction_and_validation_share_the_one_list() {
        let redactor = Redactor::default();
        let fields = SensitiveFields::default();
        let (sensitive, innocent) = names();
        for name in &sensitive {
            assert!(is_sensitive_name(name), "{name}");
            assert!(redactor.is_sensitive_name(name), "the redactor misses {name}");
            let pointer = format!("/items/0/{name}");
            assert!(fields.is_sensitive(&pointer), "validation misses {name}");
        }
        for name in innocent {
            assert!(!is_sensitive_name(name), "{name}");
            assert!(!redactor.is_sensitive_name(name), "the redactor flags {name}");
            assert!(!fields.is_sensitive(&format!("/{name}")), "validation flags {name}");
        }
    }

    #[test]
    fn words_end_at_separators_and_case_changes() {
        for (text, at, end) in
            [("pin", 0, 3), ("user_pin", 5, 8), ("userPin", 4, 7), ("pinCode", 0, 3)]
        {
            assert!(is_word_at(text.as_bytes(), at, end), "{text}");
        }
        for (text, at, end) in [("shipping", 4, 7), ("SHIPPING", 4, 7), ("pin2", 0, 3)] {
            assert!(!is_word_at(text.as_bytes(), at, end), "{text}");
        }
    }
}
