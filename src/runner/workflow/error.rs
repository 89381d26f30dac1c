//! The errors a workflow run raises, shaped after the DSL's error model (RFC 7807 problem
//! details) so a `try`/`catch` can match them, a CLI can print them and an event log can store
//! them as they are.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::dsl::ErrorDefinition;

/// The base URI of the DSL's standard error types: the spelling stigmer raises.
const SPEC_ERRORS: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/";

/// The other spelling of the standard types' base URI, which the spec's examples use too.
const DSL_ERRORS: &str = "https://serverlessworkflow.io/dsl/errors/types/";

/// The DSL's standard error types (the last segment of their URI).
const STANDARD_TYPES: [&str; 8] = [
    "communication",
    "timeout",
    "validation",
    "expression",
    "authentication",
    "authorization",
    "configuration",
    "runtime",
];

/// The standard type a URI names, in either spelling (`runtime` for both
/// `…/spec/1.0.0/errors/runtime` and `…/dsl/errors/types/runtime`); `None` for any other type.
pub fn standard_type(uri: &str) -> Option<&str> {
    let kind = uri.strip_prefix(SPEC_ERRORS).or_else(|| uri.strip_prefix(DSL_ERRORS))?;
    STANDARD_TYPES.contains(&kind).then_some(kind)
}

/// Whether a `catch` filter's `type` matches an error's: the same URI, or the same standard
/// type spelled either way. User-defined types match exactly.
pub fn same_type(wanted: &str, actual: &str) -> bool {
    wanted == actual || standard_type(wanted).is_some_and(|kind| standard_type(actual) == Some(kind))
}

/// A workflow error: what `raise` raises, what `catch` matches and what a failed run returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowError {
    /// A URI identifying the error type, e.g. `https://serverlessworkflow.io/spec/1.0.0/errors/runtime`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status code of this occurrence (HTTP-like).
    pub status: u16,
    /// A short summary of the error type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What went wrong this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The JSON pointer of the task the error comes from, e.g. `/do/1/fetch/try/0/get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl WorkflowError {
    /// A standard error of the DSL (`kind` is the last segment of its type URI).
    fn standard(kind: &str, status: u16, title: &str, detail: impl Into<String>, instance: &str) -> Self {
        Self {
            type_: format!("{SPEC_ERRORS}{kind}"),
            status,
            title: Some(title.to_owned()),
            detail: Some(detail.into()),
            instance: Some(instance.to_owned()),
        }
    }

    /// A runtime expression failed to compile or evaluate, or produced the wrong type.
    pub fn expression(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("expression", 400, "Expression Error", detail, instance)
    }

    /// Data does not match its schema.
    pub fn validation(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("validation", 400, "Validation Error", detail, instance)
    }

    /// The document refers to something that does not exist (an unknown error, retry policy,
    /// timeout or task name).
    pub fn configuration(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("configuration", 400, "Configuration Error", detail, instance)
    }

    /// Credentials could not be obtained or were refused (an OAuth2 token endpoint failed).
    pub fn authentication(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("authentication", 401, "Authentication Error", detail, instance)
    }

    /// A task or the workflow ran out of time.
    pub fn timeout(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("timeout", 408, "Timeout Error", detail, instance)
    }

    /// Anything else the runtime cannot do, including task kinds not supported yet.
    pub fn runtime(detail: impl Into<String>, instance: &str) -> Self {
        Self::standard("runtime", 500, "Runtime Error", detail, instance)
    }

    /// The error a `raise` task defines (its fields already evaluated); `instance` defaults to
    /// the raising task.
    pub fn from_definition(definition: &ErrorDefinition, instance: &str) -> Self {
        Self {
            type_: definition.type_.clone(),
            status: definition.status,
            title: definition.title.clone(),
            detail: definition.detail.clone(),
            instance: Some(definition.instance.clone().unwrap_or_else(|| instance.to_owned())),
        }
    }

    /// The last segment of the type URI (`runtime`, `expression`, a custom type's last segment).
    pub fn kind(&self) -> &str {
        self.type_.rsplit('/').next().unwrap_or(&self.type_)
    }

    /// The error as the JSON value runtime expressions see (`$error` in a `catch`).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for WorkflowError {
    /// `Expression Error (400) at /do/0/greet: …`, falling back to the type when untitled.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = self.title.as_deref().unwrap_or(&self.type_);
        write!(f, "{title} ({})", self.status)?;
        if let Some(instance) = &self.instance {
            write!(f, " at {instance}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkflowError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types_match_in_either_spelling_and_custom_ones_exactly() {
        for kind in STANDARD_TYPES {
            let spec = format!("{SPEC_ERRORS}{kind}");
            let dsl = format!("{DSL_ERRORS}{kind}");
            assert!(same_type(&spec, &dsl) && same_type(&dsl, &spec) && same_type(&dsl, &dsl), "{kind}");
        }
        assert!(!same_type(&format!("{DSL_ERRORS}runtime"), &format!("{SPEC_ERRORS}timeout")));
        assert!(same_type("https://example.com/errors/quota", "https://example.com/errors/quota"));
        assert!(!same_type(&format!("{DSL_ERRORS}quota"), &format!("{SPEC_ERRORS}quota")), "not standard: exact");
        assert!(!same_type("https://example.com/errors/runtime", &format!("{SPEC_ERRORS}runtime")));
        assert_eq!(WorkflowError::runtime("x", "/do/0/a").type_, format!("{SPEC_ERRORS}runtime"), "raised canonically");
    }
}
