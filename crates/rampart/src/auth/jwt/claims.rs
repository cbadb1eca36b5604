//! The parts of a token rampart reads, borrowed from the decoded JSON.
//!
//! Verification needs a handful of claims; building a map of every claim
//! costs more than the signature check. So the header and the registered
//! claims are read into borrowed structs, and the full claim map is built
//! only when someone asks [`Principal::claims`](crate::auth::Principal::claims).
//!
//! Claims are read leniently where the old map-based reading was lenient: a
//! `roles` that is not an array grants no roles, a non-string entry is
//! skipped, a `sub` that is not a string is no subject. A claim named twice
//! is refused (RFC 7519 §4 allows refusing duplicates; accepting the last
//! one would let two parsers disagree), and so is a key named twice in any
//! object of the header or the claims, at any depth.
//!
//! Every other value is read through, never skipped unread: a number out of
//! range or a lone surrogate fails here as it would in the claim map, and so
//! does nesting deeper than [`MAX_DEPTH`], so a token that verifies always
//! has the claims it was verified with. These checks happen in the one
//! parse, not in a scan before it.

use std::borrow::Cow;
use std::fmt;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest the header or the claims may nest: the object itself is
/// level 1. serde_json stops at 128 levels, and a claim map that does not
/// parse would vanish; this stops far earlier, at verification.
pub(super) const MAX_DEPTH: usize = 16;

/// The JOSE header fields rampart acts on; any others are read through
/// ([`Checked`]) and dropped.
pub(super) struct Header<'a> {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<Cow<'a, str>>,
    /// Present means the token relies on an extension rampart does not know.
    pub(super) crit: bool,
}

/// The registered (and rampart's own) claims; any other claim is read
/// through ([`Checked`]) and dropped.
#[derive(Default)]
pub(super) struct Registered<'a> {
    pub(super) exp: Time,
    pub(super) nbf: Time,
    pub(super) aud: Audience<'a>,
    pub(super) sub: Text<'a>,
    pub(super) iss: Text<'a>,
    pub(super) jti: Text<'a>,
    pub(super) scope: Text<'a>,
    pub(super) roles: Texts<'a>,
    pub(super) permissions: Texts<'a>,
}

/// The claims [`Registered`] keeps, in the order of its fields.
const REGISTERED: [&str; 9] =
    ["exp", "nbf", "aud", "sub", "iss", "jti", "scope", "roles", "permissions"];

/// Any JSON value at nesting level `depth`, read in full and kept not:
/// numbers must be in range and strings must decode, as a
/// `serde_json::Value` would need (serde's `IgnoredAny` only scans past
/// them, so `1e400` or `"\ud800"` would pass); no container may sit deeper
/// than [`MAX_DEPTH`], no object may name a key twice.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

/// A claim's value (level 2), as read past by the registered claims'
/// visitors when it is not what they keep. (An entry of an array claim is
/// read as if it were one too: a level less strict than exact.)
const A_CLAIM: Checked = Checked { depth: 2 };

/// The names an object has used so far, to refuse one named twice.
struct Names<'a>(Vec<Cow<'a, str>>);

impl<'a> Names<'a> {
    fn new() -> Names<'a> {
        Names(Vec::new())
    }

    fn add<E: de::Error>(&mut self, name: Option<Cow<'a, str>>) -> Result<(), E> {
        let Some(name) = name else { return Ok(()) };
        if self.0.contains(&name) {
            return Err(E::custom("an object names a key twice"));
        }
        self.0.push(name);
        Ok(())
    }
}

/// A time claim (`exp`, `nbf`): RFC 7519's NumericDate is a non-negative
/// JSON number; fractions are cut off. Anything else, strings and `null`
/// included, is `Invalid`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Time {
    /// The claim is not in the token.
    #[default]
    Absent,
    /// Seconds since the Unix epoch.
    At(u64),
    /// The claim is there but is not a NumericDate.
    Invalid,
}

/// The `aud` claim: one name or an array of names.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) enum Audience<'a> {
    /// The claim is not in the token.
    #[default]
    Absent,
    /// The names (one, for a string claim).
    Names(Vec<Cow<'a, str>>),
    /// The claim is there but is neither a string nor an array of strings.
    Invalid,
}

/// A string claim, or `None` when the claim holds anything else.
#[derive(Default)]
pub(super) struct Text<'a>(pub(super) Option<Cow<'a, str>>);

impl Text<'_> {
    pub(super) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The string entries of an array claim; anything else reads as empty.
#[derive(Default)]
pub(super) struct Texts<'a>(pub(super) Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Registered<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RegisteredVisitor)
    }
}

struct RegisteredVisitor;

