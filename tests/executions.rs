//! The execution service with real processes on loopback: a `stigmer server` that queues
//! executions, `stigmer worker` processes that claim them under leases, a worker killed with
//! SIGKILL mid-run, cancels that reach the worker at once, and tokens that may only do their
//! part. Side effects are counted by an HTTP server of the test's own.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::effects::{self, Effects};
use support::{Server, output, stigmer_bin};

fn executions(server: &Server, token: &str, home: &Path) -> Vec<Value> {
    let (ok, out, err) = output(server.cli(token, home), &["execution", "list", "-o", "json"]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

fn history(server: &Server, token: &str, home: &Path, id: &str) -> Vec<Value> {
    let (ok, out, err) = output(server.cli(token, home), &["execution", "events", id, "-o", "json"]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until every execution is over; returns them.
fn all_finished(server: &Server, token: &str, home: &Path, count: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let all = executions(server, token, home);
        let finished = all
            .iter()
            .filter(|e| ["completed", "faulted", "cancelled"].contains(&e["status"].as_str().unwrap()))
            .count();
        if all.len() == count && finished == count {
            return all;
        }
        assert!(Instant::now() < deadline, "{finished} of {} finished: {all:#?}", all.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fifty_runs_survive_a_worker_killed_mid_run_and_no_completed_task_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let editor = server.token("acme", "editor", "ana");
    let work = server.token("acme", "worker", "workers");
    let home = dir.path().join("home");
    let (effects, port) = Effects::serve();
    let flow = dir.path().join("flow.yaml");
    let calls = ["first", "second", "third"];
    std::fs::write(&flow, effects::workflow(port, &calls)).unwrap();

    let mut a = server.worker(&work, &home, &dir.path().join("a.log"), &["--concurrency", "10"]);
    let mut b = server.worker(&work, &home, &dir.path().join("b.log"), &["--concurrency", "10"]);
    for _ in 0..50 {
        let (ok, _, err) =
            output(server.cli(&editor, &home), &["workflow", "run", "-f", flow.to_str().unwrap(), "--detach"]);
        assert!(ok, "{err}");
    }
    // Each run takes over 2 s, 20 at a time: a is in the middle of several when it dies.
    std::thread::sleep(Duration::from_millis(1500));
    a.kill().unwrap();
    a.wait().unwrap();

    let all = all_finished(&server, &editor, &home, 50, Duration::from_mins(2));
    b.kill().unwrap();
    let _ = b.wait();
    assert!(all.iter().all(|e| e["status"] == "completed"), "every execution succeeded: {all:#?}");
    let resumed: Vec<&Value> = all.iter().filter(|e| e["attempts"].as_u64().unwrap() > 1).collect();
    assert!(!resumed.is_empty(), "the kill landed while worker a held executions");
    for execution in &all {
        let id = execution["id"].as_str().unwrap();
        let events = history(&server, &editor, &home, id);
        for task in calls {
            let reference = effects::reference(&calls, task);
            let completions: Vec<jiff::Timestamp> = events
                .iter()
                .filter(|e| e["event"] == "completed" && e["reference"] == reference.as_str())
                .map(|e| e["at"].as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(completions.len(), 1, "{id} {task} completed exactly once: {events:#?}");
            let calls = effects.times(&format!("/{id}/{task}"));
            assert!(!calls.is_empty(), "{id} {task} ran");
            // A task whose completion is in the history is never run again: every call it made
            // came before it completed (a task in flight at the kill may have run twice).
            let done = completions[0].checked_add(Duration::from_millis(50)).unwrap();
            assert!(
                calls.iter().all(|at| *at <= done),
                "{id} {task} ran again after it completed: {calls:?} {events:#?}"
            );
        }
        // Each claim is in the history, recorded by the claim itself (also one whose answer was
        // on the wire when its worker was killed).
        let claims = events.iter().filter(|e| e["event"] == "claimed").count() as u64;
        assert_eq!(claims, execution["attempts"].as_u64().unwrap(), "claims are in the history");
    }
    let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(log.contains("resuming"), "worker b resumed what a left: {log}");
}

#[test]
fn a_cancel_reaches_the_worker_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "1"]);
    let editor = server.token("acme", "editor", "ana");
    let home = dir.path().join("home");
    let (effects, port) = Effects::serve();
    let flow = dir.path().join("ticks.yaml");
    std::fs::write(
        &flow,
        format!(
            "document: {{ dsl: '1.0.0', namespace: test, name: ticks, version: '0.1.0' }}\ndo:\n  - loop:\n      for:\n        each: i\n        in: ${{ [range(100)] }}\n      do:\n        - tick:\n            call: http\n            with:\n              method: post\n              endpoint: http://127.0.0.1:{port}/tick\n        - nap:\n            wait: PT0.1S\n"
        ),
    )
    .unwrap();
    let (ok, out, err) =
        output(server.cli(&editor, &home), &["workflow", "run", "-f", flow.to_str().unwrap(), "--detach"]);
    assert!(ok, "{err}");
    let id = out.lines().last().unwrap().trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while effects.times("/tick").len() < 3 {
        assert!(Instant::now() < deadline, "the server's worker never ran it");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, _, err) = output(server.cli(&editor, &home), &["execution", "cancel", &id]);
    assert!(ok, "{err}");
    let cancelled = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(2500));
    let late: Vec<_> =
        effects.times("/tick").into_iter().filter(|at| *at > cancelled + Duration::from_secs(1)).collect();
    assert!(late.is_empty(), "the worker went on ticking after the cancel: {late:?}");
    let ticks = effects.times("/tick").len();
    assert!(ticks < 30, "the run stopped long before its 100 ticks ({ticks})");
    let record = &executions(&server, &editor, &home)[0];
    assert_eq!(record["status"], "cancelled");
    assert!(record.get("lease").is_none(), "the cancel released the lease");
}

#[test]
fn a_worker_token_runs_executions_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let work = server.token("acme", "worker", "w");
    let editor = server.token("acme", "editor", "ana");
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("flow.yaml"),
        "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: hello\nspec:\n  document: { dsl: '1.0.0', namespace: t, name: hello, version: '0.1.0' }\n  do:\n    - hi:\n        set:\n          said: hi\n",
    )
    .unwrap();
    for args in [
        vec!["apply", "-f", project.to_str().unwrap()],
        vec!["get", "workflows"],
        vec!["secret", "list"],
        vec!["workflow", "run", "hello"],
    ] {
        let (ok, _, err) = output(server.cli(&work, &home), &args);
        assert!(!ok && err.contains("permission denied"), "{args:?} with a worker token: {err}");
    }
    // What it may do: run what an editor queued.
    let (ok, _, err) = output(server.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, err) = output(server.cli(&editor, &home), &["workflow", "run", "hello", "--detach"]);
    assert!(ok, "{err}");
    let id = out.lines().last().unwrap().trim().to_owned();
    let (ok, _, err) = output(server.cli(&work, &home), &["execution", "signal", &id, "--type", "t"]);
    assert!(!ok && err.contains("permission denied"), "a worker writes only under a lease it holds: {err}");
    let mut w = server.worker(&work, &home, &dir.path().join("w.log"), &["--concurrency", "1"]);
    let (ok, out, err) = output(server.cli(&editor, &home), &["execution", "logs", "-f", &id]);
    w.kill().unwrap();
    let _ = w.wait();
    assert!(ok, "{err}");
    assert!(out.contains("claimed") && err.contains("completed"), "{out}{err}");
    let (ok, out, err) = output(server.cli(&editor, &home), &["worker", "list"]);
    assert!(ok && out.contains(&stigmer::worker::pool::host()), "{out}{err}");
}

