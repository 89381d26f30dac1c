//! What `stigmer export` writes: stored resources as canonical manifests without server-owned
//! fields, ready to import again. Skills applied from a directory either point at a directory
//! the caller writes beside the exported file, or carry their `SKILL.md` inline. Pure: the
//! caller lists the resources and writes the stream and the directories.

use serde_json::Value;

use super::canonical;
use crate::backend::StoredResource;
use crate::manifest::Diagnostic;
use crate::model::{AnyResource, Kind, Skill, SkillBundle};

/// Stored resources made ready to write.
#[derive(Debug, Default)]
pub struct Export {
    /// Each resource's manifest as it is written, in the order listed.
    pub manifests: Vec<Value>,
    /// Skills whose files go to a directory: (name, bundle), for `DIR/NAME`.
    pub skill_directories: Vec<(String, SkillBundle)>,
    /// What the export could not carry.
    pub warnings: Vec<Diagnostic>,
}

impl Export {
    /// The manifest stream: each manifest's canonical YAML, separated by `---`.
    #[must_use]
    pub fn stream(&self) -> String {
        self.manifests.iter().map(canonical::to_yaml).collect::<Vec<_>>().join("---\n")
    }
}

/// Exports stored resources. With `skills_dir`, each bundled skill's `path` becomes
/// `skills_dir/NAME` and its files are returned for the caller to write there; without it the
/// bundle's `SKILL.md` is written inline and any other file is named in a warning.
#[must_use]
pub fn export(resources: &[StoredResource], skills_dir: Option<&str>) -> Export {
    let mut export = Export { manifests: Vec::with_capacity(resources.len()), ..Export::default() };
    for resource in resources {
        // Only a skill can carry files to write out; other kinds are exported as stored.
        let typed = (resource.kind == Kind::Skill)
            .then(|| AnyResource::from_value(resource.kind, Value::clone(&resource.manifest)));
        let skill = match typed {
            Some(Ok(AnyResource::Skill(skill))) if skill.spec.bundle.is_some() || skill.spec.path.is_some() => skill,
            _ => {
                export.manifests.push(Value::clone(&resource.manifest));
                continue;
            }
        };
        let address = resource.address();
        let spec = match (&skill.spec.bundle, skills_dir) {
            (None, _) => {
                export.warnings.push(
                    Diagnostic::warning("skill-not-bundled", format!("{address} was stored without its files"))
                        .hint("it was applied before stigmer bundled skill directories; apply its manifests again"),
                );
                skill.spec.clone()
            }
            (Some(bundle), Some(dir)) => {
                export.skill_directories.push((skill.name().to_owned(), bundle.clone()));
                skill.spec.exported_as_directory(format!("{dir}/{}", skill.name()))
            }
            (Some(_), None) => match skill.spec.exported_inline() {
                Some((spec, left_out)) => {
                    if !left_out.is_empty() {
                        export.warnings.push(
                            Diagnostic::warning(
                                "skill-files-left-out",
                                format!(
                                    "{address}: SKILL.md is written inline; its other files are left out: {}",
                                    left_out.join(", ")
                                ),
                            )
                            .hint("export with -o FILE to write skill directories beside the file"),
                        );
                    }
                    spec
                }
                None => skill.spec.exported_as_directory(skill.spec.path.clone().unwrap_or_default()),
            },
        };
        let exported = AnyResource::from(Skill { spec, ..*skill });
        export.manifests.push(canonical::manifest(&exported));
    }
    export
}
