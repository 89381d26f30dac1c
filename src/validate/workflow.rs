//! Checks of a Workflow's Serverless Workflow document that a schema cannot express: every task
//! has a kind, task names are unique within their list, `then:` targets exist, and every jq
//! expression compiles. Plus conformance to the official DSL 1.0 schema.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::locate::{escape, readable};
use super::shapes::KnownFields;
use super::structure::{CompiledSchema, SchemaProblem, check};
use crate::expr;
use crate::manifest::did_you_mean;
use crate::model::workflow::DSL_VERSION;

/// The task kinds of DSL 1.0, in the order the reference lists them.
pub const TASK_KINDS: [&str; 12] =
    ["call", "do", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait"];

/// Flow directives that are not task names.
const DIRECTIVES: [&str; 3] = ["continue", "exit", "end"];

/// The official Serverless Workflow 1.0 JSON Schema, shipped with stigmer.
const DSL_SCHEMA_YAML: &str = include_str!("../../schemas/serverless-workflow/workflow.yaml");

fn dsl_schema() -> Option<&'static CompiledSchema> {
    static SCHEMA: OnceLock<Option<CompiledSchema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let json: Value = serde_saphyr::from_str(DSL_SCHEMA_YAML).ok()?;
            CompiledSchema::new(json)
        })
        .as_ref()
}

/// Checks the task structure of a workflow `spec` (already normalized) and collects its jq
/// expressions, which are compiled later, together with other documents' (see
/// [`expression_problems`]). Returns problems with pointers from the manifest root.
pub fn check_tasks(spec: &Value) -> (Vec<SchemaProblem>, Vec<PendingExpression>) {
    let mut problems = Findings::default();
    let Some(fields) = spec.as_object() else { return (Vec::new(), Vec::new()) };
    for (key, value) in fields {
        let pointer = format!("/spec/{}", escape(key));
        if STIGMER_FIELDS.contains(&key.as_str()) {
            // Not the DSL's: nothing in them is evaluated as an expression.
            continue;
        }
        if key == "do" {
            check_list(value, &pointer, &Scope::default(), &mut problems);
        } else if key == "schedule" {
            check_schedule(value, fields.get("schedulePolicy"), &pointer, &mut problems);
        } else {
            check_enclosed_expressions(value, &pointer, &Scope::default(), &mut problems);
        }
    }
    (problems.problems, problems.expressions)
}

/// The fields of a Workflow's spec that are Stigmer's, beside the DSL document's: its variable
/// declarations and its schedule's policy.
const STIGMER_FIELDS: [&str; 2] = ["envSpec", "schedulePolicy"];

/// Checks that a schedule can fire: a cron that parses, a time zone that exists, a duration that
/// is one. Shapes the schemas check are left to them.
fn check_schedule(schedule: &Value, policy: Option<&Value>, pointer: &str, problems: &mut Findings) {
    let Ok(parsed) = serde_json::from_value::<crate::model::dsl::Schedule>(schedule.clone()) else { return };
    let policy = policy.and_then(|p| serde_json::from_value::<crate::model::schedule::SchedulePolicy>(p.clone()).ok());
    if let Some(message) = crate::model::schedule::problem(&parsed, policy.as_ref()) {
        let field = ["cron", "every", "after"].into_iter().find(|f| schedule.get(f).is_some());
        let at = field.map_or_else(|| pointer.to_owned(), |f| format!("{pointer}/{f}"));
        let hint =
            "cron takes 5 fields (minute hour day month weekday) or 6 with seconds first, e.g. `0 9 * * MON-FRI`";
        problems.push(problem(at, "schedule", message, Some(hint.to_owned())));
    }
}

/// A jq expression found in a document, to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingExpression {
    /// The jq text.
    pub code: String,
    /// Where it is (JSON pointer from the manifest root).
    pub pointer: String,
    /// Variables in scope there besides the runtime ones, with `$`.
    pub variables: Vec<String>,
}

/// Compiles expressions together — compiling brings in jq's whole standard library, which
/// costs far more than any one expression — and returns a problem for each that does not
/// compile, with its index in `pending`.
#[must_use]
pub fn expression_problems(pending: &[PendingExpression]) -> Vec<(usize, SchemaProblem)> {
    let checks: Vec<expr::Expression<'_>> =
        pending.iter().map(|p| expr::Expression { code: &p.code, variables: &p.variables }).collect();
    expr::check_all(&checks)
        .into_iter()
        .zip(pending)
        .enumerate()
        .filter_map(|(index, (result, p))| result.err().map(|error| (index, expression_problem(p, &error))))
        .collect()
}

/// What the checks found: problems, and the expressions to compile.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<SchemaProblem>,
    expressions: Vec<PendingExpression>,
}

