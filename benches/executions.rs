//! `cargo bench --bench executions`: the execution service of the release binary on loopback,
//! measured in one run. Claim latency (created → first task started, followed over the
//! server's stream) with the server's own idle workers and with a remote `stigmer worker`;
//! throughput of a one-`set`-task workflow on 2 embedded workers for 30 s; and how late 100
//! `every: PT1S` schedules fire; and the throughput again on PostgreSQL, with one replica and
//! with two. Results go in BENCHMARKS.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;
use stigmer::backend::{Backend, ExecutionQuery, ExecutionStatus};
use stigmer::remote::{RemoteBackend, RemoteOptions};

mod support;

use support::corpus::BenchResult;
use support::runs::one_task_run;
use support::server::{Server, durable_postgres, load_average, make_token, make_token_in};

/// Executions timed one at a time for claim latency.
const LATENCY_RUNS: usize = 200;
/// How long the throughput run creates executions.
const THROUGHPUT_FOR: Duration = Duration::from_secs(30);
/// Clients creating executions at once in the throughput run.
const PRODUCERS: usize = 16;
/// Schedules of the jitter run, and how long it watches them.
const SCHEDULES: usize = 100;
const JITTER_FOR: Duration = Duration::from_secs(12);

fn main() -> BenchResult<()> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::Builder::new().prefix("stigmer-bench-executions-").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The gRPC channel is made lazily, but within a runtime.
    let _entered = runtime.enter();
    println!("stigmer execution service benchmark");
    println!("  binary: {}", bin.display());
    println!("  load:   {}", load_average());

    let embedded = Server::start_with(
        &bin,
        &scratch.path().join("embedded"),
        &scratch.path().join("embedded.log"),
        &["--workers", "2"],
    )?;
    let backend = remote(&embedded.endpoint, &make_token(&bin, &scratch.path().join("embedded"), "bench")?)?;
    let latencies = runtime.block_on(claim_latencies(&backend))?;
    report("claim latency, embedded workers (target p50 <= 20 ms)", &latencies);

    let store_only = Server::start_with(
        &bin,
        &scratch.path().join("remote"),
        &scratch.path().join("remote.log"),
        &["--workers", "0"],
    )?;
    let data = scratch.path().join("remote");
    let worker_token = token(&bin, &data, "bench", "worker")?;
    let mut worker = start_worker(&bin, &store_only.endpoint, &worker_token, &scratch.path().join("worker.log"))?;
    let backend_remote = remote(&store_only.endpoint, &make_token(&bin, &data, "bench")?)?;
    let remote_latencies = runtime.block_on(claim_latencies(&backend_remote));
    let _ = worker.kill();
    let _ = worker.wait();
    report("claim latency, a remote stigmer worker (target p50 <= 50 ms)", &remote_latencies?);

    let (created, completed, rate) = runtime.block_on(throughput(std::slice::from_ref(&backend)))?;
    println!(
        "throughput, one-set-task workflow, 2 embedded workers, {} s: {created} created, {completed} completed in the window, {rate:.0} executions/s (target >= 300/s)",
        THROUGHPUT_FOR.as_secs()
    );
    drop(embedded);

    // The same on PostgreSQL (a cluster that syncs every commit): one replica with 2 workers,
    // then two replicas with 2 workers each, the producers split between them.
    let cluster = durable_postgres().ok_or("this bench needs PostgreSQL (apt-get install postgresql)")?;
    let mut on_postgres = Vec::new();
    for replicas in [1, 2] {
        let url = cluster.database();
        let servers = (0..replicas)
            .map(|n| {
                let name = format!("postgres-{replicas}-{n}");
                Server::start_with(
                    &bin,
                    &scratch.path().join(&name),
                    &scratch.path().join(format!("{name}.log")),
                    &["--store", &url, "--workers", "2"],
                )
            })
            .collect::<BenchResult<Vec<_>>>()?;
        let admin = make_token_in(&bin, &["--store", &url], "bench", "admin")?;
        let backends =
            servers.iter().map(|server| remote(&server.endpoint, &admin)).collect::<BenchResult<Vec<_>>>()?;
        let (created, completed, rate) = runtime.block_on(throughput(&backends))?;
        println!(
            "throughput on PostgreSQL, {replicas} replica(s) × 2 embedded workers, {} s: {created} created, {completed} completed in the window, {rate:.0} executions/s",
            THROUGHPUT_FOR.as_secs()
        );
        on_postgres.push(rate);
    }
    println!("two replicas / one on PostgreSQL: {:.2}× (target: no collapse, ≥ 0.8×)", on_postgres[1] / on_postgres[0]);

    let scheduler = Server::start_with(
        &bin,
        &scratch.path().join("schedules"),
        &scratch.path().join("schedules.log"),
        &["--workers", "2"],
    )?;
    let data = scratch.path().join("schedules");
    let admin = make_token(&bin, &data, "bench")?;
    let late = jitter(&bin, &scheduler.endpoint, &admin, scratch.path(), &runtime)?;
    report(&format!("schedule lateness, {SCHEDULES} every: PT1S schedules (target p99 <= 100 ms)"), &late);
    Ok(())
}

