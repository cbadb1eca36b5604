//! Permissions, wildcards, roles, and the requirements handlers state.
//!
//! The public documentation is on [`Permission`].

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;

const MAX_SEGMENT: usize = 64;
const MAX_SEGMENTS: usize = 16;

/// One permission: exact (`orders:write`) or ending in a wildcard
/// (`orders:*`, `*`).
///
/// A permission is a string of segments separated by `:`, such as
/// `orders:write` or `billing:invoices:read`. Each segment is 1 to 64
/// characters from `A-Z a-z 0-9 _ - .`; matching is case-sensitive.
///
/// A **granted** permission may end in a wildcard segment:
///
/// | granted          | matches                                   | does not match |
/// |------------------|-------------------------------------------|----------------|
/// | `*`              | every permission                          |                |
/// | `orders:*`       | `orders:write`, `orders:items:read`       | `orders`, `ordersX:write`, `order:write` |
/// | `orders:items:*` | `orders:items:read`                       | `orders:items`, `orders:write` |
/// | `orders:write`   | `orders:write` only                       | `orders:write:all`, `orders` |
///
/// So `p:*` matches exactly the permissions that start with the segments of
/// `p` and have at least one segment more. A wildcard anywhere but as the
/// whole last segment (`ord*`, `*:read`, `orders:*:read`) is refused.
/// **Required** permissions never contain a wildcard: a requirement names the
/// precise permission an operation needs.
///
/// ```
/// use rampart::auth::{PermissionSet, all_of, any_of, require};
///
/// let granted = PermissionSet::parse(["orders:*", "reports:read"]).unwrap();
/// assert!(require("orders:write").check(&granted).is_ok());
/// assert!(any_of(["admin:all", "reports:read"]).check(&granted).is_ok());
///
/// let denied = all_of(["orders:read", "billing:read"]).check(&granted).unwrap_err();
/// assert_eq!(denied.status().as_u16(), 403);
/// assert_eq!(denied.required_permissions(), ["billing:read"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(Box<str>);

impl Permission {
    /// Parses a permission that may be granted (wildcards allowed).
    pub fn parse(text: &str) -> Result<Permission, Error> {
        check_syntax(text, true).map(|()| Permission(text.into()))
    }

    /// The permission as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this permission ends in a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the grammar; `wildcard` says whether a final `*` segment is allowed.
fn check_syntax(text: &str, wildcard: bool) -> Result<(), Error> {
    let invalid = |why: &'static str| Err(Error::validation(why).with_detail("reason", why));
    if text == "*" {
        return if wildcard {
            Ok(())
        } else {
            invalid("a required permission cannot be a wildcard")
        };
    }
    // Checked while splitting, without collecting: this runs for every
    // permission of every verified token.
    let mut segments = text.split(':').peekable();
    let mut count = 0;
    while let Some(segment) = segments.next() {
        count += 1;
        if count > MAX_SEGMENTS {
            return invalid("a permission has at most 16 segments");
        }
        if segment == "*" {
            if !wildcard {
                return invalid("a required permission cannot contain a wildcard");
            }
            if segments.peek().is_some() {
                return invalid("a wildcard can only be the last segment of a permission");
            }
            continue;
        }
        if segment.is_empty() || segment.len() > MAX_SEGMENT {
            return invalid("each permission segment has 1 to 64 characters");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return invalid("a permission segment holds only A-Z, a-z, 0-9, '_', '-' and '.'");
        }
    }
    Ok(())
}

/// What a principal is granted: exact permissions and wildcard prefixes,
/// checked by binary search for exact ones and linearly in the (few)
/// wildcards.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    /// Sorted, without duplicates. A principal holds a handful: a sorted
    /// vector beats a hash set at building and at lookup.
    exact: Vec<Box<str>>,
    /// Wildcards as prefixes including the final `:` (`orders:*` → `orders:`).
    prefixes: Vec<Box<str>>,
    all: bool,
}

impl PermissionSet {
    /// An empty set: grants nothing.
    pub fn new() -> PermissionSet {
        PermissionSet::default()
    }

