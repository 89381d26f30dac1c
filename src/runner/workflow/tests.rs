//! Behaviour of the interpreter, one or more workflows per task kind and data-flow rule, written
//! from the DSL reference.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const HEADER: &str = "document: { dsl: '1.0.0', namespace: test, name: sample, version: '0.1.0' }\n";

fn workflow(body: &str) -> dsl::Workflow {
    serde_saphyr::from_str::<dsl::Workflow>(&format!("{HEADER}{body}")).unwrap()
}

async fn run_with(body: &str, input: Value, options: &RunOptions) -> (Result<Value, WorkflowError>, Vec<TaskEvent>) {
    let mut events = Vec::new();
    let result = run(&workflow(body), input, options, &mut events).await;
    (result, events)
}

async fn ok(body: &str, input: Value) -> Value {
    let (result, _) = run_with(body, input, &RunOptions::new()).await;
    result.unwrap()
}

async fn fail(body: &str, input: Value) -> WorkflowError {
    let (result, _) = run_with(body, input, &RunOptions::new()).await;
    result.unwrap_err()
}

/// `(event, reference)` pairs, for asserting the order of transitions.
fn trace(events: &[TaskEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|event| {
            let kind = serde_json::to_value(&event.transition).unwrap()["event"].as_str().unwrap().to_owned();
            (kind, event.reference.clone())
        })
        .collect()
}

#[tokio::test]
async fn set_evaluates_templates_and_direct_expressions() {
    let body = r#"
do:
  - setShape:
      set:
        shape: circle
        size: ${ .configuration.size }
        nested: { list: [ "${ .configuration.fill }", 2 ] }
  - setColor:
      set: '${ { color: .shape, all: . } }'
"#;
    let output = ok(body, json!({ "configuration": { "size": 3, "fill": "red" } })).await;
    assert_eq!(output["color"], "circle");
    assert_eq!(output["all"], json!({ "shape": "circle", "size": 3, "nested": { "list": ["red", 2] } }));
}

