//! `Skill`: instructions (a `SKILL.md`) and files an agent can use.
//!
//! A skill is written inline (`skillMd`) or as a directory (`path`). A directory is read when
//! the manifest is read from files and carried in the stored resource as a [`SkillBundle`]:
//! every file's path and content, with a digest over them, so whoever runs the agent — on
//! another machine, against a shared server — has the skill without the directory. This module
//! only holds and checks bundles; reading a directory is `manifest::skill_dir`, writing one out
//! is `runner::skills`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::kind::Kind;
use super::resource::{Resource, ResourceSpec};

/// A `Skill` resource.
pub type Skill = Resource<SkillSpec>;

/// The file holding a skill's instructions, at the root of its directory.
pub const SKILL_MD: &str = "SKILL.md";

/// The largest file a skill directory may hold.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The most a skill directory's files may add up to.
pub const MAX_BUNDLE_BYTES: u64 = 8 * 1024 * 1024;

/// The most files a skill directory may hold, `SKILL.md` included.
pub const MAX_FILES: usize = 1000;

/// A skill: its `SKILL.md` inline, or a directory holding `SKILL.md` and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillSpec {
    /// What the skill does; shown to the agent next to its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A tag that references may pin (`stable`, `v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The skill's instructions as Markdown (the content of a `SKILL.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_md: Option<String>,
    /// A directory, relative to the manifest, holding `SKILL.md` and the skill's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Computed by stigmer, never written in a manifest: the files of the `path` directory,
    /// read when the manifest is applied, and their digest. A manifest that sets it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub bundle: Option<SkillBundle>,
}

/// The content of a skill directory, as stored: every file (`SKILL.md` included), sorted by
/// path, and a digest that changes whenever a path, a content or an executable bit does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillBundle {
    /// `sha256:` and the hex SHA-256 over every file, in path order: its path, a zero byte, a
    /// byte 1 or 0 for the executable bit, its size as 8 big-endian bytes, and its bytes.
    pub digest: String,
    /// The files, sorted by path.
    pub files: Vec<SkillFile>,
}

/// One file of a skill directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillFile {
    /// The path below the skill directory, with `/` between components (`scripts/run.py`).
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// Whether the file is executable (a script the skill runs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub executable: bool,
    /// The content, when it is UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The content as standard base64, when it is not UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// What is wrong with a stored bundle: it was damaged or edited after stigmer made it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleContentError {
    /// A file has neither `text` nor `base64`.
    #[error("file \"{path}\" has no content")]
    NoContent {
        /// The file.
        path: String,
    },
    /// A file has both `text` and `base64`.
    #[error("file \"{path}\" has both text and base64 content")]
    TwoContents {
        /// The file.
        path: String,
    },
    /// A file's base64 does not decode.
    #[error("file \"{path}\" has invalid base64 content")]
    BadBase64 {
        /// The file.
        path: String,
    },
    /// A file's content is not as long as its size says.
    #[error("file \"{path}\" is {actual} bytes, but its size says {declared}")]
    SizeMismatch {
        /// The file.
        path: String,
        /// The size written.
        declared: u64,
        /// The content's length.
        actual: u64,
    },
    /// Two files have the same path.
    #[error("file \"{path}\" appears twice")]
    Duplicate {
        /// The file.
        path: String,
    },
    /// The files do not hash to the digest.
    #[error("the files do not match the digest (stored {stored}, computed {computed})")]
    DigestMismatch {
        /// The digest stored.
        stored: String,
        /// The digest of the files.
        computed: String,
    },
}

impl ResourceSpec for SkillSpec {
    const KIND: Kind = Kind::Skill;
}

impl SkillSpec {
    /// A skill whose instructions are written inline.
    #[must_use]
    pub fn markdown(skill_md: impl Into<String>) -> Self {
        Self { skill_md: Some(skill_md.into()), ..Self::default() }
    }

    /// A skill bundled from a directory relative to the manifest.
    #[must_use]
    pub fn directory(path: impl Into<String>) -> Self {
        Self { path: Some(path.into()), ..Self::default() }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The skill's instructions: `skillMd`, or the `SKILL.md` of its bundle. `None` for a
    /// directory skill stored without its bundle (applied before skills were bundled).
    #[must_use]
    pub fn instructions(&self) -> Option<&str> {
        self.skill_md.as_deref().or_else(|| self.bundle.as_ref().and_then(SkillBundle::skill_md))
    }

    /// What the agent is told the skill does: `description`, else the `description` in the
    /// front matter of its `SKILL.md` (the `---` block that Agent Skills start with).
    #[must_use]
    pub fn description_for_agent(&self) -> Option<String> {
        self.description.clone().or_else(|| front_matter_description(self.instructions()?))
    }

    /// The spec as `export` writes it for a directory written at `path`: the bundle's files live
    /// there, not in the manifest.
    #[must_use]
    pub fn exported_as_directory(&self, path: impl Into<String>) -> Self {
        Self { path: Some(path.into()), bundle: None, ..self.clone() }
    }

    /// The spec with the bundle's `SKILL.md` written inline (for a stream that cannot carry
    /// files), and the paths of the other files, which are left out. `None` without a bundle.
    #[must_use]
    pub fn exported_inline(&self) -> Option<(Self, Vec<String>)> {
        let bundle = self.bundle.as_ref()?;
        let skill_md = bundle.skill_md()?.to_owned();
        let left_out = bundle.files.iter().filter(|f| f.path != SKILL_MD).map(|f| f.path.clone()).collect();
        Some((Self { skill_md: Some(skill_md), path: None, bundle: None, ..self.clone() }, left_out))
    }
}

/// The `description` of a Markdown document's YAML front matter, if it has one.
fn front_matter_description(markdown: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct FrontMatter {
        description: Option<String>,
    }
    let rest = markdown.strip_prefix("---")?;
    let rest = rest.strip_prefix("\r\n").or_else(|| rest.strip_prefix('\n'))?;
    let mut end = None;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            end = Some(offset);
            break;
        }
        offset += line.len();
    }
    let front: FrontMatter = serde_saphyr::from_str(&rest[..end?]).ok()?;
    front.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())
}

