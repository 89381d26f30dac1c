//! `cargo bench --bench postgres`: the database's work per operation of a `stigmer server` on
//! PostgreSQL, counted by `pg_stat_statements` on a private cluster that syncs every commit:
//! the statements (round trips) and the database's execution time of an apply, by plan size;
//! and of an execution's life on the server's own workers, beyond its history appends. From the
//! execution time, the operations one database core could carry. Results go in BENCHMARKS.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use stigmer::backend::{ApplyBatch, Backend, BatchItem, ExecutionQuery, StoreBackend, Write};
use stigmer::model::Kind;
use stigmer::remote::{RemoteBackend, RemoteOptions};
use stigmer::secrets::{HiddenKey, KeySource};
use stigmer::store::postgres::{PgOptions, PgStore};

mod support;

use support::corpus::BenchResult;
use support::postgres;
use support::runs::one_task_run;
use support::server::{BENCH_MASTER_KEY, Server, durable_postgres, load_average, make_token_in};

/// Plan sizes whose applies are counted.
const PLAN_SIZES: [usize; 5] = [1, 10, 100, 1_000, 10_000];
/// Executions counted on the server's workers.
const EXECUTIONS: usize = 500;

fn main() -> BenchResult<()> {
    let Some(cluster) = durable_postgres() else {
        return Err("this bench needs PostgreSQL (apt-get install postgresql)".into());
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::Builder::new().prefix("stigmer-bench-postgres-").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _entered = runtime.enter();
    println!("stigmer on PostgreSQL: the database's work per operation");
    println!("  binary: {}", bin.display());
    println!("  load:   {}", load_average());
    let fsync = postgres::query(&cluster.database(), "SHOW fsync")?;
    println!("  postgres fsync: {}", fsync.join(""));

    // Applies, in process, on a database of their own.
    let url = cluster.database();
    postgres::sql(&url, "CREATE EXTENSION pg_stat_statements")?;
    let applies = runtime.block_on(count_applies(&url))?;
    println!();
    println!(
        "| apply of a plan of N creates | statements (round trips) | database time | database time per resource |"
    );
    println!("|---:|---:|---:|---:|");
    for (size, work) in &applies {
        println!(
            "| {size} | {} | {:.2} ms | {:.3} ms |",
            work.calls,
            work.millis,
            work.millis / f64::from(u32::try_from(*size).unwrap_or(u32::MAX))
        );
    }

    // Executions, on a server's own workers.
    let url = cluster.database();
    postgres::sql(&url, "CREATE EXTENSION pg_stat_statements")?;
    let data = scratch.path().join("server");
    let server =
        Server::start_with(&bin, &data, &scratch.path().join("server.log"), &["--store", &url, "--workers", "2"])?;
    let token = make_token_in(&bin, &["--store", &url], "bench", "admin")?;
    let options = RemoteOptions { endpoint: server.endpoint.clone(), token, org: None, ca_cert: None };
    let backend = RemoteBackend::new(&options)?;
    let (by_statement, took) = runtime.block_on(count_executions(&backend, &url))?;
    drop(server);
    let per = |calls: i64| {
        f64::from(i32::try_from(calls).unwrap_or(i32::MAX)) / f64::from(u32::try_from(EXECUTIONS).unwrap_or(1))
    };
    let mut beyond = (0.0, 0.0);
    let mut appends = (0.0, 0.0);
    println!();
    println!(
        "{EXECUTIONS} one-`set` executions on 2 embedded workers in {took:.1?}: statements per execution, by what they do"
    );
    println!();
    println!("| what | statements per execution | database time per execution |");
    println!("|---|---:|---:|");
    for (what, calls, millis) in &by_statement {
        let (calls, millis) = (per(*calls), millis / f64::from(u32::try_from(EXECUTIONS).unwrap_or(1)));
        println!("| {what} | {calls:.2} | {millis:.3} ms |");
        if what.starts_with("append") {
            appends = (appends.0 + calls, appends.1 + millis);
        } else if !what.starts_with("background") {
            beyond = (beyond.0 + calls, beyond.1 + millis);
        }
    }
    println!();
    println!(
        "per execution: {:.2} statements beyond its history appends (target <= 10), {:.2} appends; {:.3} ms of database time",
        beyond.0,
        appends.0,
        beyond.1 + appends.1
    );
    let apply_ms = applies.iter().find(|(size, _)| *size == 10).map_or(0.0, |(_, work)| work.millis);
    println!();
    println!("| capacity of one database core (database execution time only) | per second |");
    println!("|---|---:|");
    println!("| applies of 10 resources | {:.0} |", 1000.0 / apply_ms);
    println!("| one-`set` executions | {:.0} |", 1000.0 / (beyond.1 + appends.1));
    Ok(())
}

/// What the database did: statements run and their execution time.
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    calls: i64,
    millis: f64,
}

