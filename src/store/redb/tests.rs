use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::tables::{META, RESOURCES};
use super::*;
use crate::backend::{BatchItem, Moved, RevisionAction, Write};
use crate::model::canonical;

fn options(holder: &str, wait: Duration) -> OpenOptions {
    OpenOptions::new(wait, holder)
}

fn open(path: &Path) -> Store {
    Store::open(path, &options("pid 1: stigmer test", Duration::from_secs(5))).unwrap()
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn manifest(kind: Kind, name: &str, labels: &[(&str, &str)], spec: &Value) -> Value {
    let labels: serde_json::Map<String, Value> =
        labels.iter().map(|(key, value)| ((*key).to_owned(), Value::from(*value))).collect();
    json!({
        "apiVersion": "stigmer.ai/v1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    })
}

fn create(kind: Kind, name: &str) -> BatchItem {
    create_labelled(kind, name, &[])
}

fn create_labelled(kind: Kind, name: &str, labels: &[(&str, &str)]) -> BatchItem {
    BatchItem {
        kind,
        name: name.to_owned(),
        write: Write::Create { manifest: manifest(kind, name, labels, &json!({})).into() },
    }
}

fn update(kind: Kind, name: &str, expected_generation: u64, version: u64) -> BatchItem {
    BatchItem {
        kind,
        name: name.to_owned(),
        write: Write::Update {
            manifest: manifest(kind, name, &[], &json!({"version": version})).into(),
            expected_generation,
        },
    }
}

fn delete(kind: Kind, name: &str, expected_generation: u64) -> BatchItem {
    BatchItem { kind, name: name.to_owned(), write: Write::Delete { expected_generation } }
}

fn batch(apply_set: Option<&str>, items: Vec<BatchItem>) -> ApplyBatch {
    ApplyBatch { apply_set: apply_set.map(str::to_owned), items, dry_run: false, correcting: false }
}

fn names(resources: &[StoredResource]) -> Vec<String> {
    resources.iter().map(StoredResource::address).collect()
}

#[test]
fn create_update_delete_track_generations_revisions_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));

    let receipt = store.apply(&batch(Some("demo"), vec![create(Kind::Agent, "bot")]), "ana", at(0)).unwrap();
    assert!(receipt.committed);
    assert_eq!(
        receipt.written,
        [Written { kind: Kind::Agent, name: "bot".into(), generation: 1, action: RevisionAction::Created }]
    );
    let created = store.get(Kind::Agent, "bot").unwrap().unwrap();
    assert_eq!((created.generation, created.created_at, created.updated_at), (1, at(0), at(0)));
    assert_eq!(created.apply_set.as_deref(), Some("demo"));
    assert_eq!(created.status, None);
    assert!(uuid::Uuid::parse_str(&created.uid).is_ok());

    let receipt = store.apply(&batch(Some("demo"), vec![update(Kind::Agent, "bot", 1, 2)]), "ben", at(10)).unwrap();
    assert_eq!(receipt.written[0].generation, 2);
    let updated = store.get(Kind::Agent, "bot").unwrap().unwrap();
    assert_eq!((updated.generation, updated.created_at, updated.updated_at), (2, at(0), at(10)));
    assert_eq!(updated.uid, created.uid);
    // The store hashes what it stores; a writer cannot make it claim other content.
    assert_eq!(updated.hash, canonical::hash(&updated.manifest));
    assert_ne!(updated.hash, created.hash);
    assert_eq!(updated.manifest["spec"]["version"], 2);

    let receipt = store.apply(&batch(Some("demo"), vec![delete(Kind::Agent, "bot", 2)]), "cleo", at(20)).unwrap();
    assert_eq!(
        receipt.written,
        [Written { kind: Kind::Agent, name: "bot".into(), generation: 2, action: RevisionAction::Deleted }]
    );
    assert_eq!(store.get(Kind::Agent, "bot").unwrap(), None);
    assert_eq!(store.commit_count().unwrap(), 3);

    let history = store.history(Kind::Agent, "bot").unwrap();
    let summary: Vec<_> = history.iter().map(|r| (r.action, r.generation, r.actor.as_str(), r.at)).collect();
    assert_eq!(
        summary,
        [
            (RevisionAction::Created, 1, "ana", at(0)),
            (RevisionAction::Updated, 2, "ben", at(10)),
            (RevisionAction::Deleted, 2, "cleo", at(20)),
        ]
    );
    // A deletion keeps the last manifest, so rollback can bring it back.
    assert_eq!(history[2].manifest, updated.manifest);
    assert_eq!(history[2].hash, updated.hash);
    assert!(history.iter().all(|r| r.apply_set.as_deref() == Some("demo")));

    let audit = store.audit(None).unwrap();
    let summary: Vec<_> = audit.iter().map(|e| (e.action, e.target.as_str(), e.actor.as_str())).collect();
    assert_eq!(
        summary,
        [
            (RevisionAction::Created, "agent/bot", "ana"),
            (RevisionAction::Updated, "agent/bot", "ben"),
            (RevisionAction::Deleted, "agent/bot", "cleo"),
        ]
    );
    assert!(store.inventory("demo").unwrap().is_empty());
}

