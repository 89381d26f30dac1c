//! Property tests of `stigmer export` and `stigmer import`: resources of every declarative kind,
//! full of text YAML finds awkward (scalars that read as other types, quotes, backslashes,
//! control and non-BMP characters, multi-line text with trailing spaces, very long lines, keys
//! spelled like fields) and free-form data with numbers at the edges, are exported exactly as
//! the command exports them, read back through the real loader and validator, and planned as an
//! import plans them. The import must report no error and store the same resources, and
//! exporting again must give the same bytes. Skills applied from directories on disk are also
//! exported with `-o FILE` (their files written beside it) and imported from that file.
//!
//! Everything runs in process, with the store's JSON encoding but no store, so a case costs
//! milliseconds; `tests/round_trip.rs` runs manifests through the binary, from `apply` to a
//! second `export`. The generators are in `support/resources.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use proptest::prelude::*;
use serde_json::Value;
use stigmer::backend::StoredResource;
use stigmer::manifest::{InputPath, load};
use stigmer::model::{AnyResource, Kind};
use stigmer::reconcile::{self, Change, Desired, PlanOptions, export};
use stigmer::store::redb::LocalBackend;
use stigmer::validate::check_document;
use support::resources::resources;

mod support;

// ---------------------------------------------------------------------------------------------
// Export and import, as the commands do them

/// What a store holds after applying `resources` the way `apply` does: inline secrets moved
/// out, canonical manifests, listed in the store's order.
fn stored(resources: &[AnyResource]) -> Vec<StoredResource> {
    let desired: Vec<Desired> = resources.iter().cloned().map(Desired::new).collect();
    let (desired, _secrets) = reconcile::secrets::extract_inline(desired);
    let mut stored: Vec<StoredResource> =
        desired.iter().map(|d| store(d.resource.kind(), d.resource.name(), &d.manifest(), &d.canonical.hash)).collect();
    stored.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
    stored
}

/// One resource written the way both backends write it: the manifest as JSON bytes.
fn store(kind: Kind, name: &str, manifest: &Value, hash: &str) -> StoredResource {
    let now = jiff::Timestamp::UNIX_EPOCH;
    StoredResource {
        kind,
        name: name.to_owned(),
        uid: "uid".into(),
        generation: 1,
        created_at: now,
        updated_at: now,
        hash: hash.to_owned(),
        apply_set: None,
        manifest: serde_json::from_slice(&serde_json::to_vec(manifest).unwrap()).unwrap(),
        status: None,
    }
}

/// `stigmer import` of `text` (read as from stdin) into an empty store: every diagnostic as
/// text when it does not validate, else what the store holds afterwards.
fn import(text: &str) -> Result<Vec<StoredResource>, String> {
    import_from(&[InputPath::Stdin], &mut text.as_bytes())
}

/// `stigmer import -f INPUTS` into an empty store, as [`import`].
fn import_from(inputs: &[InputPath], stdin: &mut dyn std::io::Read) -> Result<Vec<StoredResource>, String> {
    let set = load(inputs, stdin);
    let outcomes = set.documents.iter().map(|document| check_document(&set, document)).collect();
    // Planned against an empty store: nothing stored is read, so the store is never opened.
    let unopened = LocalBackend::new(std::env::temp_dir().join("stigmer-never-opened.db"), "tester");
    let options = PlanOptions::default();
    let planning = reconcile::prepare_observed(&unopened, &set, outcomes, reconcile::Observed::local(&[]), &options);
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| e.to_string())?;
    let prepared = runtime.block_on(planning).map_err(|e| e.to_string())?;
    let errors: Vec<String> = prepared
        .validation
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!("{} {}: {}", d.code, d.location.as_ref().map(ToString::to_string).unwrap_or_default(), d.message)
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let plan = prepared.plan.ok_or("no plan")?;
    let mut stored: Vec<StoredResource> = plan
        .changes
        .iter()
        .map(|change| match change {
            Change::Create { kind, name, after } => {
                store(*kind, name, after, &stigmer::reconcile::canonical::hash(after))
            }
            other => panic!("an import into an empty store only creates: {other:?}"),
        })
        .collect();
    stored.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
    Ok(stored)
}