#[tokio::test]
async fn do_runs_nested_lists_and_reports_events_with_pointers() {
    let body = "
do:
  - outer:
      do:
        - first: { set: { a: 1 } }
        - second: { set: '${ .a + 1 }' }
  - last: { set: '${ . * 10 }' }
";
    let (result, events) = run_with(body, json!(null), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!(20));
    let expected = [
        ("started", "/do/0/outer"),
        ("started", "/do/0/outer/do/0/first"),
        ("completed", "/do/0/outer/do/0/first"),
        ("started", "/do/0/outer/do/1/second"),
        ("completed", "/do/0/outer/do/1/second"),
        ("completed", "/do/0/outer"),
        ("started", "/do/1/last"),
        ("completed", "/do/1/last"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(trace(&events), expected);
    assert_eq!(events[2].name, "first");
    assert!(matches!(&events[2].transition, Transition::Completed { output } if *output == json!({ "a": 1 })));
    assert!(events.windows(2).all(|pair| pair[0].at <= pair[1].at));
    // Events are what an event log stores: they round-trip through JSON.
    let stored = serde_json::to_string(&events).unwrap();
    assert_eq!(serde_json::from_str::<Vec<TaskEvent>>(&stored).unwrap(), events);
}

#[tokio::test]
async fn switch_follows_the_first_matching_case_or_the_default() {
    let body = r#"
do:
  - route:
      switch:
        - electronic: { when: '.orderType == "electronic"', then: electronic }
        - physical: { when: '${ .orderType == "physical" }', then: physical }
        - default: { then: unknown }
  - electronic: { set: { handled: electronic }, then: end }
  - physical: { set: { handled: physical }, then: end }
  - unknown: { set: { handled: unknown } }
"#;
    assert_eq!(ok(body, json!({ "orderType": "electronic" })).await, json!({ "handled": "electronic" }));
    assert_eq!(ok(body, json!({ "orderType": "physical" })).await, json!({ "handled": "physical" }));
    assert_eq!(ok(body, json!({ "orderType": "other" })).await, json!({ "handled": "unknown" }));
    // No match and no default: continue with the next task, data unchanged.
    let body = "
do:
  - route:
      switch:
        - never: { when: 'false', then: end }
  - after: { set: '${ . + 1 }' }
";
    assert_eq!(ok(body, json!(1)).await, json!(2));
}

#[tokio::test]
async fn for_iterates_with_each_at_and_while() {
    let body = "
do:
  - sum:
      for: { each: num, in: '${ .numbers }', at: i }
      while: '${ .total < 10 }'
      do:
        - add:
            set: '${ { numbers, total: (.total + $num), seen: (.seen + [$i]) } }'
";
    let output = ok(body, json!({ "numbers": [4, 5, 6, 7], "total": 0, "seen": [] })).await;
    // 4, 9, then 15 >= 10 stops before the fourth item.
    assert_eq!(output["total"], 15);
    assert_eq!(output["seen"], json!([0, 1, 2]));
    // Default variable names.
    let body = "
do:
  - collect:
      for: { in: .items }
      do:
        - push: { set: '${ . + [{ ($item): $index }] }' }
";
    // No items: the input passes through.
    assert_eq!(ok(body, json!({ "items": [] })).await, json!({ "items": [] }));
    let body = "
do:
  - start: { set: '${ [] }' }
  - collect:
      for: { in: '${ [\"a\", \"b\"] }' }
      do:
        - push: { set: '${ . + [{ ($item): $index }] }' }
";
    assert_eq!(ok(body, json!(null)).await, json!([{ "a": 0 }, { "b": 1 }]));
    let error =
        fail("do:\n  - bad:\n      for: { in: '${ 3 }' }\n      do:\n        - x: { set: { a: 1 } }\n", json!(null))
            .await;
    assert_eq!(error.kind(), "expression");
    assert!(error.detail.unwrap().contains("must give an array"));
}

#[tokio::test]
async fn fork_runs_branches_concurrently_and_keeps_declaration_order() {
    let body = "
do:
  - both:
      fork:
        branches:
          - slow: { wait: PT0.1S, output: { as: '${ \"slow\" }' } }
          - fast: { set: '${ \"fast\" }' }
";
    let started = Instant::now();
    let (result, events) = run_with(body, json!({}), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!(["slow", "fast"]));
    assert!(started.elapsed() >= Duration::from_millis(100));
    let completed: Vec<String> =
        trace(&events).into_iter().filter(|(kind, _)| kind == "completed").map(|(_, reference)| reference).collect();
    // The fast branch finished first even though it is declared second.
    assert_eq!(completed[0], "/do/0/both/fork/branches/1/fast");
}

#[tokio::test]
async fn fork_compete_takes_the_first_to_finish_and_cancels_the_rest() {
    let body = "
do:
  - race:
      fork:
        compete: true
        branches:
          - tortoise: { wait: PT5S, output: { as: '${ \"tortoise\" }' } }
          - hare: { wait: { milliseconds: 20 }, output: { as: '${ \"hare\" }' } }
";
    let started = Instant::now();
    let (result, events) = run_with(body, json!({}), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!("hare"));
    assert!(started.elapsed() < Duration::from_secs(2));
    let trace = trace(&events);
    assert!(trace.contains(&("cancelled".to_owned(), "/do/0/race/fork/branches/0/tortoise".to_owned())));
    // A failing branch does not win a race another branch can still win.
    let body = "
do:
  - race:
      fork:
        compete: true
        branches:
          - broken: { raise: { error: { type: https://example.com/broken, status: 500 } } }
          - fine: { wait: { milliseconds: 10 }, output: { as: '${ \"fine\" }' } }
";
    assert_eq!(ok(body, json!({})).await, json!("fine"));
}

#[tokio::test]
async fn raise_inline_and_by_reference_with_expressions_and_default_instance() {
    let body = "
do:
  - check:
      raise:
        error:
          type: https://example.com/errors/undefined-priority
          status: 400
          title: Undefined Priority
          detail: '${ \"priority \" + .priority + \" is unknown\" }'
";
    let error = fail(body, json!({ "priority": "urgent" })).await;
    assert_eq!(error.type_, "https://example.com/errors/undefined-priority");
    assert_eq!(error.status, 400);
    assert_eq!(error.detail.as_deref(), Some("priority urgent is unknown"));
    assert_eq!(error.instance.as_deref(), Some("/do/0/check"));
    assert_eq!(error.to_string(), "Undefined Priority (400) at /do/0/check: priority urgent is unknown");
    let body = "
use:
  errors:
    notFound: { type: https://example.com/not-found, status: 404, instance: /custom }
do:
  - missing: { raise: { error: notFound } }
";
    let error = fail(body, json!(null)).await;
    assert_eq!((error.status, error.instance.as_deref()), (404, Some("/custom")));
    let error = fail("do:\n  - missing: { raise: { error: nope } }\n", json!(null)).await;
    assert_eq!(error.kind(), "configuration");
    // Errors are stored as JSON with the spec's field names.
    let stored = serde_json::to_value(&error).unwrap();
    assert_eq!(stored["type"], "https://serverlessworkflow.io/spec/1.0.0/errors/configuration");
    assert_eq!(serde_json::from_value::<WorkflowError>(stored).unwrap(), error);
}

#[tokio::test]
async fn try_catch_filters_and_exposes_the_error() {
    let body = "
do:
  - attempt:
      try:
        - boom: { raise: { error: { type: https://example.com/unavailable, status: 503, title: Down } } }
      catch:
        errors: { with: { status: 503, type: https://example.com/unavailable } }
        as: failure
        do:
          - handle: { set: '${ { caught: $failure.title, at: $failure.instance, input: . } }' }
";
    let output = ok(body, json!({ "id": 7 })).await;
    assert_eq!(output, json!({ "caught": "Down", "at": "/do/0/attempt/try/0/boom", "input": { "id": 7 } }));
    // A filter that does not match lets the error through, unchanged.
    let body = "
do:
  - attempt:
      try:
        - boom: { raise: { error: { type: https://example.com/unavailable, status: 503 } } }
      catch:
        errors: { with: { status: 404 } }
";
    let error = fail(body, json!(null)).await;
    assert_eq!((error.status, error.instance.as_deref()), (503, Some("/do/0/attempt/try/0/boom")));
    // `when` / `exceptWhen` see `$error`; a catch without `do` passes the input on.
    let body = "
do:
  - attempt:
      try:
        - boom: { raise: { error: { type: https://example.com/x, status: 418, detail: teapot } } }
      catch:
        when: '${ $error.status == 418 }'
        exceptWhen: '${ $error.detail == \"coffee\" }'
  - after: { set: '${ { kept: .value } }' }
";
    assert_eq!(ok(body, json!({ "value": 1 })).await, json!({ "kept": 1 }));
    let body = body.replace("coffee", "teapot");
    assert_eq!(fail(&body, json!({})).await.status, 418);
}

#[tokio::test]
async fn error_instances_point_into_nested_try_and_for() {
    let body = "
do:
  - outer:
      try:
        - loop:
            for: { in: '${ [1, 2] }' }
            do:
              - check:
                  if: '${ $item == 2 }'
                  set: '${ .missing | ascii_downcase }'
      catch:
        errors: { with: { status: 404 } }
";
    let error = fail(body, json!({})).await;
    assert_eq!(error.kind(), "expression");
    assert_eq!(error.status, 400);
    assert_eq!(error.instance.as_deref(), Some("/do/0/outer/try/0/loop/do/0/check"));
    let detail = error.detail.unwrap();
    assert!(detail.contains("${ .missing | ascii_downcase }"), "{detail}");
}

#[tokio::test]
async fn retry_waits_with_backoff_and_gives_up_after_the_attempt_count() {
    // Fails until the third retry: each attempt bumps a counter in `$context`.
    let body = "
do:
  - flaky:
      try:
        - count:
            set: '${ $context.attempts + 1 }'
            export: { as: '${ { attempts: . } }' }
        - maybeFail:
            if: '${ $context.attempts < 4 }'
            raise: { error: { type: https://example.com/flaky, status: 503 } }
      catch:
        errors: { with: { status: 503 } }
        retry:
          delay: { milliseconds: 10 }
          backoff: { linear: {} }
          limit: { attempt: { count: 5 } }
  - report: { set: '${ $context }' }
";
    let started = Instant::now();
    let (result, events) = run_with(body, json!({}), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!({ "attempts": 4 }));
    // Linear: 10 + 20 + 30 ms.
    assert!(started.elapsed() >= Duration::from_millis(60), "{:?}", started.elapsed());
    let retries: Vec<(u32, u64)> = events
        .iter()
        .filter_map(|event| match event.transition {
            Transition::Retrying { attempt, delay_ms } => Some((attempt, delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(1, 10), (2, 20), (3, 30)]);
    // A named policy, exponential, exhausted: the error goes to `catch.do`.
    let body = "
use:
  retries:
    twice:
      delay: { milliseconds: 5 }
      backoff: { exponential: {} }
      limit: { attempt: { count: 2 } }
do:
  - flaky:
      try:
        - count:
            set: '${ ($context.attempts // 0) + 1 }'
            export: { as: '${ { attempts: . } }' }
        - fail: { raise: { error: { type: https://example.com/flaky, status: 503 } } }
      catch:
        retry: twice
        do:
          - giveUp: { set: '${ { gaveUpAfter: $context.attempts, error: $error.status } }' }
";
    let started = Instant::now();
    let (result, events) = run_with(body, json!({}), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!({ "gaveUpAfter": 3, "error": 503 }));
    assert!(started.elapsed() >= Duration::from_millis(15));
    let delays: Vec<u64> = events
        .iter()
        .filter_map(|event| match event.transition {
            Transition::Retrying { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [5, 10]);
}

#[tokio::test]
async fn retry_limits_by_duration_and_jitter() {
    // `limit.duration` stops retrying once the next delay would pass it.
    let body = "
do:
  - flaky:
      try:
        - count:
            set: '${ ($context.n // 0) + 1 }'
            export: { as: '${ { n: . } }' }
        - fail: { raise: { error: { type: https://example.com/flaky, status: 503 } } }
      catch:
        retry:
          delay: { milliseconds: 20 }
          limit: { duration: { milliseconds: 70 } }
          jitter: { from: { milliseconds: 5 }, to: { milliseconds: 6 } }
        do:
          - report: { set: '${ $context.n }' }
";
    let (result, events) = run_with(body, json!({}), &RunOptions::new()).await;
    // Retries after 25-26 ms each: two fit in 70 ms, a third (at 75 ms or later) would not.
    assert_eq!(result.unwrap(), json!(3));
    for event in &events {
        if let Transition::Retrying { delay_ms, .. } = event.transition {
            assert!((25..=26).contains(&delay_ms), "{delay_ms}");
        }
    }
    // `limit.attempt.duration` bounds each attempt: a timeout error, caught like any other.
    let body = "
do:
  - slow:
      try:
        - nap: { wait: PT1S }
      catch:
        errors: { with: { status: 408 } }
        retry: { limit: { attempt: { count: 1, duration: { milliseconds: 20 } } } }
        do:
          - report: { set: '${ $error.type }' }
";
    let started = Instant::now();
    assert_eq!(ok(body, json!({})).await, json!("https://serverlessworkflow.io/spec/1.0.0/errors/timeout"));
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn wait_accepts_iso8601_and_inline_durations() {
    for wait in ["PT0.05S", "{ milliseconds: 50 }", "'${ \"PT0.05S\" }'"] {
        let started = Instant::now();
        let output = ok(&format!("do:\n  - pause: {{ wait: {wait} }}\n"), json!({ "kept": true })).await;
        assert_eq!(output, json!({ "kept": true }), "{wait}");
        assert!(started.elapsed() >= Duration::from_millis(50), "{wait}");
    }
    let error = fail("do:\n  - pause: { wait: '${ 5 }' }\n", json!(null)).await;
    assert_eq!(error.kind(), "expression");
}

#[tokio::test]
async fn if_skips_tasks_passing_the_raw_input_on() {
    let body = "
do:
  - maybe: { if: '${ .run }', set: { ran: true }, then: end }
  - always: { set: '${ . + { after: true } }' }
";
    let (result, events) = run_with(body, json!({ "run": false }), &RunOptions::new()).await;
    assert_eq!(result.unwrap(), json!({ "run": false, "after": true }));
    assert_eq!(trace(&events)[0], ("skipped".to_owned(), "/do/0/maybe".to_owned()));
    assert_eq!(ok(body, json!({ "run": true })).await, json!({ "ran": true }));
}

#[tokio::test]
async fn then_jumps_exits_and_ends() {
    // Jump forward over a task, then loop back until a condition holds.
    let body = "
do:
  - init: { set: { n: 0 }, then: bump }
  - skipped: { set: { never: true } }
  - bump: { set: '${ { n: (.n + 1) } }' }
  - again:
      switch:
        - more: { when: '${ .n < 3 }', then: bump }
        - done: { then: continue }
  - finish: { set: '${ . + { finished: true } }' }
";
    assert_eq!(ok(body, json!(null)).await, json!({ "n": 3, "finished": true }));
    // `exit` completes the nested list only; `end` ends the whole workflow.
    let body = "
do:
  - inner:
      do:
        - a: { set: { a: 1 }, then: exit }
        - b: { set: { b: 1 } }
  - outer: { set: '${ . + { outer: true } }' }
";
    assert_eq!(ok(body, json!(null)).await, json!({ "a": 1, "outer": true }));
    let body = body.replace("then: exit", "then: end");
    assert_eq!(ok(&body, json!(null)).await, json!({ "a": 1 }));
    // `end` inside a loop ends the workflow too.
    let body = "
do:
  - loop:
      for: { in: '${ [1, 2, 3] }' }
      do:
        - stop: { set: '${ $item }', then: end }
  - never: { set: { never: true } }
";
    assert_eq!(ok(body, json!(null)).await, json!(1));
    let error = fail("do:\n  - a: { set: { a: 1 }, then: nowhere }\n", json!(null)).await;
    assert_eq!((error.kind(), error.instance.as_deref()), ("configuration", Some("/do/0/a")));
}

#[tokio::test]
async fn workflow_input_from_and_output_as() {
    let body = "
input:
  from: '${ .order }'
  schema:
    document: { type: object, required: [order] }
do:
  - echo: { set: '${ { pet: .pet, raw: $workflow.input.order.pet, in: $input } }' }
output:
  as: { petName: '${ .pet }', rawToo: '${ .raw }' }
";
    let output = ok(body, json!({ "order": { "pet": "Rex" } })).await;
    assert_eq!(output, json!({ "petName": "Rex", "rawToo": "Rex" }));
    let error = fail(body, json!({ "nothing": 1 })).await;
    assert_eq!((error.kind(), error.instance.as_deref()), ("validation", Some("/input/schema")));
    // Expressions in the workflow's own transforms point at them.
    let error =
        fail("input: { from: '${ .a.b.c | ascii }' }\ndo:\n  - x: { set: { a: 1 } }\n", json!({ "a": 1 })).await;
    assert_eq!(error.instance.as_deref(), Some("/input/from"));
}

#[tokio::test]
async fn task_input_from_output_as_and_non_object_outputs() {
    let body = "
do:
  - pick:
      input: { from: '${ .user }' }
      set: '${ { name: .name, original: $input } }'
      output: { as: '${ { upper: (.name | ascii_upcase), raw: $output.name, in: $input.name } }' }
  - number: { set: '${ .upper | length }' }
  - double: { set: '${ . * 2 }' }
";
    assert_eq!(ok(body, json!({ "user": { "name": "ada" } })).await, json!(6));
    let body = "
do:
  - pick:
      input: { from: '${ .user }' }
      set: '${ { name: .name } }'
      output: { as: '${ { upper: (.name | ascii_upcase), raw: $output.name, in: $input.name } }' }
";
    assert_eq!(
        ok(body, json!({ "user": { "name": "ada" } })).await,
        json!({ "upper": "ADA", "raw": "ada", "in": "ada" })
    );
    // An `output.schema` is checked against the transformed output.
    let body = "
do:
  - typed:
      set: { n: 1 }
      output: { schema: { document: { type: object, required: [m] } } }
";
    let error = fail(body, json!(null)).await;
    assert_eq!((error.kind(), error.instance.as_deref()), ("validation", Some("/do/0/typed")));
}

#[tokio::test]
async fn export_as_builds_the_context() {
    let body = "
do:
  - login:
      set: { token: abc, user: ada }
      export: { as: '${ $context + { user: .user } }' }
  - other:
      set: { unrelated: true }
      export: { as: '${ $context + { seen: ($output | keys) } }' }
  - read: { set: '${ { who: $context.user, seen: $context.seen, data: . } }' }
";
    let output = ok(body, json!(null)).await;
    assert_eq!(output, json!({ "who": "ada", "seen": ["unrelated"], "data": { "unrelated": true } }));
}

#[tokio::test]
async fn secrets_and_descriptors_are_available_to_expressions() {
    let body = "
do:
  - auth:
      input: { from: '${ { header: (\"Bearer \" + $secret.token), user: $secret.db.user } }' }
      set: '${ . + { task: $task.name, ref: $task.reference, runtime: $runtime.name, id: $workflow.id } }'
";
    let options = RunOptions::new()
        .secret("token", &crate::secrets::SecretValue::new("s3cr3t"))
        .secret_value("db", json!({ "user": "admin" }));
    let options = RunOptions { instance_id: Some("run-1".to_owned()), ..options };
    let (result, _) = run_with(body, json!({}), &options).await;
    assert_eq!(
        result.unwrap(),
        json!({ "header": "Bearer s3cr3t", "user": "admin", "task": "auth", "ref": "/do/0/auth", "runtime": "stigmer", "id": "run-1" })
    );
    // Never printed; the redactor masks what a workflow copies into its data.
    let printed = format!("{options:?}");
    assert!(!printed.contains("s3cr3t") && !printed.contains("admin"), "{printed}");
    assert!(printed.contains("token"));
    assert_eq!(options.redactor().redact("Bearer s3cr3t as admin"), "Bearer *** as ***");
    // Missing secrets are null, like any missing field.
    assert_eq!(ok("do:\n  - s: { set: '${ $secret.none }' }\n", json!(null)).await, json!(null));
}

#[tokio::test]
async fn unsupported_task_kinds_fail_with_a_runtime_error() {
    let body = "
do:
  - fetch:
      call: grpc
      with:
        proto: { endpoint: https://example.com/greet.proto }
        service: { name: Greeter, host: example.com }
        method: SayHello
";
    let error = fail(body, json!(null)).await;
    assert_eq!(error.type_, "https://serverlessworkflow.io/spec/1.0.0/errors/runtime");
    assert_eq!(error.instance.as_deref(), Some("/do/0/fetch"));
    assert!(error.detail.unwrap().contains("`call: grpc` tasks are not supported yet"));
    let body = "do:\n  - box: { run: { container: { image: alpine } } }\n";
    assert!(fail(body, json!(null)).await.detail.unwrap().contains("`run: container` tasks"));
    let body = "do:\n  - ask: { call: agent, with: { agent: lead, message: hi } }\n";
    assert!(fail(body, json!(null)).await.detail.unwrap().contains("`call: agent` needs the agent runner"));
}

#[tokio::test]
async fn a_listener_consumes_what_a_concurrent_branch_emits() {
    let body = r"
do:
  - both:
      fork:
        branches:
          - hear:
              listen:
                to:
                  any: [ { with: { type: tick } } ]
                  until: '${ length >= 2 }'
                read: envelope
          - say:
              do:
                - pause: { wait: { milliseconds: 20 } }
                - one: { emit: { event: { with: { source: https://example.com, type: tick, data: 1 } } } }
                - other: { emit: { event: { with: { source: https://example.com, type: tock, data: 0 } } } }
                - two: { emit: { event: { with: { source: https://example.com, type: tick, data: '${ 1 + 1 }' } } } }
  - pick:
      set: '${ .[0] | map(.data) }'
";
    let options = RunOptions { instance_id: Some("run-1".to_owned()), ..RunOptions::new() };
    let (result, events) = run_with(body, json!({}), &options).await;
    assert_eq!(result.unwrap(), json!([1, 2]));
    let consumed: Vec<Value> = events
        .iter()
        .filter_map(|event| match &event.transition {
            Transition::Consumed { cloud_event } => Some(cloud_event.clone()),
            _ => None,
        })
        .collect();
    // Ids are the execution, the task and its count; the rest is filled in.
    assert_eq!(consumed[0]["id"], "run-1:/do/0/both/fork/branches/1/say/do/1/one:0");
    assert_eq!(
        (&consumed[0]["specversion"], &consumed[0]["datacontenttype"]),
        (&json!("1.0"), &json!("application/json"))
    );
    assert!(consumed[0]["time"].is_string());
}

#[tokio::test]
async fn listen_foreach_transforms_each_event_and_exports() {
    let body = r"
do:
  - announce:
      emit: { event: { with: { source: https://example.com, type: order, data: { n: 3 } } } }
  - collect:
      listen:
        to: { one: { with: { type: order } } }
      foreach:
        item: order
        do:
          - double: { set: '${ { n: ($order.n * 2) } }' }
        output: { as: '${ .n + $index }' }
        export: { as: '${ { last: . } }' }
  - report:
      set: '${ { collected: ., context: $context } }'
";
    assert_eq!(ok(body, json!({})).await, json!({ "collected": [6], "context": { "last": 6 } }));
}

#[tokio::test]
async fn a_listener_waits_until_its_timeout_and_bad_events_are_refused() {
    let body = "do:\n  - hear:\n      listen: { to: { one: { with: { type: never } } } }\n      timeout: { after: { milliseconds: 50 } }\n";
    let started = Instant::now();
    let error = fail(body, json!({})).await;
    assert_eq!((error.kind(), error.instance.as_deref()), ("timeout", Some("/do/0/hear")));
    assert!(started.elapsed() < Duration::from_secs(2));
    let body = "do:\n  - shout: { emit: { event: { with: { source: https://example.com, type: '${ 42 }' } } } }\n";
    let error = fail(body, json!({})).await;
    assert_eq!(error.kind(), "configuration");
    assert!(error.detail.unwrap().contains("needs a `type` string"));
}

#[tokio::test]
async fn a_resumed_emit_publishes_its_event_again_unless_it_was_consumed() {
    let body = r"
do:
  - e: { emit: { event: { with: { source: https://example.com, type: t, data: 1 } } } }
  - hear:
      listen: { to: { one: { with: { type: t } } } }
      timeout: { after: { milliseconds: 200 } }
";
    // The emit completed before the crash; its event was not consumed yet.
    let options = RunOptions { instance_id: Some("run-2".to_owned()), ..RunOptions::new() }
        .replaying([("/do/0/e".to_owned(), json!({}))]);
    let (result, events) = run_with(body, json!({}), &options).await;
    assert_eq!(result.unwrap(), json!([1]));
    assert!(!trace(&events).contains(&("emitted".to_owned(), "/do/0/e".to_owned())), "not recorded twice");
    // It was consumed by a listener that completed: a resumed run does not see it again.
    let bus = std::sync::Arc::new(EventBus::new().consumed(["run-2:/do/0/e:0".to_owned()]));
    let options = RunOptions { instance_id: Some("run-2".to_owned()), ..RunOptions::new() }
        .replaying([("/do/0/e".to_owned(), json!({}))])
        .events(bus);
    assert_eq!(run_with(body, json!({}), &options).await.0.unwrap_err().kind(), "timeout");
}

#[tokio::test]
async fn timeouts_fault_tasks_and_workflows() {
    let body = "
use:
  timeouts:
    quick: { after: { milliseconds: 20 } }
do:
  - slow: { wait: PT5S, timeout: quick }
";
    let started = Instant::now();
    let error = fail(body, json!(null)).await;
    assert_eq!((error.status, error.instance.as_deref()), (408, Some("/do/0/slow")));
    assert!(started.elapsed() < Duration::from_secs(2));
    let body = "timeout: { after: PT0.02S }\ndo:\n  - slow: { wait: PT5S }\n";
    assert_eq!(fail(body, json!(null)).await.instance.as_deref(), Some("/timeout"));
    let options = RunOptions::new().timeout(Duration::from_millis(20));
    let (result, _) = run_with("do:\n  - slow: { wait: PT5S }\n", json!(null), &options).await;
    assert_eq!(result.unwrap_err().status, 408);
}

#[tokio::test]
async fn loose_mode_evaluates_bare_strings_when_they_compile() {
    let body = "
evaluate: { mode: loose }
do:
  - s: { set: { n: '.a + 1', word: hello world } }
";
    assert_eq!(ok(body, json!({ "a": 1 })).await, json!({ "n": 2, "word": "hello world" }));
}

#[test]
fn the_run_future_is_send_so_it_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let workflow = workflow("do:\n  - a: { set: { a: 1 } }\n");
    let options = RunOptions::new();
    let mut events: Vec<TaskEvent> = Vec::new();
    let future = run(&workflow, json!(null), &options, &mut events);
    assert_send(&future);
}

#[tokio::test]
async fn resuming_reuses_recorded_outputs_and_runs_only_the_rest() {
    let body = "do:
  - first:
      set:
        seen: ${ . }
      export:
        as: '${ { first: .seen } }'
  - loop:
      for: { each: item, in: '${ [1, 2, 3] }' }
      do:
        - step:
            set:
              sum: ${ (.sum // 0) + $item }
  - last:
      set:
        sum: ${ .sum }
        first: ${ $context.first }
";
    // The earlier run completed `first` and two iterations of `step`, then died. The recorded
    // outputs are marked, so reuse is visible in the result.
    let options = RunOptions::new().replaying([
        ("/do/0/first".to_owned(), json!({ "seen": "recorded" })),
        ("/do/1/loop/do/0/step".to_owned(), json!({ "sum": 100 })),
        ("/do/1/loop/do/0/step".to_owned(), json!({ "sum": 200 })),
    ]);
    let (result, events) = run_with(body, json!({ "fresh": true }), &options).await;
    // The third iteration runs for real on the second recorded output; export.as ran again.
    assert_eq!(result.unwrap(), json!({ "sum": 203, "first": "recorded" }));
    let started: Vec<String> =
        trace(&events).into_iter().filter(|(kind, _)| kind == "started").map(|(_, r)| r).collect();
    assert_eq!(started, ["/do/1/loop", "/do/1/loop/do/0/step", "/do/2/last"], "only the rest ran");
}

#[tokio::test]
async fn run_workflow_runs_a_named_workflow_and_reports_its_tasks_under_the_run_task() {
    let child: dsl::Workflow = serde_saphyr::from_str(
        "document: { dsl: '1.0.0', namespace: test, name: double, version: '0.1.0' }
do:
  - twice:
      set:
        n: ${ .n * 2 }
",
    )
    .unwrap();
    let body = "do:
  - call:
      run:
        workflow:
          namespace: test
          name: double
          version: '0.1.0'
          input:
            n: ${ .start }
";
    let options = RunOptions::new().workflow("double", child);
    let (result, events) = run_with(body, json!({ "start": 21 }), &options).await;
    assert_eq!(result.unwrap(), json!({ "n": 42 }));
    let references: Vec<String> = trace(&events).into_iter().map(|(kind, r)| format!("{kind} {r}")).collect();
    assert_eq!(
        references,
        [
            "started /do/0/call",
            "started /do/0/call/workflow/do/0/twice",
            "completed /do/0/call/workflow/do/0/twice",
            "completed /do/0/call"
        ]
    );

    let missing = fail(body, json!({ "start": 1 })).await;
    assert!(missing.to_string().contains("there is no stored Workflow named \"double\""), "{missing}");

    // A workflow that runs itself stops at the depth limit instead of forever.
    let looping: dsl::Workflow = serde_saphyr::from_str(
        "document: { dsl: '1.0.0', namespace: test, name: again, version: '0.1.0' }
do:
  - again:
      run:
        workflow: { namespace: test, name: again, version: '0.1.0' }
",
    )
    .unwrap();
    let error =
        run(&looping, json!({}), &RunOptions::new().workflow("again", looping.clone()), &mut ()).await.unwrap_err();
    assert!(error.to_string().contains("nests more than 16 levels deep"), "{error}");
}
