//! The backend contract, as one suite that every backend must pass: each scenario runs on the
//! local store, on a real `stigmer server` on 127.0.0.1 keeping its data in a directory, and on
//! one keeping it in a real PostgreSQL (skipped, saying why, where there is none — unless
//! `STIGMER_TEST_REQUIRE_POSTGRES` is set, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use stigmer::backend::{
    ApplyBatch, ApplyReceipt, Backend, BackendError, BatchItem, ClaimRequest, ExecutionCounts, ExecutionPage,
    ExecutionQuery, ExecutionRecord, ExecutionStatus, ResourceQuery, RevisionAction, StoredResource, WorkerInfo, Write,
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
async fn conflicting_writers_lose_no_update<H: Harness>(h: &H) {
    let (one, two) = (&h.handle(), &h.handle());
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
async fn applying_twice_writes_nothing<H: Harness>(h: &H) {
    let backend = &h.handle();
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
async fn changes_are_audited<H: Harness>(h: &H) {
    let backend = &h.handle();
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
async fn version_moves_only_with_commits<H: Harness>(h: &H) {
    let backend = &h.handle();
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

/// Many writers at once, each adding its own resource after re-planning on conflict: every
/// resource ends up stored.
async fn concurrent_writers_serialize_without_losing_updates<H: Harness>(h: &H) {
    let handles: Vec<H::B> = (0..8).map(|_| h.handle()).collect();
    let mut tasks = Vec::new();
    for (i, backend) in handles.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            loop {
                let current = backend.list(&ResourceQuery::all()).await.unwrap();
                let mut wanted: Vec<AnyResource> = current
                    .iter()
                    .map(|r| AnyResource::from_value(r.kind, serde_json::Value::clone(&r.manifest)).unwrap())
                    .collect();
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
async fn executions_are_claimed_leased_fenced_and_followed<H: Harness>(h: &H) {
    let backend = &h.handle();
    let id = uuid::Uuid::new_v4().to_string();
    let claimed_by_another = ExecutionRecord { actor: "someone-else".into(), ..pending(&id) };
    backend.execution_create(claimed_by_another, vec![("TOKEN".into(), SecretValue::new("s3cret"))]).await.unwrap();
    let held = backend.execution_claim(claim("w1", Duration::ZERO)).await.unwrap().expect("the pending one");
    assert_eq!((held.record.id.as_str(), held.record.status, held.epoch()), (id.as_str(), ExecutionStatus::Running, 1));
    assert_eq!(held.record.actor, "tester", "the one who started it is who the backend acts as");
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
async fn a_waiting_claim_answers_when_work_arrives<H: Harness>(h: &H) {
    let backend = &h.handle();
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
async fn events_are_kept_once_and_checked<H: Harness>(h: &H) {
    let backend = &h.handle();
    let event = serde_json::json!({"specversion": "1.0", "id": "e-1", "source": "contract", "type": "t"});
    let first = backend.event_publish(event.clone()).await.unwrap();
    let again = backend.event_publish(event).await.unwrap();
    assert!(!first.duplicate && again.duplicate);
    let bad = backend.event_publish(serde_json::json!({"specversion": "1.0", "id": "e-2", "source": "s"})).await;
    assert!(matches!(bad, Err(BackendError::BadEvent(ref reason)) if reason == "type is missing"), "{bad:?}");
}

/// A scheduled workflow is listed with its next fire time, one that only mentions a schedule is
/// not; a pause is kept.
async fn schedules_are_listed_and_paused<H: Harness>(h: &H) {
    let backend = &h.handle();
    let workflow: AnyResource = serde_json::from_value::<stigmer::model::Workflow>(serde_json::json!({
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Workflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": {"cron": "0 3 * * *"}, "do": [{"a": {"set": {"x": 1}}}]},
    }))
    .unwrap()
    .into();
    let unscheduled: AnyResource = serde_json::from_value::<stigmer::model::Workflow>(serde_json::json!({
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Workflow",
        "metadata": {"name": "by-hand", "annotations": {"note": "no schedule"}},
        "spec": {"do": [{"schedule": {"set": {"schedule": {"cron": "0 3 * * *"}}}}]},
    }))
    .unwrap()
    .into();
    let resources = [workflow, unscheduled];
    let plan = plan(&desired(&resources), &backend.list(&ResourceQuery::all()).await.unwrap(), &options("s")).unwrap();
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

/// Writes one batch by hand.
async fn write<B: Backend>(
    backend: &B,
    set: Option<&str>,
    items: Vec<BatchItem>,
) -> Result<ApplyReceipt, BackendError> {
    backend.apply(ApplyBatch { apply_set: set.map(str::to_owned), items, dry_run: false, correcting: false }).await
}

fn manifest(kind: Kind, name: &str, labels: &serde_json::Value, text: &str) -> std::sync::Arc<serde_json::Value> {
    serde_json::json!({
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "labels": labels},
        "spec": {"skillMd": text},
    })
    .into()
}

fn create(name: &str, labels: &serde_json::Value) -> BatchItem {
    BatchItem {
        kind: Kind::Skill,
        name: name.to_owned(),
        write: Write::Create { manifest: manifest(Kind::Skill, name, labels, "v1") },
    }
}

/// A resource's history outlives its deletion: created, updated, deleted and created again, it
/// has four revisions in order, and a batch may delete and create in one go.
async fn history_outlives_a_delete<H: Harness>(h: &H) {
    let backend = &h.handle();
    write(backend, Some("s"), vec![create("kept", &serde_json::json!({}))]).await.unwrap();
    let update = BatchItem {
        kind: Kind::Skill,
        name: "kept".into(),
        write: Write::Update {
            manifest: manifest(Kind::Skill, "kept", &serde_json::json!({}), "v2"),
            expected_generation: 1,
        },
    };
    write(backend, Some("s"), vec![update]).await.unwrap();
    let gone = BatchItem { kind: Kind::Skill, name: "kept".into(), write: Write::Delete { expected_generation: 2 } };
    let receipt = write(backend, Some("s"), vec![gone, create("kept", &serde_json::json!({}))]).await.unwrap();
    assert_eq!(receipt.written.len(), 2, "a delete and a create of the same resource in one batch");
    let history = backend.history(Kind::Skill, "kept").await.unwrap();
    let steps: Vec<(RevisionAction, u64)> = history.iter().map(|r| (r.action, r.generation)).collect();
    assert_eq!(
        steps,
        [
            (RevisionAction::Created, 1),
            (RevisionAction::Updated, 2),
            (RevisionAction::Deleted, 2),
            (RevisionAction::Created, 1)
        ]
    );
    assert_eq!(history[1].manifest["spec"]["skillMd"], "v2");
    assert_eq!(backend.get(Kind::Skill, "kept").await.unwrap().unwrap().generation, 1);
    assert!(backend.history(Kind::Skill, "never").await.unwrap().is_empty());
}

/// A rename keeps the resource (its uid, its next generation), moves its history, its
/// inventory membership, the executions of the agent and its sessions to the new name, and
/// frees the old one; a rename onto a taken name is refused.
async fn a_rename_takes_history_executions_and_sessions_along<H: Harness>(h: &H) {
    let backend = &h.handle();
    let agent = |name: &str, text: &str| {
        serde_json::json!({"apiVersion": "agentic.stigmer.ai/v1", "kind": "Agent",
            "metadata": {"name": name}, "spec": {"instructions": text}})
    };
    let old = BatchItem {
        kind: Kind::Agent,
        name: "scout".into(),
        write: Write::Create { manifest: agent("scout", "v1").into() },
    };
    write(backend, Some("team"), vec![old]).await.unwrap();
    let session = serde_json::json!({"apiVersion": "agentic.stigmer.ai/v1", "kind": "Session",
        "metadata": {"name": "chat"}, "spec": {"agentRef": "scout"}});
    let session =
        BatchItem { kind: Kind::Session, name: "chat".into(), write: Write::Create { manifest: session.into() } };
    write(backend, None, vec![session]).await.unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let run = ExecutionRecord::new(
        id.clone(),
        "agent/scout".into(),
        "tester".into(),
        serde_json::json!({}),
        ExecutionStatus::Completed,
    );
    backend.execution_create(run, Vec::new()).await.unwrap();
    let uid = backend.get(Kind::Agent, "scout").await.unwrap().unwrap().uid;

    let rename = |expected_generation| BatchItem {
        kind: Kind::Agent,
        name: "ranger".into(),
        write: Write::Rename { from: "scout".into(), manifest: agent("ranger", "v2").into(), expected_generation },
    };
    let stale = write(backend, Some("team"), vec![rename(7)]).await;
    assert!(matches!(stale, Err(BackendError::Conflict { .. })), "{stale:?}");
    let receipt = write(backend, Some("team"), vec![rename(1)]).await.unwrap();
    assert_eq!(receipt.written[0].action, RevisionAction::Renamed);
    assert!(backend.get(Kind::Agent, "scout").await.unwrap().is_none(), "the old name is free");
    let renamed = backend.get(Kind::Agent, "ranger").await.unwrap().unwrap();
    assert_eq!((renamed.uid.as_str(), renamed.generation), (uid.as_str(), 2));
    let history: Vec<(RevisionAction, String, u64)> = backend
        .history(Kind::Agent, "ranger")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.name, r.generation))
        .collect();
    assert_eq!(
        history,
        [(RevisionAction::Created, "ranger".into(), 1), (RevisionAction::Renamed, "ranger".into(), 2)],
        "the old name's history moved"
    );
    assert!(backend.history(Kind::Agent, "scout").await.unwrap().is_empty());
    assert_eq!(backend.inventory("team").await.unwrap(), [(Kind::Agent, "ranger".to_owned())]);
    assert_eq!(backend.execution_get(&id).await.unwrap().unwrap().target, "agent/ranger");
    let chat = backend.get(Kind::Session, "chat").await.unwrap().unwrap();
    assert_eq!((&chat.manifest["spec"]["agentRef"], chat.apply_set.as_deref()), (&serde_json::json!("ranger"), None));

    let again = BatchItem {
        kind: Kind::Agent,
        name: "scout".into(),
        write: Write::Create { manifest: agent("scout", "v1").into() },
    };
    write(backend, Some("team"), vec![again]).await.unwrap();
    let onto_taken = BatchItem {
        kind: Kind::Agent,
        name: "ranger".into(),
        write: Write::Rename { from: "scout".into(), manifest: agent("ranger", "v3").into(), expected_generation: 1 },
    };
    let taken = write(backend, Some("team"), vec![onto_taken]).await;
    assert!(matches!(taken, Err(BackendError::Conflict { .. })), "{taken:?}");
}

/// Lists filter by kind, name and every label asked for, in dependency order then by name.
async fn lists_filter_by_kind_name_and_label<H: Harness>(h: &H) {
    let backend = &h.handle();
    let agent = BatchItem {
        kind: Kind::Agent,
        name: "a".into(),
        write: Write::Create { manifest: manifest(Kind::Agent, "a", &serde_json::json!({"team": "cs"}), "x") },
    };
    write(
        backend,
        None,
        vec![agent, create("b", &serde_json::json!({"team": "cs", "tier": "1"})), create("c", &serde_json::json!({}))],
    )
    .await
    .unwrap();
    let names = |listed: Vec<StoredResource>| listed.into_iter().map(|r| r.address()).collect::<Vec<_>>();
    assert_eq!(names(backend.list(&ResourceQuery::all()).await.unwrap()), ["skill/b", "skill/c", "agent/a"]);
    assert_eq!(names(backend.list(&ResourceQuery::kind(Kind::Agent)).await.unwrap()), ["agent/a"]);
    let labelled = ResourceQuery { labels: vec![("team".into(), "cs".into())], ..ResourceQuery::default() };
    assert_eq!(names(backend.list(&labelled).await.unwrap()), ["skill/b", "agent/a"]);
    let both = ResourceQuery {
        labels: vec![("team".into(), "cs".into()), ("tier".into(), "1".into())],
        ..ResourceQuery::default()
    };
    assert_eq!(names(backend.list(&both).await.unwrap()), ["skill/b"]);
    let by_name =
        ResourceQuery { kinds: vec![Kind::Skill], names: vec!["c".into(), "nope".into()], ..ResourceQuery::default() };
    assert_eq!(names(backend.list(&by_name).await.unwrap()), ["skill/c"]);
}

/// Heads are the listing without manifests: same resources, same order, same generation, hash
/// and owner — what a plan compares — also after an update and with resources of two owners.
async fn heads_are_the_listing_without_manifests<H: Harness>(h: &H) {
    let backend = &h.handle();
    assert!(backend.heads().await.unwrap().is_empty(), "an empty store has no heads");
    write(backend, Some("s"), vec![create("b", &serde_json::json!({})), create("a", &serde_json::json!({}))])
        .await
        .unwrap();
    let agent = Write::Create { manifest: manifest(Kind::Agent, "x", &serde_json::json!({}), "x") };
    write(backend, None, vec![BatchItem { kind: Kind::Agent, name: "x".into(), write: agent }]).await.unwrap();
    let update =
        Write::Update { manifest: manifest(Kind::Skill, "a", &serde_json::json!({}), "v2"), expected_generation: 1 };
    write(backend, Some("s"), vec![BatchItem { kind: Kind::Skill, name: "a".into(), write: update }]).await.unwrap();
    let listed = backend.list(&ResourceQuery::all()).await.unwrap();
    let heads = backend.heads().await.unwrap();
    assert_eq!(heads, listed.iter().map(StoredResource::head).collect::<Vec<_>>());
    let seen: Vec<_> = heads.iter().map(|h| (h.address(), h.generation, h.apply_set.clone())).collect();
    assert_eq!(
        seen,
        [
            ("skill/a".to_owned(), 2, Some("s".to_owned())),
            ("skill/b".to_owned(), 1, Some("s".to_owned())),
            ("agent/x".to_owned(), 1, None)
        ]
    );
}

/// A resource written for another apply set moves to that set's inventory; one deleted leaves
/// it; a dry run checks everything and writes nothing.
async fn ownership_moves_and_dry_runs_write_nothing<H: Harness>(h: &H) {
    let backend = &h.handle();
    write(backend, Some("a"), vec![create("x", &serde_json::json!({})), create("y", &serde_json::json!({}))])
        .await
        .unwrap();
    let adopt = BatchItem {
        kind: Kind::Skill,
        name: "x".into(),
        write: Write::Update {
            manifest: manifest(Kind::Skill, "x", &serde_json::json!({}), "b's"),
            expected_generation: 1,
        },
    };
    write(backend, Some("b"), vec![adopt]).await.unwrap();
    assert_eq!(backend.inventory("a").await.unwrap(), [(Kind::Skill, "y".to_owned())]);
    assert_eq!(backend.inventory("b").await.unwrap(), [(Kind::Skill, "x".to_owned())]);
    let drop_y = BatchItem { kind: Kind::Skill, name: "y".into(), write: Write::Delete { expected_generation: 1 } };
    write(backend, Some("a"), vec![drop_y]).await.unwrap();
    assert!(backend.inventory("a").await.unwrap().is_empty());

    let version = backend.version().await.unwrap();
    let dry = |items| ApplyBatch { apply_set: Some("b".into()), items, dry_run: true, correcting: false };
    let receipt = backend.apply(dry(vec![create("z", &serde_json::json!({}))])).await.unwrap();
    assert_eq!((receipt.committed, receipt.written.len()), (false, 1));
    let stale = BatchItem { kind: Kind::Skill, name: "x".into(), write: Write::Delete { expected_generation: 1 } };
    let refused = backend.apply(dry(vec![stale])).await;
    assert!(matches!(refused, Err(BackendError::Conflict { .. })), "a dry run checks preconditions: {refused:?}");
    assert_eq!(backend.version().await.unwrap(), version, "a dry run commits nothing");
    assert!(backend.get(Kind::Skill, "z").await.unwrap().is_none());
}

/// Secrets: set (new, then changed), listed by name only, revealed, re-sealed under a new key,
/// deleted; every change audited; bad names refused.
async fn secrets_are_sealed_revealed_rotated_and_deleted<H: Harness>(h: &H) {
    let backend = &h.handle();
    let audited = backend.audit(None).await.unwrap().len();
    assert!(backend.secret_set("API_KEY", SecretValue::new("first")).await.unwrap(), "new");
    assert!(!backend.secret_set("API_KEY", SecretValue::new("second")).await.unwrap(), "changed");
    backend.secret_set("other", SecretValue::new("o")).await.unwrap();
    let listed: Vec<String> = backend.secret_list().await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, ["API_KEY", "other"]);
    assert_eq!(backend.secret_reveal("API_KEY").await.unwrap().expose(), "second");
    assert_eq!(backend.secret_rotate_key().await.unwrap(), 2);
    assert_eq!(backend.secret_reveal("API_KEY").await.unwrap().expose(), "second", "re-sealed, same value");
    backend.secret_delete("other").await.unwrap();
    assert!(matches!(backend.secret_reveal("other").await, Err(BackendError::NotFound { .. })));
    assert!(matches!(backend.secret_delete("other").await, Err(BackendError::NotFound { .. })));
    assert!(matches!(
        backend.secret_set("bad name", SecretValue::new("x")).await,
        Err(BackendError::SecretName { .. })
    ));
    let targets: Vec<String> = backend.audit(None).await.unwrap()[audited..].iter().map(|e| e.target.clone()).collect();
    assert_eq!(targets, ["secret/API_KEY", "secret/API_KEY", "secret/other", "secret-key", "secret/other"]);
}

/// Executions are listed oldest first by target, status and start, without their definitions
/// (which a get and a claim return); their events from any point; a pending one cancelled
/// leaves the queue; claims serve only their worker's queues.
async fn executions_are_listed_and_queues_kept_apart<H: Harness>(h: &H) {
    let backend = &h.handle();
    let (first, second, third) = ("exec-a", "exec-b", "exec-c");
    backend.execution_create(pending(first), Vec::new()).await.unwrap();
    let mut other = pending(second);
    other.target = "workflow/other".into();
    let definition = serde_json::json!({"workflow": {"document": {"name": "other"}}, "env": [["K", "v"]]});
    other.definition = Some(definition.clone());
    backend.execution_create(other, Vec::new()).await.unwrap();
    let mut elsewhere = pending(third);
    "elsewhere".clone_into(&mut elsewhere.queue);
    backend.execution_create(elsewhere, Vec::new()).await.unwrap();
    assert!(backend.execution_create(pending(first), Vec::new()).await.is_err(), "ids are unique");

    let ids = |records: Vec<ExecutionRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = ExecutionQuery::default();
    let listed = backend.execution_list(&all).await.unwrap();
    assert!(listed.iter().all(|r| r.definition.is_none()), "lists leave definitions out");
    assert_eq!(ids(listed), [first, second, third]);
    let got = backend.execution_get(second).await.unwrap().unwrap();
    assert_eq!(got.definition.as_ref(), Some(&definition), "one execution comes whole");
    let whole = ExecutionQuery { definitions: true, ..ExecutionQuery::default() };
    let with: Vec<_> = backend.execution_list(&whole).await.unwrap().into_iter().map(|r| r.definition).collect();
    assert_eq!(with, [None, Some(definition.clone()), None], "or a list, asked for them");
    let by_target = ExecutionQuery { target: Some("workflow/other".into()), ..ExecutionQuery::default() };
    assert_eq!(ids(backend.execution_list(&by_target).await.unwrap()), [second]);
    let later =
        ExecutionQuery { since: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60)), ..all.clone() };
    assert!(backend.execution_list(&later).await.unwrap().is_empty());
    let newest = |skip, take| ExecutionQuery { page: Some(ExecutionPage { skip, take }), ..ExecutionQuery::default() };
    assert_eq!(ids(backend.execution_list(&newest(0, 2)).await.unwrap()), [third, second], "a page is newest first");
    assert_eq!(ids(backend.execution_list(&newest(2, 2)).await.unwrap()), [first]);
    assert!(backend.execution_list(&newest(3, 2)).await.unwrap().is_empty());
    let by_prefix =
        ExecutionQuery { target_prefixes: vec!["agent/".into(), "workflow/o".into()], ..ExecutionQuery::default() };
    assert_eq!(ids(backend.execution_list(&by_prefix).await.unwrap()), [second]);
    let by_text = ExecutionQuery { target_contains: Some("OTH".into()), ..ExecutionQuery::default() };
    assert_eq!(ids(backend.execution_list(&by_text).await.unwrap()), [second], "any case");
    let paged_text = ExecutionQuery { page: Some(ExecutionPage { skip: 0, take: 5 }), ..by_text.clone() };
    assert_eq!(ids(backend.execution_list(&paged_text).await.unwrap()), [second]);
    let counted = backend.execution_counts(&by_text).await.unwrap();
    assert_eq!(counted, ExecutionCounts::from([(ExecutionStatus::Pending, 1)]));

    backend.execution_finish(first, None, ExecutionStatus::Cancelled, None, None, Vec::new()).await.unwrap();
    let cancelled = ExecutionQuery { status: Some(ExecutionStatus::Cancelled), ..ExecutionQuery::default() };
    assert_eq!(ids(backend.execution_list(&cancelled).await.unwrap()), [first]);
    let counts = backend.execution_counts(&all).await.unwrap();
    assert_eq!(counts, ExecutionCounts::from([(ExecutionStatus::Pending, 2), (ExecutionStatus::Cancelled, 1)]));
    let counted = backend.execution_counts(&by_target).await.unwrap();
    assert_eq!(counted, ExecutionCounts::from([(ExecutionStatus::Pending, 1)]), "counts take the list's filter");
    assert!(backend.execution_counts(&later).await.unwrap().is_empty());
    let held = backend.execution_claim(claim("w", Duration::ZERO)).await.unwrap().unwrap();
    assert_eq!(held.record.id, second, "the cancelled one left the queue; the other queue's is not served");
    assert_eq!(held.record.definition.as_ref(), Some(&definition), "its worker gets what it runs");
    assert!(backend.execution_claim(claim("w", Duration::ZERO)).await.unwrap().is_none());

    backend
        .execution_append(second, None, vec![raw(&serde_json::json!({"n": 1})), raw(&serde_json::json!({"n": 2}))])
        .await
        .unwrap();
    let events = backend.execution_events(second, 2, None).await.unwrap();
    assert_eq!(events.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [3], "after the claim and the first");
    let first_two = backend.execution_events(second, 0, Some(2)).await.unwrap();
    assert_eq!(first_two.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2], "a page of them");
    assert!(matches!(backend.execution_events("nope", 0, None).await, Ok(ref e) if e.is_empty()));
    assert!(backend.execution_get("nope").await.unwrap().is_none());
}

/// A worker that goes silent loses its execution once its lease lapses: another claims it under
/// the next epoch, the old worker's writes are refused, and the new one finishes it; a worker
/// is listed once it has said it is alive.
async fn a_lapsed_lease_is_taken_over_and_its_holder_fenced<H: Harness>(h: &H) {
    let backend = &h.handle();
    let id = "lapsing";
    backend.execution_create(pending(id), Vec::new()).await.unwrap();
    let short = ClaimRequest { lease: Duration::from_secs(1), ..claim("w1", Duration::ZERO) };
    let first = backend.execution_claim(short).await.unwrap().unwrap();
    assert!(backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().is_none(), "held");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().expect("lapsed: claimable");
    assert_eq!((second.record.id.as_str(), second.epoch(), second.record.attempts), (id, 2, 2));
    let late = backend.execution_append(id, Some(first.epoch()), vec![raw(&serde_json::json!({"late": true}))]).await;
    assert!(matches!(late, Err(BackendError::LeaseLost { .. })), "{late:?}");
    let late = backend.execution_finish(id, Some(1), ExecutionStatus::Completed, None, None, Vec::new()).await;
    assert!(matches!(late, Err(BackendError::LeaseLost { .. })), "{late:?}");
    backend
        .execution_finish(
            id,
            Some(2),
            ExecutionStatus::Completed,
            Some(serde_json::json!({"ok": 1})),
            None,
            vec![raw(&serde_json::json!({"event": "done"}))],
        )
        .await
        .unwrap();
    let record = backend.execution_get(id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.output.clone(), record.lease.is_none()),
        (ExecutionStatus::Completed, Some(serde_json::json!({"ok": 1})), true)
    );
    assert!(record.finished_at.is_some());
    let events: Vec<serde_json::Value> =
        backend.execution_events(id, 0, None).await.unwrap().into_iter().map(|(_, e)| e).collect();
    assert_eq!(events.iter().filter(|e| e["event"] == "claimed").count(), 2);
    assert_eq!(events.last().unwrap()["event"], "done");
    assert!(!events.iter().any(|e| e["late"] == true));

    let worker = claim("w9", Duration::ZERO).worker;
    backend.worker_heartbeat(worker).await.unwrap();
    let workers = backend.worker_list().await.unwrap();
    let seen = workers.iter().find(|w| w.id == "w9").expect("listed");
    assert!(seen.last_seen > jiff::Timestamp::UNIX_EPOCH, "the backend stamps when it heard from it");
}

/// A park lets the worker go: the execution waits, claimable by nobody, until every call it
/// asked about is decided; a decision made on a history read before it moved is refused (two
/// people deciding at once cannot both win); the last decision queues it again, and each one
/// is in the history and the audit log under whoever made it. A park with a deadline is
/// claimable once the deadline passes.
async fn a_parked_execution_waits_for_its_decisions<H: Harness>(h: &H) {
    let backend = &h.handle();
    let id = uuid::Uuid::new_v4().to_string();
    backend.execution_create(pending(&id), Vec::new()).await.unwrap();
    let held = backend.execution_claim(claim("w1", Duration::ZERO)).await.unwrap().unwrap();
    let ask = |call: &str| {
        raw(
            &serde_json::json!({"event": "approvalRequested", "agent": "a", "callId": call, "tool": "t", "arguments": {}}),
        )
    };
    backend.execution_park(&id, held.epoch(), None, vec![ask("c1"), ask("c2")]).await.unwrap();
    let record = backend.execution_get(&id).await.unwrap().unwrap();
    assert_eq!((record.status, record.lease.is_none()), (ExecutionStatus::Waiting, true), "{record:?}");
    assert!(backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().is_none(), "parked: nobody claims it");
    let late = backend.execution_append(&id, Some(held.epoch()), vec![raw(&serde_json::json!({"late": 1}))]).await;
    assert!(matches!(late, Err(BackendError::LeaseLost { .. })), "the parker let it go: {late:?}");

    let last = |events: &[(u64, serde_json::Value)]| events.last().unwrap().0;
    let after = last(&backend.execution_events(&id, 0, None).await.unwrap());
    let decision = |call: &str| stigmer::backend::approval::Decision {
        agent: "a".into(),
        call_id: call.into(),
        tool: "t".into(),
        approved: call == "c1",
        reason: (call != "c1").then(|| "no".to_owned()),
    };
    let stale = backend.execution_decide(&id, after - 1, vec![decision("c1")], false).await;
    assert!(matches!(stale, Err(BackendError::Conflict { .. })), "{stale:?}");
    backend.execution_decide(&id, after, vec![decision("c1")], false).await.unwrap();
    assert_eq!(backend.execution_get(&id).await.unwrap().unwrap().status, ExecutionStatus::Waiting);
    let raced = backend.execution_decide(&id, after, vec![decision("c2")], true).await;
    assert!(matches!(raced, Err(BackendError::Conflict { .. })), "decided on an old read: {raced:?}");
    let after = last(&backend.execution_events(&id, 0, None).await.unwrap());
    backend.execution_decide(&id, after, vec![decision("c2")], true).await.unwrap();
    let again = backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().expect("decided: queued again");
    assert_eq!((again.record.id.as_str(), again.epoch()), (id.as_str(), 2));
    let after = last(&backend.execution_events(&id, 0, None).await.unwrap());
    let running = backend.execution_decide(&id, after, vec![decision("c2")], true).await;
    assert!(running.is_err(), "a running execution takes no decision: {running:?}");

    let decided: Vec<serde_json::Value> = backend
        .execution_events(&id, 0, None)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e["event"] == "approvalDecided")
        .collect();
    let who: Vec<(&str, bool, &str)> = decided
        .iter()
        .map(|e| (e["callId"].as_str().unwrap(), e["approved"] == true, e["by"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [("c1", true, "tester"), ("c2", false, "tester")]);
    let audit = backend.audit(None).await.unwrap();
    let target = format!("execution/{id}");
    let audited: Vec<(RevisionAction, Option<&str>)> =
        audit.iter().filter(|e| e.target == target).map(|e| (e.action, e.detail.as_deref())).collect();
    assert_eq!(
        audited,
        [(RevisionAction::Approved, Some("t (call c1)")), (RevisionAction::Rejected, Some("t (call c2)"))]
    );

    let timed = uuid::Uuid::new_v4().to_string();
    backend.execution_create(pending(&timed), Vec::new()).await.unwrap();
    let held = backend.execution_claim(claim("w1", Duration::ZERO)).await.unwrap().unwrap();
    let until = jiff::Timestamp::now() + Duration::from_secs(1);
    backend.execution_park(&timed, held.epoch(), Some(until), vec![ask("c1")]).await.unwrap();
    assert!(backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().is_none(), "before its deadline");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let woken = backend.execution_claim(claim("w2", Duration::ZERO)).await.unwrap().expect("its deadline passed");
    assert_eq!(woken.record.id, timed);
}

/// Observed conditions are recorded apart from the resources (no version moves): one whose
/// status holds keeps its transition time, one that changes gets a new one, and a type not
/// observed again is kept.
async fn conditions_are_recorded_and_keep_their_transition_time<H: Harness>(h: &H) {
    use stigmer::backend::condition::{Condition, ConditionStatus, Observed};
    let backend = &h.handle();
    let version = backend.version().await.unwrap();
    let mut ready = Condition::now("Ready", ConditionStatus::True, "Connected", "2 tools");
    ready.last_transition_time = jiff::Timestamp::UNIX_EPOCH;
    let reachable = Condition::now("Reachable", ConditionStatus::True, "Listed", "ok");
    let first = Observed { address: "agent/a".into(), conditions: vec![ready, reachable] };
    backend.conditions_record(vec![first]).await.unwrap();
    assert_eq!(backend.version().await.unwrap(), version, "an observation is not a change");
    let again = |status, reason: &str| Observed {
        address: "agent/a".into(),
        conditions: vec![Condition::now("Ready", status, reason, "")],
    };
    backend.conditions_record(vec![again(ConditionStatus::True, "Connected")]).await.unwrap();
    let recorded = backend.conditions().await.unwrap();
    let agent = recorded.iter().find(|o| o.address == "agent/a").unwrap();
    assert_eq!(agent.condition("Ready").unwrap().last_transition_time, jiff::Timestamp::UNIX_EPOCH);
    assert!(agent.condition("Reachable").is_some(), "not observed again: kept");
    backend.conditions_record(vec![again(ConditionStatus::False, "StartFailed")]).await.unwrap();
    let recorded = backend.conditions().await.unwrap();
    let ready = recorded.iter().find(|o| o.address == "agent/a").unwrap().condition("Ready").unwrap().clone();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, "StartFailed"));
    assert_ne!(ready.last_transition_time, jiff::Timestamp::UNIX_EPOCH, "it changed: a new transition");
}