fn remote(endpoint: &str, token: &str) -> BenchResult<RemoteBackend> {
    let options = RemoteOptions { endpoint: endpoint.to_owned(), token: token.to_owned(), org: None, ca_cert: None };
    Ok(RemoteBackend::new(&options)?)
}

fn token(bin: &Path, data: &Path, org: &str, role: &str) -> BenchResult<String> {
    let output = Command::new(bin)
        .args(["server", "token", "create", "--org", org, "--role", role, "--name", role, "--data"])
        .arg(data)
        .output()?;
    if !output.status.success() {
        return Err(format!("token create failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn start_worker(bin: &Path, endpoint: &str, token: &str, log: &Path) -> BenchResult<Child> {
    Ok(Command::new(bin)
        .args(["worker", "--endpoint", endpoint, "--concurrency", "2"])
        .env("STIGMER_TOKEN", token)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log)?)
        .spawn()?)
}

/// Created → its first task started, one execution at a time, so the workers are idle.
async fn claim_latencies(backend: &RemoteBackend) -> BenchResult<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        let record = one_task_run()?;
        let id = record.id.clone();
        let started = Instant::now();
        backend.execution_create(record, Vec::new()).await?;
        let mut feed = backend.execution_follow(&id, 0).await?;
        let mut first_task = None;
        while let Some(update) = feed.next().await {
            let update = update?;
            if first_task.is_none() && update.events.iter().any(|(_, e)| e["event"] == "started") {
                first_task = Some(started.elapsed());
            }
            if update.record.status.is_final() {
                break;
            }
        }
        latencies.push(first_task.ok_or("an execution ended without starting a task")?);
    }
    Ok(latencies)
}

/// [`PRODUCERS`] clients each creating an execution and following it to its end, then the next,
/// for [`THROUGHPUT_FOR`] (closed loop: the queue stays as deep as the clients, so this is what
/// the service sustains, not how fast a queue fills); how many were created, how many finished
/// within the window, and that as a rate.
async fn throughput(backends: &[RemoteBackend]) -> BenchResult<(usize, usize, f64)> {
    let window_start = jiff::Timestamp::now();
    let deadline = Instant::now() + THROUGHPUT_FOR;
    let mut producers = Vec::new();
    for n in 0..PRODUCERS {
        let backend = Arc::new(backends[n % backends.len()].clone());
        producers.push(tokio::spawn(async move {
            let mut created = 0usize;
            while Instant::now() < deadline {
                let Ok(record) = one_task_run() else { break };
                let id = record.id.clone();
                if backend.execution_create(record, Vec::new()).await.is_err() {
                    break;
                }
                created += 1;
                let Ok(mut feed) = backend.execution_follow(&id, 0).await else { break };
                while let Some(Ok(update)) = feed.next().await {
                    if update.record.status.is_final() {
                        break;
                    }
                }
            }
            created
        }));
    }
    let mut created = 0;
    for producer in producers {
        created += producer.await?;
    }
    let window_end = window_start.checked_add(THROUGHPUT_FOR)?;
    let query = ExecutionQuery { since: Some(window_start), ..ExecutionQuery::default() };
    let completed = backends[0]
        .execution_list(&query)
        .await?
        .iter()
        .filter(|r| r.status == ExecutionStatus::Completed && r.finished_at.is_some_and(|at| at <= window_end))
        .count();
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = completed as f64 / THROUGHPUT_FOR.as_secs_f64();
    Ok((created, completed, rate))
}

/// Applies [`SCHEDULES`] `every: PT1S` workflows, watches them for [`JITTER_FOR`], and returns
/// how late each slot's execution was created after its slot.
fn jitter(
    bin: &Path,
    endpoint: &str,
    token: &str,
    scratch: &Path,
    runtime: &tokio::runtime::Runtime,
) -> BenchResult<Vec<Duration>> {
    let project = scratch.join("schedules-project");
    fs::create_dir_all(&project)?;
    for n in 0..SCHEDULES {
        fs::write(
            project.join(format!("tick-{n}.yaml")),
            format!(
                "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: tick-{n}\nspec:\n  schedule:\n    every: PT1S\n  do:\n    - tick:\n        set:\n          at: ${{ .scheduledFor }}\n"
            ),
        )?;
    }
    let status = Command::new(bin)
        .args(["apply", "-f"])
        .arg(&project)
        .env("STIGMER_HOME", scratch.join("apply-home"))
        .env("STIGMER_ENDPOINT", endpoint)
        .env("STIGMER_TOKEN", token)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("applying the schedules failed".into());
    }
    std::thread::sleep(JITTER_FOR);
    let backend = remote(endpoint, token)?;
    let records = runtime.block_on(backend.execution_list(&ExecutionQuery::default()))?;
    let mut late = Vec::with_capacity(records.len());
    for record in records {
        let Some(slot) = record.input.get("scheduledFor").and_then(Value::as_str) else { continue };
        let slot: jiff::Timestamp = slot.parse()?;
        late.push(Duration::try_from(record.started_at.duration_since(slot)).unwrap_or_default());
    }
    Ok(late)
}

fn report(what: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| support::quantile(&sorted, q);
    println!(
        "{what}: n={} p50={:.1?} p90={:.1?} p99={:.1?} max={:.1?}",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        sorted.last().copied().unwrap_or_default()
    );
}
