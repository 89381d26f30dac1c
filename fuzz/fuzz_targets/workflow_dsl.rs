//! The Serverless Workflow document parser (the typed DSL model, read from YAML as `stigmer
//! workflow run -f` reads a bare document) on arbitrary text. Whatever it accepts must write
//! back and read again as the same document, and its task walker must visit it without panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stigmer::model::dsl::Workflow;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(workflow) = serde_saphyr::from_str::<Workflow>(text) else { return };
    let mut tasks = 0_usize;
    workflow.walk_all_tasks("", &mut |_| tasks += 1);
    let value = serde_json::to_value(&workflow).expect("a document that was read writes back");
    let again: Workflow = serde_json::from_value(value).expect("a document written back reads again");
    assert_eq!(again, workflow, "a document changes when written back and read again");
});
