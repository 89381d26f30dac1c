//! Secrets written inline in manifests: an Environment's `{value: X, isSecret: true}` (Stigmer's
//! shape) is accepted, but the value never reaches the stored resource. Planning moves it out —
//! the resource keeps `{secretRef: "<environment>.<KEY>"}` — and applying stores the value as
//! that secret, encrypted, only when it differs from what is stored.

use super::{Desired, ReconcileError};
use crate::backend::{Backend, BackendError};
use crate::model::environment::inline_secret_name;
use crate::model::{AnyResource, EnvironmentValue};
use crate::secrets::SecretValue;

/// A value an Environment wrote inline, bound for the secret store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSecret {
    /// The secret it becomes: `<environment>.<KEY>`.
    pub name: String,
    /// The value.
    pub value: SecretValue,
}

/// What storing the inline secrets did (or, for a dry run, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretChange {
    /// The secret did not exist.
    Created,
    /// The secret held another value.
    Updated,
}

impl SecretChange {
    /// `created`, `updated`.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
        }
    }
}

/// Moves every inline secret value out of the desired Environments: each resource that had one
/// is replaced by the same resource holding a `secretRef` instead (canonical form and hash
/// recomputed), and the values come back separately.
pub fn extract_inline(desired: Vec<Desired>) -> (Vec<Desired>, Vec<InlineSecret>) {
    let mut secrets = Vec::new();
    let desired = desired
        .into_iter()
        .map(|wanted| {
            let AnyResource::Environment(environment) = wanted.resource.as_ref() else { return wanted };
            if !environment.spec.data.values().any(|v| v.is_secret && v.value.is_some()) {
                return wanted;
            }
            let mut environment = environment.clone();
            let name = environment.metadata.name.clone();
            for (key, entry) in &mut environment.spec.data {
                // Only an entry marked secret gives up its value; a plain one stays as written.
                if !entry.is_secret {
                    continue;
                }
                let Some(value) = entry.value.take() else { continue };
                let secret = inline_secret_name(&name, key);
                secrets.push(InlineSecret { name: secret.clone(), value: SecretValue::new(value) });
                *entry = EnvironmentValue {
                    secret_ref: Some(secret),
                    description: entry.description.take(),
                    ..EnvironmentValue::default()
                };
            }
            Desired::new(environment.into())
        })
        .collect();
    (desired, secrets)
}

/// Stores each inline secret whose value differs from the stored one (nothing at all for a dry
/// run); returns what changed or would change, by name.
///
/// # Errors
/// The backend cannot read or store secrets (no key, wrong key, not allowed).
pub async fn sync_inline<B: Backend>(
    backend: &B,
    secrets: &[InlineSecret],
    dry_run: bool,
) -> Result<Vec<(String, SecretChange)>, ReconcileError> {
    let mut changes = Vec::new();
    for secret in secrets {
        let change = match backend.secret_reveal(&secret.name).await {
            Ok(stored) if stored == secret.value => continue,
            Ok(_) => SecretChange::Updated,
            Err(BackendError::NotFound { .. }) => SecretChange::Created,
            Err(error) => return Err(error.into()),
        };
        if !dry_run {
            backend.secret_set(&secret.name, secret.value.clone()).await?;
        }
        changes.push((secret.name.clone(), change));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Environment, EnvironmentSpec};

    #[test]
    fn inline_values_become_references_and_the_hash_follows() {
        let mut spec = EnvironmentSpec::new().value("REGION", "eu");
        spec.data.insert(
            "API_KEY".into(),
            EnvironmentValue {
                value: Some("sk-inline".into()),
                is_secret: true,
                description: Some("the key".into()),
                ..EnvironmentValue::default()
            },
        );
        let before = Desired::new(Environment::new("prod", spec).into());
        let (desired, secrets) = extract_inline(vec![before.clone()]);
        assert_eq!(secrets, [InlineSecret { name: "prod.API_KEY".into(), value: SecretValue::new("sk-inline") }]);
        let manifest = serde_json::to_string(&desired[0].manifest()).unwrap();
        assert!(!manifest.contains("sk-inline"), "{manifest}");
        assert!(manifest.contains("\"secretRef\":\"prod.API_KEY\"") && manifest.contains("the key"), "{manifest}");
        assert_ne!(desired[0].canonical.hash, before.canonical.hash);

        let kept = desired[0].resource.as_ref();
        let AnyResource::Environment(kept) = kept else { panic!("an environment stays one") };
        assert_eq!(kept.spec.data["REGION"].value.as_deref(), Some("eu"), "the plain value beside it is kept");

        let plain = Desired::new(Environment::new("dev", EnvironmentSpec::new().value("A", "b")).into());
        let (same, none) = extract_inline(vec![plain.clone()]);
        assert!(none.is_empty());
        assert_eq!(same[0].canonical.hash, plain.canonical.hash);
    }
}