impl Findings {
    fn push(&mut self, problem: SchemaProblem) {
        self.problems.push(problem);
    }
}

/// Variables that tasks introduce for the expressions nested in them (`$item`, `$error`), with `$`.
#[derive(Debug, Clone, Default)]
struct Scope(Vec<String>);

impl Scope {
    fn with(&self, names: impl IntoIterator<Item = String>) -> Self {
        let mut inner = self.0.clone();
        inner.extend(names.into_iter().map(|n| format!("${}", n.trim_start_matches('$'))));
        Self(inner)
    }
}

/// Checks `spec` against the official DSL schema, with `document` derived when absent and
/// Stigmer's own fields set aside.
pub fn check_dsl_schema(spec: &Value, name: &str, known: &KnownFields<'_>) -> Vec<SchemaProblem> {
    let Some(schema) = dsl_schema() else {
        return Vec::new();
    };
    let mut document = spec.as_object().cloned().unwrap_or_default();
    for field in STIGMER_FIELDS {
        document.remove(field);
    }
    if !document.contains_key("document") {
        let header = serde_json::json!({"dsl": DSL_VERSION, "namespace": "default", "name": name, "version": "0.1.0"});
        document.insert("document".to_owned(), header);
    }
    check(schema, &Value::Object(document), "/spec", known)
        .into_iter()
        .map(|mut problem| {
            problem.hint.get_or_insert_with(|| "the Serverless Workflow 1.0 schema requires this".to_owned());
            problem
        })
        .collect()
}

fn problem(pointer: String, code: &'static str, message: String, hint: Option<String>) -> SchemaProblem {
    SchemaProblem { pointer, at_key: None, message, hint, code }
}

/// Checks one task list: shape, kinds, unique names, `then` targets; recurses into nested lists.
fn check_list(list: &Value, pointer: &str, scope: &Scope, problems: &mut Findings) {
    let Some(items) = list.as_array() else {
        return; // The schema reports a wrong type.
    };
    let names: Vec<&str> = items.iter().filter_map(single_entry).map(|(name, _)| name.as_str()).collect();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let item_pointer = format!("{pointer}/{index}");
        let Some((name, task)) = single_entry(item) else {
            problems.push(problem(
                item_pointer,
                "bad-task",
                format!(
                    "{} must be a mapping with exactly one key, the task's name",
                    readable(&format!("{pointer}/{index}"))
                ),
                Some("write each task as `- taskName: {call: …}`".to_owned()),
            ));
            continue;
        };
        let task_pointer = format!("{item_pointer}/{}", escape(name));
        if let Some(first) = first_seen.insert(name.as_str(), index) {
            problems.push(SchemaProblem {
                at_key: Some(name.clone()),
                ..problem(
                    item_pointer.clone(),
                    "duplicate-task",
                    format!("task name \"{name}\" is used twice in {}", readable(pointer)),
                    Some(format!("rename one of them; the first is {}", readable(&format!("{pointer}/{first}")))),
                )
            });
        }
        check_task(name, task, &task_pointer, &names, scope, problems);
    }
}

fn single_entry(item: &Value) -> Option<(&String, &Value)> {
    let map = item.as_object()?;
    if map.len() == 1 { map.iter().next() } else { None }
}