impl SkillFile {
    /// A file with this content: as text when it is UTF-8, else as base64.
    #[must_use]
    pub fn new(path: impl Into<String>, bytes: &[u8], executable: bool) -> Self {
        let (text, base64) = match std::str::from_utf8(bytes) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(BASE64.encode(bytes))),
        };
        Self { path: path.into(), size: bytes.len() as u64, executable, text, base64 }
    }

    /// The file's bytes, checked against its size.
    ///
    /// # Errors
    /// The content is missing, doubled, not valid base64, or not as long as `size` says.
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, BundleContentError> {
        let path = || self.path.clone();
        let bytes = match (&self.text, &self.base64) {
            (Some(text), None) => Cow::Borrowed(text.as_bytes()),
            (None, Some(encoded)) => {
                Cow::Owned(BASE64.decode(encoded).map_err(|_| BundleContentError::BadBase64 { path: path() })?)
            }
            (None, None) => return Err(BundleContentError::NoContent { path: path() }),
            (Some(_), Some(_)) => return Err(BundleContentError::TwoContents { path: path() }),
        };
        if bytes.len() as u64 != self.size {
            return Err(BundleContentError::SizeMismatch {
                path: path(),
                declared: self.size,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

impl SkillBundle {
    /// A bundle of these files: sorted by path, with their digest.
    ///
    /// # Errors
    /// Two files have the same path, or a file's content does not match its size.
    pub fn new(mut files: Vec<SkillFile>) -> Result<Self, BundleContentError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let digest = digest(&files)?;
        Ok(Self { digest, files })
    }

    /// Checks that the files are what the digest says (a stored bundle may have been damaged
    /// or edited).
    ///
    /// # Errors
    /// A file's content is broken, or the files do not hash to the digest.
    pub fn verify(&self) -> Result<(), BundleContentError> {
        let computed = digest(&self.files)?;
        if computed == self.digest {
            Ok(())
        } else {
            Err(BundleContentError::DigestMismatch { stored: self.digest.clone(), computed })
        }
    }

    /// The text of the bundle's `SKILL.md`.
    #[must_use]
    pub fn skill_md(&self) -> Option<&str> {
        self.files.iter().find(|f| f.path == SKILL_MD).and_then(|f| f.text.as_deref())
    }

    /// The files' sizes added up.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The bundle without its contents, as `get` and `describe` show it: digest, total size,
    /// and each file's path, size and executable bit.
    #[must_use]
    pub fn summary(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let mut file = json!({"path": f.path, "size": f.size});
                if f.executable {
                    file["executable"] = json!(true);
                }
                file
            })
            .collect();
        json!({"digest": self.digest, "size": self.size(), "files": files})
    }

    /// The bundle as diffs show it: the digest, and one line per file with its size and the
    /// start of its SHA-256, so a changed file shows as one changed line, never its content.
    #[must_use]
    pub fn diff_summary(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let sha =
                    f.bytes().map_or_else(|_| "unreadable".to_owned(), |b| hex(&Sha256::digest(&b))[..12].to_owned());
                let executable = if f.executable { ", executable" } else { "" };
                json!(format!("{} ({} bytes{executable}, sha256 {sha})", f.path, f.size))
            })
            .collect();
        json!({"digest": self.digest, "files": files})
    }
}