#[test]
fn a_resource_deleted_and_created_again_keeps_its_old_history() {
    // Revisions are keyed by change sequence, not generation: the new life starts again at 1.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    store.apply(&batch(None, vec![create(Kind::Skill, "s")]), "a", at(0)).unwrap();
    let first_uid = store.get(Kind::Skill, "s").unwrap().unwrap().uid;
    // One batch may delete a resource and create it again: each precondition sees the state the
    // earlier items left.
    store.apply(&batch(None, vec![delete(Kind::Skill, "s", 1), create(Kind::Skill, "s")]), "a", at(1)).unwrap();

    let again = store.get(Kind::Skill, "s").unwrap().unwrap();
    assert_eq!(again.generation, 1);
    assert_ne!(again.uid, first_uid);
    let actions: Vec<_> = store.history(Kind::Skill, "s").unwrap().iter().map(|r| (r.action, r.generation)).collect();
    assert_eq!(actions, [(RevisionAction::Created, 1), (RevisionAction::Deleted, 1), (RevisionAction::Created, 1)]);
    assert!(store.history(Kind::Skill, "other").unwrap().is_empty());
}

#[test]
fn list_filters_by_kind_name_and_label_in_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    let items = vec![
        create_labelled(Kind::Workflow, "triage", &[("team", "cs")]),
        create_labelled(Kind::Agent, "zed", &[("team", "cs"), ("tier", "1")]),
        create_labelled(Kind::Agent, "abe", &[("team", "ops")]),
        create(Kind::AgentInstance, "abe"),
        create(Kind::Environment, "prod"),
        create(Kind::Session, "chat-1"),
    ];
    store.apply(&batch(Some("demo"), items), "a", at(0)).unwrap();

    let all = store.list(&ResourceQuery::all()).unwrap();
    assert_eq!(
        names(&all),
        ["environment/prod", "agent/abe", "agent/zed", "agentinstance/abe", "workflow/triage"],
        "runtime kinds are only listed when asked for"
    );
    assert_eq!(names(&store.list(&ResourceQuery::kind(Kind::Session)).unwrap()), ["session/chat-1"]);
    assert_eq!(names(&store.list(&ResourceQuery::kind(Kind::Agent)).unwrap()), ["agent/abe", "agent/zed"]);

    let by_name = ResourceQuery { names: vec!["abe".into(), "nobody".into(), "abe".into()], ..ResourceQuery::all() };
    assert_eq!(names(&store.list(&by_name).unwrap()), ["agent/abe", "agentinstance/abe"]);

    let team_cs = ResourceQuery { labels: vec![("team".into(), "cs".into())], ..ResourceQuery::all() };
    assert_eq!(names(&store.list(&team_cs).unwrap()), ["agent/zed", "workflow/triage"]);
    let both = ResourceQuery {
        labels: vec![("team".into(), "cs".into()), ("tier".into(), "1".into())],
        ..ResourceQuery::all()
    };
    assert_eq!(names(&store.list(&both).unwrap()), ["agent/zed"]);
    let agents_by_label = ResourceQuery {
        kinds: vec![Kind::Workflow, Kind::Agent],
        labels: vec![("team".into(), "ops".into())],
        ..ResourceQuery::all()
    };
    assert_eq!(names(&store.list(&agents_by_label).unwrap()), ["agent/abe"]);
}