fn check_task(name: &str, task: &Value, pointer: &str, siblings: &[&str], scope: &Scope, problems: &mut Findings) {
    let Some(fields) = task.as_object() else {
        problems.push(problem(
            pointer.to_owned(),
            "bad-task",
            format!("task \"{name}\" must be a mapping, such as `{{set: …}}` or `{{call: http, with: …}}`"),
            None,
        ));
        return;
    };
    let Some(kind) =
        TASK_KINDS.iter().find(|k| fields.contains_key(**k) && !(**k == "do" && fields.contains_key("for")))
    else {
        let guess = fields.keys().find_map(|k| did_you_mean(k, TASK_KINDS));
        let hint = guess.map_or_else(
            || format!("a task has one of: {}", TASK_KINDS.join(", ")),
            |g| format!("did you mean \"{g}\"? a task has one of: {}", TASK_KINDS.join(", ")),
        );
        problems.push(problem(
            pointer.to_owned(),
            "unknown-task-kind",
            format!("task \"{name}\" has no known task kind"),
            Some(hint),
        ));
        return;
    };
    if let Some(target) = fields.get("then").and_then(Value::as_str) {
        check_then(target, &format!("task \"{name}\""), &format!("{pointer}/then"), siblings, problems);
    }
    // A `for` task's loop variables are in scope for `while` and its tasks, not for `for.in`.
    let loop_scope = fields.get("for").filter(|_| *kind == "for").map(|each| {
        let item = each.get("each").and_then(Value::as_str).unwrap_or("item").to_owned();
        let index = each.get("at").and_then(Value::as_str).unwrap_or("index").to_owned();
        scope.with([item, index])
    });
    for (key, value) in fields {
        let field_pointer = format!("{pointer}/{}", escape(key));
        match (*kind, key.as_str()) {
            ("do", "do") | ("try", "try") => check_list(value, &field_pointer, scope, problems),
            ("for", "do") => check_list(value, &field_pointer, loop_scope.as_ref().unwrap_or(scope), problems),
            ("for", "while") => {
                check_expression_field(value, &field_pointer, loop_scope.as_ref().unwrap_or(scope), problems);
            }
            ("for", "for") => {
                if let Some(source) = value.get("in") {
                    check_expression_field(source, &format!("{field_pointer}/in"), scope, problems);
                }
            }
            ("fork", "fork") => {
                if let Some(branches) = value.get("branches") {
                    check_list(branches, &format!("{field_pointer}/branches"), scope, problems);
                }
                if let Some(compete) = value.get("compete") {
                    check_enclosed_expressions(compete, &format!("{field_pointer}/compete"), scope, problems);
                }
            }
            ("try", "catch") => check_catch(value, &field_pointer, scope, problems),
            ("switch", "switch") => check_switch(name, value, &field_pointer, siblings, scope, problems),
            (_, "if") => check_expression_field(value, &field_pointer, scope, problems),
            _ => check_enclosed_expressions(value, &field_pointer, scope, problems),
        }
    }
}

fn check_then(target: &str, what: &str, pointer: &str, siblings: &[&str], problems: &mut Findings) {
    if DIRECTIVES.contains(&target) || siblings.contains(&target) {
        return;
    }
    let hint = did_you_mean(target, siblings.iter().copied()).map_or_else(
        || {
            format!(
                "`then` names a task of the same list, or continue, exit or end; tasks here: {}",
                siblings.join(", ")
            )
        },
        |s| format!("did you mean \"{s}\"?"),
    );
    problems.push(problem(
        pointer.to_owned(),
        "unknown-then-target",
        format!("{what} continues with \"{target}\", which is not a task of the same list"),
        Some(hint),
    ));
}

fn check_catch(catch: &Value, pointer: &str, scope: &Scope, problems: &mut Findings) {
    let Some(fields) = catch.as_object() else { return };
    let error_name = fields.get("as").and_then(Value::as_str).unwrap_or("error").to_owned();
    let error_scope = scope.with([error_name]);
    for (key, value) in fields {
        let field_pointer = format!("{pointer}/{}", escape(key));
        match key.as_str() {
            "do" => check_list(value, &field_pointer, &error_scope, problems),
            "when" | "exceptWhen" => check_expression_field(value, &field_pointer, &error_scope, problems),
            _ => check_enclosed_expressions(value, &field_pointer, &error_scope, problems),
        }
    }
}

fn check_switch(name: &str, cases: &Value, pointer: &str, siblings: &[&str], scope: &Scope, problems: &mut Findings) {
    for (i, case) in cases.as_array().into_iter().flatten().enumerate() {
        let Some((case_name, case)) = single_entry(case) else { continue };
        let case_pointer = format!("{pointer}/{i}/{}", escape(case_name));
        if let Some(when) = case.get("when") {
            check_expression_field(when, &format!("{case_pointer}/when"), scope, problems);
        }
        if let Some(target) = case.get("then").and_then(Value::as_str) {
            let what = format!("switch case \"{case_name}\" of task \"{name}\"");
            check_then(target, &what, &format!("{case_pointer}/then"), siblings, problems);
        }
    }
}

/// A field the DSL evaluates as an expression, where `${ }` may be left out (`if: .ok`).
fn check_expression_field(value: &Value, pointer: &str, scope: &Scope, problems: &mut Findings) {
    if let Some(code) = value.as_str() {
        check_expression(expr::enclosed(code).unwrap_or(code), pointer, scope, problems);
    }
}