/// The digest of files already in path order (see [`SkillBundle::digest`]).
fn digest(files: &[SkillFile]) -> Result<String, BundleContentError> {
    let mut hasher = Sha256::new();
    let mut previous: Option<&str> = None;
    for file in files {
        if previous == Some(file.path.as_str()) {
            return Err(BundleContentError::Duplicate { path: file.path.clone() });
        }
        previous = Some(&file.path);
        let bytes = file.bytes()?;
        hasher.update(file.path.as_bytes());
        hasher.update([0, u8::from(file.executable)]);
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &[u8])]) -> SkillBundle {
        SkillBundle::new(files.iter().map(|(p, b)| SkillFile::new(*p, b, false)).collect()).unwrap()
    }

    #[test]
    fn text_is_kept_as_text_and_binary_as_base64() {
        let text = SkillFile::new("SKILL.md", "# Héllo\n".as_bytes(), false);
        assert_eq!(text.text.as_deref(), Some("# Héllo\n"));
        assert_eq!(text.base64, None);
        assert_eq!(text.size, 9);
        let binary = SkillFile::new("logo.png", &[0x89, b'P', b'N', b'G', 0, 0xff], false);
        assert_eq!(binary.text, None);
        assert_eq!(binary.base64.as_deref(), Some("iVBORwD/"));
        assert_eq!(binary.bytes().unwrap().as_ref(), &[0x89, b'P', b'N', b'G', 0, 0xff]);
    }

    #[test]
    fn the_digest_is_stable_and_follows_paths_contents_and_modes() {
        let base = bundle(&[("SKILL.md", b"# A"), ("data/x.txt", b"x")]);
        let reordered = bundle(&[("data/x.txt", b"x"), ("SKILL.md", b"# A")]);
        assert_eq!(base.digest, reordered.digest, "order of reading does not matter");
        assert_eq!(base.files[0].path, "SKILL.md");
        // A fixed value, computed independently: the digest is a stored format (and a skill's
        // version), so it must not drift between releases.
        assert_eq!(base.digest, "sha256:82f9deae81429b3a19ecfe51b6ed664eac3c80018cb627f8edf2730bc100feba");

        let content = bundle(&[("SKILL.md", b"# A"), ("data/x.txt", b"y")]);
        let path = bundle(&[("SKILL.md", b"# A"), ("data/y.txt", b"x")]);
        // Moving bytes between path and content must not collide.
        let shifted = bundle(&[("SKILL.md", b"# A"), ("data/x.tx", b"tx")]);
        let mut executable = base.clone();
        executable.files[1].executable = true;
        for other in [&content, &path, &shifted] {
            assert_ne!(base.digest, other.digest);
        }
        assert!(executable.verify().is_err(), "the executable bit is part of the digest");
        base.verify().unwrap();
    }

    #[test]
    fn a_tampered_bundle_does_not_verify() {
        let mut tampered = bundle(&[("SKILL.md", b"# A")]);
        tampered.files[0].text = Some("# B".to_owned());
        assert!(matches!(tampered.verify(), Err(BundleContentError::DigestMismatch { .. })));
        tampered.files[0].text = Some("# Bigger".to_owned());
        assert!(matches!(tampered.verify(), Err(BundleContentError::SizeMismatch { .. })));
        tampered.files[0].base64 = Some("AA==".to_owned());
        assert!(matches!(tampered.verify(), Err(BundleContentError::TwoContents { .. })));
        let twice = SkillBundle::new(vec![SkillFile::new("a", b"1", false), SkillFile::new("a", b"2", false)]);
        assert!(matches!(twice, Err(BundleContentError::Duplicate { .. })));
    }

    #[test]
    fn instructions_and_description_come_from_the_bundle() {
        let skill_md = "---\nname: pdf\ndescription: Fill in PDF forms.\n---\n# PDF\n";
        let spec =
            SkillSpec { bundle: Some(bundle(&[("SKILL.md", skill_md.as_bytes())])), ..SkillSpec::directory("pdf") };
        assert_eq!(spec.instructions(), Some(skill_md));
        assert_eq!(spec.description_for_agent().as_deref(), Some("Fill in PDF forms."));
        assert_eq!(spec.clone().description("Mine").description_for_agent().as_deref(), Some("Mine"));
        assert_eq!(SkillSpec::markdown("# No front matter").description_for_agent(), None);
        assert_eq!(SkillSpec::directory("unbundled").instructions(), None);
    }

    #[test]
    fn summaries_show_sizes_and_never_contents() {
        let b = bundle(&[("SKILL.md", b"# Secret sauce"), ("bin/tool", &[0xff, 0xfe])]);
        let summary = b.summary().to_string();
        let diff = b.diff_summary().to_string();
        for shown in [&summary, &diff] {
            assert!(!shown.contains("Secret sauce") && !shown.contains("//4="), "{shown}");
            assert!(shown.contains(&b.digest), "{shown}");
        }
        assert_eq!(b.summary()["size"], 16);
        assert!(diff.contains("SKILL.md (14 bytes, sha256 "), "{diff}");
    }

    #[test]
    fn export_forms_drop_the_bundle() {
        let spec = SkillSpec {
            bundle: Some(bundle(&[("SKILL.md", b"# A"), ("x.txt", b"x")])),
            ..SkillSpec::directory("skills/a").description("A")
        };
        let directory = spec.exported_as_directory("all.skills/a");
        assert_eq!((directory.path.as_deref(), directory.bundle.is_none()), (Some("all.skills/a"), true));
        let (inline, left_out) = spec.exported_inline().unwrap();
        assert_eq!(inline, SkillSpec::markdown("# A").description("A"));
        assert_eq!(left_out, ["x.txt"]);
        assert!(SkillSpec::markdown("# A").exported_inline().is_none());
    }
}
