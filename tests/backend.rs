//! The backend contract, as one suite that every backend must pass: each scenario runs on the
//! local store and on the remote backend against a real `stigmer server` on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use stigmer::backend::{
    Backend, BackendError, ClaimRequest, ExecutionRecord, ExecutionStatus, ResourceQuery, RevisionAction, WorkerInfo,
};
use stigmer::model::{Agent, AgentSpec, AnyResource, Kind, Skill, SkillSpec};
use stigmer::reconcile::{self, Desired, PlanOptions, plan};
use stigmer::remote::{RemoteBackend, RemoteOptions};
use stigmer::secrets::SecretValue;
use stigmer::store::redb::LocalBackend;

mod support;

fn skill(name: &str, text: &str) -> AnyResource {
    Skill::new(name, SkillSpec::markdown(text)).into()
}

fn desired(resources: &[AnyResource]) -> Vec<Desired> {
    resources.iter().cloned().map(Desired::new).collect()
}

fn options(set: &str) -> PlanOptions {
    PlanOptions { apply_set: Some(set.to_owned()), ..PlanOptions::default() }
}

/// Two writers plan against the same state; the second to apply gets a conflict that names the
/// resource, nothing of it is written, and the first writer's change survives.
async fn conflicting_writers_lose_no_update<B: Backend>(one: &B, two: &B) {
    let base = one.list(&ResourceQuery::all()).await.unwrap();
    let plan_a = plan(&desired(&[skill("shared", "from A"), skill("only-a", "A")]), &base, &options("s")).unwrap();
    let plan_b = plan(&desired(&[skill("shared", "from B")]), &base, &options("s")).unwrap();
    reconcile::apply(one, &plan_a, false).await.unwrap();
    let error = reconcile::apply(two, &plan_b, false).await.unwrap_err();
    match error {
        reconcile::ReconcileError::Backend(BackendError::Conflict { moved }) => {
            assert_eq!(moved.len(), 1);
            assert_eq!(moved[0].address, "skill/shared");
            assert_eq!((moved[0].expected, moved[0].found), (None, Some(1)));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let stored = two.get(Kind::Skill, "shared").await.unwrap().unwrap();
    assert_eq!(stored.manifest["spec"]["skillMd"], "from A", "the first writer's change was lost");
    // Planning again against the current state goes through.
    let current = two.list(&ResourceQuery::all()).await.unwrap();
    let again = plan(&desired(&[skill("shared", "from B"), skill("only-a", "A")]), &current, &options("s")).unwrap();
    reconcile::apply(two, &again, false).await.unwrap();
    assert_eq!(two.get(Kind::Skill, "shared").await.unwrap().unwrap().generation, 2);
}

/// Applying the same desired state twice: the second plan is empty and commits nothing.
async fn applying_twice_writes_nothing<B: Backend>(backend: &B) {
    let wanted = desired(&[skill("calc", "Add."), Agent::new("helper", AgentSpec::new("Help.").skill("calc")).into()]);
    let first = plan(&wanted, &backend.list(&ResourceQuery::all()).await.unwrap(), &options("s")).unwrap();
    let receipt = reconcile::apply(backend, &first, false).await.unwrap();
    assert!(receipt.committed);
    assert_eq!(receipt.written.len(), 2);
    let second = plan(&wanted, &backend.list(&ResourceQuery::all()).await.unwrap(), &options("s")).unwrap();
    assert!(!second.has_changes());
    let receipt = reconcile::apply(backend, &second, false).await.unwrap();
    assert!(!receipt.committed);
    let history = backend.history(Kind::Agent, "helper").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, RevisionAction::Created);
    assert_eq!(
        backend.inventory("s").await.unwrap(),
        vec![(Kind::Skill, "calc".to_owned()), (Kind::Agent, "helper".to_owned())]
    );
}

/// Every change is audited with its actor.
async fn changes_are_audited<B: Backend>(backend: &B) {
    let before = backend.audit(None).await.unwrap().len();
    let wanted = desired(&[skill("audited", "x")]);
    let plan = plan(&wanted, &backend.list(&ResourceQuery::all()).await.unwrap(), &options("audit")).unwrap();
    reconcile::apply(backend, &plan, false).await.unwrap();
    let audit = backend.audit(None).await.unwrap();
    assert_eq!(audit.len(), before + 1);
    let last = audit.last().unwrap();
    assert_eq!((last.target.as_str(), last.actor.as_str()), ("skill/audited", "tester"));
    let identity = backend.whoami().await.unwrap();
    assert_eq!(identity.actor, "tester");
}

/// The version moves with every committed batch and with nothing else, and a receipt names the
/// version its batch committed.
async fn version_moves_only_with_commits<B: Backend>(backend: &B) {
    let start = backend.version().await.unwrap();
    let first =
        plan(&desired(&[skill("versioned", "1")]), &backend.list(&ResourceQuery::all()).await.unwrap(), &options("v"))
            .unwrap();
    let dry = reconcile::apply(backend, &first, true).await.unwrap();
    assert_eq!((dry.committed, dry.version), (false, None));
    assert_eq!(backend.version().await.unwrap(), start, "a dry run commits nothing");
    let receipt = reconcile::apply(backend, &first, false).await.unwrap();
    assert_eq!(receipt.version, Some(start + 1));
    assert_eq!(backend.version().await.unwrap(), start + 1);
    let again =
        plan(&desired(&[skill("versioned", "1")]), &backend.list(&ResourceQuery::all()).await.unwrap(), &options("v"))
            .unwrap();
    reconcile::apply(backend, &again, false).await.unwrap();
    assert_eq!(backend.version().await.unwrap(), start + 1, "an empty plan commits nothing");
}

fn local(dir: &tempfile::TempDir) -> LocalBackend {
    LocalBackend::new(dir.path().join("local.db"), "tester")
}

#[tokio::test]
async fn local_conflicting_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    conflicting_writers_lose_no_update(&local(&dir), &local(&dir)).await;
}