#[test]
fn a_stale_precondition_is_a_conflict_that_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    store.apply(&batch(Some("demo"), vec![create(Kind::Agent, "a"), create(Kind::Agent, "b")]), "x", at(0)).unwrap();
    store.apply(&batch(Some("demo"), vec![update(Kind::Agent, "b", 1, 2)]), "x", at(1)).unwrap();
    let commits = store.commit_count().unwrap();
    let before = store.list(&ResourceQuery::all()).unwrap();
    let audit_before = store.audit(None).unwrap();

    let stale = batch(
        Some("demo"),
        vec![
            create(Kind::Skill, "fresh"),       // fine on its own
            update(Kind::Agent, "a", 1, 3),     // fine on its own
            update(Kind::Agent, "b", 1, 3),     // b is at generation 2
            create(Kind::Agent, "a"),           // a exists (at generation 2, after the item above)
            delete(Kind::Workflow, "ghost", 4), // never existed
        ],
    );
    let error = store.apply(&stale, "x", at(2)).unwrap_err();
    let BackendError::Conflict { moved } = &error else { panic!("expected a conflict, got {error:?}") };
    assert_eq!(
        moved,
        &[
            Moved { address: "agent/b".into(), expected: Some(1), found: Some(2) },
            Moved { address: "agent/a".into(), expected: None, found: Some(2) },
            Moved { address: "workflow/ghost".into(), expected: Some(4), found: None },
        ]
    );
    assert!(error.to_string().starts_with("agent/b, agent/a, workflow/ghost changed since the plan"), "{error}");

    assert_eq!(store.commit_count().unwrap(), commits);
    assert_eq!(store.list(&ResourceQuery::all()).unwrap(), before);
    assert_eq!(store.get(Kind::Skill, "fresh").unwrap(), None);
    assert_eq!(store.audit(None).unwrap(), audit_before);
    assert_eq!(store.history(Kind::Agent, "a").unwrap().len(), 1);
    assert_eq!(store.inventory("demo").unwrap(), [(Kind::Agent, String::from("a")), (Kind::Agent, String::from("b"))]);
}

#[test]
fn an_empty_batch_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    let receipt = store.apply(&batch(Some("demo"), vec![]), "x", at(0)).unwrap();
    assert_eq!(receipt, ApplyReceipt { written: vec![], committed: false, version: None });
    assert_eq!(store.commit_count().unwrap(), 0);
    assert!(store.audit(None).unwrap().is_empty());
}

#[test]
fn a_dry_run_checks_preconditions_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    store.apply(&batch(Some("demo"), vec![create(Kind::Agent, "a")]), "x", at(0)).unwrap();

    let mut dry = batch(Some("other"), vec![update(Kind::Agent, "a", 1, 2), create(Kind::Skill, "s")]);
    dry.dry_run = true;
    let receipt = store.apply(&dry, "x", at(1)).unwrap();
    assert!(!receipt.committed);
    let generations: Vec<_> = receipt.written.iter().map(|w| (w.name.as_str(), w.generation, w.action)).collect();
    assert_eq!(generations, [("a", 2, RevisionAction::Updated), ("s", 1, RevisionAction::Created)]);
    assert_eq!(store.commit_count().unwrap(), 1);
    assert_eq!(store.get(Kind::Agent, "a").unwrap().unwrap().generation, 1);
    assert_eq!(store.get(Kind::Skill, "s").unwrap(), None);
    assert!(store.inventory("other").unwrap().is_empty());
    assert_eq!(store.audit(None).unwrap().len(), 1);

    dry.items = vec![update(Kind::Agent, "a", 7, 2)];
    assert!(matches!(store.apply(&dry, "x", at(1)), Err(BackendError::Conflict { .. })));
}

