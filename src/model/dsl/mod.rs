//! CNCF Serverless Workflow DSL 1.0, as typed Rust.
//!
//! The types follow the official JSON Schema (`schema/workflow.yaml`) of the specification: every
//! task kind, call kind, process, authentication scheme, event and data shape. Documents read
//! with serde and written back give the same JSON value (optional collections are written only
//! when non-empty). [`schemars::JsonSchema`] derives an editor-friendly schema of the same shapes.
//!
//! Stigmer extends the DSL with one call kind, `call: agent` ([`CallAgent`]), which sends a
//! message to an `Agent` resource.
//!
//! ```
//! use stigmer::model::dsl::{Document, Task, TaskList, Workflow};
//!
//! let workflow = Workflow::new(
//!     Document::new("default", "triage", "0.1.0"),
//!     TaskList::new()
//!         .push("classify", Task::call_agent("support-bot", "${ .ticket.text }"))
//!         .push("notify", Task::call_http("post", "https://example.com/hooks/triage"))
//!         .push("done", Task::set(serde_json::json!({ "triaged": true })).then("end")),
//! );
//! let mut pointers = Vec::new();
//! workflow.walk_tasks("", &mut |visit| pointers.push(visit.pointer.clone()));
//! assert_eq!(pointers, ["/do/0/classify", "/do/1/notify", "/do/2/done"]);
//! ```

// Documents are built once and walked; boxing the big variants (a call task carries its whole
// argument tree) would only make pattern matching in callers clumsier.
#![allow(clippy::large_enum_variant, reason = "document model: size is irrelevant, matching must stay easy")]

mod auth;
mod base;
mod call;
mod data;
mod dispatch;
mod document;
pub mod duration;
mod event;
mod flow;
mod run;
mod support;
mod task;
mod walk;

pub(crate) use support::describe;

pub use auth::*;
pub use base::*;
pub use call::*;
pub use data::*;
pub use dispatch::*;
pub use document::*;
pub use event::*;
pub use flow::*;
pub use run::*;
pub use task::*;
pub use walk::*;

#[cfg(test)]
mod tests {
    //! Whole-document tests: every workflow example of the specification round-trips and is
    //! accepted by the generated schema; kind dispatch, flow directives and the walker.

    use std::path::{Path, PathBuf};

    use serde_json::{Value, json};

    use super::*;

    /// A fenced YAML block of the specification that is a whole workflow document.
    struct Example {
        file: &'static str,
        line: usize,
        heading: String,
        yaml: String,
        value: Value,
    }

    /// Examples the specification gets wrong, skipped by (file, heading).
    ///
    /// - dsl.md "Extensions": its YAML does not parse (`\(` is not a valid escape in a
    ///   double-quoted scalar), and its HTTP call sets `uri` instead of the required `endpoint`,
    ///   which the official schema rejects.
    const INVALID_EXAMPLES: &[(&str, &str)] = &[("dsl.md", "Extensions")];

