//! `${VAR}` placeholders in an MCP server's settings, replaced by the run's variables. Pure: no
//! process, no network. Every placeholder that cannot be resolved is collected, so one error
//! names them all. `$${` stands for a literal `${`; any other `$` is kept as it is.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use indexmap::IndexMap;

use crate::runner::environment::Resolved;
use crate::secrets::SecretValue;

/// Where `${VAR}` placeholders take their values from.
pub trait Variables {
    /// The value of `name`, if the run has one.
    fn value(&self, name: &str) -> Option<&SecretValue>;

    /// Whether the value of `name` must be masked in error messages. Every value is, unless the
    /// source knows better.
    fn is_secret(&self, _name: &str) -> bool {
        true
    }
}

impl Variables for Resolved {
    fn value(&self, name: &str) -> Option<&SecretValue> {
        self.variables.get(name).map(|variable| &variable.value)
    }

    fn is_secret(&self, name: &str) -> bool {
        self.variables.get(name).is_some_and(|variable| variable.secret)
    }
}

impl Variables for BTreeMap<String, SecretValue> {
    fn value(&self, name: &str) -> Option<&SecretValue> {
        self.get(name)
    }
}

impl<S: BuildHasher> Variables for HashMap<String, SecretValue, S> {
    fn value(&self, name: &str) -> Option<&SecretValue> {
        self.get(name)
    }
}

impl<S: BuildHasher> Variables for IndexMap<String, SecretValue, S> {
    fn value(&self, name: &str) -> Option<&SecretValue> {
        self.get(name)
    }
}

/// A placeholder that cannot be resolved. It names the variable and the field, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderProblem {
    /// `${variable}` appears in `field` and the run has no such variable.
    Missing {
        /// Where, e.g. `stdio.args[2]` or `http.headers.Authorization`.
        field: String,
        /// The variable's name.
        variable: String,
    },
    /// `field` holds `${` without a closing `}`, or an empty `${}`.
    Malformed {
        /// Where.
        field: String,
    },
}

impl fmt::Display for PlaceholderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { field, variable } => write!(f, "${{{variable}}} in {field} has no value"),
            Self::Malformed { field } => write!(f, "{field} has a `${{` without a variable name and a closing `}}`"),
        }
    }
}

/// Replaces placeholders field by field, remembering the problems and the secret values it used.
pub(super) struct Resolver<'v, V: ?Sized> {
    variables: &'v V,
    problems: Vec<PlaceholderProblem>,
    secrets_used: Vec<SecretValue>,
}

impl<'v, V: Variables + ?Sized> Resolver<'v, V> {
    pub(super) fn new(variables: &'v V) -> Self {
        Self { variables, problems: Vec::new(), secrets_used: Vec::new() }
    }

    /// `text` with its placeholders replaced; a missing variable leaves its placeholder in place
    /// (the caller fails on the problems before using anything).
    pub(super) fn resolve(&mut self, field: &str, text: &str) -> SecretValue {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let from_dollar = &rest[dollar..];
            if let Some(after) = from_dollar.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(after) = from_dollar.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    self.problems.push(PlaceholderProblem::Malformed { field: field.to_owned() });
                    out.push_str(from_dollar);
                    rest = "";
                    break;
                };
                let name = after[..end].trim();
                match self.variables.value(name) {
                    _ if name.is_empty() => {
                        self.problems.push(PlaceholderProblem::Malformed { field: field.to_owned() });
                        out.push_str(&from_dollar[..end + 3]);
                    }
                    Some(value) => {
                        out.push_str(value.expose());
                        if self.variables.is_secret(name) {
                            self.secrets_used.push(value.clone());
                        }
                    }
                    None => {
                        self.problems
                            .push(PlaceholderProblem::Missing { field: field.to_owned(), variable: name.to_owned() });
                        out.push_str(&from_dollar[..end + 3]);
                    }
                }
                rest = &after[end + 1..];
            } else {
                out.push('$');
                rest = &from_dollar[1..];
            }
        }
        out.push_str(rest);
        SecretValue::new(out)
    }

    /// The problems found, and the secret values substituted (to mask them in messages).
    pub(super) fn finish(self) -> (Vec<PlaceholderProblem>, Vec<SecretValue>) {
        (self.problems, self.secrets_used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables() -> BTreeMap<String, SecretValue> {
        [("TOKEN", "s3cret"), ("ORG", "acme"), ("EMPTY", "")]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), SecretValue::new(value)))
            .collect()
    }

    fn resolve_one(text: &str) -> (String, Vec<PlaceholderProblem>) {
        let variables = variables();
        let mut resolver = Resolver::new(&variables);
        let value = resolver.resolve("field", text).expose().to_owned();
        (value, resolver.finish().0)
    }

    #[test]
    fn placeholders_are_replaced_anywhere_in_the_text() {
        assert_eq!(resolve_one("Bearer ${TOKEN}").0, "Bearer s3cret");
        assert_eq!(resolve_one("${ORG}/${TOKEN}${ORG}").0, "acme/s3cretacme");
        assert_eq!(resolve_one("${ ORG }").0, "acme", "spaces inside the braces are ignored");
        assert_eq!(resolve_one("x${EMPTY}y").0, "xy", "an empty value is a value");
        assert_eq!(resolve_one("no placeholders").0, "no placeholders");
    }

    #[test]
    fn dollars_that_are_not_placeholders_are_kept_and_double_dollar_escapes() {
        assert_eq!(resolve_one("cost: $5, $ORG, $").0, "cost: $5, $ORG, $");
        assert_eq!(resolve_one("$${ORG} is ${ORG}").0, "${ORG} is acme");
        assert_eq!(resolve_one("pa$$word").0, "pa$$word", "only `$${{` is an escape");
    }

    #[test]
    fn missing_and_malformed_placeholders_are_all_reported() {
        let (value, problems) = resolve_one("${NOPE}-${ORG}-${ALSO_NOPE}");
        assert_eq!(value, "${NOPE}-acme-${ALSO_NOPE}");
        assert_eq!(
            problems,
            [
                PlaceholderProblem::Missing { field: "field".into(), variable: "NOPE".into() },
                PlaceholderProblem::Missing { field: "field".into(), variable: "ALSO_NOPE".into() },
            ]
        );
        assert_eq!(resolve_one("x ${ORG").1, [PlaceholderProblem::Malformed { field: "field".into() }]);
        assert_eq!(resolve_one("${}").1, [PlaceholderProblem::Malformed { field: "field".into() }]);
        assert_eq!(problems[0].to_string(), "${NOPE} in field has no value");
    }

    #[test]
    fn secret_values_used_are_remembered_and_plain_ones_are_not() {
        let mut environment = Resolved::default();
        for (name, value, secret) in [("TOKEN", "s3cret", true), ("REGION", "eu", false)] {
            let variable =
                crate::runner::environment::Variable { value: SecretValue::new(value), secret, source: "test".into() };
            environment.variables.insert(name.into(), variable);
        }
        let mut resolver = Resolver::new(&environment);
        assert_eq!(
            resolver.resolve("url", "https://${REGION}.example/?k=${TOKEN}").expose(),
            "https://eu.example/?k=s3cret"
        );
        let (problems, secrets) = resolver.finish();
        assert!(problems.is_empty());
        assert_eq!(secrets, [SecretValue::new("s3cret")]);
    }
}