#[test]
fn an_update_moves_the_resource_between_inventories() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    store.apply(&batch(Some("old"), vec![create(Kind::Agent, "a"), create(Kind::Skill, "s")]), "x", at(0)).unwrap();
    store.apply(&batch(None, vec![create(Kind::Agent, "by-hand")]), "x", at(0)).unwrap();
    assert_eq!(store.inventory("old").unwrap(), [(Kind::Skill, String::from("s")), (Kind::Agent, String::from("a"))]);

    store.apply(&batch(Some("new"), vec![update(Kind::Agent, "a", 1, 2)]), "x", at(1)).unwrap();
    assert_eq!(store.inventory("old").unwrap(), [(Kind::Skill, String::from("s"))]);
    assert_eq!(store.inventory("new").unwrap(), [(Kind::Agent, String::from("a"))]);
    assert_eq!(store.get(Kind::Agent, "a").unwrap().unwrap().apply_set.as_deref(), Some("new"));

    // Adopting a hand-made resource, and releasing one to nobody.
    store
        .apply(
            &batch(Some("new"), vec![update(Kind::Agent, "by-hand", 1, 2), update(Kind::Skill, "s", 1, 2)]),
            "x",
            at(2),
        )
        .unwrap();
    store.apply(&batch(None, vec![update(Kind::Skill, "s", 2, 3)]), "x", at(3)).unwrap();
    assert!(store.inventory("old").unwrap().is_empty());
    assert_eq!(
        store.inventory("new").unwrap(),
        [(Kind::Agent, String::from("a")), (Kind::Agent, String::from("by-hand"))]
    );
    assert_eq!(store.get(Kind::Skill, "s").unwrap().unwrap().apply_set, None);

    // An inventory that becomes empty is dropped, not kept as an empty list.
    let txn = store.begin_read().unwrap();
    let sets = txn.open_table(tables::APPLY_SETS).unwrap();
    assert!(sets.get("old").unwrap().is_none());
}

#[test]
fn audit_since_keeps_entries_at_or_after_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    for (second, name) in [(0, "a"), (10, "b"), (20, "c")] {
        store.apply(&batch(None, vec![create(Kind::Skill, name)]), "x", at(second)).unwrap();
    }
    let targets = |since| -> Vec<String> { store.audit(since).unwrap().into_iter().map(|e| e.target).collect() };
    assert_eq!(targets(None), ["skill/a", "skill/b", "skill/c"]);
    assert_eq!(targets(Some(at(10))), ["skill/b", "skill/c"]);
    assert_eq!(targets(Some(at(21))), Vec::<String>::new());
}

#[test]
fn data_survives_closing_and_opening_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    open(&path).apply(&batch(Some("demo"), vec![create(Kind::Agent, "a")]), "x", at(0)).unwrap();
    let store = open(&path);
    assert_eq!(store.get(Kind::Agent, "a").unwrap().unwrap().generation, 1);
    assert_eq!(store.commit_count().unwrap(), 1);
}

#[test]
fn a_second_handle_waits_then_reports_busy_with_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let first = Store::open(&path, &options("pid 4242: stigmer apply --watch", Duration::ZERO)).unwrap();

    let started = Instant::now();
    let error = Store::open(&path, &options("pid 1: second", Duration::from_millis(200))).unwrap_err();
    let BackendError::Busy { path: busy, holder, waited } = &error else { panic!("expected busy, got {error:?}") };
    assert_eq!(busy, &path);
    assert_eq!(holder.as_deref(), Some("pid 4242: stigmer apply --watch"));
    assert!(*waited >= Duration::from_millis(200), "{waited:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "gave up late: {:?}", started.elapsed());
    assert!(error.to_string().contains("(held by pid 4242: stigmer apply --watch)"), "{error}");

    // With no wait at all, one attempt is made.
    let error = Store::open(&path, &options("pid 1: second", Duration::ZERO)).unwrap_err();
    assert!(matches!(error, BackendError::Busy { .. }), "{error:?}");
    drop(first);
}

#[test]
fn a_second_handle_opens_once_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let first = open(&path);
    assert_eq!(read_holder(&path).as_deref(), Some("pid 1: stigmer test"));
    drop(first);
    assert_eq!(read_holder(&path), None, "the holder file goes with the handle");
    drop(open(&path));

    // And one that is waiting gets in when the holder lets go.
    let first = open(&path);
    let waiting = {
        let path = path.clone();
        std::thread::spawn(move || Store::open(&path, &options("pid 2: waiting", Duration::from_secs(10))).map(drop))
    };
    std::thread::sleep(Duration::from_millis(150));
    drop(first);
    waiting.join().unwrap().unwrap();
}

#[test]
fn a_missing_or_garbled_holder_file_names_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    assert_eq!(read_holder(&path), None);
    for garbled in [&b""[..], b"  \n", b"\xff\xfe not text", b"two\nlines", &[b'x'; LONGEST_HOLDER + 1]] {
        fs::write(holder_path(&path), garbled).unwrap();
        assert_eq!(read_holder(&path), None, "{garbled:?}");
    }
    fs::write(holder_path(&path), "pid 7: stigmer apply\n").unwrap();
    assert_eq!(read_holder(&path).as_deref(), Some("pid 7: stigmer apply"));
}

