//! The variables a run gets, resolved once before anything starts. Later wins: the agent's or
//! workflow's `envSpec` defaults < the instance's environments, in order < `--env K=V` /
//! `--secret K=V` from the command line. Secret references are read from the backend's secret
//! store here and nowhere else; every required key that ends up without a value is reported in
//! one error. The result knows which values are secret, so a run can mask them everywhere.

use indexmap::IndexMap;

use crate::backend::{Backend, BackendError};
use crate::model::{Environment, EnvironmentSpec};
use crate::secrets::{Redactor, SecretValue};

/// One resolved variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The value (plain values too are held as `SecretValue`, so none prints by accident).
    pub value: SecretValue,
    /// Whether it came from the secret store or `--secret`: masked in every output.
    pub secret: bool,
    /// Where the value came from: `envSpec default`, `environment/prod`, `--env`, `--secret`.
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

/// Resolves a run's variables. `spec` is the agent's or workflow's `envSpec`; `environments` are
/// the instance's environments, in the order it lists them.
///
/// # Errors
/// Every required key without a value and every missing secret in one error, or a backend error.
pub async fn resolve<B: Backend>(
    backend: &B,
    spec: Option<&EnvironmentSpec>,
    environments: &[Environment],
    overrides: &Overrides,
) -> Result<Resolved, ResolveError> {
    let mut variables: IndexMap<String, Variable> = IndexMap::new();
    let mut required: Vec<(String, Option<String>)> = Vec::new();
    let mut missing = Vec::new();
    if let Some(spec) = spec {
        for (key, entry) in &spec.data {
            match &entry.value {
                Some(value) => {
                    let variable = Variable {
                        value: SecretValue::new(value.clone()),
                        secret: entry.is_secret,
                        source: "envSpec default".to_owned(),
                    };
                    variables.insert(key.clone(), variable);
                }
                None => required.push((key.clone(), entry.description.clone())),
            }
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
    for (key, description) in required {
        if !variables.contains_key(&key) {
            let what = description.map(|d| format!(" ({d})")).unwrap_or_default();
            missing.push(format!("{key}{what} is required and no environment, --env or --secret gives it"));
        }
    }
    if missing.is_empty() { Ok(Resolved { variables }) } else { Err(ResolveError::Missing(missing)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::model::EnvironmentSpec;

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
        let resolved = resolve(&backend, Some(&spec), &[shared.clone(), prod], &overrides).await.unwrap();
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
        let error = resolve(&backend, Some(&spec), &[dangling], &Overrides::default()).await.unwrap_err();
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
}
