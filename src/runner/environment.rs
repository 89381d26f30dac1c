//! The variables a run gets, resolved once before anything starts. Later wins: the defaults the
//! agent or workflow declares (`envSpec`, and Stigmer's `env`) < the instance's environments, in
//! order < `--env K=V` / `--secret K=V` from the command line. Secret references are read from the backend's secret
//! store here and nowhere else; every required key that ends up without a value is reported in
//! one error. The result knows which values are secret, so a run can mask them everywhere.

use indexmap::IndexMap;

use crate::backend::{Backend, BackendError};
use crate::model::Environment;
use crate::model::environment::Declarations;
use crate::secrets::{Redactor, SecretValue};

/// One resolved variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The value (plain values too are held as `SecretValue`, so none prints by accident).
    pub value: SecretValue,
    /// Whether it came from the secret store or `--secret`: masked in every output.
    pub secret: bool,
    /// Where the value came from: `default`, `environment/prod`, `--env`, `--secret`.
    pub source: String,
}

/// The variables of a run, in the order they were first declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// By name.
    pub variables: IndexMap<String, Variable>,
}

impl Resolved {
    /// A redactor masking every secret value of this run.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.variables.values().filter(|v| v.secret).map(|v| v.value.clone()))
    }

    /// `(name, value)` pairs, for a process environment or `${VAR}` placeholders.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.variables.iter().map(|(name, variable)| (name.as_str(), variable.value.expose()))
    }
}

/// Values given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--env K=V`.
    pub env: Vec<(String, String)>,
    /// `--secret K=V`.
    pub secret: Vec<(String, SecretValue)>,
}

/// Why a run's environment cannot be resolved; nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Required variables have no value, and referenced secrets do not exist: all of them.
    #[error("the run is missing {}: {}", if .0.len() == 1 { "a value" } else { "values" }, .0.join("; "))]
    Missing(Vec<String>),
    /// The backend could not be read (or the secret key is wrong).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Resolves a run's variables: what `declared` says the run needs, from the instance's