/// Applies plans of each size (creates, in one org) and counts what the database did for each.
async fn count_applies(url: &str) -> BenchResult<Vec<(usize, Work)>> {
    let store = PgStore::connect(&PgOptions { url: url.to_owned(), pool: 4 }).await?;
    store.migrate().await?;
    let key = KeySource::Given(HiddenKey(BENCH_MASTER_KEY.to_owned()));
    let backend = StoreBackend::over(store.org("bench").await?, "bench", key);
    let mut found = Vec::new();
    for size in PLAN_SIZES {
        let items = (0..size)
            .map(|n| BatchItem {
                kind: Kind::Skill,
                name: format!("s{size}-{n}"),
                write: Write::Create {
                    manifest: json!({
                        "apiVersion": "agentic.stigmer.ai/v1",
                        "kind": "Skill",
                        "metadata": {"name": format!("s{size}-{n}")},
                        "spec": {"skillMd": "Be brief."},
                    })
                    .into(),
                },
            })
            .collect();
        reset(url)?;
        backend.apply(ApplyBatch { apply_set: Some("bench".into()), items, dry_run: false, correcting: false }).await?;
        let statements = statements(url)?;
        let work = statements.iter().filter(|(query, _, _)| !is_background(query)).fold(
            Work::default(),
            |sum, (_, calls, millis)| Work { calls: sum.calls + calls, millis: sum.millis + millis },
        );
        found.push((size, work));
    }
    Ok(found)
}

/// Runs [`EXECUTIONS`] one-`set` executions to their end on the server's workers and counts
/// the database's statements by what they do.
async fn count_executions(backend: &RemoteBackend, url: &str) -> BenchResult<(Vec<(String, i64, f64)>, Duration)> {
    // One first, so the org, the worker and the caches are there before counting.
    backend.execution_create(one_task_run()?, Vec::new()).await?;
    wait_all_done(backend, 1).await?;
    reset(url)?;
    let started = Instant::now();
    for _ in 0..EXECUTIONS {
        backend.execution_create(one_task_run()?, Vec::new()).await?;
    }
    wait_all_done(backend, EXECUTIONS + 1).await?;
    let took = started.elapsed();
    let mut by_what: std::collections::BTreeMap<String, (i64, f64)> = std::collections::BTreeMap::new();
    for (query, calls, millis) in statements(url)? {
        let entry = by_what.entry(classify(&query).to_owned()).or_default();
        entry.0 += calls;
        entry.1 += millis;
    }
    Ok((by_what.into_iter().map(|(what, (calls, millis))| (what, calls, millis)).collect(), took))
}

async fn wait_all_done(backend: &RemoteBackend, count: usize) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_mins(5);
    loop {
        let all = backend.execution_list(&ExecutionQuery::default()).await?;
        if all.len() >= count && all.iter().all(|e| e.status.is_final()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the executions did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a statement does, to group them by.
fn classify(query: &str) -> &'static str {
    let query = query.to_lowercase();
    if is_background(&query) {
        "background: the scheduler's ticks, the listener"
    } else if query.contains("set last_event = last_event + $3") && !query.contains("status = $6") {
        "append events (the history)"
    } else if query.contains("insert into stigmer.executions") {
        "create (queue)"
    } else if query.contains("for update of e") || query.contains("attempts = $3") {
        "claim"
    } else if query.contains("status = $6") {
        "finish (with its last events)"
    } else if query.contains("lease_expires_ns = $5") {
        "renew the lease"
    } else if query.starts_with("begin") || query.starts_with("commit") || query.starts_with("rollback") {
        "transaction begin / commit"
    } else if query.contains("stigmer.workers") {
        "worker heartbeat"
    } else if query.contains("from stigmer.executions") || query.contains("from stigmer.execution_events") {
        "follow (the worker watching its run)"
    } else if query.contains("stigmer.tokens") {
        "tokens (cache refresh)"
    } else {
        "other"
    }
}

/// Statements that come with time, not with operations: schedule ticks, org listings,
/// `LISTEN`, the scheduler's lock.
fn is_background(query: &str) -> bool {
    let query = query.to_lowercase();
    query.contains("select commit_count from stigmer.orgs")
        || query.contains("select org from stigmer.orgs")
        || query.contains("stigmer.schedules")
        || query.contains("listen")
        || query.contains("pg_try_advisory_lock")
        || query.contains("pg_stat_statements")
        || query == "select $1"
        || query == "select 1"
}

fn reset(url: &str) -> BenchResult<()> {
    postgres::sql(url, "SELECT pg_stat_statements_reset()")?;
    Ok(())
}

/// Every statement run since the last reset in `url`'s database: text, calls, milliseconds.
fn statements(url: &str) -> BenchResult<Vec<(String, i64, f64)>> {
    let rows = postgres::query(
        url,
        "SELECT query || E'\\x1f' || calls::text || E'\\x1f' || total_exec_time::text FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )?;
    rows.into_iter()
        .map(|row| {
            let mut parts = row.split('\u{1f}');
            let query = parts.next().unwrap_or_default().to_owned();
            let calls = parts.next().unwrap_or("0").parse()?;
            let millis = parts.next().unwrap_or("0").parse()?;
            Ok((query, calls, millis))
        })
        .collect()
}
