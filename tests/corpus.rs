//! Data-driven manifest tests: every file under `tests/manifests/valid/` and `examples/`
//! validates cleanly; every case under `tests/manifests/invalid/` produces the diagnostics its
//! `# expect: CODE [FILE:]LINE:COL` lines (or its `.expect` sidecar) name, and the CLI's
//! rendering of each is pinned by a snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use stigmer::manifest::{self, InputPath};
use stigmer::validate::{NoResources, Validation, validate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validate_path(path: &Path) -> Validation {
    let set = manifest::load(&[InputPath::Path(path.to_path_buf())], &mut std::io::empty());
    validate(&set, &NoResources)
}

/// One expected diagnostic.
#[derive(Debug)]
struct Expected {
    code: String,
    file: Option<String>,
    line: u32,
    column: u32,
}

fn parse_expectation(text: &str) -> Expected {
    let (code, place) = text.trim().split_once(' ').unwrap_or_else(|| panic!("bad expectation {text:?}"));
    let mut parts: Vec<&str> = place.trim().rsplitn(3, ':').collect();
    parts.reverse();
    let (file, line, column) = match parts.as_slice() {
        [file, line, column] => (Some((*file).to_owned()), line, column),
        [line, column] => (None, line, column),
        _ => panic!("bad place in expectation {text:?}"),
    };
    Expected { code: code.to_owned(), file, line: line.parse().unwrap(), column: column.parse().unwrap() }
}

/// Expectations of a case: `# expect:` lines in the file, or a sidecar (`name.expect`, or
/// `expect` inside a directory case) for input that cannot carry comments.
fn expectations(case: &Path) -> Vec<Expected> {
    let sidecar = if case.is_dir() { case.join("expect") } else { case.with_extension("expect") };
    let text = if sidecar.exists() {
        fs::read_to_string(&sidecar).unwrap()
    } else {
        String::from_utf8_lossy(&fs::read(case).unwrap()).into_owned()
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect:").or_else(|| l.strip_prefix("expect:")))
        .map(parse_expectation)
        .collect()
}

fn invalid_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(root().join("tests/manifests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn the_invalid_corpus_is_large_enough() {
    assert!(invalid_cases().len() >= 40, "only {} invalid cases", invalid_cases().len());
}

#[test]
fn every_invalid_case_produces_its_diagnostics_with_file_and_line() {
    let mut failures = Vec::new();
    for case in invalid_cases() {
        let expected = expectations(&case);
        if expected.is_empty() {
            failures.push(format!("{}: no `# expect:` lines", case.display()));
            continue;
        }
        let validation = validate_path(&case);
        if !validation.has_errors() {
            failures.push(format!("{}: validated without errors", case.display()));
        }
        for diagnostic in &validation.diagnostics {
            if diagnostic.location.is_none() {
                failures.push(format!("{}: diagnostic without a location: {}", case.display(), diagnostic.message));
            }
        }
        for want in &expected {
            let found = validation.diagnostics.iter().any(|d| {
                let Some(location) = &d.location else { return false };
                let file_matches = match &want.file {
                    Some(file) => location.file.ends_with(file.as_str()),
                    None => Path::new(&location.file) == case,
                };
                d.code == want.code
                    && file_matches
                    && location.position.line == want.line
                    && location.position.column == want.column
            });
            if !found {
                let got: Vec<String> = validation
                    .diagnostics
                    .iter()
                    .map(|d| {
                        format!("{} at {}", d.code, d.location.as_ref().map_or("?".to_owned(), ToString::to_string))
                    })
                    .collect();
                failures.push(format!("{}: expected {want:?}; got {got:?}", case.display()));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_cli_renders_each_invalid_case() {
    for case in invalid_cases() {
        let relative = case.strip_prefix(root()).unwrap().to_path_buf();
        let output = Command::cargo_bin("stigmer")
            .unwrap()
            .current_dir(root())
            .env("NO_COLOR", "1")
            .args(["validate", "-f"])
            .arg(&relative)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", relative.display());
        let name = relative.file_stem().unwrap().to_string_lossy().into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        insta::assert_snapshot!(format!("invalid__{name}"), stderr);
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.yaml");
    let file = fs::File::create(&huge).unwrap();
    file.set_len(manifest::MAX_MANIFEST_BYTES + 1).unwrap();
    let started = std::time::Instant::now();
    let validation = validate_path(&huge);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let diagnostic = &validation.diagnostics[0];
    assert_eq!(diagnostic.code, "file-too-large");
    let location = diagnostic.location.as_ref().unwrap();
    assert_eq!((location.file.as_str(), location.position.line), (huge.to_str().unwrap(), 1));
}

#[test]
fn examples_and_valid_manifests_validate_without_any_diagnostic() {
    for dir in ["examples", "tests/manifests/valid"] {
        let validation = validate_path(&root().join(dir));
        assert!(validation.diagnostics.is_empty(), "{dir}: {:#?}", validation.diagnostics);
        assert!(!validation.resources.is_empty(), "{dir} has no resources");
    }
}

#[test]
fn examples_cover_every_declarative_kind() {
    let validation = validate_path(&root().join("examples"));
    for kind in stigmer::model::Kind::DECLARATIVE {
        assert!(validation.resources.iter().any(|r| r.resource.kind() == kind), "no {kind} in examples/");
    }
}

#[test]
fn a_ten_thousand_document_stream_loads() {
    let mut text = String::new();
    for i in 0..10_000 {
        let _ = write!(
            text,
            "---\napiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: skill-{i}\n  labels: {{batch: b{}}}\nspec:\n  description: Skill number {i}\n  skillMd: |\n    # Skill {i}\n    Do the thing number {i}.\n",
            i % 10
        );
    }
    let set = manifest::load(&[InputPath::Stdin], &mut text.as_bytes());
    let validation = validate(&set, &NoResources);
    assert!(validation.diagnostics.is_empty(), "{:?}", validation.diagnostics.first());
    assert_eq!(validation.resources.len(), 10_000);
}