/// What a backend needs to be tested: handles on one store, as many as a scenario asks for.
trait Harness: Sized {
    type B: Backend + Clone + Send + Sync + 'static;
    /// The store, or `None` (having said why) where it cannot be had here.
    fn start() -> Option<Self>;
    /// A handle on it acting as "tester".
    fn handle(&self) -> Self::B;
}

/// The local store.
struct Local(tempfile::TempDir);

impl Harness for Local {
    type B = LocalBackend;

    fn start() -> Option<Self> {
        Some(Self(tempfile::tempdir().unwrap()))
    }

    fn handle(&self) -> LocalBackend {
        LocalBackend::new(self.0.path().join("local.db"), "tester")
    }
}

/// A real server, and a client for its org `test` acting as "tester".
struct Served {
    _dir: tempfile::TempDir,
    _server: support::Server,
    options: RemoteOptions,
}

impl Served {
    fn start(database: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = match database {
            Some(url) => support::Server::start_on_store(&dir.path().join("data"), url, &[]),
            None => support::Server::start(&dir.path().join("data")),
        };
        let token = server.token("test", "admin", "tester");
        let options =
            RemoteOptions { endpoint: server.endpoint.clone(), token, org: Some("test".into()), ca_cert: None };
        Self { _dir: dir, _server: server, options }
    }

