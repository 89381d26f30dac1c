//! The backend contract, as one suite that every backend must pass: each scenario runs on the
//! local store and on the remote backend against a real `stigmer server` on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use stigmer::backend::{
    Backend, BackendError, LocalBackend, RemoteBackend, RemoteOptions, ResourceQuery, RevisionAction,
};
use stigmer::model::{Agent, AgentSpec, AnyResource, Kind, Skill, SkillSpec};
use stigmer::reconcile::{self, Desired, PlanOptions, plan};

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