#[tokio::test]
async fn local_applying_twice_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    applying_twice_writes_nothing(&local(&dir)).await;
}

#[tokio::test]
async fn local_changes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    changes_are_audited(&local(&dir)).await;
}

#[tokio::test]
async fn local_version_moves_only_with_commits() {
    let dir = tempfile::tempdir().unwrap();
    version_moves_only_with_commits(&local(&dir)).await;
}

/// Many writers at once, each adding its own resource after re-planning on conflict: every
/// resource ends up stored.
async fn concurrent_writers_serialize_without_losing_updates<B: Backend + Clone + 'static>(handles: Vec<B>) {
    let mut tasks = Vec::new();
    for (i, backend) in handles.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            loop {
                let current = backend.list(&ResourceQuery::all()).await.unwrap();
                let mut wanted: Vec<AnyResource> =
                    current.iter().map(|r| AnyResource::from_value(r.kind, r.manifest.clone()).unwrap()).collect();
                wanted.push(skill(&format!("writer-{i}"), "mine"));
                let plan = plan(&desired(&wanted), &current, &options("shared")).unwrap();
                match reconcile::apply(&backend, &plan, false).await {
                    Ok(_) => break,
                    Err(reconcile::ReconcileError::Backend(BackendError::Conflict { .. })) => {}
                    Err(other) => panic!("{other}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let names: Vec<String> =
        handles[0].list(&ResourceQuery::all()).await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), handles.len(), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_concurrent_writers_serialize_without_losing_updates() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers_serialize_without_losing_updates((0..8).map(|_| local(&dir)).collect()).await;
}

/// A server on a scratch directory, and a client for org `test` acting as "tester".
fn server() -> (tempfile::TempDir, support::Server, RemoteOptions) {
    let dir = tempfile::tempdir().unwrap();
    let server = support::Server::start(&dir.path().join("data"));
    let token = server.token("test", "admin", "tester");
    let options = RemoteOptions { endpoint: server.endpoint.clone(), token, org: Some("test".into()), ca_cert: None };
    (dir, server, options)
}

fn remote(options: &RemoteOptions) -> RemoteBackend {
    RemoteBackend::new(options).unwrap()
}

#[tokio::test]
async fn remote_conflicting_writers_lose_no_update() {
    let (_dir, _server, options) = server();
    conflicting_writers_lose_no_update(&remote(&options), &remote(&options)).await;
}

#[tokio::test]
async fn remote_applying_twice_writes_nothing() {
    let (_dir, _server, options) = server();
    applying_twice_writes_nothing(&remote(&options)).await;
}

#[tokio::test]
async fn remote_changes_are_audited() {
    let (_dir, _server, options) = server();
    changes_are_audited(&remote(&options)).await;
}

#[tokio::test]
async fn remote_version_moves_only_with_commits() {
    let (_dir, _server, options) = server();
    version_moves_only_with_commits(&remote(&options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_concurrent_writers_serialize_without_losing_updates() {
    let (_dir, _server, options) = server();
    concurrent_writers_serialize_without_losing_updates((0..8).map(|_| remote(&options)).collect()).await;
}

// The execution service's contract: queue, leases, fencing, following, events, schedules.
// Executions go to a queue of their own, which the server's own workers do not serve.

const QUEUE: &str = "contract";

fn pending(id: &str) -> ExecutionRecord {
    let mut record = ExecutionRecord::new(
        id.to_owned(),
        "workflow/w".into(),
        "tester".into(),
        serde_json::json!({}),
        ExecutionStatus::Pending,
    );
    QUEUE.clone_into(&mut record.queue);
    record
}

fn claim(worker: &str, wait: Duration) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerInfo {
            id: worker.to_owned(),
            host: "h".into(),
            version: "v".into(),
            queues: vec![QUEUE.to_owned()],
            concurrency: 1,
            running: 0,
            last_seen: jiff::Timestamp::UNIX_EPOCH,
        },
        lease: Duration::from_secs(30),
        wait,
        id: None,
        take_over: None,
    }
}

fn raw(value: &serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(value).unwrap()
}

/// A claim takes a pending execution under a lease; writes under another epoch are refused; a
/// follower sees the events and the end; a cancel ends the lease.
async fn executions_are_claimed_leased_fenced_and_followed<B: Backend>(backend: &B) {
    let id = uuid::Uuid::new_v4().to_string();
    backend.execution_create(pending(&id), vec![("TOKEN".into(), SecretValue::new("s3cret"))]).await.unwrap();
    let held = backend.execution_claim(claim("w1", Duration::ZERO)).await.unwrap().expect("the pending one");
    assert_eq!((held.record.id.as_str(), held.record.status, held.epoch()), (id.as_str(), ExecutionStatus::Running, 1));
    assert_eq!(held.secrets.len(), 1, "the run's secrets go to the worker that holds it");
    assert_eq!(held.secrets[0].1.expose(), "s3cret");
    assert!(backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().is_none(), "held: not claimable");
    // The claim itself is the first event of the history.
    assert_eq!(
        backend.execution_append(&id, Some(1), vec![raw(&serde_json::json!({"event": "started"}))]).await.unwrap(),
        2
    );
    let stale = backend.execution_append(&id, Some(2), vec![raw(&serde_json::json!({"event": "x"}))]).await;
    assert!(matches!(stale, Err(BackendError::LeaseLost { .. })), "{stale:?}");
    backend.execution_renew(&id, 1, Duration::from_secs(30)).await.unwrap();

    let mut feed = backend.execution_follow(&id, 0).await.unwrap();
    let first = feed.next().await.unwrap().unwrap();
    let kinds: Vec<&str> = first.events.iter().map(|(_, e)| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["claimed", "started"]);
    backend.execution_finish(&id, None, ExecutionStatus::Cancelled, None, None, Vec::new()).await.unwrap();
    let mut last = first;
    while let Some(update) = feed.next().await {
        last = update.unwrap();
    }
    assert_eq!(last.record.status, ExecutionStatus::Cancelled, "the feed ends with the final record");
    let renewed = backend.execution_renew(&id, 1, Duration::from_secs(30)).await;
    assert!(matches!(renewed, Err(BackendError::LeaseLost { .. })), "a cancel ends the lease: {renewed:?}");
}

/// A claim that waits answers as soon as work arrives, not at the end of its wait.
async fn a_waiting_claim_answers_when_work_arrives<B: Backend + Clone + 'static>(backend: &B) {
    let waiting = {
        let backend = backend.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            let claim = backend.execution_claim(claim("w", Duration::from_secs(10))).await.unwrap();
            (claim, asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend.execution_create(pending(&uuid::Uuid::new_v4().to_string()), Vec::new()).await.unwrap();
    let (claim, took) = waiting.await.unwrap();
    assert!(claim.is_some());
    assert!(took < Duration::from_secs(3), "answered {took:?} after asking");
}

/// An event is kept once per source and id; one that is not a CloudEvent is refused.
async fn events_are_kept_once_and_checked<B: Backend>(backend: &B) {
    let event = serde_json::json!({"specversion": "1.0", "id": "e-1", "source": "contract", "type": "t"});
    let first = backend.event_publish(event.clone()).await.unwrap();
    let again = backend.event_publish(event).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    let bad = backend.event_publish(serde_json::json!({"specversion": "1.0", "id": "e-2", "source": "s"})).await;
    assert!(matches!(bad, Err(BackendError::BadEvent(ref reason)) if reason == "type is missing"), "{bad:?}");
}

/// A scheduled workflow is listed with its next fire time; a pause is kept.
async fn schedules_are_listed_and_paused<B: Backend>(backend: &B) {
    let workflow: AnyResource = serde_json::from_value::<stigmer::model::Workflow>(serde_json::json!({
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Workflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": {"cron": "0 3 * * *"}, "do": [{"a": {"set": {"x": 1}}}]},
    }))
    .unwrap()
    .into();
    let plan = plan(&desired(&[workflow]), &backend.list(&ResourceQuery::all()).await.unwrap(), &options("s")).unwrap();
    reconcile::apply(backend, &plan, false).await.unwrap();
    let listed = backend.schedule_list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].workflow.as_str(), listed[0].spec.as_str()), ("nightly", "cron 0 3 * * *"));
    assert!(listed[0].next.is_some_and(|at| at > jiff::Timestamp::now()));
    backend.schedule_pause("nightly", true).await.unwrap();
    let listed = backend.schedule_list().await.unwrap();
    assert!(listed[0].paused && listed[0].next.is_none());
    let missing = backend.schedule_pause("nope", true).await;
    assert!(matches!(missing, Err(BackendError::NotFound { .. })), "{missing:?}");
}

