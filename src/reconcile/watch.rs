//! Watch mode: keep a backend in step with a directory while people edit it.
//!
//! The loop only decides *when* to reconcile — after a quiet period following file events, on
//! an optional timer, never in between — and each reconcile is the same level-triggered
//! load → validate → plan → apply as `apply`, always desired-vs-observed. Files are parsed and
//! checked once per change: a [`Workspace`] keeps every file's documents and per-document
//! checks, and re-reads only the files that events name (or whose size or time changed).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Observed, Plan, PlanOptions, ReconcileError, apply, names_an_org, prepare_observed};
use crate::backend::{ApplyReceipt, Backend, BackendError, ResourceHead};
use crate::manifest::{Diagnostic, Entry, FileLoad, InputPath, ManifestSet, discover, read_manifest};
use crate::model::AnyResource;
use crate::validate::{Checked, DocumentOutcome, check_file};

/// How to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// How to plan each reconcile.
    pub plan: PlanOptions,
    /// Also reconcile on this period, to put back changes made to the backend behind our back.
    pub interval: Option<Duration>,
    /// What the periodic reconcile does about a store that changed behind the files' back:
    /// put it back without a word when `None`.
    pub drift: Option<DriftMode>,
    /// How long the files must stay quiet after an event before reconciling.
    pub debounce: Duration,
}

/// What watch mode does when the periodic check finds the store drifted from the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Report it.
    Detect,
    /// Report it, and mark each drifted resource with a `Drifted` condition (cleared when it
    /// matches again).
    Warn,
    /// Put the files' version back, recorded in history as `corrected`.
    Correct,
}

