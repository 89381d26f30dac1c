//! Skipping an apply that cannot change anything: when every file it would read is byte for
//! byte what the last apply of the same inputs to the same backend read, and the backend has
//! committed nothing since, the plan is the one that apply left — every resource unchanged — and
//! nothing needs parsing.
//!
//! The entry remembers, per inputs, backend and flags: each file's path, size and SHA-256 (the
//! content decides; modification times lie after checkouts and copies), a digest of every skill
//! directory the manifests bundle, the backend's version that matched the files, the binary that
//! planned it, and the resources with their generations. Anything different is a miss, and the
//! apply runs in full. An entry is only written for an apply that saw no diagnostic and no inline
//! secret (whose values live outside the resources), and only at a version the apply knows the
//! whole of: the version read before listing, or the one its own batch made right after it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Change, Plan};
use crate::backend::{ApplyReceipt, Backend, BackendError};
use crate::manifest::{Entry, InputPath, ManifestSet, discover};
use crate::model::Kind;

/// Bumped when the entry's meaning changes.
const FORMAT: u32 = 1;

/// What makes two applies the same apply: their inputs, backend and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyKey {
    /// The binary: its version, size and build time (another build may plan differently).
    binary: String,
    /// Who the backend takes the caller to be, and where the data is.
    backend: String,
    /// The working directory the inputs are relative to.
    dir: PathBuf,
    /// The inputs as given.
    inputs: Vec<PathBuf>,
    /// `--set`, when given.
    apply_set: Option<String>,
    /// `--prune`.
    prune: bool,
    /// `--force-ownership`.
    force_ownership: bool,
}

impl ApplyKey {
    /// The key of an apply of `inputs` to the backend `identity` describes; `None` for standard
    /// input, which cannot be read twice.
    #[must_use]
    pub fn new(
        inputs: &[InputPath],
        identity: &crate::backend::Identity,
        apply_set: Option<&str>,
        prune: bool,
        force_ownership: bool,
    ) -> Option<Self> {
        let inputs = inputs
            .iter()
            .map(|input| match input {
                InputPath::Path(path) => Some(path.clone()),
                InputPath::Stdin => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            binary: binary_stamp(),
            dir: std::env::current_dir().ok()?,
            backend: format!("{} as {} in {:?}", identity.backend, identity.actor, identity.org),
            inputs,
            apply_set: apply_set.map(str::to_owned),
            prune,
            force_ownership,
        })
    }

    fn file_name(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("{}.json", hex::encode(Sha256::digest(text.as_bytes())))
    }
}

/// `0.1.0 231821040 1765118160.123`: the version and the executable's size and time.
fn binary_stamp() -> String {
    let exe = std::env::current_exe().and_then(std::fs::metadata);
    let stamp = exe.ok().map(|meta| {
        let time = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        format!("{} {:?}", meta.len(), time.unwrap_or_default())
    });
    format!("{} {}", env!("CARGO_PKG_VERSION"), stamp.unwrap_or_default())
}

/// One file read by the apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileDigest {
    path: PathBuf,
    size: u64,
    sha256: String,
}

/// What one apply saw and left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    format: u32,
    key: ApplyKey,
    /// The backend's version at which it held exactly what the files declare.
    version: u64,
    files: Vec<FileDigest>,
    /// Each skill directory bundled, with a digest of all its files.
    skill_dirs: Vec<(PathBuf, String)>,
    apply_set: Option<String>,
    /// Every resource the files declare, with its generation.
    resources: Vec<(Kind, String, u64)>,
    /// The uid of the first of them: versions count commits from zero in every store, so a
    /// store deleted and made again can reach the same version with other contents; its
    /// resources cannot have the same random uids.
    anchor: String,
}

/// What an apply read and did, for [`DigestCache::record`].
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// The manifests it read (their sources' texts are what it applied).
    pub set: &'a ManifestSet,
    /// The skill directories it bundled.
    pub skill_dirs: &'a [PathBuf],
    /// The backend's version read before listing what it held.
    pub version: u64,
    /// The plan it applied.
    pub plan: &'a Plan,
    /// What the backend committed.
    pub receipt: &'a ApplyReceipt,
}

/// The cache of applies, one small file per [`ApplyKey`] in a directory of its own.
#[derive(Debug, Clone)]
pub struct DigestCache {
    dir: PathBuf,
}

impl DigestCache {
    /// A cache kept in `dir` (created when first written).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The plan of an apply that would change nothing — every resource unchanged — when the
    /// files, the skill directories and the backend are all as the last apply with this key
    /// left them; `None` otherwise (then apply in full).
    ///
    /// # Errors
    /// The backend's version cannot be read.
    pub async fn unchanged<B: Backend>(&self, backend: &B, key: &ApplyKey) -> Result<Option<Plan>, BackendError> {
        let Some(entry) = self.read(key) else { return Ok(None) };
        let inputs: Vec<InputPath> = key.inputs.iter().cloned().map(InputPath::Path).collect();
        if current_files(&inputs).as_ref() != Some(&entry.files) {
            return Ok(None);
        }
        let dirs_same = entry.skill_dirs.iter().all(|(dir, digest)| dir_digest(dir).as_ref() == Some(digest));
        if !dirs_same || backend.version().await? != entry.version {
            return Ok(None);
        }
        let Some((kind, name, _)) = entry.resources.first() else { return Ok(None) };
        if backend.get(*kind, name).await?.map(|stored| stored.uid) != Some(entry.anchor) {
            return Ok(None);
        }
        let changes = entry
            .resources
            .into_iter()
            .map(|(kind, name, generation)| Change::Unchanged { kind, name, generation })
            .collect();
        Ok(Some(Plan { apply_set: entry.apply_set, changes }))
    }