#[tokio::test]
async fn local_executions_are_claimed_leased_fenced_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    executions_are_claimed_leased_fenced_and_followed(&local(&dir)).await;
}

#[tokio::test]
async fn remote_executions_are_claimed_leased_fenced_and_followed() {
    let (_dir, _server, options) = server();
    executions_are_claimed_leased_fenced_and_followed(&remote(&options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_a_waiting_claim_answers_when_work_arrives() {
    let dir = tempfile::tempdir().unwrap();
    a_waiting_claim_answers_when_work_arrives(&local(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_a_waiting_claim_answers_when_work_arrives() {
    let (_dir, _server, options) = server();
    a_waiting_claim_answers_when_work_arrives(&remote(&options)).await;
}

#[tokio::test]
async fn local_events_are_kept_once_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    events_are_kept_once_and_checked(&local(&dir)).await;
}

#[tokio::test]
async fn remote_events_are_kept_once_and_checked() {
    let (_dir, _server, options) = server();
    events_are_kept_once_and_checked(&remote(&options)).await;
}

#[tokio::test]
async fn local_schedules_are_listed_and_paused() {
    let dir = tempfile::tempdir().unwrap();
    schedules_are_listed_and_paused(&local(&dir)).await;
}

#[tokio::test]
async fn remote_schedules_are_listed_and_paused() {
    let (_dir, _server, options) = server();
    schedules_are_listed_and_paused(&remote(&options)).await;
}