#[test]
fn a_store_from_a_newer_stigmer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        let store = open(&path);
        let txn = store.begin_write().unwrap();
        txn.open_table(META).unwrap().insert(tables::FORMAT_VERSION_KEY, 999).unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path, &options("x", Duration::ZERO)).unwrap_err();
    assert!(
        matches!(&error, BackendError::NewerFormat { path: p, found: 999, supported: FORMAT_VERSION } if *p == path),
        "{error:?}"
    );
    assert!(!holder_path(&path).exists(), "a refused open lets go of the file");
}

#[test]
fn a_format_1_store_is_migrated_and_keeps_its_resources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        // What stigmer with format 1 wrote: its tables, values behind format byte 1.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(tables::FORMAT_VERSION_KEY, 1).unwrap();
            meta.insert(tables::COMMIT_COUNT_KEY, 1).unwrap();
            let resource = StoredResource {
                kind: Kind::Skill,
                name: "old".into(),
                uid: "u".into(),
                generation: 1,
                created_at: Timestamp::UNIX_EPOCH,
                updated_at: Timestamp::UNIX_EPOCH,
                hash: "h".into(),
                apply_set: None,
                manifest: json!({"kind": "Skill"}).into(),
                status: None,
            };
            let mut bytes = vec![1_u8];
            bytes.extend(serde_json::to_vec(&resource).unwrap());
            txn.open_table(RESOURCES).unwrap().insert("Skill/old", bytes.as_slice()).unwrap();
            txn.open_table(tables::REVISIONS).unwrap();
            txn.open_table(tables::APPLY_SETS).unwrap();
            txn.open_table(tables::AUDIT).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(&path);
    assert_eq!(store.get(Kind::Skill, "old").unwrap().unwrap().name, "old");
    assert_eq!(store.keyring().unwrap(), None);
    assert!(store.secrets().unwrap().is_empty());
    let txn = store.begin_read().unwrap();
    let version = txn.open_table(META).unwrap().get(tables::FORMAT_VERSION_KEY).unwrap().unwrap().value();
    assert_eq!(version, u64::from(FORMAT_VERSION));
}

#[test]
fn a_format_4_store_moves_each_definition_out_of_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let mut record = crate::backend::ExecutionRecord::new(
        "run-1".into(),
        "workflow/w".into(),
        "tester".into(),
        json!({}),
        crate::backend::ExecutionStatus::Completed,
    );
    record.definition = Some(json!({"workflow": {"document": {"name": "w"}}}));
    {
        // What stigmer with format 4 wrote: the definition inside the record.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(tables::FORMAT_VERSION_KEY, 4).unwrap();
            let mut bytes = vec![4_u8];
            bytes.extend(serde_json::to_vec(&record).unwrap());
            txn.open_table(tables::EXECUTIONS).unwrap().insert("run-1", bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(&path);
    assert_eq!(store.execution("run-1").unwrap().unwrap().definition, record.definition);
    let listed = store.executions(&crate::backend::ExecutionQuery::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].definition, None);
    let txn = store.begin_read().unwrap();
    let stored = txn.open_table(tables::EXECUTIONS).unwrap().get("run-1").unwrap().unwrap().value().to_vec();
    let stored: crate::backend::ExecutionRecord = encoding::decode(&stored).unwrap();
    assert_eq!(stored.definition, None, "the record no longer carries it");
    assert_eq!(store.dump().unwrap().executions[0].0.definition, record.definition, "a dump puts it back");
}

#[test]
fn a_value_from_a_newer_stigmer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    let txn = store.begin_write().unwrap();
    txn.open_table(RESOURCES).unwrap().insert("Agent/a", &b"\x07{}"[..]).unwrap();
    txn.open_table(RESOURCES).unwrap().insert("Agent/b", &b"\x01{oops"[..]).unwrap();
    txn.commit().unwrap();
    let error = store.get(Kind::Agent, "a").unwrap_err();
    assert!(matches!(error, BackendError::NewerFormat { found: 7, .. }), "{error:?}");
    let error = store.get(Kind::Agent, "b").unwrap_err();
    assert!(matches!(error, BackendError::Corrupt { .. }), "{error:?}");
}

