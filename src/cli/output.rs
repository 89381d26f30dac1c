//! `-o table|wide|yaml|json|name`: the one output convention of every read verb, as kubectl's.
//!
//! - `table` (the default, on a terminal and in a pipe alike) and `wide` (more columns) are for
//!   people;
//! - `json` and `yaml` are for programs: a verb that shows one thing prints that object; a verb
//!   that lists prints `{"apiVersion": "v1", "kind": "List", "items": [...]}` in JSON and a
//!   multi-document stream (`---` between items) in YAML, which `kubectl`-minded tools and
//!   `stigmer import` both read;
//! - `name` prints one name per line (`agent/support-bot`, an execution's id), for `xargs`.

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use super::CommandError;
use super::common;

/// How a read verb prints what it read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Columns for people.
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// YAML: the object, or a multi-document stream of the items.
    Yaml,
    /// JSON: the object, or `{"kind": "List", "items": [...]}`.
    Json,
    /// One name per line.
    Name,
}

/// The `-o/--output` flag, shared by every read verb.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Output format: table, wide, yaml, json or name.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table, value_name = "FORMAT")]
    pub output: OutputFormat,
}

/// What a verb that lists prints, in the format asked for.
///
/// `table` gets `wide` to say whether to add columns; `name` gives each item's name; an empty
/// list in `table` or `wide` prints nothing on stdout (the verb says so on stderr).
pub fn list<T: Serialize>(
    format: OutputFormat,
    items: &[T],
    table: impl FnOnce(bool) -> String,
    name: impl Fn(&T) -> String,
) -> Result<String, CommandError> {
    match format {
        OutputFormat::Table => Ok(table(false)),
        OutputFormat::Wide => Ok(table(true)),
        OutputFormat::Name => Ok(items.iter().map(|item| name(item) + "\n").collect()),
        OutputFormat::Json => common::json(&json!({"apiVersion": "v1", "kind": "List", "items": values(items)?})),
        OutputFormat::Yaml => Ok(values(items)?.iter().map(yaml).collect::<Vec<_>>().join("---\n")),
    }
}

/// What a verb that shows one thing prints, in the format asked for.
pub fn one<T: Serialize>(
    format: OutputFormat,
    item: &T,
    text: impl FnOnce(bool) -> String,
    name: impl Fn(&T) -> String,
) -> Result<String, CommandError> {
    match format {
        OutputFormat::Table => Ok(text(false)),
        OutputFormat::Wide => Ok(text(true)),
        OutputFormat::Name => Ok(name(item) + "\n"),
        OutputFormat::Json => common::json(item),
        OutputFormat::Yaml => Ok(yaml(&value(item)?)),
    }
}

/// Whether a table (or wide table) of nothing would be printed: the verb then says so on stderr.
pub fn is_empty_table<T>(format: OutputFormat, items: &[T]) -> bool {
    items.is_empty() && matches!(format, OutputFormat::Table | OutputFormat::Wide)
}

fn value<T: Serialize>(item: &T) -> Result<Value, CommandError> {
    serde_json::to_value(item).map_err(|e| CommandError::user(format!("cannot encode the output: {e}")))
}

fn values<T: Serialize>(items: &[T]) -> Result<Vec<Value>, CommandError> {
    items.iter().map(value).collect()
}

fn yaml(value: &Value) -> String {
    crate::model::canonical::to_yaml(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_prints_as_itself_and_lists_as_a_list() {
        let items = [json!({"name": "a"}), json!({"name": "b"})];
        let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_owned();
        let listed: Value =
            serde_json::from_str(&list(OutputFormat::Json, &items, |_| String::new(), name).unwrap()).unwrap();
        assert_eq!(listed, json!({"apiVersion": "v1", "kind": "List", "items": items}));
        assert_eq!(list(OutputFormat::Yaml, &items, |_| String::new(), name).unwrap(), "name: a\n---\nname: b\n");
        assert_eq!(list(OutputFormat::Name, &items, |_| String::new(), name).unwrap(), "a\nb\n");
        assert_eq!(list(OutputFormat::Wide, &items, |wide| format!("wide={wide}"), name).unwrap(), "wide=true");
        let shown: Value =
            serde_json::from_str(&one(OutputFormat::Json, &items[0], |_| String::new(), name).unwrap()).unwrap();
        assert_eq!(shown, items[0]);
        assert_eq!(one(OutputFormat::Yaml, &items[0], |_| String::new(), name).unwrap(), "name: a\n");
        assert!(is_empty_table::<Value>(OutputFormat::Table, &[]) && !is_empty_table::<Value>(OutputFormat::Json, &[]));
    }
}