    fn handle(&self) -> RemoteBackend {
        RemoteBackend::new(&self.options).unwrap()
    }
}

/// A server keeping its data in a directory.
struct ServerOnFiles(Served);

impl Harness for ServerOnFiles {
    type B = RemoteBackend;

    fn start() -> Option<Self> {
        Some(Self(Served::start(None)))
    }

    fn handle(&self) -> RemoteBackend {
        self.0.handle()
    }
}

/// A server keeping its data in PostgreSQL.
struct ServerOnPostgres(Served);

impl Harness for ServerOnPostgres {
    type B = RemoteBackend;

    fn start() -> Option<Self> {
        support::postgres::database().map(|url| Self(Served::start(Some(&url))))
    }

    fn handle(&self) -> RemoteBackend {
        self.0.handle()
    }
}

/// Every scenario of the suite, as a test of `$harness`.
macro_rules! suite {
    ($harness:ty) => {
        suite!($harness:
            conflicting_writers_lose_no_update,
            applying_twice_writes_nothing,
            changes_are_audited,
            version_moves_only_with_commits,
            concurrent_writers_serialize_without_losing_updates,
            history_outlives_a_delete,
            lists_filter_by_kind_name_and_label,
            heads_are_the_listing_without_manifests,
            ownership_moves_and_dry_runs_write_nothing,
            secrets_are_sealed_revealed_rotated_and_deleted,
            executions_are_claimed_leased_fenced_and_followed,
            executions_are_listed_and_queues_kept_apart,
            a_lapsed_lease_is_taken_over_and_its_holder_fenced,
            a_waiting_claim_answers_when_work_arrives,
            events_are_kept_once_and_checked,
            schedules_are_listed_and_paused,
            a_parked_execution_waits_for_its_decisions,
            conditions_are_recorded_and_keep_their_transition_time,
            a_rename_takes_history_executions_and_sessions_along,
        );
    };
    ($harness:ty: $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(harness) = <$harness as Harness>::start() else { return };
                super::$scenario(&harness).await;
            }
        )*
    };
}

mod local {
    use super::*;
    suite!(Local);
}

mod server_on_files {
    use super::*;
    suite!(ServerOnFiles);
}

mod server_on_postgres {
    use super::*;
    suite!(ServerOnPostgres);
}
