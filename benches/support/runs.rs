//! Executions for the benches to run.

use serde_json::json;
use stigmer::backend::{Definition, ExecutionRecord, ExecutionStatus};

use super::corpus::BenchResult;

/// A pending execution of a one-`set`-task workflow.
pub fn one_task_run() -> BenchResult<ExecutionRecord> {
    let workflow = serde_json::from_value(json!({
        "document": { "dsl": "1.0.0", "namespace": "bench", "name": "one", "version": "0.1.0" },
        "do": [{ "only": { "set": { "done": true } } }],
    }))?;
    let definition =
        Definition { workflow, env_spec: None, workflows: std::collections::BTreeMap::new(), env: Vec::new() };
    let mut record = ExecutionRecord::new(
        uuid::Uuid::new_v4().to_string(),
        "file:bench.yaml".to_owned(),
        "bench".to_owned(),
        json!({}),
        ExecutionStatus::Pending,
    );
    record.definition = Some(serde_json::to_value(&definition)?);
    Ok(record)
}