/// (kind, name, hash) of each resource, to compare sets of resources.
fn identities(resources: &[StoredResource]) -> Vec<(Kind, String, String)> {
    resources.iter().map(|r| (r.kind, r.name.clone(), stigmer::reconcile::canonical::hash(&r.manifest))).collect()
}

/// The property for one store's content: export, import into an empty store, export again.
fn round_trip(stored: &[StoredResource]) -> Result<(), TestCaseError> {
    let first = export::export(stored, None);
    let text = first.stream();
    let imported = match import(&text) {
        Ok(imported) => imported,
        Err(errors) => {
            return Err(TestCaseError::fail(format!("the export does not import:\n{errors}\n---- export:\n{text}")));
        }
    };
    // What was exported is what the import stores: same resources, same canonical content.
    let expected: Vec<StoredResource> =
        stored.iter().zip(&first.manifests).map(|(r, manifest)| store(r.kind, &r.name, manifest, "")).collect();
    prop_assert_eq!(identities(&imported), identities(&expected), "export:\n{}", text);
    for (imported, expected) in imported.iter().zip(&expected) {
        prop_assert_eq!(&imported.manifest, &expected.manifest, "export:\n{}", text);
    }
    let again = export::export(&imported, None).stream();
    prop_assert!(again == text, "the second export differs:\n---- first:\n{}\n---- second:\n{}", text, again);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    // At least one resource: an empty store exports an empty stream, which the loader reports
    // as an empty file; the `import` command turns that into "nothing to import"
    // (`an_empty_store_exports_a_stream_that_imports_as_nothing` in tests/apply.rs).
    #[test]
    fn export_import_export_gives_the_same_resources_and_bytes(
        resources in resources().prop_filter("the empty stream is tested through the binary", |r| !r.is_empty())
    ) {
        round_trip(&stored(&resources))?;
    }
}

/// Skills applied from directories on disk and exported with `-o FILE` (Unix: file modes and
/// any byte but `/` and NUL in names).
#[cfg(unix)]
mod files {
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    use stigmer::manifest::skill_dir::{SkillDirError, read_skill_dir};
    use stigmer::model::{Skill, SkillSpec};
    use stigmer::runner::skills::write_bundle;

    use super::*;
    use crate::support::resources::{chars, name, text};

    /// Characters of file names in skill directories: any a Unix name may hold but `/` and NUL,
    /// chosen for trouble (`.` starts hidden names, which reading skips).
    #[rustfmt::skip]
    const FILE_NAME_CHARS: &[char] = &[
        'a', 'b', 'x', 'Z', '0', '1', ' ', '-', '_', '.', '\\', '\n', '\t', ':', '*', '?', '"', '\'', '#', '~', 'é', '🚀',
    ];

    /// A file tree on disk: files, and directories of files, with distinct names.
    type Tree = (BTreeMap<String, (Vec<u8>, bool)>, BTreeMap<String, Vec<(String, Vec<u8>, bool)>>);