    /// Remembers an apply under `key`. Remembers nothing when the version after it is not
    /// known to be the apply's own; failing to write only costs the next apply its shortcut.
    pub async fn record<B: Backend>(&self, backend: &B, key: &ApplyKey, applied: Applied<'_>) {
        let Applied { set, skill_dirs, version, plan, receipt } = applied;
        let version = match receipt.version {
            None if !receipt.committed => version,
            Some(after) if after == version + 1 => after,
            _ => return self.forget(key),
        };
        let files = set
            .sources
            .iter()
            .map(|source| {
                Some(FileDigest {
                    path: source.path.clone()?,
                    size: source.text.len() as u64,
                    sha256: sha256(source.text.as_bytes()),
                })
            })
            .collect::<Option<Vec<_>>>();
        let skill_dirs = skill_dirs.iter().map(|dir| Some((dir.clone(), dir_digest(dir)?))).collect::<Option<Vec<_>>>();
        let (Some(files), Some(skill_dirs)) = (files, skill_dirs) else { return self.forget(key) };
        let written: std::collections::HashMap<(Kind, &str), u64> =
            receipt.written.iter().map(|w| ((w.kind, w.name.as_str()), w.generation)).collect();
        // What the next plan of the same files finds: every resource declared, unchanged, at
        // the generation this apply left it (deletes are gone).
        let resources = plan
            .changes
            .iter()
            .filter(|change| !matches!(change, Change::Delete { .. }))
            .map(|change| {
                let generation = match change {
                    Change::Unchanged { generation, .. } => Some(*generation),
                    _ => written.get(&(change.kind(), change.name())).copied(),
                }?;
                Some((change.kind(), change.name().to_owned(), generation))
            })
            .collect::<Option<Vec<_>>>();
        let Some(mut resources) = resources else { return self.forget(key) };
        // The planner's dependency order (kind, then name).
        resources.sort_by(|a, b| (a.0.order(), &a.1).cmp(&(b.0.order(), &b.1)));
        let anchor = match resources.first() {
            Some((kind, name, _)) => backend.get(*kind, name).await.ok().flatten().map(|stored| stored.uid),
            None => None,
        };
        let Some(anchor) = anchor else { return self.forget(key) };
        let entry = Remembered {
            format: FORMAT,
            key: key.clone(),
            version,
            files,
            skill_dirs,
            apply_set: plan.apply_set.clone(),
            resources,
            anchor,
        };
        if self.write(key, &entry).is_err() {
            self.forget(key);
        }
    }

    /// Drops the entry of `key`, so the next apply with it runs in full.
    pub fn forget(&self, key: &ApplyKey) {
        let _ = std::fs::remove_file(self.dir.join(key.file_name()));
    }

    fn read(&self, key: &ApplyKey) -> Option<Remembered> {
        let bytes = std::fs::read(self.dir.join(key.file_name())).ok()?;
        let entry: Remembered = serde_json::from_slice(&bytes).ok()?;
        (entry.format == FORMAT && &entry.key == key).then_some(entry)
    }

    fn write(&self, key: &ApplyKey, entry: &Remembered) -> std::io::Result<()> {
        crate::private_fs::create_private_dir(&self.dir)?;
        let path = self.dir.join(key.file_name());
        // Written beside and renamed over: a reader sees the old entry or the new, never half.
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut crate::private_fs::private_file(&partial)?, &bytes)?;
        std::fs::rename(&partial, &path)
    }
}

/// The files the inputs name now, each read and hashed (on all cores), in reading order; `None`
/// when one cannot be read.
fn current_files(inputs: &[InputPath]) -> Option<Vec<FileDigest>> {
    let discovery = discover(inputs);
    if !discovery.diagnostics.is_empty() {
        return None;
    }
    let paths: Vec<&Path> = discovery
        .entries
        .iter()
        .map(|entry| match entry {
            Entry::Project(path) | Entry::Manifest(path) => Some(path.as_path()),
            Entry::Stdin => None,
        })
        .collect::<Option<_>>()?;
    crate::parallel::map(&paths, |path| {
        let bytes = std::fs::read(path).ok()?;
        Some(FileDigest { path: path.to_path_buf(), size: bytes.len() as u64, sha256: sha256(&bytes) })
    })
    .into_iter()
    .collect()
}

/// A digest of every file under `dir` (names and contents, in name order); `None` when it
/// cannot be read.
fn dir_digest(dir: &Path) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    // Directories already walked, by real path: a symlink loop is walked once.
    let mut walked = std::collections::HashSet::new();
    while let Some(next) = stack.pop() {
        if !walked.insert(std::fs::canonicalize(&next).ok()?) {
            continue;
        }
        for entry in std::fs::read_dir(&next).ok()? {
            let path = entry.ok()?.path();
            if std::fs::metadata(&path).ok()?.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).ok()?;
        hasher.update(file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Some(hex::encode(hasher.finalize()))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