#[test]
fn a_revoked_worker_token_stops_the_worker_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let work = server.token("acme", "worker", "w");
    let home = dir.path().join("home");
    let viewer = server.token("acme", "viewer", "v");
    let mut refused = server.worker(&viewer, &home, &dir.path().join("v.log"), &["--concurrency", "1"]);
    let status = wait_exit(&mut refused, Duration::from_secs(10));
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("v.log")).unwrap();
    assert!(log.contains("viewer token cannot run executions") && log.contains("--role worker"), "{log}");

    let mut w = server.worker(&work, &home, &dir.path().join("w.log"), &["--concurrency", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    let id = support::token_id(&server.data, "w");
    let output = Command::new(stigmer_bin())
        .args(["server", "token", "revoke", &id, "--data"])
        .arg(&server.data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status = wait_exit(&mut w, Duration::from_secs(30));
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("w.log")).unwrap();
    assert!(log.contains("refused the token") && log.contains("stops claiming"), "{log}");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the process did not stop");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Executions of `workflow`, with the slot each was started for.
fn slots_of(executions: &[Value], workflow: &str) -> Vec<jiff::Timestamp> {
    let mut slots: Vec<jiff::Timestamp> = executions
        .iter()
        .filter(|e| e["target"] == format!("workflow/{workflow}").as_str())
        .map(|e| e["input"]["scheduledFor"].as_str().unwrap().parse().unwrap())
        .collect();
    slots.sort();
    slots
}

#[test]
fn every_second_over_a_server_restart_fires_each_slot_once_and_catches_up_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = Server::start_on(&data, "127.0.0.1:0", &["--workers", "1"]);
    let admin = server.token("acme", "admin", "ana");
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let flow = |name: &str, policy: &str| {
        format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: {name}\nspec:\n  schedule:\n    every: PT1S\n{policy}  do:\n    - tick:\n        set:\n          at: ${{ .scheduledFor }}\n"
        )
    };
    std::fs::write(project.join("skip.yaml"), flow("skip-missed", "")).unwrap();
    std::fs::write(
        project.join("all.yaml"),
        flow("catch-up", "  schedulePolicy:\n    catchUp: all\n    overlap: allow\n"),
    )
    .unwrap();
    let (ok, _, err) = output(server.cli(&admin, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(3500));
    let (ok, list, err) = output(server.cli(&admin, &home), &["schedule", "list"]);
    assert!(ok && list.contains("skip-missed") && list.contains("every PT1S"), "{list}{err}");
    let (ok, table, err) = output(server.cli(&admin, &home), &["get", "workflows"]);
    let row = table.lines().find(|l| l.starts_with("catch-up")).unwrap_or_default();
    assert!(
        ok && table.contains("NEXT FIRE") && row.contains(&jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()),
        "{table}{err}"
    );
    let down = jiff::Timestamp::now();
    assert!(server.stop().success());
    std::thread::sleep(Duration::from_millis(3200));
    let up = jiff::Timestamp::now();
    let server = Server::start_on(&data, "127.0.0.1:0", &["--workers", "1"]);
    std::thread::sleep(Duration::from_millis(2600));
    let fired = executions(&server, &admin, &home);

    for workflow in ["skip-missed", "catch-up"] {
        let slots = slots_of(&fired, workflow);
        let mut unique = slots.clone();
        unique.dedup();
        assert_eq!(unique, slots, "{workflow}: no slot fired twice");
        assert!(slots.len() >= 4, "{workflow} fired before and after the restart: {slots:?}");
        for pair in slots.windows(2) {
            let apart = pair[1].duration_since(pair[0]).as_millis();
            assert!(apart >= 1000 && apart % 1000 == 0, "{workflow}: slots on the schedule's grid: {slots:?}");
        }
    }
    // A slot less than a second late when the scheduler looks is on time, not missed.
    let grace = up - Duration::from_secs(1);
    let missed = |slots: &[jiff::Timestamp]| slots.iter().filter(|s| **s > down && **s < grace).count();
    assert_eq!(missed(&slots_of(&fired, "skip-missed")), 0, "catchUp skip: missed slots are not run");
    assert!(missed(&slots_of(&fired, "catch-up")) >= 2, "catchUp all: the missed slots are run after the restart");

    // Pausing survives a restart.
    let (ok, _, err) = output(server.cli(&admin, &home), &["schedule", "pause", "skip-missed"]);
    assert!(ok, "{err}");
    let server = {
        assert!(server.stop().success());
        Server::start_on(&data, "127.0.0.1:0", &["--workers", "1"])
    };
    let before = slots_of(&executions(&server, &admin, &home), "skip-missed").len();
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(slots_of(&executions(&server, &admin, &home), "skip-missed").len(), before, "paused stays paused");
    let (ok, list, _) = output(server.cli(&admin, &home), &["schedule", "list"]);
    assert!(ok && list.contains("paused"), "{list}");
}

#[test]
fn an_invalid_cron_is_refused_at_apply_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.yaml");
    std::fs::write(
        &file,
        "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: nightly\nspec:\n  schedule:\n    cron: '61 * * * *'\n  do:\n    - a:\n        set: { x: 1 }\n",
    )
    .unwrap();
    let output = Command::new(stigmer_bin())
        .args(["apply", "-f"])
        .arg(&file)
        .env("STIGMER_HOME", dir.path().join("home"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("flow.yaml:7:") && err.contains("is not a cron expression"), "{err}");
}

/// One HTTP/1.1 request to `endpoint` (`http://HOST:PORT`); the status and the body.
fn http(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn events_wake_listening_runs_and_start_schedule_on_workflows_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(
        &dir.path().join("server"),
        "127.0.0.1:0",
        &["--workers", "2", "--http-listen", "127.0.0.1:0"],
    );
    let web = server.http.clone().unwrap();
    let editor = server.token("acme", "editor", "ana");
    let sender = server.token("acme", "events", "webhooks");
    let viewer = server.token("acme", "viewer", "val");
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("flows.yaml"),
        "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: waiter\nspec:\n  do:\n    - paid:\n        listen:\n          to:\n            one:\n              with: { type: com.example.paid }\n---\napiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: on-order\nspec:\n  schedule:\n    on:\n      one:\n        with: { type: com.example.order }\n  do:\n    - count:\n        set:\n          events: ${ length }\n          order: ${ .[0].data.order }\n",
    )
    .unwrap();
    let (ok, _, err) = output(server.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");

    // `event send` wakes a run waiting in `listen`.
    let start_waiter = || {
        let (ok, out, err) = output(server.cli(&editor, &home), &["workflow", "run", "waiter", "--detach"]);
        assert!(ok, "{err}");
        let id = out.lines().last().unwrap().trim().to_owned();
        // Blocked in its `listen`, it shows as waiting.
        server.wait_for_status(&editor, &home, &id, "waiting", Duration::from_secs(20));
        id
    };
    let first = start_waiter();
    let (ok, out, err) = output(
        server.cli(&sender, &home),
        &["event", "send", "--type", "com.example.paid", "--source", "shop", "--data", r#"{"order": 1}"#],
    );
    assert!(ok && out.contains("delivered to 1 execution"), "{out}{err}");
    let done = server.wait_for_status(&editor, &home, &first, "completed", Duration::from_secs(20));
    assert_eq!(done["output"][0]["order"], 1, "{done:#}");

    // So does POST /v1/events, in structured mode.
    let second = start_waiter();
    let paid = r#"{"specversion":"1.0","id":"p-2","source":"shop","type":"com.example.paid","data":{"order":2}}"#;
    let bearer = format!("Bearer {sender}");
    let (status, body) = http(
        &web,
        "POST",
        "/v1/events",
        &[("content-type", "application/cloudevents+json"), ("authorization", &bearer)],
        paid,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        server.wait_for_status(&editor, &home, &second, "completed", Duration::from_secs(20))["output"][0]["order"],
        2
    );

    // schedule.on: one execution per matching event, a duplicate (same source and id) none.
    let order = |id: &str, n: u32| {
        let headers = [
            ("content-type", "application/json"),
            ("authorization", bearer.as_str()),
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "shop"),
            ("ce-type", "com.example.order"),
        ];
        http(&web, "POST", "/v1/events", &headers, &format!(r#"{{"order": {n}}}"#))
    };
    assert_eq!(order("o-1", 7).0, 202);
    let (status, body) = order("o-1", 7);
    assert!(status == 202 && body.contains("\"duplicate\":true"), "{body}");
    let (ok, out, err) = output(
        server.cli(&sender, &home),
        &[
            "event",
            "send",
            "--type",
            "com.example.order",
            "--source",
            "shop",
            "--id",
            "o-2",
            "--data",
            r#"{"order": 8}"#,
        ],
    );
    assert!(ok && out.contains("started 1"), "{out}{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let orders = loop {
        let all = executions(&server, &editor, &home);
        let orders: Vec<Value> = all.into_iter().filter(|e| e["target"] == "workflow/on-order").collect();
        if orders.iter().all(|e| e["status"] == "completed") && orders.len() >= 2 {
            break orders;
        }
        assert!(Instant::now() < deadline, "{orders:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut got: Vec<i64> = orders.iter().map(|e| e["output"]["order"].as_i64().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, [7, 8], "one run per event, none for the duplicate");
    assert!(orders.iter().all(|e| e["output"]["events"] == 1), "the input is the array of events that started it");

    // Refusals: malformed, no token, a token that may not send; an events token sends only.
    let headers = [("content-type", "application/cloudevents+json"), ("authorization", bearer.as_str())];
    let (status, body) = http(&web, "POST", "/v1/events", &headers, r#"{"specversion":"1.0","id":"x","source":"s"}"#);
    assert!(status == 400 && body.contains("type is missing"), "{status} {body}");
    let (status, _) = http(&web, "POST", "/v1/events", &[("content-type", "application/cloudevents+json")], paid);
    assert_eq!(status, 401);
    let viewing = format!("Bearer {viewer}");
    let (status, body) = http(
        &web,
        "POST",
        "/v1/events",
        &[("content-type", "application/cloudevents+json"), ("authorization", &viewing)],
        paid,
    );
    assert!(status == 403 && body.contains("send events"), "{status} {body}");
    for args in [vec!["get", "workflows"], vec!["execution", "list"], vec!["workflow", "run", "waiter"]] {
        let (ok, _, err) = output(server.cli(&sender, &home), &args);
        assert!(!ok && err.contains("permission denied"), "{args:?} with an events token: {err}");
    }

    // The HTTP side's other endpoints.
    assert_eq!(http(&web, "GET", "/healthz", &[], "").0, 200);
    assert_eq!(http(&web, "GET", "/readyz", &[], "").0, 200);
    let (status, metrics) = http(&web, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    for name in [
        "stigmer_executions{org=\"acme\",status=\"completed\"}",
        "stigmer_claim_latency_seconds_count",
        "stigmer_rpc_duration_seconds_bucket{method=\"ExecutionCreate\"",
        "stigmer_queue_depth",
        "stigmer_workers{org=\"acme\"}",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

#[test]
fn a_queued_runs_secret_reaches_its_worker_and_is_stored_and_logged_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("server"), "127.0.0.1:0", &["--workers", "0"]);
    let editor = server.token("acme", "editor", "ana");
    let work = server.token("acme", "worker", "w");
    let home = dir.path().join("home");
    let flow = dir.path().join("flow.yaml");
    std::fs::write(
        &flow,
        "document: { dsl: '1.0.0', namespace: t, name: uses-key, version: '0.1.0' }\ndo:\n  - use:\n      set:\n        key: ${ $secret.API_KEY }\n        length: ${ $secret.API_KEY | length }\n",
    )
    .unwrap();
    let secret = "sk-queued-7f3a9c";
    let (ok, out, err) = output(
        server.cli(&editor, &home),
        &["workflow", "run", "-f", flow.to_str().unwrap(), "--secret", &format!("API_KEY={secret}"), "--detach"],
    );
    assert!(ok, "{err}");
    let id = out.lines().last().unwrap().trim().to_owned();
    let worker_log = dir.path().join("worker.log");
    let mut w = server.worker(&work, &dir.path().join("worker-home"), &worker_log, &["--concurrency", "1"]);
    let record = server.wait_for_status(&editor, &home, &id, "completed", Duration::from_secs(20));
    w.kill().unwrap();
    let _ = w.wait();
    assert_eq!(record["output"]["length"], secret.len(), "the worker had the value: {record:#}");
    assert_eq!(record["output"]["key"], "***", "and masked it in what it recorded");
    let (_, events, _) = output(server.cli(&editor, &home), &["execution", "events", &id, "-o", "json"]);
    assert!(!events.contains(secret));
    support::assert_nowhere_in(&server.data, &[secret]);
    support::assert_nowhere_in(&dir.path().join("worker-home"), &[secret]);
    assert!(!std::fs::read_to_string(&worker_log).unwrap().contains(secret), "not in the worker's log");
    assert!(!std::fs::read_to_string(&server.log).unwrap().contains(secret), "not in the server's log");
}