#[test]
fn a_file_of_random_bytes_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    // A fixed pseudo-random sequence (xorshift), so a failure can be reproduced.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    fs::write(&path, &bytes).unwrap();
    let error = Store::open(&path, &options("x", Duration::ZERO)).unwrap_err();
    let BackendError::Corrupt { path: corrupt, detail } = &error else { panic!("expected corrupt, got {error:?}") };
    assert_eq!(corrupt, &path);
    assert!(!detail.is_empty());
    assert_eq!(fs::read(&path).unwrap(), bytes, "a damaged file is left as it was");
}

#[test]
fn a_truncated_store_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    open(&path).apply(&batch(None, vec![create(Kind::Agent, "a")]), "x", at(0)).unwrap();
    let whole = fs::read(&path).unwrap();
    // Inside the header, and past it but short of the layout the header records.
    for length in [9, 100, 4096] {
        fs::write(&path, &whole[..length]).unwrap();
        let error = Store::open(&path, &options("x", Duration::ZERO)).unwrap_err();
        assert!(matches!(error, BackendError::Corrupt { .. }), "{length} bytes: {error:?}");
    }
}

#[test]
fn a_redb_file_of_something_else_is_not_a_stigmer_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let definition: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("something");
        txn.open_table(definition).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path, &options("x", Duration::ZERO)).unwrap_err();
    assert!(matches!(error, BackendError::Corrupt { .. }), "{error:?}");
}

#[cfg(unix)]
#[test]
fn the_parent_directory_is_created_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home").join(".stigmer");
    let store = open(&home.join("local.db"));
    assert_eq!(store.path(), home.join("local.db"));
    for created in [&home, &dir.path().join("home")] {
        assert_eq!(fs::metadata(created).unwrap().permissions().mode() & 0o777, 0o700, "{}", created.display());
    }

    // A directory that already exists keeps its mode.
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    drop(open(&shared.join("local.db")));
    assert_eq!(fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o755);
}

#[test]
fn the_value_format_byte_is_the_store_format() {
    assert_eq!(u32::from(encoding::VALUE_FORMAT), FORMAT_VERSION);
}

#[test]
fn ten_thousand_creates_in_one_batch_then_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("local.db"));
    let items: Vec<_> = (0..10_000).map(|i| create(Kind::Agent, &format!("agent-{i:05}"))).collect();

    let started = Instant::now();
    let receipt = store.apply(&batch(Some("big"), items), "x", at(0)).unwrap();
    let applied = started.elapsed();
    assert_eq!(receipt.written.len(), 10_000);

    let started = Instant::now();
    let listed = store.list(&ResourceQuery::all()).unwrap();
    let listing = started.elapsed();
    eprintln!("10,000 creates in one batch: {applied:?}; listing them: {listing:?}");

    assert_eq!(listed.len(), 10_000);
    assert_eq!(listed[0].name, "agent-00000");
    assert_eq!(listed[9_999].name, "agent-09999");
    assert_eq!(store.inventory("big").unwrap().len(), 10_000);
    assert_eq!(store.commit_count().unwrap(), 1);
}

#[test]
fn reading_leaves_the_file_as_it_was_and_a_missing_store_uncreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home").join("local.db");
    let reader = Store::open_read_only(&path, &options("reader", Duration::ZERO)).unwrap();
    assert_eq!(reader.list(&ResourceQuery::all()).unwrap(), []);
    assert_eq!(reader.commit_count().unwrap(), 0);
    assert!(reader.apply(&batch(None, vec![create(Kind::Agent, "a")]), "x", at(0)).is_err(), "read-only");
    drop(reader);
    assert!(!dir.path().join("home").exists(), "reading created the store");

    drop(open(&path).apply(&batch(None, vec![create(Kind::Agent, "a")]), "x", at(0)).unwrap());
    let before = fs::read(&path).unwrap();
    let reader = Store::open_read_only(&path, &options("reader", Duration::ZERO)).unwrap();
    let other = Store::open_read_only(&path, &options("another reader", Duration::ZERO)).unwrap();
    assert_eq!(reader.get(Kind::Agent, "a").unwrap().unwrap().generation, 1);
    assert_eq!(other.commit_count().unwrap(), 1);
    let writer = Store::open(&path, &options("writer", Duration::from_millis(30))).unwrap_err();
    assert!(matches!(writer, BackendError::Busy { .. }), "readers keep writers out: {writer:?}");
    drop((reader, other));
    assert_eq!(fs::read(&path).unwrap(), before, "a read changed the file");
    assert!(!holder_path(&path).exists());
}
