//! Several `stigmer server` replicas on one PostgreSQL database, under load and with faults:
//! a replica killed (`kill -9`) in the middle of applies, reads and running workflows loses
//! nothing that was acknowledged and runs nothing twice; schedules fire each slot once while
//! the replica firing them dies and another takes over; and two schedulers that race for the
//! same slots — what the primary key on a slot is there for — still fire each once.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stigmer::backend::schedule::Scheduler;
use stigmer::backend::{
    ApplyBatch, Backend, BackendError, BatchItem, ExecutionQuery, ResourceQuery, StoreBackend, Write,
};
use stigmer::model::Kind;
use stigmer::remote::{RemoteBackend, RemoteOptions};
use stigmer::secrets::KeySource;
use stigmer::store::postgres::{PgOptions, PgStore};
use support::effects::{self, Effects};
use support::{Server, output, postgres};

/// Every replica's master key: replicas seal and open each other's secrets.
const MASTER_KEY: &str = "5a1d4c0ffee5a1d4c0ffee5a1d4c0ffee5a1d4c0ffee5a1d4c0ffee5a1d4c0ff";

fn replica(dir: &Path, name: &str, url: &str, extra: &[&str]) -> Server {
    Server::launch(
        &dir.join(name),
        "127.0.0.1:0",
        &[&["--store", url], extra].concat(),
        &[("STIGMER_MASTER_KEY", MASTER_KEY)],
    )
}

fn client(endpoint: &str, token: &str) -> RemoteBackend {
    let options = RemoteOptions { endpoint: endpoint.to_owned(), token: token.to_owned(), org: None, ca_cert: None };
    RemoteBackend::new(&options).unwrap()
}

/// A skill whose text is the counter a writer last wrote.
fn skill(name: &str, counter: u64) -> Value {
    json!({
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Skill",
        "metadata": {"name": name},
        "spec": {"skillMd": counter.to_string()},
    })
}

/// What one writer knows after the load: every counter acknowledged, and the last tried.
#[derive(Debug, Default, Clone)]
struct Written {
    acknowledged: Vec<u64>,
    tried: u64,
}

/// A writer: writes its own skill, counter after counter, until told to stop; a replica that
/// does not answer is left for the other, as a load balancer would.
async fn write_until(endpoints: [String; 2], token: String, name: String, stop: Arc<AtomicBool>) -> Written {
    let mut written = Written::default();
    let mut at = 0;
    let mut generation: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let backend = client(&endpoints[at], &token);
        written.tried += 1;
        let write = match generation {
            None => Write::Create { manifest: skill(&name, written.tried).into() },
            Some(expected_generation) => {
                Write::Update { manifest: skill(&name, written.tried).into(), expected_generation }
            }
        };
        let batch = ApplyBatch {
            apply_set: Some("load".into()),
            items: vec![BatchItem { kind: Kind::Skill, name: name.clone(), write }],
            dry_run: false,
            correcting: false,
        };
        match backend.apply(batch).await {
            Ok(receipt) => {
                written.acknowledged.push(written.tried);
                generation = receipt.written.first().map(|w| w.generation);
            }
            // A write whose answer was lost may have committed: look again.
            Err(BackendError::Conflict { .. }) => {
                generation = backend.get(Kind::Skill, &name).await.ok().flatten().map(|r| r.generation);
            }
            Err(_) => {
                at = 1 - at;
                let other = client(&endpoints[at], &token);
                generation = other.get(Kind::Skill, &name).await.ok().flatten().map(|r| r.generation);
            }
        }
    }
    written
}

/// A reader: lists everything until told to stop; counts the answers it got.
async fn read_until(endpoints: [String; 2], token: String, stop: Arc<AtomicBool>, answers: Arc<AtomicUsize>) {
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        match client(&endpoints[at], &token).list(&ResourceQuery::all()).await {
            Ok(_) => {
                answers.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => at = 1 - at,
        }
    }
}

