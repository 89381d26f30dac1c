//! A Skill's `path`: a directory next to the manifest holding `SKILL.md`, inside the project.
//! Checked when manifests are read, so a typo is caught with its place, and a path that leaves
//! the project (`../../etc`) is refused: stigmer never reads outside it. A path that passes is
//! then bundled: the directory's files are carried in the resource that is stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ValidResource, location_of};
use crate::manifest::skill_dir::read_skill_dir;
use crate::manifest::{Diagnostic, ManifestSet, PROJECT_FILE};
use crate::model::AnyResource;
use crate::model::canonical::Canonical;

/// Checks the path of every directory skill and replaces the skill with one that carries its
/// bundle (and the canonical form that goes with it). A path in a manifest read from standard
/// input is relative to the working directory.
pub fn bundle_skills(set: &ManifestSet, resources: &mut [ValidResource], out: &mut Vec<Diagnostic>) {
    for resource in resources {
        let AnyResource::Skill(skill) = &*resource.resource else { continue };
        let Some(path) = &skill.spec.path else { continue };
        let document = &set.documents[resource.document];
        let manifest = set.sources.get(document.source).and_then(|s| s.path.as_deref());
        let base = base_of(manifest);
        let at = || location_of(set, document, "/spec/path", None);
        let base_name = if manifest.is_some() {
            "the manifest's directory"
        } else {
            "the working directory (the manifest came from standard input)"
        };
        if let Some((message, hint)) = check(base, base_name, path) {
            out.push(Diagnostic::error("bad-skill-path", message).at(at()).hint(hint));
            continue;
        }
        if skill.spec.skill_md.is_some() {
            continue; // reported by the kind's rules: only one of skillMd and path
        }
        match read_skill_dir(&base.join(path)) {
            Ok(bundle) => {
                let mut bundled = skill.clone();
                bundled.spec.bundle = Some(bundle);
                let bundled = AnyResource::Skill(bundled);
                resource.canonical = Arc::new(Canonical::of(&bundled));
                resource.resource = Arc::new(bundled);
            }
            Err(error) => out.push(
                Diagnostic::error("bad-skill-dir", format!("skill directory \"{path}\": {error}"))
                    .at(at())
                    .hint(error.hint()),
            ),
        }
    }
}

/// The directory a skill path is relative to: its manifest's, or the working directory.
fn base_of(manifest: Option<&Path>) -> &Path {
    manifest.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The directory of every skill that carries one (`spec.path`), as its files are read.
#[must_use]
pub fn skill_dirs(set: &ManifestSet, resources: &[ValidResource]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = resources
        .iter()
        .filter_map(|resource| {
            let AnyResource::Skill(skill) = &*resource.resource else { return None };
            let path = skill.spec.path.as_deref()?;
            let document = set.documents.get(resource.document)?;
            let manifest = set.sources.get(document.source).and_then(|s| s.path.as_deref());
            Some(base_of(manifest).join(path))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// What is wrong with a skill path resolved from `base` (the manifest's directory, or the
/// working directory for standard input, as `base_name` says): (message, hint).
fn check(base: &Path, base_name: &str, path: &str) -> Option<(String, String)> {
    let written = Path::new(path);
    if written.is_absolute() {
        return Some((
            format!("skill path \"{path}\" is absolute"),
            format!("write it relative to {base_name}, inside the project"),
        ));
    }
    let root = project_root(base);
    let target = base.join(written);
    let Ok(real) = target.canonicalize() else {
        return Some((
            format!("skill path \"{path}\" does not exist (looked for {})", target.display()),
            format!("the path is relative to {base_name}; create the directory or fix the path"),
        ));
    };
    let inside = root.canonicalize().is_ok_and(|root| real.starts_with(root));
    if !inside {
        return Some((
            format!("skill path \"{path}\" leads outside the project"),
            "keep skills inside the project (the directory of stigmer.yaml, or else of the manifest); stigmer does not read outside it".to_owned(),
        ));
    }
    if !real.is_dir() {
        return Some((
            format!("skill path \"{path}\" is not a directory"),
            "point it at a directory holding SKILL.md".to_owned(),
        ));
    }
    if !real.join("SKILL.md").is_file() {
        return Some((
            format!("skill directory \"{path}\" has no SKILL.md"),
            "add a SKILL.md with the skill's instructions".to_owned(),
        ));
    }
    None
}

/// The project a manifest belongs to: the nearest directory at or above it holding
/// `stigmer.yaml`, or the manifest's own directory when there is none.
fn project_root(base: &Path) -> PathBuf {
    let absolute = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    absolute.ancestors().find(|dir| dir.join(PROJECT_FILE).is_file()).map_or(absolute.clone(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skill_directory_must_exist_hold_skill_md_and_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join("skills/good")).unwrap();
        std::fs::create_dir_all(project.join("skills/empty")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(project.join("skills/good/SKILL.md"), "# Good").unwrap();
        std::fs::write(dir.path().join("outside/SKILL.md"), "# Outside").unwrap();
        std::fs::write(project.join(PROJECT_FILE), "name: p\n").unwrap();
        assert_eq!(check(&project, "here", "skills/good"), None);
        assert!(check(&project, "here", "skills/missing").unwrap().0.contains("does not exist"));
        assert!(check(&project, "here", "skills/empty").unwrap().0.contains("has no SKILL.md"));
        assert!(check(&project, "here", "../outside").unwrap().0.contains("leads outside the project"));
        assert!(check(&project, "here", "/etc").unwrap().0.contains("is absolute"));
    }
}