    /// Parses each permission; the first invalid one is an error.
    pub fn parse<I, S>(permissions: I) -> Result<PermissionSet, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = PermissionSet::new();
        for text in permissions {
            set.insert(Permission::parse(text.as_ref())?);
        }
        Ok(set)
    }

    /// Grants `permission`.
    pub fn insert(&mut self, permission: Permission) {
        let text = permission.as_str();
        if text == "*" {
            self.all = true;
        } else if let Some(prefix) = text.strip_suffix('*') {
            if !self.prefixes.iter().any(|p| &**p == prefix) {
                self.prefixes.push(prefix.into());
            }
        } else {
            if let Err(at) = self.exact.binary_search(&permission.0) {
                self.exact.insert(at, permission.0);
            }
        }
    }

    /// Grants everything in `other`.
    pub fn extend(&mut self, other: &PermissionSet) {
        self.all |= other.all;
        for permission in &other.exact {
            if let Err(at) = self.exact.binary_search(permission) {
                self.exact.insert(at, permission.clone());
            }
        }
        for prefix in &other.prefixes {
            if !self.prefixes.contains(prefix) {
                self.prefixes.push(prefix.clone());
            }
        }
    }

    /// Whether `required` (an exact permission) is granted.
    pub fn grants(&self, required: &str) -> bool {
        self.all
            || self.exact.binary_search_by(|p| (**p).cmp(required)).is_ok()
            || self.prefixes.iter().any(|p| required.len() > p.len() && required.starts_with(&**p))
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        !self.all && self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Every granted permission as text, sorted.
    pub fn to_strings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.exact.iter().map(|p| p.to_string()).collect();
        out.extend(self.prefixes.iter().map(|p| format!("{p}*")));
        if self.all {
            out.push("*".to_owned());
        }
        out.sort();
        out
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.to_strings()).finish()
    }
}

/// What an operation needs: all of some permissions, or any one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    permissions: Vec<Box<str>>,
    any: bool,
}

/// The operation needs `permission`.
///
/// # Panics
/// When `permission` is not a valid exact permission (a wildcard, an empty
/// segment, a forbidden character). Requirements are written in code; use
/// [`Requirement::parse_all`] for text from configuration.
pub fn require(permission: &str) -> Requirement {
    all_of([permission])
}

/// The operation needs every one of `permissions`.
///
/// # Panics
/// As [`require`].
pub fn all_of<I, S>(permissions: I) -> Requirement
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    match Requirement::parse(permissions, false) {
        Ok(requirement) => requirement,
        Err(err) => panic!("invalid required permission: {}", err.message()),
    }
}

/// The operation needs at least one of `permissions`.
///
/// # Panics
/// As [`require`].
pub fn any_of<I, S>(permissions: I) -> Requirement
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    match Requirement::parse(permissions, true) {
        Ok(requirement) => requirement,
        Err(err) => panic!("invalid required permission: {}", err.message()),
    }
}

impl Requirement {
    /// Parses an all-of requirement from configuration text.
    pub fn parse_all<I, S>(permissions: I) -> Result<Requirement, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Requirement::parse(permissions, false)
    }

    /// Parses an any-of requirement from configuration text.
    pub fn parse_any<I, S>(permissions: I) -> Result<Requirement, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Requirement::parse(permissions, true)
    }

    fn parse<I, S>(permissions: I, any: bool) -> Result<Requirement, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for text in permissions {
            let text = text.as_ref();
            check_syntax(text, false)?;
            out.push(Box::from(text));
        }
        if out.is_empty() {
            return Err(Error::validation("a requirement names at least one permission"));
        }
        Ok(Requirement { permissions: out, any })
    }

    /// The permissions named.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.permissions.iter().map(|p| &**p)
    }

    /// Checks `granted` against the requirement. A failure is an
    /// Authorization error (403) listing what is missing: for all-of, the
    /// permissions not granted; for any-of, every alternative.
    pub fn check(&self, granted: &PermissionSet) -> Result<(), Error> {
        if self.any {
            if self.permissions.iter().any(|p| granted.grants(p)) {
                return Ok(());
            }
            return Err(deny(self.permissions.iter().map(|p| &**p), "any_of"));
        }
        let mut missing = self.permissions.iter().filter(|p| !granted.grants(p)).peekable();
        if missing.peek().is_none() {
            return Ok(());
        }
        Err(deny(missing.map(|p| &**p), "all_of"))
    }
}

fn deny<'a>(required: impl Iterator<Item = &'a str>, rule: &'static str) -> Error {
    metrics::counter!("rampart_auth_permission_denied_total").increment(1);
    Error::authorization(required.map(str::to_owned)).with_detail("rule", rule)
}

/// Roles and the permissions each grants, from configuration.
#[derive(Debug, Clone, Default)]
pub struct RoleMap {
    roles: BTreeMap<String, PermissionSet>,
}