#[test]
fn a_replica_killed_under_load_loses_no_acknowledged_write_and_runs_nothing_twice() {
    let Some(url) = postgres::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let a = replica(dir.path(), "a", &url, &["--workers", "0"]);
    let b = replica(dir.path(), "b", &url, &["--workers", "0"]);
    let editor = a.token("acme", "editor", "ana");
    let work = b.token("acme", "worker", "workers");

    let (effects, port) = Effects::serve();
    let flow = dir.path().join("flow.yaml");
    let calls = ["first", "second"];
    std::fs::write(&flow, effects::workflow(port, &calls)).unwrap();
    // One worker on each replica, 8 runs at a time each.
    let mut on_a = a.worker(&work, &dir.path().join("wa"), &dir.path().join("wa.log"), &["--concurrency", "8"]);
    let mut on_b = b.worker(&work, &dir.path().join("wb"), &dir.path().join("wb.log"), &["--concurrency", "8"]);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let endpoints = [a.endpoint.clone(), b.endpoint.clone()];
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..25)
        .map(|n| {
            let ends = if n % 2 == 0 { endpoints.clone() } else { [endpoints[1].clone(), endpoints[0].clone()] };
            runtime.spawn(write_until(ends, editor.clone(), format!("writer-{n}"), stop.clone()))
        })
        .collect();
    let readers: Vec<_> = (0..25)
        .map(|n| {
            let ends = if n % 2 == 0 { endpoints.clone() } else { [endpoints[1].clone(), endpoints[0].clone()] };
            runtime.spawn(read_until(ends, editor.clone(), stop.clone(), answers.clone()))
        })
        .collect();

    // 100 workflows queued through both replicas while the load goes on.
    for n in 0..100 {
        let via = if n % 2 == 0 { &a } else { &b };
        let (ok, _, err) =
            output(via.cli(&editor, &home), &["workflow", "run", "-f", flow.to_str().unwrap(), "--detach"]);
        assert!(ok, "{err}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    a.kill();
    let answered_before = answers.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let written: Vec<Written> = writers.into_iter().map(|w| runtime.block_on(w).unwrap()).collect();
    for reader in readers {
        runtime.block_on(reader).unwrap();
    }
    assert!(answers.load(Ordering::Relaxed) > answered_before, "the surviving replica answered reads");

    // Every acknowledged write is there: in the history, each one, even those a later write
    // replaced; and the last is current (or a later one whose answer was lost).
    let _entered = runtime.enter();
    let survivor = client(&b.endpoint, &editor);
    let counter_of =
        |manifest: &serde_json::Value| -> u64 { manifest["spec"]["skillMd"].as_str().unwrap().parse().unwrap() };
    for (n, written) in written.iter().enumerate() {
        let name = format!("writer-{n}");
        let last = *written.acknowledged.last().unwrap_or_else(|| panic!("{name} got nothing through: {written:?}"));
        let stored = runtime.block_on(survivor.get(Kind::Skill, &name)).unwrap().unwrap();
        let counter = counter_of(&stored.manifest);
        assert!(
            (last..=written.tried).contains(&counter),
            "{name}: stored {counter}, acknowledged {last}, tried {}",
            written.tried
        );
        let history = runtime.block_on(survivor.history(Kind::Skill, &name)).unwrap();
        let kept: Vec<u64> = history.iter().map(|revision| counter_of(&revision.manifest)).collect();
        for acknowledged in &written.acknowledged {
            assert!(kept.contains(acknowledged), "{name}: acknowledged {acknowledged} is not in its history {kept:?}");
        }
    }

    // Every execution ends once, completed; no task that completed ran again. The worker on
    // the dead replica cannot reach it: its runs go to the other worker once their leases lapse.
    let deadline = Instant::now() + Duration::from_mins(3);
    let all = loop {
        let all = runtime.block_on(survivor.execution_list(&ExecutionQuery::default())).unwrap();
        if all.len() == 100 && all.iter().all(|e| e.status.is_final()) {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "not all executions ended: {:#?}",
            all.iter().map(|e| (&e.id, e.status)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = on_a.kill();
    let _ = on_b.kill();
    let _ = (on_a.wait(), on_b.wait());
    assert!(all.iter().all(|e| e.status == stigmer::backend::ExecutionStatus::Completed), "{all:#?}");
    for execution in &all {
        let events = runtime.block_on(survivor.execution_events(&execution.id, 0, None)).unwrap();
        for task in calls {
            let reference = effects::reference(&calls, task);
            let completed: Vec<jiff::Timestamp> = events
                .iter()
                .filter(|(_, e)| e["event"] == "completed" && e["reference"] == reference.as_str())
                .map(|(_, e)| e["at"].as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(completed.len(), 1, "{} {task} completed exactly once", execution.id);
            let calls = effects.times(&format!("/{}/{task}", execution.id));
            assert!(!calls.is_empty(), "{} {task} ran", execution.id);
            let done = completed[0].checked_add(Duration::from_millis(50)).unwrap();
            assert!(calls.iter().all(|at| *at <= done), "{} {task} ran again after it completed", execution.id);
        }
    }
}

#[test]
fn writers_on_two_replicas_conflict_instead_of_losing_an_update() {
    let Some(url) = postgres::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), "a", &url, &["--workers", "0"]);
    let b = replica(dir.path(), "b", &url, &["--workers", "0"]);
    let editor = a.token("acme", "editor", "ana");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let (on_a, on_b) = (client(&a.endpoint, &editor), client(&b.endpoint, &editor));
    let create = |counter| BatchItem {
        kind: Kind::Skill,
        name: "shared".into(),
        write: Write::Create { manifest: skill("shared", counter).into() },
    };
    let update = |counter| BatchItem {
        kind: Kind::Skill,
        name: "shared".into(),
        write: Write::Update { manifest: skill("shared", counter).into(), expected_generation: 1 },
    };
    let batch = |item| ApplyBatch { apply_set: None, items: vec![item], dry_run: false, correcting: false };
    runtime.block_on(on_a.apply(batch(create(1)))).unwrap();
    // Both planned against generation 1; the one that commits second is refused, on the other
    // replica, and what the first wrote stands.
    runtime.block_on(on_a.apply(batch(update(2)))).unwrap();
    let refused = runtime.block_on(on_b.apply(batch(update(3))));
    match refused {
        Err(BackendError::Conflict { moved }) => assert_eq!((moved[0].expected, moved[0].found), (Some(1), Some(2))),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stored = runtime.block_on(on_b.get(Kind::Skill, "shared")).unwrap().unwrap();
    assert_eq!((stored.generation, stored.manifest["spec"]["skillMd"].as_str()), (2, Some("2")));
    let history = runtime.block_on(on_a.history(Kind::Skill, "shared")).unwrap();
    assert_eq!(history.len(), 2, "nothing of the refused write is recorded");
}

/// The schedule slots fired per workflow, from the executions.
fn slots(executions: &[stigmer::backend::ExecutionRecord]) -> BTreeMap<String, Vec<jiff::Timestamp>> {
    let mut slots: BTreeMap<String, Vec<jiff::Timestamp>> = BTreeMap::new();
    for execution in executions {
        if let Some(slot) = execution.input["scheduledFor"].as_str() {
            slots.entry(execution.target.clone()).or_default().push(slot.parse().unwrap());
        }
    }
    slots
}

#[test]
fn schedules_fire_each_slot_once_while_the_replica_firing_them_dies() {
    let Some(url) = postgres::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first = replica(dir.path(), "first", &url, &["--workers", "0"]);
    let editor = first.token("acme", "editor", "ana");
    let second = replica(dir.path(), "second", &url, &["--workers", "0"]);
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("stigmer.yaml"), "name: ticks\n").unwrap();
    let workflows: Vec<String> = (0..6)
        .map(|n| {
            format!(
                "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata: {{name: tick-{n}}}\nspec:\n  schedule: {{every: PT1S}}\n  \
                 schedulePolicy: {{catchUp: all, overlap: allow}}\n  do:\n    - a: {{set: {{x: 1}}}}\n"
            )
        })
        .collect();
    let workflows = workflows.join("---\n");
    std::fs::write(project.join("ticks.yaml"), workflows).unwrap();
    let (ok, _, err) = output(first.cli(&editor, &home), &["apply", "-f", project.to_str().unwrap()]);
    assert!(ok, "{err}");

    std::thread::sleep(Duration::from_secs(5));
    // Whichever replica fires the schedules dies; the other takes over and catches up.
    let leads =
        |server: &Server| std::fs::read_to_string(&server.log).unwrap().contains("this replica fires the schedules");
    let (dead, alive) = if leads(&first) { (first, second) } else { (second, first) };
    assert!(!leads(&alive), "one replica fires at a time");
    dead.kill();
    std::thread::sleep(Duration::from_secs(7));
    assert!(leads(&alive), "the survivor took over");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let survivor = client(&alive.endpoint, &editor);
    let all = runtime.block_on(survivor.execution_list(&ExecutionQuery::default())).unwrap();
    let fired = slots(&all);
    assert_eq!(fired.len(), 6, "{fired:?}");
    let total: usize = fired.values().map(Vec::len).sum();
    assert!(total >= 60, "60 slots or more fired: {total}");
    for (workflow, slots) in &fired {
        let distinct: BTreeSet<_> = slots.iter().collect();
        assert_eq!(distinct.len(), slots.len(), "{workflow}: a slot fired twice: {slots:?}");
        // Caught up: no second was left out, across the takeover too.
        let mut sorted = slots.clone();
        sorted.sort();
        for pair in sorted.windows(2) {
            assert_eq!(pair[1].duration_since(pair[0]).as_secs(), 1, "{workflow}: a slot was lost: {sorted:?}");
        }
    }
}

#[test]
fn two_schedulers_racing_for_the_same_slots_fire_each_once() {
    let Some(url) = postgres::database() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let options = PgOptions { url: url.clone(), pool: 4 };
        let stores = [PgStore::connect(&options).await.unwrap(), PgStore::connect(&options).await.unwrap()];
        stores[0].migrate().await.unwrap();
        let key = KeySource::Given(stigmer::secrets::HiddenKey(MASTER_KEY.to_owned()));
        let backend = |store: &PgStore| {
            let store = store.clone();
            let key = key.clone();
            async move { StoreBackend::over(store.org("acme").await.unwrap(), "scheduler", key) }
        };
        let one = backend(&stores[0]).await;
        let other = backend(&stores[1]).await;
        let manifest = json!({
            "apiVersion": "agentic.stigmer.ai/v1",
            "kind": "Workflow",
            "metadata": {"name": "tick"},
            "spec": {"schedule": {"every": "PT1S"}, "schedulePolicy": {"overlap": "allow"}, "do": [{"a": {"set": {"x": 1}}}]},
        });
        let item = BatchItem { kind: Kind::Workflow, name: "tick".into(), write: Write::Create { manifest: manifest.into() } };
        one.apply(ApplyBatch { apply_set: None, items: vec![item], dry_run: false, correcting: false }).await.unwrap();
        // Both read the schedule at second 0, then tick the same seconds at once: each
        // believes every slot is its to fire.
        let start = jiff::Timestamp::from_second(1_900_000_000).unwrap();
        let (mut a, mut b) = (Scheduler::default(), Scheduler::default());
        a.tick(&one, start).await.unwrap();
        b.tick(&other, start).await.unwrap();
        let mut started = 0;
        for second in 1..=30 {
            let at = start.checked_add(jiff::SignedDuration::from_secs(second)).unwrap();
            let (x, y) = tokio::join!(a.tick(&one, at), b.tick(&other, at));
            started += x.unwrap() + y.unwrap();
        }
        let all = one.execution_list(&ExecutionQuery::default()).await.unwrap();
        let fired = slots(&all);
        let tick = &fired["workflow/tick"];
        let distinct: BTreeSet<_> = tick.iter().collect();
        assert_eq!((tick.len(), distinct.len(), started), (30, 30, 30), "each slot once: {tick:?}");
    });
}