/// `environments` (in the order it lists them) and the command line's `overrides`.
///
/// # Errors
/// Every required key without a value and every missing secret in one error, or a backend error.
pub async fn resolve<B: Backend>(
    backend: &B,
    declared: &Declarations,
    environments: &[Environment],
    overrides: &Overrides,
) -> Result<Resolved, ResolveError> {
    let mut variables: IndexMap<String, Variable> = IndexMap::new();
    let mut missing = Vec::new();
    for (key, declaration) in &declared.entries {
        if let Some(value) = &declaration.default {
            let variable = Variable {
                value: SecretValue::new(value.clone()),
                secret: declaration.secret,
                source: "default".to_owned(),
            };
            variables.insert(key.clone(), variable);
        }
    }
    for environment in environments {
        let source = format!("environment/{}", environment.metadata.name);
        for (key, entry) in &environment.spec.data {
            let variable = if let Some(secret) = &entry.secret_ref {
                match backend.secret_reveal(secret).await {
                    Ok(value) => Variable { value, secret: true, source: source.clone() },
                    Err(BackendError::NotFound { .. }) => {
                        missing.push(format!("{key} (from {source}) refers to secret {secret}, which does not exist"));
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                }
            } else if let Some(value) = &entry.value {
                Variable { value: SecretValue::new(value.clone()), secret: entry.is_secret, source: source.clone() }
            } else {
                continue;
            };
            variables.insert(key.clone(), variable);
        }
    }
    for (key, value) in &overrides.env {
        let variable = Variable { value: SecretValue::new(value.clone()), secret: false, source: "--env".to_owned() };
        variables.insert(key.clone(), variable);
    }
    for (key, value) in &overrides.secret {
        variables.insert(key.clone(), Variable { value: value.clone(), secret: true, source: "--secret".to_owned() });
    }
    for (key, declaration) in &declared.entries {
        if declaration.required && !variables.contains_key(key) {
            let what = declaration.description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
            missing.push(format!("{key}{what} is required and no environment, --env or --secret gives it"));
        }
        // A variable declared secret is masked wherever its value came from.
        if declaration.secret
            && let Some(variable) = variables.get_mut(key)
        {
            variable.secret = true;
        }
    }
    if missing.is_empty() { Ok(Resolved { variables }) } else { Err(ResolveError::Missing(missing)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EnvironmentSpec, VariableSpec};
    use crate::store::redb::LocalBackend;

    #[tokio::test]
    async fn later_sources_win_and_every_missing_key_is_named_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("local.db"), "t");
        backend.secret_set("openai", SecretValue::new("sk-from-store")).await.unwrap();
        let spec = EnvironmentSpec::new()
            .value("REGION", "us")
            .value("LEVEL", "info")
            .require("OPENAI_API_KEY", "the provider key")
            .require("DB_URL", "where the data is");
        let shared = Environment::new(
            "shared",
            EnvironmentSpec::new().value("REGION", "eu").secret_ref("OPENAI_API_KEY", "openai"),
        );
        let prod = Environment::new("prod", EnvironmentSpec::new().value("REGION", "eu-west"));
        let overrides = Overrides {
            env: vec![("LEVEL".into(), "debug".into())],
            secret: vec![("DB_URL".into(), SecretValue::new("postgres://u:pw@db"))],
        };
        let mut declared = Declarations::default();
        declared.env_spec("workflow/w", Some(&spec));
        let resolved = resolve(&backend, &declared, &[shared.clone(), prod], &overrides).await.unwrap();
        let value = |key: &str| resolved.variables[key].value.expose().to_owned();
        assert_eq!(value("REGION"), "eu-west", "the instance's later environment wins");
        assert_eq!(value("LEVEL"), "debug", "--env wins over everything");
        assert_eq!(value("OPENAI_API_KEY"), "sk-from-store");
        assert!(resolved.variables["OPENAI_API_KEY"].secret && resolved.variables["DB_URL"].secret);
        assert!(!resolved.variables["REGION"].secret);
        assert_eq!(
            resolved.redactor().redact("key sk-from-store db postgres://u:pw@db region eu-west"),
            "key *** db *** region eu-west"
        );

        // Nothing given: both required keys and the dangling secret, in one error.
        let dangling = Environment::new("bad", EnvironmentSpec::new().secret_ref("TOKEN", "no-such-secret"));
        let error = resolve(&backend, &declared, &[dangling], &Overrides::default()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("the run is missing values: "), "{message}");
        for part in [
            "TOKEN (from environment/bad) refers to secret no-such-secret",
            "OPENAI_API_KEY (the provider key) is required",
            "DB_URL (where the data is) is required",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[tokio::test]
    async fn stigmer_env_declarations_give_defaults_allow_optional_and_mask_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("local.db"), "t");
        let variable = |default: Option<&str>, optional: bool, is_secret: bool| VariableSpec {
            description: Some("what it is".into()),
            is_secret,
            optional,
            default_value: default.map(str::to_owned),
        };
        let env: IndexMap<String, VariableSpec> = [
            ("REGION".to_owned(), variable(Some("eu"), false, false)),
            ("DEBUG".to_owned(), variable(None, true, false)),
            ("TOKEN".to_owned(), variable(None, false, true)),
        ]
        .into_iter()
        .collect();
        let mut declared = Declarations::default();
        declared.env("agent/a", &env);
        let error = resolve(&backend, &declared, &[], &Overrides::default()).await.unwrap_err().to_string();
        assert!(error.contains("TOKEN (what it is) is required"), "{error}");
        assert!(!error.contains("DEBUG") && !error.contains("REGION"), "optional and defaulted are not: {error}");

        let prod = Environment::new("prod", EnvironmentSpec::new().value("TOKEN", "tok-plain"));
        let resolved = resolve(&backend, &declared, &[prod], &Overrides::default()).await.unwrap();
        assert_eq!(resolved.variables["REGION"].value.expose(), "eu");
        assert!(!resolved.variables.contains_key("DEBUG"));
        assert!(resolved.variables["TOKEN"].secret, "declared secret: masked though given in plain text");
        assert_eq!(resolved.redactor().redact("t=tok-plain"), "t=***");
    }
}
