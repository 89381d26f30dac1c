//! Putting a stored skill's files into a directory, for an agent's run (a per-execution
//! workspace) or for `export`. Only what the bundle holds is written, only below the directory
//! given: a path with `..`, a root or a drive, an empty or `.` component is refused, as is a
//! write through a symlink already in the directory — even when a stored bundle was edited by
//! hand. Nothing here prints.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::model::skill::{BundleContentError, SKILL_MD, SkillBundle, SkillSpec};

/// Why a skill's files cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    /// A directory skill stored without its files (applied before stigmer bundled skills).
    #[error("the skill has a path but no bundle of its files")]
    NotBundled,
    /// The bundle has no `SKILL.md` as text.
    #[error("the skill's bundle has no SKILL.md text")]
    NoSkillMd,
    /// The bundle is damaged or was edited.
    #[error("the skill's bundle is damaged: {0}")]
    Damaged(#[from] BundleContentError),
    /// A file's path would be written outside the directory, or is not a plain relative path.
    #[error("the skill's bundle has a file at \"{path}\", which is not a plain relative path")]
    UnsafePath {
        /// The path as stored.
        path: String,
    },
    /// Something already in the directory is in the way (a symlink, or a file where a
    /// directory must go).
    #[error("{} is in the way: it is a symlink or not a directory", .path.display())]
    InTheWay {
        /// What.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("cannot write {}", .path.display())]
    Io {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes a stored skill's files into `dir` (created if need be, with subdirectories) and
/// returns its `SKILL.md` text. An inline skill (`skillMd`) becomes a `SKILL.md` of its own.
///
/// # Errors
/// The skill is a directory stored without its bundle; the bundle does not verify against its
/// digest or holds a path that is not plain and relative; writing fails.
pub fn materialize(spec: &SkillSpec, dir: &Path) -> Result<String, MaterializeError> {
    if let Some(bundle) = &spec.bundle {
        write_bundle(bundle, dir)?;
        return bundle.skill_md().map(str::to_owned).ok_or(MaterializeError::NoSkillMd);
    }
    let Some(skill_md) = &spec.skill_md else { return Err(MaterializeError::NotBundled) };
    create_dir(dir)?;
    write_file(&dir.join(SKILL_MD), skill_md.as_bytes(), false)?;
    Ok(skill_md.clone())
}

/// Writes every file of a bundle below `dir`, after checking the bundle against its digest and
/// every path.
///
/// # Errors
/// As [`materialize`].
pub fn write_bundle(bundle: &SkillBundle, dir: &Path) -> Result<(), MaterializeError> {
    bundle.verify()?;
    // Every path is checked before anything is written.
    let targets = bundle
        .files
        .iter()
        .map(|file| relative(&file.path).map(|parts| (file, parts)))
        .collect::<Result<Vec<_>, _>>()?;
    create_dir(dir)?;
    for (file, parts) in targets {
        let mut target = dir.to_path_buf();
        let (name, parents) =
            parts.split_last().ok_or_else(|| MaterializeError::UnsafePath { path: file.path.clone() })?;
        for parent in parents {
            target.push(parent);
            ensure_dir(&target)?;
        }
        target.push(name);
        write_file(&target, &file.bytes()?, file.executable)?;
    }
    Ok(())
}

/// The components of a stored path, when it is plain and relative: `a/b.txt` → [a, b.txt].
fn relative(path: &str) -> Result<Vec<&str>, MaterializeError> {
    let unsafe_path = || MaterializeError::UnsafePath { path: path.to_owned() };
    if path.contains(['\\', '\0']) {
        return Err(unsafe_path());
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        // Each part must be one ordinary name on this platform: not empty, `.`, `..`, a root or a prefix.
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if name == std::ffi::OsStr::new(part) => {}
            _ => return Err(unsafe_path()),
        }
    }
    Ok(parts)
}

fn create_dir(dir: &Path) -> Result<(), MaterializeError> {
    fs::create_dir_all(dir).map_err(|source| MaterializeError::Io { path: dir.to_path_buf(), source })
}

/// Makes `dir` a directory of its own: absent is created, a symlink or a file is in the way.
fn ensure_dir(dir: &Path) -> Result<(), MaterializeError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(MaterializeError::InTheWay { path: dir.to_path_buf() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir(dir).map_err(|source| MaterializeError::Io { path: dir.to_path_buf(), source })
        }
        Err(source) => Err(MaterializeError::Io { path: dir.to_path_buf(), source }),
    }
}

fn write_file(path: &Path, bytes: &[u8], executable: bool) -> Result<(), MaterializeError> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(MaterializeError::InTheWay { path: path.to_path_buf() });
    }
    let io = |source| MaterializeError::Io { path: path.to_path_buf(), source };
    fs::write(path, bytes).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::skill::SkillFile;

    fn spec(files: &[(&str, &[u8], bool)]) -> SkillSpec {
        let files = files.iter().map(|(p, b, x)| SkillFile::new(*p, b, *x)).collect();
        SkillSpec { bundle: Some(SkillBundle::new(files).unwrap()), ..SkillSpec::directory("skills/tool") }
    }

    /// A bundle edited after stigmer made it, with a digest that matches the edit.
    fn tampered(path: &str) -> SkillSpec {
        let mut spec = spec(&[("SKILL.md", b"# Tool", false), ("x", b"owned", false)]);
        let bundle = spec.bundle.as_mut().unwrap();
        bundle.files[1].path = path.to_owned();
        *bundle = SkillBundle::new(bundle.files.clone()).unwrap();
        spec
    }

    #[test]
    fn files_are_written_with_subdirectories_and_skill_md_returned() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("run-1/skills/tool");
        let spec = spec(&[
            ("SKILL.md", b"# Tool\nRun scripts/go.sh.", false),
            ("scripts/go.sh", b"#!/bin/sh\necho go\n", true),
            ("data/deep/blob.bin", &[0, 159, 146, 150], false),
        ]);
        let skill_md = materialize(&spec, &workspace).unwrap();
        assert_eq!(skill_md, "# Tool\nRun scripts/go.sh.");
        assert_eq!(fs::read(workspace.join("data/deep/blob.bin")).unwrap(), [0, 159, 146, 150]);
        assert_eq!(fs::read_to_string(workspace.join("SKILL.md")).unwrap(), skill_md);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(workspace.join("scripts/go.sh")).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111);
        }
        // Reading what was written gives the same bundle: nothing lost on the way.
        let again = crate::manifest::skill_dir::read_skill_dir(&workspace).unwrap();
        assert_eq!(Some(&again), spec.bundle.as_ref());
        materialize(&spec, &workspace).unwrap();
    }

    #[test]
    fn inline_skills_get_a_skill_md_and_unbundled_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(materialize(&SkillSpec::markdown("# Inline"), dir.path()).unwrap(), "# Inline");
        assert_eq!(fs::read_to_string(dir.path().join("SKILL.md")).unwrap(), "# Inline");
        assert!(matches!(materialize(&SkillSpec::directory("x"), dir.path()), Err(MaterializeError::NotBundled)));
    }

    #[test]
    fn tampered_paths_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        for path in ["../x", "a/../../x", "/etc/x", "a//b", "./x", "a/.", "", "a\\..\\x", "x/"] {
            let error = materialize(&tampered(path), &workspace).unwrap_err();
            assert!(matches!(&error, MaterializeError::UnsafePath { path: p } if p == path), "{path}: {error}");
        }
        assert!(!dir.path().join("x").exists());
        assert!(!workspace.join("SKILL.md").exists(), "nothing written when one path is bad");
    }

    #[test]
    fn a_bundle_that_does_not_match_its_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec(&[("SKILL.md", b"# Tool", false)]);
        spec.bundle.as_mut().unwrap().files[0].text = Some("# Evil".to_owned());
        assert!(matches!(materialize(&spec, dir.path()), Err(MaterializeError::Damaged(_))));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_in_the_directory_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let workspace = dir.path().join("workspace");
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(&workspace).unwrap();
        std::os::unix::fs::symlink(&outside, workspace.join("sub")).unwrap();
        let error = materialize(&tampered("sub/x"), &workspace).unwrap_err();
        assert!(matches!(error, MaterializeError::InTheWay { .. }), "{error}");
        std::os::unix::fs::symlink(outside.join("file"), workspace.join("x")).unwrap();
        let error = materialize(&tampered("x"), &workspace).unwrap_err();
        assert!(matches!(error, MaterializeError::InTheWay { .. }), "{error}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }
}