impl RoleMap {
    /// An empty map.
    pub fn new() -> RoleMap {
        RoleMap::default()
    }

    /// Maps `role` to `permissions` (replacing what it had).
    pub fn insert(&mut self, role: impl Into<String>, permissions: PermissionSet) {
        self.roles.insert(role.into(), permissions);
    }

    /// Every role and what it grants, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &PermissionSet)> {
        self.roles.iter()
    }

    /// What `role` grants, if it is known.
    pub fn get(&self, role: &str) -> Option<&PermissionSet> {
        self.roles.get(role)
    }

    /// `direct` plus what each of `roles` grants. Unknown roles grant nothing.
    pub fn resolve<'a>(
        &self,
        direct: PermissionSet,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> PermissionSet {
        let mut set = direct;
        for role in roles {
            if let Some(granted) = self.roles.get(role) {
                set.extend(granted);
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(perms: &[&str]) -> PermissionSet {
        PermissionSet::parse(perms).expect("valid")
    }

    #[test]
    fn wildcard_matches_exactly_the_longer_permissions_under_its_prefix() {
        let granted = set(&["orders:*"]);
        for yes in ["orders:write", "orders:read", "orders:items:read"] {
            assert!(granted.grants(yes), "{yes}");
        }
        for no in ["orders", "ordersX:write", "order:write", "Orders:write", "billing:orders"] {
            assert!(!granted.grants(no), "{no}");
        }
        let nested = set(&["orders:items:*"]);
        assert!(nested.grants("orders:items:read"));
        assert!(!nested.grants("orders:items"));
        assert!(!nested.grants("orders:write"));
        assert!(!nested.grants("orders:itemsX:read"));
    }

    #[test]
    fn star_matches_everything_and_exact_only_itself() {
        assert!(set(&["*"]).grants("anything:at:all"));
        assert!(set(&["*"]).grants("single"));
        let exact = set(&["orders:write"]);
        assert!(exact.grants("orders:write"));
        assert!(!exact.grants("orders:write:all"));
        assert!(!exact.grants("orders"));
        assert!(!PermissionSet::new().grants("orders:write"));
    }

    #[test]
    fn malformed_permissions_are_refused() {
        for bad in [
            "",
            ":",
            "orders:",
            ":write",
            "orders::write",
            "ord*",
            "*:read",
            "orders:*:read",
            "orders:wr ite",
            "orders:é",
            "**",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
        let long = "a".repeat(65);
        assert!(Permission::parse(&long).is_err());
        assert!(Permission::parse(&["a"; 17].join(":")).is_err());
        assert!(Permission::parse("billing.v2:invoice_items-x:read").is_ok());
    }

    #[test]
    fn requirements_never_hold_wildcards() {
        assert!(Requirement::parse_all(["orders:*"]).is_err());
        assert!(Requirement::parse_any(["*"]).is_err());
        assert!(Requirement::parse_all(Vec::<String>::new()).is_err());
    }

    #[test]
    #[should_panic(expected = "invalid required permission")]
    fn require_panics_on_a_wildcard() {
        let _ = require("orders:*");
    }

    #[test]
    fn all_of_lists_only_what_is_missing_and_any_of_every_alternative() {
        let granted = set(&["orders:read"]);
        let err =
            all_of(["orders:read", "orders:write", "billing:read"]).check(&granted).unwrap_err();
        assert_eq!(err.required_permissions(), ["orders:write", "billing:read"]);
        assert_eq!(err.details()["rule"], "all_of");
        let err = any_of(["a:b", "c:d"]).check(&granted).unwrap_err();
        assert_eq!(err.required_permissions(), ["a:b", "c:d"]);
        assert!(any_of(["a:b", "orders:read"]).check(&granted).is_ok());
        assert!(all_of(["orders:read"]).check(&granted).is_ok());
    }

    #[test]
    fn roles_add_their_permissions_and_unknown_roles_add_nothing() {
        let mut roles = RoleMap::new();
        roles.insert("clerk", set(&["orders:read", "orders:write"]));
        roles.insert("admin", set(&["*"]));
        let resolved = roles.resolve(set(&["reports:read"]), ["clerk", "ghost"]);
        assert!(resolved.grants("orders:write"));
        assert!(resolved.grants("reports:read"));
        assert!(!resolved.grants("billing:read"));
        assert!(roles.resolve(PermissionSet::new(), ["admin"]).grants("billing:read"));
        assert_eq!(resolved.to_strings(), ["orders:read", "orders:write", "reports:read"]);
    }
}
