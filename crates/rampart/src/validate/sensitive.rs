//! Which fields are sensitive: a violation there never says more than
//! "is invalid".

use super::pointer::tokens;
use crate::sensitive::is_sensitive_name;

/// The fields whose violations must not echo anything about the value.
///
/// A violation is rendered with its pointer and code but with the generic
/// message "is invalid" when its pointer is at or under a sensitive field:
/// neither the value nor the rule's parameters (an allowed list, a pattern)
/// can then leak a secret. rampart's own messages never contain input values
/// anyway; this also covers custom messages and rule parameters.
///
/// By default, well-known names are sensitive: a member whose name contains
/// password, secret, token, api key, authorization, cookie, session,
/// credential, card number and the like, or has pin, cvv, ssn or otp as a
/// word, in any case convention (the list log redaction uses:
/// [`DEFAULT_SENSITIVE_NAMES`](crate::telemetry::DEFAULT_SENSITIVE_NAMES)
/// and [`DEFAULT_SENSITIVE_WORDS`](crate::telemetry::DEFAULT_SENSITIVE_WORDS)).
/// Add your own by name or by pointer.
///
/// ```
/// use rampart::validate::SensitiveFields;
///
/// let sensitive = SensitiveFields::default().name("mothers_maiden_name").pointer("/card");
/// assert!(sensitive.is_sensitive("/user/newPassword"));
/// assert!(sensitive.is_sensitive("/mothersMaidenName"));
/// assert!(sensitive.is_sensitive("/card/number"));
/// assert!(!sensitive.is_sensitive("/shipping/address"));
/// ```
#[derive(Debug, Clone)]
pub struct SensitiveFields {
    well_known: bool,
    names: Vec<String>,
    pointers: Vec<String>,
}

impl Default for SensitiveFields {
    /// The well-known sensitive names.
    fn default() -> SensitiveFields {
        SensitiveFields { well_known: true, names: Vec::new(), pointers: Vec::new() }
    }
}

impl SensitiveFields {
    /// No field is sensitive (not even the well-known names).
    pub fn none() -> SensitiveFields {
        SensitiveFields { well_known: false, names: Vec::new(), pointers: Vec::new() }
    }

    /// Marks every field called `name` (wherever it appears, in any case
    /// convention) as sensitive.
    #[must_use]
    pub fn name(mut self, name: &str) -> SensitiveFields {
        self.names.push(normalize(name));
        self
    }

    /// Marks the field at `pointer` (and everything under it) as sensitive.
    #[must_use]
    pub fn pointer(mut self, pointer: impl Into<String>) -> SensitiveFields {
        self.pointers.push(pointer.into());
        self
    }

    /// Whether a violation at `pointer` concerns a sensitive field.
    pub fn is_sensitive(&self, pointer: &str) -> bool {
        let under = |prefix: &String| {
            pointer
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.is_empty())
        };
        if self.pointers.iter().any(under) {
            return true;
        }
        tokens(pointer).any(|token| {
            (self.well_known && is_sensitive_name(&token))
                || self.names.contains(&normalize(&token))
        })
    }
}

/// Lower case without `_` and `-`: the form every serde case convention of
/// one Rust name shares.
pub(crate) fn normalize(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_names_match_in_every_case_convention() {
        let sensitive = SensitiveFields::default();
        for pointer in
            ["/password", "/newPassword", "/API_KEY", "/auth/refresh-token", "/pin", "/items/0/cvv"]
        {
            assert!(sensitive.is_sensitive(pointer), "{pointer}");
        }
        for pointer in ["", "/name", "/shipping", "/spinner", "/items/0/quantity"] {
            assert!(!sensitive.is_sensitive(pointer), "{pointer}");
        }
    }

    #[test]
    fn pointers_cover_their_subtree_but_not_siblings_with_the_same_prefix() {
        let sensitive = SensitiveFields::none().pointer("/card");
        assert!(sensitive.is_sensitive("/card"));
        assert!(sensitive.is_sensitive("/card/number"));
        assert!(!sensitive.is_sensitive("/cardholder"));
        assert!(!SensitiveFields::none().is_sensitive("/password"));
        assert!(SensitiveFields::none().pointer("").is_sensitive("/anything"));
    }

    #[test]
    fn names_are_compared_normalized_and_escaped_tokens_unescaped() {
        let sensitive = SensitiveFields::none().name("Maiden_Name");
        assert!(sensitive.is_sensitive("/maidenName"));
        assert!(sensitive.is_sensitive("/maiden-name/0"));
        let sensitive = SensitiveFields::none().name("a/b");
        assert!(sensitive.is_sensitive("/a~1b"));
    }
}
