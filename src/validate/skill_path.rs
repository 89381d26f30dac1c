//! A Skill's `path`: a directory next to the manifest holding `SKILL.md`, inside the project.
//! Checked when manifests are read from files, so a typo is caught with its place, and a path
//! that leaves the project (`../../etc`) is refused: stigmer never reads outside it.

use std::path::{Path, PathBuf};

use crate::manifest::PROJECT_FILE;

/// What is wrong with a skill path: (message, hint).
pub fn check(manifest: &Path, path: &str) -> Option<(String, String)> {
    let written = Path::new(path);
    if written.is_absolute() {
        return Some((
            format!("skill path \"{path}\" is absolute"),
            "write it relative to the manifest's directory, inside the project".to_owned(),
        ));
    }
    let base = manifest.parent().unwrap_or_else(|| Path::new("."));
    let base = if base.as_os_str().is_empty() { Path::new(".") } else { base };
    let root = project_root(base);
    let target = base.join(written);
    let Ok(real) = target.canonicalize() else {
        return Some((
            format!("skill path \"{path}\" does not exist (looked for {})", target.display()),
            "the path is relative to the manifest's directory; create the directory or fix the path".to_owned(),
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
        let manifest = project.join("skills.yaml");
        assert_eq!(check(&manifest, "skills/good"), None);
        assert!(check(&manifest, "skills/missing").unwrap().0.contains("does not exist"));
        assert!(check(&manifest, "skills/empty").unwrap().0.contains("has no SKILL.md"));
        assert!(check(&manifest, "../outside").unwrap().0.contains("leads outside the project"));
        assert!(check(&manifest, "/etc").unwrap().0.contains("is absolute"));
    }
}