/// What one reconcile of watch mode did, for the caller to show.
#[derive(Debug)]
pub enum WatchReport {
    /// The periodic check found the store drifted from the files.
    Drifted {
        /// When.
        at: Timestamp,
        /// What was done about it.
        mode: DriftMode,
        /// Each drifted resource, with the store's last change to it.
        drifted: Vec<super::drift::Drifted>,
    },
    /// Changes were applied.
    Applied {
        /// When the reconcile finished.
        at: Timestamp,
        /// The plan applied (its unchanged entries included, for counts).
        plan: Plan,
        /// How long it took, from the first file event (or timer tick) to the commit.
        took: Duration,
        /// How many files were read for it.
        files_read: usize,
    },
    /// The backend already matches the files.
    Unchanged {
        /// How many files were read for it.
        files_read: usize,
    },
    /// The files have errors; nothing was applied and the backend keeps the last good state.
    Invalid {
        /// When.
        at: Timestamp,
        /// The files, for rendering the diagnostics with snippets.
        set: ManifestSet,
        /// Every diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// The reconcile failed (backend unreachable, conflict, refused plan); the next one retries.
    Failed {
        /// When.
        at: Timestamp,
        /// Why.
        error: ReconcileError,
    },
}

/// Why watching could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Standard input cannot be watched.
    #[error("-f - (standard input) cannot be watched")]
    Stdin,
    /// The file watcher failed.
    #[error("cannot watch {}", .path.display())]
    Watch {
        /// What could not be watched.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

/// The files being watched, each parsed and checked once per change.
#[derive(Debug)]
pub struct Workspace {
    inputs: Vec<InputPath>,
    order: Vec<Entry>,
    discovery_diagnostics: Vec<Diagnostic>,
    files: BTreeMap<PathBuf, CachedFile>,
}

#[derive(Debug)]
struct CachedFile {
    /// A project file as read (its document is the project, not a resource).
    project: Option<FileLoad>,
    /// A manifest file, checked on its own.
    checked: Checked,
    stamp: Option<(SystemTime, u64)>,
}

impl Workspace {
    /// A workspace over these inputs; nothing is read until [`Workspace::refresh`].
    ///
    /// # Errors
    /// Standard input cannot be watched.
    pub fn new(inputs: Vec<InputPath>) -> Result<Self, WatchError> {
        if inputs.contains(&InputPath::Stdin) {
            return Err(WatchError::Stdin);
        }
        Ok(Self { inputs, order: Vec::new(), discovery_diagnostics: Vec::new(), files: BTreeMap::new() })
    }

    /// Finds the files again and reads those that are new, named in `changed`, or whose size or
    /// modification time moved; forgets files that are gone. Returns how many files were read.
    pub fn refresh(&mut self, changed: &HashSet<PathBuf>) -> usize {
        let discovery = discover(&self.inputs);
        let mut read = 0;
        let mut present = HashSet::new();
        for entry in &discovery.entries {
            let (Entry::Manifest(path) | Entry::Project(path)) = entry else { continue };
            present.insert(path.clone());
            let stamp = stamp(path);
            let stale = match self.files.get(path) {
                None => true,
                Some(cached) => changed.contains(path) || cached.stamp != stamp || stamp.is_none(),
            };
            if stale {
                self.files.insert(path.clone(), CachedFile::read(path, stamp, matches!(entry, Entry::Project(_))));
                read += 1;
            }
        }
        self.files.retain(|path, _| present.contains(path));
        self.order = discovery.entries;
        self.discovery_diagnostics = discovery.diagnostics;
        read
    }

    /// The directories and files to watch: each input (directories recursively), the real
    /// location of every symlinked file, so edits through a link are seen, and every skill
    /// directory outside the inputs (its files are read into the skill).
    #[must_use]
    pub fn watch_roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut roots = Vec::new();
        let mut watched_trees = Vec::new();
        for input in &self.inputs {
            let InputPath::Path(path) = input else { continue };
            if path.is_dir() {
                roots.push((path.clone(), RecursiveMode::Recursive));
                watched_trees.extend(std::fs::canonicalize(path));
            } else if let Some(parent) = path.parent() {
                // Watch the directory, not the file: editors replace files by renaming.
                let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                roots.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
            }
        }
        for path in self.files.keys() {
            if let Ok(real) = std::fs::canonicalize(path)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
                && let Some(parent) = real.parent()
            {
                roots.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
            }
        }
        for dir in self.skill_dirs() {
            // A second watch on a directory already watched would only rename its events.
            if let Ok(real) = std::fs::canonicalize(&dir)
                && !watched_trees.iter().any(|tree| real.starts_with(tree))
            {
                roots.push((real, RecursiveMode::Recursive));
            }
        }
        roots.sort();
        roots.dedup();
        roots
    }

    /// The directories of the skills the manifests declare with `path`, absolute (and also
    /// resolved, when they exist), so an event under one of them is known to matter.
    #[must_use]
    pub fn skill_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for (manifest, cached) in &self.files {
            let base = manifest.parent().unwrap_or(Path::new(""));
            for resource in cached.checked.outcomes.iter().filter_map(|o| o.resource.as_deref()) {
                let AnyResource::Skill(skill) = resource else { continue };
                let Some(path) = &skill.spec.path else { continue };
                let dir = base.join(path);
                dirs.extend(std::path::absolute(&dir));
                dirs.extend(std::fs::canonicalize(&dir));
            }
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// The manifest set as it is now, with every document's checks.
    #[must_use]
    pub fn snapshot(&self) -> Checked {
        let mut snapshot = Checked::default();
        snapshot.set.diagnostics.clone_from(&self.discovery_diagnostics);
        for entry in &self.order {
            let (Entry::Project(path) | Entry::Manifest(path)) = entry else { continue };
            let Some(cached) = self.files.get(path) else { continue };
            if let Some(project) = &cached.project {
                snapshot.set.add_project_file(project.clone());
            } else {
                snapshot.set.append(cached.checked.set.clone());
                snapshot.outcomes.extend(cached.checked.outcomes.iter().cloned());
            }
        }
        snapshot
    }
}

impl CachedFile {
    fn read(path: &Path, stamp: Option<(SystemTime, u64)>, project: bool) -> Self {
        let load = read_manifest(path);
        if project {
            return Self { project: Some(load), checked: Checked::default(), stamp };
        }
        Self { project: None, checked: check_file(load), stamp }
    }
}

/// What the backend held at one version, kept between reconciles: while the version stays the
/// same (nothing was committed), planning needs no new listing.
#[derive(Debug, Default)]
struct ObservedCache {
    version: Option<u64>,
    resources: Vec<ResourceHead>,
    /// The organization the backend acts in (none, locally), asked once, when a manifest first
    /// names one.
    org: tokio::sync::OnceCell<Option<String>>,
}

/// Past this many writes, a full listing is cheaper than fetching each written resource.
const PATCH_LIMIT: usize = 64;

impl ObservedCache {
    /// The backend's resources, listed again only when its version moved.
    async fn current<B: Backend>(&mut self, backend: &B) -> Result<&[ResourceHead], BackendError> {
        let version = backend.version().await?;
        if self.version != Some(version) {
            // A batch landing between the two calls leaves the list newer than its version;
            // the next reconcile then sees a new version and lists again. Never older.
            self.resources = backend.heads().await?;
            self.version = Some(version);
        }
        Ok(&self.resources)
    }

    /// The organization the backend acts in (asked only once).
    async fn org<B: Backend>(&self, backend: &B) -> Result<Option<String>, BackendError> {
        self.org.get_or_try_init(|| async { Ok(backend.whoami().await?.org) }).await.cloned()
    }

    /// Takes in our own batch. When it was the only commit since the listing, only what it
    /// wrote is fetched again; otherwise the listing is forgotten.
    async fn record<B: Backend>(&mut self, backend: &B, receipt: &ApplyReceipt) {
        let follows = matches!((self.version, receipt.version), (Some(listed), Some(now)) if now == listed + 1);
        self.version = None;
        if !follows || receipt.written.len() > PATCH_LIMIT {
            return;
        }
        for written in &receipt.written {
            let Ok(current) = backend.get(written.kind, &written.name).await else { return };
            let key = |r: &ResourceHead| (r.kind.order(), r.name.clone());
            let wanted = (written.kind.order(), written.name.clone());
            match (self.resources.binary_search_by(|r| key(r).cmp(&wanted)), current) {
                (Ok(at), Some(resource)) => self.resources[at] = resource.head(),
                (Ok(at), None) => {
                    self.resources.remove(at);
                }
                (Err(at), Some(resource)) => self.resources.insert(at, resource.head()),
                (Err(_), None) => {}
            }
        }
        self.version = receipt.version;
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Whether a changed path can matter: a manifest, the project file, a directory (created,
/// removed, renamed), or any file in a skill directory. Editors' temporary, swap and backup
/// files do not.
fn relevant(path: &Path, skill_dirs: &[PathBuf]) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else { return false };
    if name.starts_with('.') || name.ends_with('~') || (name.starts_with('#') && name.ends_with('#')) {
        return false;
    }
    let manifest = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    manifest
        || path.is_dir()
        || !path.exists()
        || std::path::absolute(path).is_ok_and(|path| skill_dirs.iter().any(|dir| path.starts_with(dir)))
}

/// Watches the inputs and reconciles until `shutdown` completes. A reconcile in progress when
/// it does runs to its end (one batch: all written or nothing).
///
/// # Errors
/// Standard input was given, or the files cannot be watched.
pub async fn run<B: Backend>(
    backend: &B,
    inputs: Vec<InputPath>,
    options: &WatchOptions,
    mut report: impl FnMut(WatchReport),
    shutdown: impl Future<Output = ()>,
) -> Result<(), WatchError> {
    let mut workspace = Workspace::new(inputs)?;
    let (sender, mut events) = mpsc::unbounded_channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |event| {
        // The receiver only goes away when watching ends.
        let _ = sender.send(event);
    })
    .map_err(|source| WatchError::Watch { path: PathBuf::from("."), source })?;

    let started = Instant::now();
    let read = workspace.refresh(&HashSet::new());
    let mut watched_roots = HashSet::new();
    watch_new_roots(&mut watcher, &workspace, &mut watched_roots)?;
    let mut observed = ObservedCache::default();
    let mut marked = std::collections::BTreeSet::new();
    let outcome = reconcile(backend, &mut observed, &workspace, options, read, started, &mut report).await;
    let mut retry = Retry::default();
    retry.after(outcome);

    let mut timer = options.interval.map(|period| {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    tokio::pin!(shutdown);
    loop {
        let tick = async {
            match timer.as_mut() {
                Some(timer) => {
                    timer.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let retry_due = retry.due();
        let skill_dirs = workspace.skill_dirs();
        let outcome = tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                let first_event = Instant::now();
                let mut changed = HashSet::new();
                collect(event, &mut changed, &skill_dirs);
                // Debounce: wait until the files have been quiet for a moment.
                while let Ok(Some(event)) = tokio::time::timeout(options.debounce, events.recv()).await {
                    collect(event, &mut changed, &skill_dirs);
                }
                if changed.is_empty() {
                    continue;
                }
                let read = workspace.refresh(&changed);
                watch_new_roots(&mut watcher, &workspace, &mut watched_roots)?;
                reconcile(backend, &mut observed, &workspace, options, read, first_event, &mut report).await
            }
            () = tick => {
                let started = Instant::now();
                let read = workspace.refresh(&HashSet::new());
                match options.drift {
                    Some(mode) => check_drift(backend, &mut observed, &workspace, options, mode, &mut marked, &mut report).await,
                    None => reconcile(backend, &mut observed, &workspace, options, read, started, &mut report).await,
                }
            }
            () = retry_due => {
                let started = Instant::now();
                let read = workspace.refresh(&HashSet::new());
                reconcile(backend, &mut observed, &workspace, options, read, started, &mut report).await
            }
        };
        retry.after(outcome);
    }
}

/// When to try again after the backend failed: 1 s, then doubling up to 30 s, until a reconcile
/// gets through (a server restarting, a store busy for a while).
#[derive(Debug, Default)]
struct Retry {
    next: Option<(tokio::time::Instant, Duration)>,
}

impl Retry {
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(30);

    fn after(&mut self, outcome: Outcome) {
        self.next = match (outcome, self.next) {
            (Outcome::Done, _) => None,
            (Outcome::Failed, None) => Some((tokio::time::Instant::now() + Self::FIRST, Self::FIRST)),
            (Outcome::Failed, Some((_, pause))) => {
                let pause = (pause * 2).min(Self::LONGEST);
                Some((tokio::time::Instant::now() + pause, pause))
            }
        };
    }

    /// Completes when the retry is due; never, when none is pending.
    fn due(&self) -> impl Future<Output = ()> + use<> {
        let next = self.next.map(|(at, _)| at);
        async move {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }
}

fn collect(event: notify::Result<notify::Event>, changed: &mut HashSet<PathBuf>, skill_dirs: &[PathBuf]) {
    match event {
        // Reading files (ours included) produces access events; only changes matter.
        Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
        Ok(event) => changed.extend(event.paths.into_iter().filter(|p| relevant(p, skill_dirs))),
        // A lost event (queue overflow): look at everything again.
        Err(_) => {
            changed.insert(PathBuf::from("."));
        }
    }
}

fn watch_new_roots(
    watcher: &mut notify::RecommendedWatcher,
    workspace: &Workspace,
    roots: &mut HashSet<PathBuf>,
) -> Result<(), WatchError> {
    for (path, mode) in workspace.watch_roots() {
        if roots.insert(path.clone()) {
            watcher.watch(&path, mode).map_err(|source| WatchError::Watch { path, source })?;
        }
    }
    Ok(())
}

/// One level-triggered reconcile: the files as they are against the backend as it is.
async fn reconcile<B: Backend>(
    backend: &B,
    observed: &mut ObservedCache,
    workspace: &Workspace,
    options: &WatchOptions,
    files_read: usize,
    started: Instant,
    report: &mut impl FnMut(WatchReport),
) -> Outcome {
    let Checked { set, outcomes } = workspace.snapshot();
    // One retry when the backend moved between plan and apply: the second plan sees the move.
    for attempt in 0..2 {
        let prepared = match planned(backend, observed, &set, outcomes.clone(), options).await {
            Ok(prepared) => prepared,
            Err(error) => return failed(report, error),
        };
        let Some(plan) = prepared.plan else {
            report(WatchReport::Invalid { at: Timestamp::now(), diagnostics: prepared.validation.diagnostics, set });
            return Outcome::Done;
        };
        // Inline secret values go to the secret store first (only those that changed).
        if let Err(error) = super::sync_inline(backend, &prepared.secrets, false).await {
            return failed(report, error);
        }
        if !plan.has_changes() {
            report(WatchReport::Unchanged { files_read });
            return Outcome::Done;
        }
        match apply(backend, &plan, false).await {
            Ok(receipt) => {
                let took = started.elapsed();
                observed.record(backend, &receipt).await;
                report(WatchReport::Applied { at: Timestamp::now(), plan, took, files_read });
                return Outcome::Done;
            }
            Err(ReconcileError::Backend(BackendError::Conflict { .. })) if attempt == 0 => {}
            Err(error) => return failed(report, error),
        }
    }
    Outcome::Done
}

/// The files of `set` planned against the backend as the cache sees it.
async fn planned<B: Backend>(
    backend: &B,
    observed: &mut ObservedCache,
    set: &ManifestSet,
    outcomes: Vec<DocumentOutcome>,
    options: &WatchOptions,
) -> Result<super::Prepared, ReconcileError> {
    let org = if names_an_org(&outcomes) { observed.org(backend).await? } else { None };
    let resources = observed.current(backend).await?;
    prepare_observed(backend, set, outcomes, Observed { resources, org: org.as_deref() }, &options.plan).await
}

/// The periodic check of a drift mode: the files as they are against the store as it is, and
/// what the mode says about any difference. Inline secrets are left alone: a changed secret
/// value is not drift anyone can see.
async fn check_drift<B: Backend>(
    backend: &B,
    observed: &mut ObservedCache,
    workspace: &Workspace,
    options: &WatchOptions,
    mode: DriftMode,
    marked: &mut std::collections::BTreeSet<String>,
    report: &mut impl FnMut(WatchReport),
) -> Outcome {
    let Checked { set, outcomes } = workspace.snapshot();
    let prepared = match planned(backend, observed, &set, outcomes, options).await {
        Ok(prepared) => prepared,
        Err(error) => return failed(report, error),
    };
    let Some(plan) = prepared.plan else {
        report(WatchReport::Invalid { at: Timestamp::now(), diagnostics: prepared.validation.diagnostics, set });
        return Outcome::Done;
    };
    let drifted = match super::drift::drifted(backend, &plan).await {
        Ok(drifted) => drifted,
        Err(error) => return failed(report, error.into()),
    };
    let result = match mode {
        DriftMode::Detect => Ok(()),
        DriftMode::Warn => super::drift::mark(backend, &drifted, marked).await.map_err(ReconcileError::from),
        DriftMode::Correct => match super::correct(backend, &plan).await {
            Ok(receipt) => {
                observed.record(backend, &receipt).await;
                Ok(())
            }
            Err(error) => Err(error),
        },
    };
    if let Err(error) = result {
        return failed(report, error);
    }
    if !drifted.is_empty() {
        report(WatchReport::Drifted { at: Timestamp::now(), mode, drifted });
    }
    Outcome::Done
}

/// Whether a reconcile needs another try without waiting for a file event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Applied, unchanged, or the files are invalid (the next edit tries again).
    Done,
    /// The backend failed (unreachable, busy, moved); try again soon.
    Failed,
}

fn failed(report: &mut impl FnMut(WatchReport), error: ReconcileError) -> Outcome {
    // A plan the reconciler refuses (ownership, prune) waits for an edit like invalid files do;
    // a backend failure is retried, so a restarted server is caught up without an edit.
    let retry = matches!(error, ReconcileError::Backend(_));
    report(WatchReport::Failed { at: Timestamp::now(), error });
    if retry { Outcome::Failed } else { Outcome::Done }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_files_are_not_relevant() {
        let dir = tempfile::tempdir().unwrap();
        for name in [".agent.yaml.swp", "agent.yaml~", ".#agent.yaml", "#agent.yaml#", "notes.txt"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "x").unwrap();
            assert!(!relevant(&path, &[]), "{name}");
        }
        let manifest = dir.path().join("agent.yaml");
        assert!(relevant(&manifest, &[]), "a manifest, even one that is gone");
        let sub = dir.path().join("manifests");
        std::fs::create_dir(&sub).unwrap();
        assert!(relevant(&sub, &[]), "a directory");
        assert!(relevant(&dir.path().join("removed-dir"), &[]), "something that is gone");
    }

    #[test]
    fn files_in_skill_directories_are_relevant() {
        let dir = tempfile::tempdir().unwrap();
        let skill = dir.path().join("skills/tool");
        std::fs::create_dir_all(&skill).unwrap();
        std::fs::write(skill.join("SKILL.md"), "# Tool").unwrap();
        std::fs::write(skill.join(".SKILL.md.swp"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let manifest =
            "apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: tool\nspec:\n  path: skills/tool\n";
        std::fs::write(dir.path().join("skills.yaml"), manifest).unwrap();
        let mut workspace = Workspace::new(vec![InputPath::Path(dir.path().to_path_buf())]).unwrap();
        workspace.refresh(&HashSet::new());
        let skill_dirs = workspace.skill_dirs();
        assert!(relevant(&skill.join("SKILL.md"), &skill_dirs), "{skill_dirs:?}");
        assert!(!relevant(&skill.join(".SKILL.md.swp"), &skill_dirs), "editor files still do not matter");
        assert!(!relevant(&dir.path().join("notes.txt"), &skill_dirs), "other files still do not matter");
    }

    #[test]
    fn refresh_reads_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let skill = |name: &str| {
            format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: x\n")
        };
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("s{i}.yaml")), skill(&format!("s{i}"))).unwrap();
        }
        let mut workspace = Workspace::new(vec![InputPath::Path(dir.path().to_path_buf())]).unwrap();
        assert_eq!(workspace.refresh(&HashSet::new()), 5);
        assert_eq!(workspace.refresh(&HashSet::new()), 0, "nothing changed");
        let changed = dir.path().join("s2.yaml");
        assert_eq!(workspace.refresh(&HashSet::from([changed])), 1);
        std::fs::remove_file(dir.path().join("s4.yaml")).unwrap();
        std::fs::write(dir.path().join("s9.yaml"), skill("s9")).unwrap();
        assert_eq!(workspace.refresh(&HashSet::new()), 1, "only the new file");
        let Checked { set, outcomes } = workspace.snapshot();
        assert_eq!(set.documents.len(), 5);
        assert_eq!(outcomes.len(), 5);
        assert!(outcomes.iter().all(|o| o.resource.is_some()));
    }

    #[tokio::test]
    async fn the_cached_listing_follows_our_writes_and_drops_on_others() {
        use crate::model::{AnyResource, Skill, SkillSpec};
        use crate::reconcile::{Desired, plan};
        use crate::store::redb::LocalBackend;

        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("local.db"), "tester");
        let options = PlanOptions { apply_set: Some("s".into()), prune: true, ..PlanOptions::default() };
        let skills = |names: &[&str]| -> Vec<Desired> {
            names.iter().map(|n| Desired::new(AnyResource::from(Skill::new(*n, SkillSpec::markdown(*n))))).collect()
        };
        let mut cache = ObservedCache::default();
        for wanted in [&["a", "b", "c"][..], &["a", "c", "d"], &["d"]] {
            cache.current(&backend).await.unwrap();
            let current = backend.list(&crate::backend::ResourceQuery::all()).await.unwrap();
            let receipt = apply(&backend, &plan(&skills(wanted), &current, &options).unwrap(), false).await.unwrap();
            cache.record(&backend, &receipt).await;
            assert_eq!(cache.version, receipt.version, "our own batch keeps the listing");
            assert_eq!(cache.resources, backend.heads().await.unwrap());
        }
        // Someone else commits: the listing is stale and is taken again.
        let other = LocalBackend::new(dir.path().join("local.db"), "other");
        let current = other.list(&crate::backend::ResourceQuery::all()).await.unwrap();
        apply(&other, &plan(&skills(&["d", "e"]), &current, &options).unwrap(), false).await.unwrap();
        let seen = cache.current(&backend).await.unwrap().iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(seen, ["d", "e"]);
    }

    #[test]
    fn stdin_cannot_be_watched() {
        assert!(matches!(Workspace::new(vec![InputPath::Stdin]), Err(WatchError::Stdin)));
    }
}