/// Every `${ … }` string anywhere in the document.
fn check_enclosed_expressions(value: &Value, pointer: &str, scope: &Scope, problems: &mut Findings) {
    match value {
        Value::String(text) => {
            if let Some(code) = expr::enclosed(text) {
                check_expression(code, pointer, scope, problems);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_enclosed_expressions(item, &format!("{pointer}/{i}"), scope, problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_enclosed_expressions(item, &format!("{pointer}/{}", escape(key)), scope, problems);
            }
        }
        _ => {}
    }
}

fn check_expression(code: &str, pointer: &str, scope: &Scope, problems: &mut Findings) {
    problems.expressions.push(PendingExpression {
        code: code.to_owned(),
        pointer: pointer.to_owned(),
        variables: scope.0.clone(),
    });
}

fn expression_problem(pending: &PendingExpression, error: &expr::ExprError) -> SchemaProblem {
    let at = error.offset.map_or_else(String::new, |o| format!(" (at character {} of the expression)", o + 1));
    let in_scope: Vec<String> =
        expr::RUNTIME_VARIABLES.iter().map(|v| (*v).to_owned()).chain(pending.variables.iter().cloned()).collect();
    problem(
        pending.pointer.clone(),
        "bad-expression",
        format!("jq expression in {} does not compile: {}{at}", readable(&pending.pointer), error.message),
        Some(format!("the expression is `{}`; variables in scope: {}", pending.code, in_scope.join(", "))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(spec: &Value) -> Vec<(&'static str, String)> {
        let (mut problems, pending) = check_tasks(spec);
        problems.extend(expression_problems(&pending).into_iter().map(|(_, p)| p));
        problems.into_iter().map(|p| (p.code, p.pointer)).collect()
    }

    #[test]
    fn a_good_document_has_no_problems() {
        let spec = json!({"do": [
            {"a": {"set": {"x": "${ .y + 1 }"}, "then": "c"}},
            {"b": {"for": {"each": "i", "in": ".items"}, "while": ".ok", "do": [{"inner": {"set": {}}}]}},
            {"c": {"try": [{"t": {"wait": "PT1S"}}], "catch": {"when": ".status == 500", "do": [{"h": {"set": {}}}]}}},
            {"d": {"switch": [{"hi": {"when": ".x > 1", "then": "a"}}, {"other": {"then": "exit"}}]}}
        ]});
        assert_eq!(codes(&spec), vec![]);
    }

    #[test]
    fn nested_problems_are_found_with_their_pointers() {
        let spec = json!({"do": [
            {"a": {"set": {}}},
            {"a": {"set": {}, "then": "nowhere"}},
            {"b": {"fork": {"branches": [{"x": {"cal": "http"}}]}}},
            {"c": {"set": {"v": "${ .x | }"}, "if": "$nope"}}
        ]});
        let found = codes(&spec);
        assert!(found.contains(&("duplicate-task", "/spec/do/1".to_owned())), "{found:?}");
        assert!(found.contains(&("unknown-then-target", "/spec/do/1/a/then".to_owned())), "{found:?}");
        assert!(found.contains(&("unknown-task-kind", "/spec/do/2/b/fork/branches/0/x".to_owned())), "{found:?}");
        assert!(found.contains(&("bad-expression", "/spec/do/3/c/set/v".to_owned())), "{found:?}");
        assert!(found.contains(&("bad-expression", "/spec/do/3/c/if".to_owned())), "{found:?}");
    }

    #[test]
    fn loop_and_error_variables_are_in_scope_only_inside() {
        let spec = json!({"do": [
            {"loop": {"for": {"each": "queue", "in": ".names"}, "while": "$index < 3", "do": [
                {"count": {"set": {"q": "${ $queue }"}, "export": {"as": "${ $context + {($queue): 1} }"}}}
            ]}},
            {"guard": {"try": [{"t": {"set": {}}}], "catch": {"as": "failure", "when": "$failure.status == 503", "do": [
                {"log": {"set": {"why": "${ $failure.title }"}}}
            ]}}},
            {"after": {"set": {"q": "${ $queue }"}}}
        ]});
        let found = codes(&spec);
        assert_eq!(found, vec![("bad-expression", "/spec/do/2/after/set/q".to_owned())]);
    }

    /// What broke: a Workflow's `envSpec` description (plain text, never evaluated) that
    /// looked like `${ … }` was compiled as jq and refused the manifest (found by
    /// `tests/round_trip.rs`).
    #[test]
    fn text_in_stigmers_own_fields_is_never_compiled_as_jq() {
        let spec = json!({
            "do": [{"a": {"set": {"x": 1}}}],
            "envSpec": {"data": {"K": {"description": "${ .x }\n  not jq {a: b}  ", "value": "${ nor }"}}},
            "schedulePolicy": {"timezone": "${ z }"},
        });
        assert_eq!(codes(&spec), vec![]);
    }

    #[test]
    fn the_official_schema_loads_and_accepts_a_minimal_document() {
        let spec = json!({"do": [{"a": {"set": {"x": 1}}}]});
        assert!(dsl_schema().is_some());
        assert_eq!(check_dsl_schema(&spec, "wf", &KnownFields::none()), vec![]);
        let bad = json!({"do": [{"a": {"wait": {"minutes": "ten"}}}]});
        assert!(!check_dsl_schema(&bad, "wf", &KnownFields::none()).is_empty());
    }
}
