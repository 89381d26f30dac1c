//! Object metadata shared by every kind, and the rules for resource names.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The API version every stigmer manifest carries.
pub const API_VERSION: &str = "agentic.stigmer.ai/v1";

/// The longest name a resource may have (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// The pattern resource names follow, as in a DNS label.
pub const NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";

/// Identity and labels of a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Name of the resource, unique within its kind: lower-case letters, digits and `-`, at most
    /// 63 characters, starting and ending with a letter or digit.
    #[schemars(extend("pattern" = NAME_PATTERN, "maxLength" = MAX_NAME_LEN))]
    pub name: String,
    /// Organization the resource belongs to on a server; the context's organization when absent.
    /// On a server it must be the caller's organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Who may see the resource, as in Stigmer: `private` (the default), `org` or `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Key/value labels for selecting resources (`stigmer get agents -l team=cs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Key/value notes for people and tools; not used for selection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Names the resource had before: applied under its new name, the stored one of an old name
    /// is renamed, keeping its history, sessions and executions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_names: Vec<String>,
}

/// Who may see a resource. Stigmer's API spells the values `visibility_private`,
/// `visibility_org` and `visibility_public` (protojson: upper case); the short forms are what
/// stigmer writes back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Only its owner.
    #[default]
    Private,
    /// Everyone in its organization.
    Org,
    /// Everyone.
    Public,
}

impl Visibility {
    /// Every value, in the order of Stigmer's enum.
    pub const ALL: [Self; 3] = [Self::Private, Self::Org, Self::Public];

    /// The short spelling stigmer writes: `private`, `org`, `public`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Org => "org",
            Self::Public => "public",
        }
    }

    /// Reads any accepted spelling: `private`, `visibility_private`, `VISIBILITY_PRIVATE`, …
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| {
            let short = v.as_str();
            text == short
                || text.strip_prefix("visibility_") == Some(short)
                || text
                    .strip_prefix("VISIBILITY_")
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(short) && rest == rest.to_ascii_uppercase())
        })
    }

    /// Every spelling [`Visibility::parse`] accepts, for the schema and for hints.
    #[must_use]
    pub fn spellings() -> Vec<String> {
        Self::ALL
            .iter()
            .flat_map(|v| {
                let short = v.as_str();
                [short.to_owned(), format!("visibility_{short}"), format!("VISIBILITY_{}", short.to_ascii_uppercase())]
            })
            .collect()
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Visibility {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Visibility {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("visibility \"{text}\" is not one of private, org, public"))
        })
    }
}

impl JsonSchema for Visibility {
    fn schema_name() -> Cow<'static, str> {
        "Visibility".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Who may see the resource: private (the default), org or public; Stigmer's visibility_private, visibility_org and visibility_public are accepted too.",
            "type": "string",
            "enum": Self::spellings(),
        })
    }
}

impl ObjectMeta {
    /// Metadata with just a name.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// Why a resource name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("is empty")]
    Empty,
    /// The name is longer than a DNS label.
    #[error("is {0} characters long; the limit is 63")]
    TooLong(usize),
    /// The name has characters other than lower-case letters, digits and `-`.
    #[error("has the character {0:?}; names use lower-case letters, digits and '-'")]
    BadCharacter(char),
    /// The name starts or ends with `-`.
    #[error("must start and end with a letter or digit")]
    BadEdge,
}

/// Checks a resource name against [`NAME_PATTERN`] and [`MAX_NAME_LEN`].
///
/// # Errors
/// Returns what is wrong with the name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let length = name.chars().count();
    if length > MAX_NAME_LEN {
        return Err(NameError::TooLong(length));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(NameError::BadCharacter(bad));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::BadEdge);
    }
    Ok(())
}

/// A valid name close to `name`, to suggest when it is not valid (`Support_Bot` → `support-bot`).
#[must_use]
pub fn suggest_name(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(MAX_NAME_LEN).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    (check_name(&trimmed).is_ok() && trimmed != name).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_dns_labels() {
        assert_eq!(check_name("support-bot"), Ok(()));
        assert_eq!(check_name("a"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("Support"), Err(NameError::BadCharacter('S')));
        assert_eq!(check_name("-x"), Err(NameError::BadEdge));
        assert_eq!(check_name(&"a".repeat(64)), Err(NameError::TooLong(64)));
        assert_eq!(check_name(&"a".repeat(63)), Ok(()));
    }

    #[test]
    fn visibility_reads_every_spelling_and_writes_the_short_one() {
        for (written, expected) in [
            ("private", Visibility::Private),
            ("visibility_org", Visibility::Org),
            ("VISIBILITY_PUBLIC", Visibility::Public),
        ] {
            let read: Visibility = serde_json::from_value(serde_json::json!(written)).unwrap();
            assert_eq!(read, expected, "{written}");
            assert_eq!(serde_json::to_value(read).unwrap(), serde_json::json!(expected.as_str()));
        }
        for refused in ["secret", "Org", "visibility_ORG", "VISIBILITY_org"] {
            assert!(serde_json::from_value::<Visibility>(serde_json::json!(refused)).is_err(), "{refused}");
        }
        assert!(Visibility::spellings().iter().all(|s| Visibility::parse(s).is_some()));
    }

    #[test]
    fn suggestions_are_valid_names() {
        assert_eq!(suggest_name("Support_Bot").as_deref(), Some("support-bot"));
        assert_eq!(suggest_name("ok"), None);
    }

    proptest! {
        #[test]
        fn check_name_agrees_with_the_pattern(name in "[a-zA-Z0-9_. -]{0,70}") {
            let pattern = regex_lite_match(&name);
            prop_assert_eq!(check_name(&name).is_ok(), pattern);
        }

        #[test]
        fn suggestions_always_pass(name in ".{0,80}") {
            if let Some(s) = suggest_name(&name) {
                prop_assert!(check_name(&s).is_ok());
            }
        }
    }

    /// The name rule spelled out independently of `check_name`.
    fn regex_lite_match(name: &str) -> bool {
        let bytes = name.as_bytes();
        let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.iter().all(inner)
            && bytes.first().is_some_and(edge)
            && bytes.last().is_some_and(edge)
    }
}