impl<'de> Visitor<'de> for RegisteredVisitor {
    type Value = Registered<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = Registered::default();
        let mut seen = [false; REGISTERED.len()];
        let mut others = Names::new();
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            let Some(index) = name.as_deref().and_then(|n| REGISTERED.iter().position(|r| *r == n))
            else {
                others.add(name)?;
                map.next_value_seed(A_CLAIM)?;
                continue;
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(de::Error::duplicate_field(REGISTERED[index]));
            }
            match index {
                0 => claims.exp = map.next_value()?,
                1 => claims.nbf = map.next_value()?,
                2 => claims.aud = map.next_value()?,
                3 => claims.sub = map.next_value()?,
                4 => claims.iss = map.next_value()?,
                5 => claims.jti = map.next_value()?,
                6 => claims.scope = map.next_value()?,
                7 => claims.roles = map.next_value()?,
                _ => claims.permissions = map.next_value()?,
            }
        }
        Ok(claims)
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Checked {
    fn enter<E: de::Error>(self) -> Result<Checked, E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format_args!("nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(Checked { depth: self.depth + 1 })
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut names = Names::new();
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            names.add(name)?;
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Header<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut alg, mut kid, mut crit) = (None, None, false);
        let mut names = Names::new();
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            let known =
                name.as_deref().map(|n| ["alg", "kid", "crit"].iter().position(|k| *k == n));
            names.add(name)?;
            match known.flatten() {
                Some(0) => alg = Some(map.next_value::<Algorithm>()?),
                Some(1) => {
                    let Text(value) = map.next_value()?;
                    kid = Some(value.ok_or_else(|| de::Error::custom("kid is not a string"))?);
                }
                Some(_) => {
                    map.next_value_seed(A_CLAIM)?;
                    crit = true;
                }
                None => map.next_value_seed(A_CLAIM)?,
            }
        }
        let alg = alg.ok_or_else(|| de::Error::missing_field("alg"))?;
        Ok(Header { alg, kid, crit })
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match deserializer.deserialize_any(ScalarVisitor)? {
            Scalar::Unsigned(secs) => Time::At(secs),
            Scalar::Float(f) if (0.0..1.0e19).contains(&f) => {
                // In range and non-negative, checked just above.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let secs = f as u64;
                Time::At(secs)
            }
            _ => Time::Invalid,
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AudienceVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Texts<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextsVisitor).map(Texts)
    }
}

/// A JSON scalar as far as time claims care; containers are read past.
enum Scalar {
    Unsigned(u64),
    Float(f64),
    Other,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        A_CLAIM.visit_seq(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        A_CLAIM.visit_map(map)?;
        Ok(Scalar::Other)
    }
}

/// A string, or an array that holds only strings.
struct AudienceVisitor;

impl<'de> Visitor<'de> for AudienceVisitor {
    type Value = Audience<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Audience::Names(vec![Cow::Borrowed(v)]))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Audience::Names(vec![Cow::Owned(v.to_owned())]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut names = Vec::new();
        let mut all_strings = true;
        while let Some(Text(entry)) = seq.next_element::<Text<'de>>()? {
            match entry {
                Some(name) => names.push(name),
                None => all_strings = false,
            }
        }
        Ok(if all_strings { Audience::Names(names) } else { Audience::Invalid })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        A_CLAIM.visit_map(map)?;
        Ok(Audience::Invalid)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
}

/// Keeps a string, reads past any other value.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        A_CLAIM.visit_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        A_CLAIM.visit_map(map)?;
        Ok(None)
    }
}

/// Keeps the string entries of an array, reads past any other value.
struct TextsVisitor;

impl<'de> Visitor<'de> for TextsVisitor {
    type Value = Vec<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(entry)) = seq.next_element::<Text<'de>>()? {
            out.extend(entry);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        A_CLAIM.visit_map(map)?;
        Ok(Vec::new())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_claims_read_leniently_like_the_map_did() {
        let json = r#"{"sub": 7, "iss": "https://i", "roles": "admin",
            "permissions": ["a:b", 3, null, {"x": 1}, "c:\u0064"], "scope": ["x"],
            "jti": null, "exp": 10, "other": {"deep": [1, 2]}}"#;
        let claims: Registered<'_> = serde_json::from_str(json).expect("parses");
        assert_eq!(claims.sub.as_str(), None);
        assert_eq!(claims.iss.as_str(), Some("https://i"));
        assert!(claims.roles.0.is_empty());
        assert_eq!(claims.permissions.0, ["a:b", "c:d"]);
        assert_eq!(claims.scope.as_str(), None);
        assert_eq!(claims.jti.as_str(), None);
        assert_eq!((claims.exp, claims.nbf), (Time::At(10), Time::Absent));
        assert_eq!(claims.aud, Audience::Absent);
    }

    #[test]
    fn times_are_non_negative_numbers_only() {
        let exp = |json: &str| {
            serde_json::from_str::<Registered<'_>>(&format!("{{\"exp\": {json}}}"))
                .expect("parses")
                .exp
        };
        assert_eq!(exp("10"), Time::At(10));
        assert_eq!(exp("10.9"), Time::At(10));
        for invalid in ["-1", "-1.5", "\"10\"", "null", "1e300", "true", "[10]", "{\"a\": 10}"] {
            assert_eq!(exp(invalid), Time::Invalid, "{invalid}");
        }
    }

    #[test]
    fn audience_is_a_name_or_names_only() {
        let aud = |json: &str| {
            let text = format!("{{\"aud\": {json}}}");
            let claims: Registered<'_> = serde_json::from_str(&text).expect("parses");
            match claims.aud {
                Audience::Names(names) => {
                    Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                }
                Audience::Invalid => None,
                Audience::Absent => unreachable!("aud is present"),
            }
        };
        assert_eq!(aud("\"api\""), Some(vec!["api".to_owned()]));
        assert_eq!(aud("[\"a\", \"b\"]"), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(aud("[]"), Some(vec![]));
        for invalid in ["[\"a\", 1]", "null", "1", "{}"] {
            assert_eq!(aud(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn a_claim_named_twice_is_refused() {
        let parsed = serde_json::from_str::<Registered<'_>>(r#"{"sub": "a", "sub": "b"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn header_reads_alg_kid_and_notices_crit() {
        let h: Header<'_> =
            serde_json::from_str(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#).expect("parses");
        assert_eq!((h.alg, h.kid.as_deref(), h.crit), (Algorithm::HS256, Some("k1"), false));
        let h: Header<'_> =
            serde_json::from_str(r#"{"alg":"RS256","crit":["b64"]}"#).expect("parses");
        assert!(h.crit);
        assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":"none"}"#).is_err());
        assert!(serde_json::from_str::<Header<'_>>(r#"{"kid":"k"}"#).is_err());
    }
}
