//! Reading a skill directory into a [`SkillBundle`]: every file below it, in bounded size,
//! without ever leaving it.
//!
//! - Hidden entries (`.git`, `.DS_Store`, `.venv`, editors' swap files) are skipped, as
//!   manifest discovery and watch mode skip them: a skill is what a checkout shows.
//! - A symlink is followed when it stays inside the skill directory (its file is stored under
//!   the link's path); one that leads outside is refused, and one that cannot be resolved or
//!   loops back to a directory being read is an error, never a hang.
//! - A name with a backslash is refused: it is a separator on Windows, so writing the bundle
//!   back (`runner::skills`, for a run or an export) refuses it too.
//! - Only regular files and directories are read: a FIFO or a device is refused before it is
//!   opened (opening a FIFO would block).
//! - Limits ([`MAX_FILE_BYTES`], [`MAX_BUNDLE_BYTES`], [`MAX_FILES`]) are checked from the
//!   metadata before reading, and again on what was read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::model::skill::{
    BundleContentError, MAX_BUNDLE_BYTES, MAX_FILE_BYTES, MAX_FILES, SKILL_MD, SkillBundle, SkillFile,
};

/// Why a skill directory cannot be bundled. Paths are relative to the skill directory.
#[derive(Debug, thiserror::Error)]
pub enum SkillDirError {
    /// The directory itself cannot be resolved.
    #[error("cannot open the directory: {source}")]
    Root {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory cannot be read.
    #[error("cannot read \"{path}\": {source}")]
    Unreadable {
        /// What.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A name is not UTF-8, so it cannot be stored as a path.
    #[error("\"{path}\" has a name that is not UTF-8")]
    NotUtf8Name {
        /// The path, with the bad bytes replaced.
        path: String,
    },
    /// A name holds a backslash: a separator on Windows, so the file could not be written back
    /// where the skill is run or exported, and writing bundles refuses it.
    #[error("\"{path}\" has a backslash in its name")]
    Backslash {
        /// The path.
        path: String,
    },
    /// A symlink leads outside the skill directory.
    #[error("symlink \"{path}\" leads outside the skill directory (to {})", .target.display())]
    LinkOutside {
        /// The link.
        path: String,
        /// Where it leads.
        target: PathBuf,
    },
    /// A symlink cannot be followed: broken, or a loop of links.
    #[error("symlink \"{path}\" cannot be followed: {source}")]
    LinkBroken {
        /// The link.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A symlink leads back to a directory that contains it.
    #[error("symlink \"{path}\" loops back to a directory that contains it")]
    LinkLoop {
        /// The link.
        path: String,
    },
    /// Neither a regular file nor a directory (a FIFO, a socket, a device).
    #[error("\"{path}\" is not a regular file")]
    NotAFile {
        /// What.
        path: String,
    },
    /// A file is larger than [`MAX_FILE_BYTES`].
    #[error("\"{path}\" is {size} bytes; a skill file may be at most {} bytes (1 MiB)", MAX_FILE_BYTES)]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The files add up to more than [`MAX_BUNDLE_BYTES`].
    #[error("its files add up to more than {} bytes (8 MiB), the most a skill may hold", MAX_BUNDLE_BYTES)]
    TooLarge,
    /// More than [`MAX_FILES`] files.
    #[error("it holds more than {} files, the most a skill may hold", MAX_FILES)]
    TooManyFiles,
    /// `SKILL.md` is missing (or hidden behind a link that was refused).
    #[error("it has no SKILL.md")]
    NoSkillMd,
    /// `SKILL.md` is not UTF-8 text.
    #[error("its SKILL.md is not UTF-8 text")]
    SkillMdNotText,
    /// The files could not be put together (two paths the same).
    #[error(transparent)]
    Content(#[from] BundleContentError),
}

impl SkillDirError {
    /// How to fix it.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Root { .. } | Self::Unreadable { .. } => "check the file's permissions",
            Self::NotUtf8Name { .. } => "rename it with a UTF-8 name",
            Self::Backslash { .. } => {
                "rename it without '\\': a stored skill is written back on any system (run, export), and there it is a separator"
            }
            Self::LinkOutside { .. } => {
                "copy what it points at into the skill directory; stigmer never reads outside a skill's directory"
            }
            Self::LinkBroken { .. } | Self::LinkLoop { .. } => "remove the link or point it at a file in the skill",
            Self::NotAFile { .. } => "a skill holds regular files and directories only; remove it",
            Self::FileTooLarge { .. } | Self::TooLarge | Self::TooManyFiles => {
                "keep large data out of the skill (fetch it at run time), or split the skill"
            }
            Self::NoSkillMd => "add a SKILL.md with the skill's instructions",
            Self::SkillMdNotText => "save SKILL.md as UTF-8 Markdown",
            Self::Content(_) => "rename one of the files",
        }
    }
}

/// Reads every file of the skill directory `dir` into a bundle.
///
/// # Errors
/// See [`SkillDirError`]: unreadable entries, links leading outside or looping, special files,
/// limits, a missing or binary `SKILL.md`.
pub fn read_skill_dir(dir: &Path) -> Result<SkillBundle, SkillDirError> {
    let root = dir.canonicalize().map_err(|source| SkillDirError::Root { source })?;
    let mut walk = Walk { root: root.clone(), files: Vec::new(), total: 0, open: vec![root.clone()] };
    walk.directory(&root, "")?;
    let bundle = SkillBundle::new(walk.files)?;
    match bundle.files.iter().find(|f| f.path == SKILL_MD) {
        None => Err(SkillDirError::NoSkillMd),
        Some(file) if file.text.is_none() => Err(SkillDirError::SkillMdNotText),
        Some(_) => Ok(bundle),
    }
}

struct Walk {
    /// The skill directory, resolved.
    root: PathBuf,
    files: Vec<SkillFile>,
    total: u64,
    /// The resolved directories being read, outermost first: a link to one of them loops.
    open: Vec<PathBuf>,
}

impl Walk {
    fn directory(&mut self, dir: &Path, prefix: &str) -> Result<(), SkillDirError> {
        let unreadable = |source| SkillDirError::Unreadable { path: display(prefix), source };
        let mut entries = fs::read_dir(dir)
            .map_err(unreadable)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        entries.sort();
        for name in entries {
            let Some(name_text) = name.to_str() else {
                return Err(SkillDirError::NotUtf8Name { path: format!("{prefix}{}", name.to_string_lossy()) });
            };
            if name_text.starts_with('.') {
                continue;
            }
            let path = format!("{prefix}{name_text}");
            if name_text.contains('\\') {
                return Err(SkillDirError::Backslash { path });
            }
            let entry = dir.join(&name);
            let link = fs::symlink_metadata(&entry)
                .map_err(|source| SkillDirError::Unreadable { path: path.clone(), source })?
                .file_type()
                .is_symlink();
            let real = if link {
                let target =
                    entry.canonicalize().map_err(|source| SkillDirError::LinkBroken { path: path.clone(), source })?;
                if !target.starts_with(&self.root) {
                    return Err(SkillDirError::LinkOutside { path, target });
                }
                target
            } else {
                entry
            };
            let meta =
                fs::metadata(&real).map_err(|source| SkillDirError::Unreadable { path: path.clone(), source })?;
            if meta.is_dir() {
                if self.open.contains(&real) {
                    return Err(SkillDirError::LinkLoop { path });
                }
                self.open.push(real.clone());
                self.directory(&real, &format!("{path}/"))?;
                self.open.pop();
            } else if meta.is_file() {
                self.file(&real, path, &meta)?;
            } else {
                return Err(SkillDirError::NotAFile { path });
            }
        }
        Ok(())
    }

    fn file(&mut self, real: &Path, path: String, meta: &fs::Metadata) -> Result<(), SkillDirError> {
        if self.files.len() >= MAX_FILES {
            return Err(SkillDirError::TooManyFiles);
        }
        let check_size = |walk: &Self, size: u64, path: &str| {
            if size > MAX_FILE_BYTES {
                Err(SkillDirError::FileTooLarge { path: path.to_owned(), size })
            } else if walk.total + size > MAX_BUNDLE_BYTES {
                Err(SkillDirError::TooLarge)
            } else {
                Ok(())
            }
        };
        check_size(self, meta.len(), &path)?;
        let mut bytes = Vec::new();
        // The file may grow between the look and the read: read one byte past the limit at most.
        fs::File::open(real)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|source| SkillDirError::Unreadable { path: path.clone(), source })?;
        let size = bytes.len() as u64;
        check_size(self, size, &path)?;
        self.total += size;
        self.files.push(SkillFile::new(path, &bytes, executable(meta)));
        Ok(())
    }
}

/// The path as errors show it: the skill directory itself is `.`.
fn display(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() { ".".to_owned() } else { trimmed.to_owned() }
}

#[cfg(unix)]
fn executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        dir
    }

    #[test]
    fn text_and_binary_files_are_read_sorted_with_hidden_entries_skipped() {
        let dir = skill(&[
            ("SKILL.md", b"# Tool"),
            ("scripts/run.sh", b"echo hi\n"),
            ("assets/logo.png", &[0x89, b'P', b'N', b'G', 0xff]),
            (".git/config", b"[core]"),
            (".DS_Store", b"x"),
            ("scripts/.cache/x", b"x"),
        ]);
        let bundle = read_skill_dir(dir.path()).unwrap();
        let paths: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["SKILL.md", "assets/logo.png", "scripts/run.sh"]);
        assert_eq!(bundle.files[1].base64.as_deref(), Some("iVBOR/8="));
        assert_eq!(bundle.files[2].text.as_deref(), Some("echo hi\n"));
        assert_eq!(bundle.files[2].size, 8);
        bundle.verify().unwrap();
        assert_eq!(read_skill_dir(dir.path()).unwrap(), bundle, "reading twice gives the same bundle");
    }

    #[cfg(unix)]
    #[test]
    fn a_skill_with_a_backslash_in_a_name_was_stored_but_could_not_be_written_back() {
        // A skill holding `a\b.txt` was stored, then `export -o` and every run of its agent
        // failed: writing a bundle refuses backslashes (a separator on Windows), reading did not.
        let dir = skill(&[("SKILL.md", b"# Tool"), ("docs/a\\b.txt", b"x")]);
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::Backslash { path } if path == "docs/a\\b.txt"), "{error}");
        let dir = skill(&[("SKILL.md", b"# Tool"), ("a\\b/x.txt", b"x")]);
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::Backslash { path }) if path == "a\\b"));
        // Hidden entries are skipped before anything else is looked at.
        let dir = skill(&[("SKILL.md", b"# Tool"), (".a\\b", b"x")]);
        read_skill_dir(dir.path()).unwrap();
    }

    #[test]
    fn the_digest_follows_content_and_paths_on_disk() {
        let dir = skill(&[("SKILL.md", b"# Tool"), ("a.txt", b"a")]);
        let first = read_skill_dir(dir.path()).unwrap().digest;
        fs::write(dir.path().join("a.txt"), b"b").unwrap();
        let edited = read_skill_dir(dir.path()).unwrap().digest;
        fs::rename(dir.path().join("a.txt"), dir.path().join("b.txt")).unwrap();
        let renamed = read_skill_dir(dir.path()).unwrap().digest;
        assert_ne!(first, edited);
        assert_ne!(edited, renamed);
    }

    #[test]
    fn limits_are_enforced() {
        let big = vec![b'x'; usize::try_from(MAX_FILE_BYTES).unwrap() + 1];
        let dir = skill(&[("SKILL.md", b"# Tool"), ("big.txt", &big)]);
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::FileTooLarge { path, .. } if path == "big.txt"), "{error}");

        let almost = vec![b'x'; usize::try_from(MAX_FILE_BYTES).unwrap()];
        let dir = skill(&[("SKILL.md", b"# Tool")]);
        for i in 0..8 {
            fs::write(dir.path().join(format!("part{i}.txt")), &almost).unwrap();
        }
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::TooLarge)));

        let dir = skill(&[("SKILL.md", b"# Tool")]);
        for i in 0..MAX_FILES {
            fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::TooManyFiles)));
    }

    #[test]
    fn skill_md_must_be_there_and_be_text() {
        let dir = skill(&[("README.md", b"# Tool")]);
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::NoSkillMd)));
        let dir = skill(&[("SKILL.md", &[0xff, 0xfe])]);
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::SkillMdNotText)));
    }

    #[cfg(unix)]
    #[test]
    fn links_inside_are_followed_and_links_outside_refused() {
        use std::os::unix::fs::symlink;
        let outside = skill(&[("secret.txt", b"hunter2")]);
        let dir = skill(&[("SKILL.md", b"# Tool"), ("docs/guide.md", b"guide")]);
        symlink("docs/guide.md", dir.path().join("guide.md")).unwrap();
        symlink("docs", dir.path().join("manual")).unwrap();
        let bundle = read_skill_dir(dir.path()).unwrap();
        let paths: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["SKILL.md", "docs/guide.md", "guide.md", "manual/guide.md"]);

        symlink(outside.path().join("secret.txt"), dir.path().join("leak.txt")).unwrap();
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::LinkOutside { path, .. } if path == "leak.txt"), "{error}");
        fs::remove_file(dir.path().join("leak.txt")).unwrap();
        symlink("../..", dir.path().join("docs/up")).unwrap();
        assert!(matches!(read_skill_dir(dir.path()), Err(SkillDirError::LinkOutside { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_are_errors_not_hangs() {
        use std::os::unix::fs::symlink;
        let dir = skill(&[("SKILL.md", b"# Tool"), ("sub/x.txt", b"x")]);
        symlink("..", dir.path().join("sub/back")).unwrap();
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::LinkLoop { path } if path == "sub/back"), "{error}");
        fs::remove_file(dir.path().join("sub/back")).unwrap();

        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::LinkBroken { path, .. } if path == "a"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn special_files_and_executables() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = skill(&[("SKILL.md", b"# Tool"), ("run.sh", b"#!/bin/sh\n")]);
        fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = read_skill_dir(dir.path()).unwrap();
        assert!(bundle.files.iter().find(|f| f.path == "run.sh").unwrap().executable);
        assert!(!bundle.files[0].executable);

        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let error = read_skill_dir(dir.path()).unwrap_err();
            assert!(matches!(&error, SkillDirError::NotAFile { path } if path == "pipe"), "{error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_files_are_errors() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = skill(&[("SKILL.md", b"# Tool"), ("locked.txt", b"x")]);
        let locked = dir.path().join("locked.txt");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        if fs::File::open(&locked).is_ok() {
            return; // running as root: permissions do not stop reading
        }
        let error = read_skill_dir(dir.path()).unwrap_err();
        assert!(matches!(&error, SkillDirError::Unreadable { path, .. } if path == "locked.txt"), "{error}");
    }
}
