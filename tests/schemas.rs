//! The committed JSON Schemas under `schemas/` match the Rust types, and every example
//! validates against them with an independent validator (the `jsonschema` crate).
//! Refresh them with `UPDATE_SCHEMAS=1 cargo test --test schemas`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::fs;
use std::path::PathBuf;

use stigmer::model::Kind;
use stigmer::schema;

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn committed_schemas_match_the_rust_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut generated: Vec<(String, String)> =
        Kind::ALL.iter().map(|k| (schema::file_name(Some(*k)), schema::to_text(&schema::for_kind(*k)))).collect();
    generated.push((schema::file_name(None), schema::to_text(&schema::for_any_manifest())));
    let mut drifted = Vec::new();
    for (file, text) in generated {
        let path = schemas_dir().join(&file);
        if update {
            fs::write(&path, &text).unwrap();
        } else if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            drifted.push(file);
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas/{} differ from the Rust types; run `UPDATE_SCHEMAS=1 cargo test --test schemas` and commit",
        drifted.join(", schemas/")
    );
}

/// Every document of every example file, read with serde-saphyr directly (not stigmer's loader).
fn example_documents() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.file_name().is_some_and(|n| n != "stigmer.yaml")
            {
                let text = fs::read_to_string(&path).unwrap();
                for doc in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
                    out.push((path.display().to_string(), doc));
                }
            }
        }
    }
    out
}

#[test]
fn examples_validate_against_the_committed_schemas() {
    let load = |file: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(schemas_dir().join(file)).unwrap()).unwrap()
    };
    let any = jsonschema::validator_for(&load("manifest.json")).unwrap();
    let documents = example_documents();
    assert!(documents.len() >= 10);
    for (file, doc) in documents {
        let kind = Kind::from_manifest(doc["kind"].as_str().unwrap()).unwrap();
        let per_kind = jsonschema::validator_for(&load(&schema::file_name(Some(kind)))).unwrap();
        let errors: Vec<String> =
            per_kind.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{file} ({kind}): {errors:#?}");
        assert!(any.is_valid(&doc), "{file} ({kind}) fails manifest.json");
    }
}

#[test]
fn schemas_carry_descriptions_from_doc_comments() {
    let agent = schema::for_kind(Kind::Agent);
    let text = agent.to_string();
    assert!(text.contains("The system instructions the model follows."), "doc comments missing from the schema");
    assert_eq!(agent["title"], "Agent");
}