    fn file_content() -> BoxedStrategy<(Vec<u8>, bool)> {
        (prop_oneof![text().prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..64)], any::<bool>())
            .boxed()
    }

    fn tree() -> BoxedStrategy<Tree> {
        let file_name = || chars(FILE_NAME_CHARS, 1..6).prop_filter("not . or ..", |n| n != "." && n != "..");
        let files = prop::collection::btree_map(file_name(), file_content(), 0..4);
        let directory = prop::collection::vec((file_name(), file_content()), 1..3).prop_map(|files| {
            files.into_iter().map(|(name, (bytes, executable))| (name, bytes, executable)).collect::<Vec<_>>()
        });
        let directories = prop::collection::btree_map(file_name(), directory, 0..2);
        (files, directories)
            .prop_filter("a name is a file or a directory", |(files, directories)| {
                files.keys().all(|name| !directories.contains_key(name) && name != "SKILL.md")
            })
            .boxed()
    }

    /// Skill directories as people keep them: `SKILL.md` and a tree of files with awkward names.
    fn skill_directories() -> BoxedStrategy<Vec<(String, String, Tree)>> {
        prop::collection::btree_set(name(), 1..=3)
            .prop_flat_map(|names| names.into_iter().map(|name| (Just(name), text(), tree())).collect::<Vec<_>>())
            .boxed()
    }

    /// Writes a skill directory at `dir`.
    fn write_tree(dir: &Path, skill_md: &str, (files, directories): &Tree) {
        let write = |path: &Path, bytes: &[u8], executable: bool| {
            fs::write(path, bytes).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 })).unwrap();
        };
        fs::create_dir_all(dir).unwrap();
        write(&dir.join("SKILL.md"), skill_md.as_bytes(), false);
        for (name, (bytes, executable)) in files {
            write(&dir.join(name), bytes, *executable);
        }
        for (name, files) in directories {
            fs::create_dir_all(dir.join(name)).unwrap();
            for (file, bytes, executable) in files {
                write(&dir.join(name).join(file), bytes, *executable);
            }
        }
    }

    /// The property for skills applied from directories and exported with `-o FILE`: their files
    /// are written to a directory beside the file, `import -f FILE` reads them back into the same
    /// bundles, and exporting again gives the same bytes.
    fn round_trip_through_files(skills: &[(String, String, Tree)]) -> Result<(), TestCaseError> {
        let scratch = tempfile::tempdir().unwrap();
        // What applying the skills' directories stores (a directory that cannot be read as a
        // skill is refused there, with a diagnostic, and never stored).
        let mut resources: Vec<AnyResource> = Vec::new();
        for (name, skill_md, tree) in skills {
            let source = scratch.path().join("source").join(name);
            write_tree(&source, skill_md, tree);
            let bundle = match read_skill_dir(&source) {
                Ok(bundle) => bundle,
                // The one name a Unix directory may hold that a skill may not.
                Err(SkillDirError::Backslash { .. }) => continue,
                Err(error) => return Err(TestCaseError::fail(format!("skill {name} cannot be read: {error}"))),
            };
            // Applied from where the export writes it, so the stored path is the exported one.
            let spec = SkillSpec { bundle: Some(bundle), ..SkillSpec::directory(format!("all.skills/{name}")) };
            resources.push(Skill::new(name.clone(), spec).into());
        }
        prop_assume!(!resources.is_empty());
        let stored = stored(&resources);
        let first = export::export(&stored, Some("all.skills"));
        prop_assert_eq!(first.skill_directories.len(), stored.len());
        // What `stigmer export -o all.yaml` writes.
        let out = scratch.path().join("out");
        for (name, bundle) in &first.skill_directories {
            let written = write_bundle(bundle, &out.join("all.skills").join(name));
            prop_assert!(written.is_ok(), "skill {} was stored but cannot be exported: {:?}", name, written);
        }
        let file = out.join("all.yaml");
        let text = first.stream();
        fs::write(&file, &text).unwrap();

        let imported = match import_from(&[InputPath::Path(file)], &mut std::io::empty()) {
            Ok(imported) => imported,
            Err(errors) => {
                return Err(TestCaseError::fail(format!(
                    "the export does not import:\n{errors}\n---- export:\n{text}"
                )));
            }
        };
        // The same skills: same path and, read from the directories, the same files and digest.
        prop_assert_eq!(identities(&imported), identities(&stored), "export:\n{}", text);
        let again = export::export(&imported, Some("all.skills"));
        prop_assert!(
            again.stream() == text,
            "the second export differs:\n---- first:\n{}\n---- second:\n{}",
            text,
            again.stream()
        );
        prop_assert_eq!(again.skill_directories, first.skill_directories);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn skills_exported_to_a_file_import_with_the_same_files(skills in skill_directories()) {
            round_trip_through_files(&skills)?;
        }
    }
}