    fn reference_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/serverless-workflow")
    }

    /// Every workflow example of `dsl-reference.md` and `dsl.md`, or `None` when the reference
    /// is not available.
    fn reference_examples() -> Option<Vec<Example>> {
        let mut examples = Vec::new();
        for file in ["dsl-reference.md", "dsl.md"] {
            let path = reference_dir().join(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                eprintln!("skipping: {} is not readable", path.display());
                return None;
            };
            let lines: Vec<&str> = text.lines().collect();
            let mut heading = String::new();
            let mut index = 0;
            while index < lines.len() {
                let line = lines[index];
                if line.starts_with('#') {
                    heading = line.trim_start_matches('#').trim().to_owned();
                }
                if line.trim_start().starts_with("```yaml") {
                    let start = index + 1;
                    let mut end = start;
                    while end < lines.len() && !lines[end].trim_start().starts_with("```") {
                        end += 1;
                    }
                    let block = lines[start..end].join("\n");
                    index = end;
                    if INVALID_EXAMPLES.contains(&(file, heading.as_str())) {
                        eprintln!("skipping the invalid example of {file} \"{heading}\" (line {start})");
                    } else {
                        let value: Value = serde_saphyr::from_str(&block)
                            .unwrap_or_else(|error| panic!("{file}:{start} ({heading}): YAML: {error}"));
                        if value.get("document").is_some() && value.get("do").is_some() {
                            examples.push(Example { file, line: start, heading: heading.clone(), yaml: block, value });
                        }
                    }
                }
                index += 1;
            }
        }
        Some(examples)
    }

    #[test]
    fn every_reference_example_round_trips() {
        let Some(examples) = reference_examples() else { return };
        for Example { file, line, heading, yaml, value } in &examples {
            let workflow: Workflow = serde_json::from_value(value.clone())
                .unwrap_or_else(|error| panic!("{file}:{line} ({heading}): {error}"));
            let written = serde_json::to_value(&workflow).unwrap();
            // `serde_json::Map` equality ignores key order, even with `preserve_order`.
            assert_eq!(&written, value, "{file}:{line} ({heading}) does not round-trip");
            let again: Workflow = serde_json::from_value(written).unwrap();
            assert_eq!(again, workflow, "{file}:{line} ({heading})");
            // Straight from and back to YAML, without going through `serde_json::Value`.
            let direct: Workflow =
                serde_saphyr::from_str(yaml).unwrap_or_else(|error| panic!("{file}:{line}: {error}"));
            assert_eq!(direct, workflow, "{file}:{line} ({heading}) reads differently from YAML");
            let yaml_again: Value = serde_saphyr::from_str(&serde_saphyr::to_string(&workflow).unwrap()).unwrap();
            assert_eq!(&yaml_again, value, "{file}:{line} ({heading}) does not round-trip through YAML");
        }
        eprintln!("{} reference examples round-trip", examples.len());
        assert!(examples.len() >= 40, "only {} examples found", examples.len());
    }

    #[test]
    fn generated_schema_accepts_every_reference_example() {
        let Some(examples) = reference_examples() else { return };
        let schema = serde_json::to_value(schemars::schema_for!(Workflow)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for Example { file, line, heading, value, .. } in &examples {
            let errors: Vec<String> =
                validator.iter_errors(value).map(|error| format!("{} at {}", error, error.instance_path())).collect();
            assert!(errors.is_empty(), "{file}:{line} ({heading}): {errors:#?}");
        }
        assert!(examples.len() >= 40);
    }

    #[test]
    fn reference_examples_are_valid_against_the_official_schema() {
        let Some(examples) = reference_examples() else { return };
        let path = reference_dir().join("schema/workflow.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} is not readable", path.display());
            return;
        };
        let official: Value = serde_saphyr::from_str(&text).unwrap();
        let validator = jsonschema::validator_for(&official).unwrap();
        for Example { file, line, heading, value, .. } in &examples {
            let workflow: Workflow = serde_json::from_value(value.clone()).unwrap();
            let written = serde_json::to_value(&workflow).unwrap();
            let errors: Vec<String> = validator.iter_errors(&written).map(|error| error.to_string()).collect();
            assert!(errors.is_empty(), "{file}:{line} ({heading}): {errors:#?}");
        }
    }

    #[test]
    fn every_shape_round_trips_and_matches_both_schemas() {
        let value: Value = serde_saphyr::from_str(include_str!("kitchen_sink.yaml")).unwrap();
        let workflow: Workflow = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(serde_json::to_value(&workflow).unwrap(), value);
        let direct: Workflow = serde_saphyr::from_str(include_str!("kitchen_sink.yaml")).unwrap();
        assert_eq!(direct, workflow);
        let yaml_again: Value = serde_saphyr::from_str(&serde_saphyr::to_string(&workflow).unwrap()).unwrap();
        assert_eq!(yaml_again, value);

        let generated = serde_json::to_value(schemars::schema_for!(Workflow)).unwrap();
        let errors: Vec<String> = jsonschema::validator_for(&generated)
            .unwrap()
            .iter_errors(&value)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let official_path = reference_dir().join("schema/workflow.yaml");
        if let Ok(text) = std::fs::read_to_string(&official_path) {
            let official: Value = serde_saphyr::from_str(&text).unwrap();
            let errors: Vec<String> = jsonschema::validator_for(&official)
                .unwrap()
                .iter_errors(&value)
                .map(|error| error.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:#?}");
        }

        // Spot checks that each shape landed in its typed form.
        let task = |name: &str| workflow.do_.get(name).unwrap();
        let Task::Call(CallTask::Http(http)) = task("rest") else { panic!("rest") };
        assert!(matches!(http.with.headers, Some(StringMapOrExpression::Expression(_))));
        assert_eq!(http.base.timeout, Some(TimeoutOrReference::Reference("short".into())));
        assert_eq!(http.base.then, Some(FlowDirective::Goto("rpc".into())));
        let Endpoint::Configuration(endpoint) = &http.with.endpoint else { panic!("endpoint") };
        assert!(matches!(
            endpoint.authentication.as_deref(),
            Some(ReferenceableAuthenticationPolicy::Policy(AuthenticationPolicy::Bearer(
                BearerAuthentication::Secret(_)
            )))
        ));
        let Task::Call(CallTask::AsyncApi(subscribe)) = task("subscribe") else { panic!("subscribe") };
        let consume = &subscribe.with.subscription.as_ref().unwrap().consume;
        assert_eq!(consume.limit, ConsumptionLimit::While("${ true }".into()));
        let Task::Call(CallTask::Mcp(mcp)) = task("tools") else { panic!("tools") };
        assert!(matches!(mcp.with.transport.kind, McpTransportKind::Http(_)));
        let Task::Emit(emit) = task("notify") else { panic!("notify") };
        let event = emit.emit.event.with.as_ref().unwrap();
        assert_eq!(event.data, Some(Value::Null));
        assert_eq!(event.extensions["traceparent"], "abc");
        assert_eq!(emit.emit.event.additional["extra"], "kept");
        let Task::Listen(listen) = task("await") else { panic!("await") };
        let EventConsumptionStrategy::Any(any) = &listen.listen.to else { panic!("any") };
        assert!(matches!(any.until, Some(AnyEventUntil::Events(_))));
        let Task::Run(run) = task("run1") else { panic!("run1") };
        assert!(matches!(run.run.process, Process::Container(_)));
        assert_eq!(run.run.return_, Some(ProcessReturnType::All));
        let Task::Call(CallTask::Function(custom)) = task("custom") else { panic!("custom") };
        assert_eq!(custom.call, "greet");
        let uses = workflow.use_.as_ref().unwrap();
        let Some(Task::Run(greet)) = uses.functions.get("greet") else { panic!("greet") };
        let Process::Script(script) = &greet.run.process else { panic!("script") };
        assert!(matches!(script.source, ScriptSource::Source(_)));
        assert!(matches!(uses.authentications["oauth"], AuthenticationPolicy::OAuth2(OAuth2Authentication::Inline(_))));
        assert!(matches!(
            uses.authentications["oidcSecret"],
            AuthenticationPolicy::Oidc(OidcAuthentication::Secret(_))
        ));
        assert_eq!(workflow.evaluate.as_ref().and_then(|evaluate| evaluate.mode), Some(EvaluateMode::Loose));

        // The walker reaches the AsyncAPI subscription's tasks too.
        let mut pointers = Vec::new();
        workflow.walk_tasks("", &mut |visit| pointers.push(visit.pointer.clone()));
        assert!(pointers.contains(&"/do/4/subscribe/with/subscription/foreach/do/0/show".to_owned()));
        for pointer in &pointers {
            assert!(value.pointer(pointer).is_some(), "{pointer}");
        }
        let mut all = Vec::new();
        workflow.walk_all_tasks("", &mut |visit| all.push(visit.pointer.clone()));
        assert_eq!(all[..2], ["/use/functions/greet", "/use/extensions/0/audit/after/0/log"]);
        assert_eq!(all[2..], pointers[..]);
        for pointer in &all {
            assert!(value.pointer(pointer).is_some(), "{pointer}");
        }
    }

    fn parse(yaml: &str) -> Result<Workflow, String> {
        let value: Value = serde_saphyr::from_str(yaml).map_err(|error| error.to_string())?;
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    const HEADER: &str = "document: { dsl: '1.0.0', namespace: test, name: sample, version: '0.1.0' }\n";

    #[test]
    fn a_task_without_a_kind_is_an_error() {
        let error = parse(&format!("{HEADER}do:\n  - greet:\n      hello: world\n")).unwrap_err();
        assert!(error.contains(NO_KIND_MESSAGE), "{error}");
        let error = serde_saphyr::from_str::<Workflow>(&format!("{HEADER}do:\n  - greet:\n      hello: world\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(NO_KIND_MESSAGE), "{error}");
        let error = serde_json::from_value::<Task>(json!({ "output": { "as": "." } })).unwrap_err();
        assert_eq!(error.to_string(), NO_KIND_MESSAGE);
        assert_eq!(
            NO_KIND_MESSAGE,
            "task has no kind: expected one of call, do, emit, for, fork, listen, raise, run, set, switch, try, wait"
        );
    }

    #[test]
    fn a_task_with_an_unknown_property_is_an_error() {
        let error = parse(&format!("{HEADER}do:\n  - greet:\n      set: {{ a: 1 }}\n      iff: .x\n")).unwrap_err();
        assert!(error.contains("unknown property `iff` in set task"), "{error}");
        let error = parse(&format!(
            "{HEADER}do:\n  - sh:\n      run:\n        shell: {{ command: ls }}\n        container: {{ image: x }}\n"
        ))
        .unwrap_err();
        assert!(error.contains("unknown property `container` in run task (at /run/container)"), "{error}");
        let error = parse(&format!("{HEADER}do:\n  - twice:\n      set: {{ a: 1 }}\n      wait: PT1S\n")).unwrap_err();
        assert!(error.contains("task has more than one kind: set, wait"), "{error}");
    }

    #[test]
    fn flow_directives_round_trip() {
        let yaml = format!(
            "{HEADER}do:\n  - first:\n      set: {{ a: 1 }}\n      then: last\n  - skipped:\n      wait: PT1S\n      then: exit\n  - last:\n      set: ${{ . }}\n      then: end\n"
        );
        let workflow = parse(&yaml).unwrap();
        let directives: Vec<_> = workflow.do_.iter().map(|item| item.task.base().then.clone()).collect();
        assert_eq!(
            directives,
            [Some(FlowDirective::Goto("last".into())), Some(FlowDirective::Exit), Some(FlowDirective::End)]
        );
        let value = serde_json::to_value(&workflow).unwrap();
        assert_eq!(value["do"][0]["first"]["then"], "last");
        assert_eq!(value["do"][1]["skipped"]["then"], "exit");
        assert_eq!(serde_json::from_value::<Workflow>(value).unwrap(), workflow);
        assert_eq!(serde_json::from_value::<FlowDirective>(json!("continue")).unwrap(), FlowDirective::Continue);
    }

    #[test]
    fn call_kinds_are_told_apart_by_name() {
        let yaml = format!(
            "{HEADER}do:\n  - ask:\n      call: agent\n      with:\n        agent: support-bot\n        message: ${{ .question }}\n        config: {{ model: gpt-4o, timeout: 60, temperature: 0.2 }}\n  - mine:\n      call: myFunc\n      with: {{ x: 1 }}\n"
        );
        let workflow = parse(&yaml).unwrap();
        let Task::Call(CallTask::Agent(agent)) = &workflow.do_.0[0].task else { panic!("not an agent call") };
        assert_eq!(agent.with.agent, "support-bot");
        assert_eq!(agent.with.config.as_ref().and_then(|config| config.timeout), Some(60));
        let Task::Call(CallTask::Function(function)) = &workflow.do_.0[1].task else { panic!("not a function call") };
        assert_eq!(function.call, "myFunc");
        assert_eq!(workflow.do_.0[1].task.kind_name(), "call");
        let value = serde_json::to_value(&workflow).unwrap();
        assert_eq!(value["do"][0]["ask"]["call"], "agent");
        assert_eq!(serde_json::from_value::<Workflow>(value).unwrap(), workflow);

        let error =
            parse(&format!("{HEADER}do:\n  - ask:\n      call: agent\n      with: {{ agent: a }}\n")).unwrap_err();
        assert!(error.contains("missing field `message`"), "{error}");
    }

    #[test]
    fn walk_visits_every_nested_task_with_its_pointer() {
        let yaml = format!(
            r"{HEADER}do:
  - first:
      set: {{ a: 1 }}
  - loop:
      for: {{ in: .items }}
      do:
        - inner:
            set: {{ b: 2 }}
  - par:
      fork:
        branches:
          - a:
              wait: PT1S
          - b/c~d:
              do:
                - deep:
                    wait: PT1S
  - guard:
      try:
        - x:
            call: http
            with: {{ method: get, endpoint: 'https://example.com' }}
      catch:
        do:
          - y:
              raise: {{ error: oops }}
  - events:
      listen:
        to: {{ one: {{ with: {{ type: ping }} }} }}
      foreach:
        do:
          - each:
              set: {{ c: 3 }}
"
        );
        let workflow = parse(&yaml).unwrap();
        let mut seen = Vec::new();
        workflow.walk_tasks("/spec", &mut |visit| {
            let position = visit.siblings.iter().position(|item| item.name == visit.name);
            seen.push((visit.pointer.clone(), visit.task.kind_name(), position));
        });
        let pointers: Vec<&str> = seen.iter().map(|(pointer, _, _)| pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/spec/do/0/first",
                "/spec/do/1/loop",
                "/spec/do/1/loop/do/0/inner",
                "/spec/do/2/par",
                "/spec/do/2/par/fork/branches/0/a",
                "/spec/do/2/par/fork/branches/1/b~1c~0d",
                "/spec/do/2/par/fork/branches/1/b~1c~0d/do/0/deep",
                "/spec/do/3/guard",
                "/spec/do/3/guard/try/0/x",
                "/spec/do/3/guard/catch/do/0/y",
                "/spec/do/4/events",
                "/spec/do/4/events/foreach/do/0/each",
            ]
        );
        assert!(seen.iter().all(|(_, _, position)| position.is_some()));
        assert_eq!(seen[2].1, "set");
        // Pointers resolve in the document they came from.
        let value = serde_json::to_value(&workflow).unwrap();
        let document = json!({ "spec": value });
        for pointer in pointers {
            assert!(document.pointer(pointer).is_some(), "{pointer}");
        }
    }

    #[test]
    fn builders_write_the_expected_document() {
        let workflow = Workflow::new(
            Document::new("default", "triage", "0.1.0"),
            TaskList::new()
                .push("classify", Task::call_agent("support-bot", "${ .ticket.text }"))
                .push("notify", Task::call_http("post", "https://example.com/hook").only_if("${ .urgent }"))
                .push("all", Task::do_(TaskList::new().push("done", Task::set(json!({ "ok": true })).then("end")))),
        );
        assert_eq!(
            serde_json::to_value(&workflow).unwrap(),
            json!({
                "document": { "dsl": "1.0.0", "namespace": "default", "name": "triage", "version": "0.1.0" },
                "do": [
                    { "classify": { "call": "agent", "with": { "agent": "support-bot", "message": "${ .ticket.text }" } } },
                    { "notify": { "call": "http", "with": { "method": "post", "endpoint": "https://example.com/hook" }, "if": "${ .urgent }" } },
                    { "all": { "do": [ { "done": { "set": { "ok": true }, "then": "end" } } ] } },
                ]
            })
        );
        let yaml = serde_saphyr::to_string(&workflow).unwrap();
        assert_eq!(parse(&yaml).unwrap(), workflow);
    }

    #[test]
    fn generated_schema_rejects_what_the_model_rejects() {
        let schema = serde_json::to_value(schemars::schema_for!(Workflow)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let header = json!({ "dsl": "1.0.0", "namespace": "test", "name": "sample", "version": "0.1.0" });
        let document = |task: Value| json!({ "document": header, "do": [ { "t": task } ] });
        let good = [
            json!({ "set": { "a": 1 }, "then": "exit" }),
            json!({ "call": "agent", "with": { "agent": "a", "message": "m" } }),
            json!({ "call": "myFunc", "with": { "x": 1 } }),
            json!({ "wait": "PT1M" }),
            json!({ "wait": { "seconds": 1 } }),
            json!({ "run": { "shell": { "command": "ls" }, "await": false } }),
        ];
        for task in good {
            let value = document(task);
            assert!(validator.is_valid(&value), "{value}");
            assert!(serde_json::from_value::<Workflow>(value).is_ok());
        }
        let bad = [
            json!({ "hello": "world" }),
            json!({ "set": { "a": 1 }, "iff": ".x" }),
            json!({ "call": "agent", "with": { "agent": "a" } }),
            json!({ "call": "http", "with": { "method": "get" } }),
            json!({ "wait": "ten seconds" }),
            json!({ "run": { "shell": { "command": "ls" }, "script": { "language": "js", "code": "" } } }),
            json!({ "for": { "in": ".x" }, "do": [], "fork": { "branches": [] } }),
        ];
        for task in bad {
            let value = document(task);
            assert!(!validator.is_valid(&value), "schema accepts {value}");
        }
    }
}
