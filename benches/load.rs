//! `cargo bench --bench load`: 50 clients at once against release-binary `stigmer server`s on
//! 127.0.0.1 for 30 seconds each (`STIGMER_LOAD_SECONDS` to change it), on three set-ups in one
//! run: one server on redb, one replica on PostgreSQL, and two replicas on one PostgreSQL
//! database with the clients split between them (a cluster that syncs every commit). Each client, on its own
//! connection, loops: apply its own set of 5 skills with one changed (a fresh list, a plan, one
//! committed update), list the skills, get its changed skill back; every 10th iteration it also
//! updates one skill every client shares, where conflicts are expected and counted. Prints
//! throughput and latency per operation, conflicts, errors, and the server's memory over time.

use std::fmt::Display;
use std::fs;
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use stigmer::backend::{Backend, BackendError, ResourceQuery};
use stigmer::model::{AnyResource, Kind, Skill, SkillSpec};
use stigmer::reconcile::{self, Desired, PlanOptions, plan};
use stigmer::remote::{RemoteBackend, RemoteOptions};

mod support;

use support::corpus::BenchResult;
use support::server::{Server, durable_postgres, load_average, make_token, make_token_in, read_status_kib};

const CLIENTS: usize = 50;
const SKILLS: usize = 5;
const DEFAULT_SECONDS: u64 = 30;
/// Every this many iterations a client also updates the shared skill.
const SHARED_EVERY: usize = 10;
/// An operation slower than this counts as an error (a stall).
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Other errors printed in full.
const SHOW_ERRORS: usize = 5;
/// Memory is "flat" when the end RSS is within this fraction of the RSS at 5 s.
const FLAT_WITHIN: f64 = 0.2;

/// Operation types, in table order.
const OPS: [&str; 4] = [
    "apply own set (list all + plan + Apply, 1 update)",
    "apply shared skill (get + plan + Apply)",
    "list skills",
    "get one skill",
];
const APPLY: usize = 0;
const SHARED: usize = 1;
const LIST: usize = 2;
const GET: usize = 3;

fn main() -> BenchResult<()> {
    let seconds = match std::env::var("STIGMER_LOAD_SECONDS") {
        Ok(value) => value.parse()?,
        Err(_) => DEFAULT_SECONDS,
    };
    let duration = Duration::from_secs(seconds);
    let bin = Path::new(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::Builder::new().prefix("stigmer-bench-load-").tempdir()?;
    println!("stigmer load benchmark");
    println!("  clients: {CLIENTS}, each on its own connection, for {seconds} s, on each of three set-ups");
    println!("  cores:   {} (servers, database and clients share them)", std::thread::available_parallelism()?);
    println!("  load:    {}", load_average());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut summaries = Vec::new();

    let data = scratch.path().join("server");
    let server = Server::start(bin, &data, &scratch.path().join("server.log"))?;
    let token = make_token(bin, &data, "load")?;
    let on_files = [Replica { server: &server, log: scratch.path().join("server.log") }];
    summaries.push(measure(&runtime, "one server on redb", &on_files, &token, duration)?);
    drop(server);

    let cluster = durable_postgres().ok_or("this bench needs PostgreSQL (apt-get install postgresql)")?;
    let url = cluster.database();
    let log = scratch.path().join("one.log");
    let one = Server::start_with(bin, &scratch.path().join("one"), &log, &["--store", &url])?;
    let token = make_token_in(bin, &["--store", &url], "load", "admin")?;
    summaries.push(measure(&runtime, "one replica on PostgreSQL", &[Replica { server: &one, log }], &token, duration)?);
    drop(one);

    let url = cluster.database();
    let (log_a, log_b) = (scratch.path().join("a.log"), scratch.path().join("b.log"));
    let a = Server::start_with(bin, &scratch.path().join("a"), &log_a, &["--store", &url])?;
    let b = Server::start_with(bin, &scratch.path().join("b"), &log_b, &["--store", &url])?;
    let token = make_token_in(bin, &["--store", &url], "load", "admin")?;
    let replicas = [Replica { server: &a, log: log_a }, Replica { server: &b, log: log_b }];
    summaries.push(measure(&runtime, "two replicas on PostgreSQL", &replicas, &token, duration)?);

    println!();
    println!("| set-up | ops/s | other errors | conflicts (expected) | servers' CPU |");
    println!("|---|---:|---:|---:|---:|");
    for summary in &summaries {
        println!(
            "| {} | {:.1} | {} | {} | {:.0}% of one core |",
            summary.name, summary.ops_per_second, summary.errors, summary.conflicts, summary.cpu_percent
        );
    }
    let (one, two) = (&summaries[1], &summaries[2]);
    let ratio = two.ops_per_second / one.ops_per_second;
    let met = if ratio >= 0.8 && two.errors == 0 { "met" } else { "MISSED" };
    println!();
    println!("target: two replicas ≥ 0.8× one replica, no errors besides conflicts: {ratio:.2}× — {met}");
    Ok(())
}

/// A server under load, and its log.
struct Replica<'a> {
    server: &'a Server,
    log: std::path::PathBuf,
}

/// What a set-up did, for the comparison at the end.
struct Summary {
    name: &'static str,
    ops_per_second: f64,
    errors: usize,
    conflicts: usize,
    cpu_percent: f64,
}

/// Runs the [`CLIENTS`] against `replicas` (client `n` on replica `n % replicas`) for
/// `duration` and prints what they measured.
fn measure(
    runtime: &tokio::runtime::Runtime,
    name: &'static str,
    replicas: &[Replica<'_>],
    token: &str,
    duration: Duration,
) -> BenchResult<Summary> {
    let options: Vec<RemoteOptions> = replicas
        .iter()
        .map(|r| RemoteOptions {
            endpoint: r.server.endpoint.clone(),
            token: token.to_owned(),
            org: Some("load".into()),
            ca_cert: None,
        })
        .collect();
    let pids: Vec<u32> = replicas.iter().map(|r| r.server.child.id()).collect();
    println!();
    println!("## {name}: {}", options.iter().map(|o| o.endpoint.as_str()).collect::<Vec<_>>().join(", "));
    let (stats, elapsed, samples, server_cpu) = runtime.block_on(async {
        // Setup, not measured: the shared skill, then every client's set.
        let first = RemoteBackend::new(&options[0])?;
        apply_skills(&first, "shared", &[skill("shared", "Nobody wrote this yet.")]).await?;
        let mut setups = Vec::new();
        for n in 0..CLIENTS {
            let options = options[n % options.len()].clone();
            setups.push(tokio::spawn(async move {
                let client = Client::new(n, RemoteBackend::new(&options).map_err(|e| e.to_string())?);
                match apply_skills(&client.backend, &client.set, &client.skills()).await {
                    Ok(()) => Ok(client),
                    Err(error) => Err(format!("client {n} setup: {error}")),
                }
            }));
        }
        let mut clients = Vec::new();
        for setup in setups {
            clients.push(setup.await??);
        }

        let cpu_before = pids.iter().map(|pid| cpu_ticks(*pid)).sum::<BenchResult<u64>>()?;
        let started = Instant::now();
        let rss = Sampler::start(pids[0], started);
        let deadline = started + duration;
        let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(c.run(deadline))).collect();
        let mut stats = Stats::default();
        for task in tasks {
            stats.merge(task.await?);
        }
        let elapsed = started.elapsed();
        let server_cpu = pids.iter().map(|pid| cpu_ticks(*pid)).sum::<BenchResult<u64>>()? - cpu_before;
        let mut samples = rss.stop()?;
        samples.extend(read_status_kib(pids[0], "VmRSS:").map(|kib| (elapsed.as_secs(), kib)));
        BenchResult::Ok((stats, elapsed, samples, server_cpu))
    })?;
    let hwm = read_status_kib(pids[0], "VmHWM:");
    let mut log_levels = (0, 0);
    for replica in replicas {
        let (warn, error) = count_log_levels(&replica.log)?;
        log_levels = (log_levels.0 + warn, log_levels.1 + error);
    }
    let (warn_lines, error_lines) = log_levels;

    let secs = elapsed.as_secs_f64();
    let total: usize = stats.latencies.iter().map(Vec::len).sum();
    println!();
    println!("| operation | ops | ops/s | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, times) in OPS.iter().zip(&stats.latencies) {
        println!(
            "| {label} | {} | {:.1} | {} | {} | {} |",
            times.len(),
            per_second(times.len(), secs),
            show(percentile(times, 50)),
            show(percentile(times, 99)),
            show(times.iter().max().copied().unwrap_or_default())
        );
    }
    println!("| **all** | {total} | {:.1} | | | |", per_second(total, secs));
    println!();

    let at = |second: u64| samples.iter().find(|(t, _)| *t >= second).map(|(_, kib)| *kib);
    let at_5 = at(5);
    let end = samples.last().map(|(_, kib)| *kib);
    let sampled_peak = samples.iter().map(|(_, kib)| *kib).max();
    let flat = match (at_5, end) {
        (Some(a), Some(b)) => {
            let change = ratio_kib(b, a) - 1.0;
            let verdict = if change.abs() <= FLAT_WITHIN { "flat" } else { "NOT flat" };
            format!("{verdict} (end vs 5 s: {:+.1}%; flat = within ±{:.0}%)", change * 100.0, FLAT_WITHIN * 100.0)
        }
        _ => "n/a".to_owned(),
    };
    let shared_runs = stats.latencies[SHARED].len();
    println!("| measurement | value |");
    println!("|---|---|");
    println!("| duration | {secs:.1} s ({CLIENTS} clients, {} iterations) |", stats.iterations);
    println!(
        "| conflicts (shared skill, expected) | {} of {shared_runs} shared applies ({} committed) |",
        stats.conflicts,
        shared_runs.saturating_sub(stats.conflicts)
    );
    let verdict = if stats.errors == 0 { "met" } else { "MISSED" };
    println!("| other errors (target 0) | {} — {verdict} |", stats.errors);
    println!("| server RSS at 5 s (the first replica) | {} |", show_kib(at_5));
    println!("| server RSS at the end | {} |", show_kib(end));
    println!("| server peak RSS | {} VmHWM; {} highest 1 s sample |", show_kib(hwm), show_kib(sampled_peak));
    println!("| server memory | {flat} |");
    println!(
        "| server CPU | {:.1} s over {secs:.1} s ({:.0}% of one core) |",
        float(server_cpu) / 100.0,
        float(server_cpu) / secs
    );
    println!("| server log lines WARN / ERROR | {warn_lines} / {error_lines} (a conflict logs one WARN) |");
    println!();
    print!("server RSS every second (MiB):");
    for (_, kib) in &samples {
        print!(" {:.0}", float(*kib) / 1024.0);
    }
    println!();
    if !stats.first_errors.is_empty() {
        println!();
        println!("first errors:");
        for error in &stats.first_errors {
            println!("  - {error}");
        }
    }
    Ok(Summary {
        name,
        ops_per_second: per_second(total, secs),
        errors: stats.errors,
        conflicts: stats.conflicts,
        cpu_percent: float(server_cpu) / secs,
    })
}

fn skill(name: &str, text: &str) -> AnyResource {
    Skill::new(name, SkillSpec::markdown(text)).into()
}

/// Lists everything, plans `skills` as apply set `set` and applies the plan.
async fn apply_skills(backend: &RemoteBackend, set: &str, skills: &[AnyResource]) -> BenchResult<()> {
    let observed = backend.list(&ResourceQuery::all()).await?;
    let desired: Vec<Desired> = skills.iter().cloned().map(Desired::new).collect();
    let options = PlanOptions { apply_set: Some(set.to_owned()), ..PlanOptions::default() };
    reconcile::apply(backend, &plan(&desired, &observed, &options)?, false).await?;
    Ok(())
}

/// What one client (or all) measured.
#[derive(Default)]
struct Stats {
    latencies: [Vec<Duration>; OPS.len()],
    iterations: usize,
    conflicts: usize,
    errors: usize,
    first_errors: Vec<String>,
}

impl Stats {
    fn error(&mut self, client: usize, what: &str, error: impl Display) {
        self.errors += 1;
        if self.first_errors.len() < SHOW_ERRORS {
            self.first_errors.push(format!("client {client}, {what}: {error}"));
        }
    }

    fn merge(&mut self, other: Stats) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            mine.extend(theirs);
        }
        self.iterations += other.iterations;
        self.conflicts += other.conflicts;
        self.errors += other.errors;
        for error in other.first_errors {
            if self.first_errors.len() < SHOW_ERRORS {
                self.first_errors.push(error);
            }
        }
    }
}

struct Client {
    n: usize,
    backend: RemoteBackend,
    set: String,
    /// The text each of its skills has now.
    texts: Vec<String>,
    stats: Stats,
}

impl Client {
    fn new(n: usize, backend: RemoteBackend) -> Self {
        let texts = (0..SKILLS).map(|k| format!("Skill {k} of client {n}, iteration 0.")).collect();
        Self { n, backend, set: format!("client-{n}"), texts, stats: Stats::default() }
    }

    fn name(&self, k: usize) -> String {
        format!("c{}-s{k}", self.n)
    }

    fn skills(&self) -> Vec<AnyResource> {
        self.texts.iter().enumerate().map(|(k, text)| skill(&self.name(k), text)).collect()
    }

    async fn run(mut self, deadline: Instant) -> Stats {
        let mut iteration = 0;
        while Instant::now() < deadline {
            iteration += 1;
            self.stats.iterations += 1;
            let k = iteration % SKILLS;
            self.texts[k] = format!("Skill {k} of client {}, iteration {iteration}.", self.n);
            self.apply_own().await;
            if iteration % SHARED_EVERY == 0 {
                self.apply_shared(iteration).await;
            }
            self.list().await;
            self.get(k).await;
        }
        self.stats
    }

    /// A fresh list, a plan with one changed skill, the apply: exactly one update commits.
    async fn apply_own(&mut self) {
        let started = Instant::now();
        let skills = self.skills();
        let result = timed(async {
            let observed = self.backend.list(&ResourceQuery::all()).await?;
            let desired: Vec<Desired> = skills.into_iter().map(Desired::new).collect();
            let options = PlanOptions { apply_set: Some(self.set.clone()), ..PlanOptions::default() };
            let receipt = reconcile::apply(&self.backend, &plan(&desired, &observed, &options)?, false).await?;
            if receipt.committed && receipt.written.len() == 1 {
                Ok(())
            } else {
                Err(format!(
                    "committed {} with {} writes, expected one update",
                    receipt.committed,
                    receipt.written.len()
                )
                .into())
            }
        })
        .await;
        match result {
            Ok(()) => self.stats.latencies[APPLY].push(started.elapsed()),
            Err(error) => self.stats.error(self.n, "apply own set", error),
        }
    }

    /// The shared skill, read, planned and written; another client may have written it between.
    async fn apply_shared(&mut self, iteration: usize) {
        let started = Instant::now();
        let wanted = skill("shared", &format!("Client {} wrote this at iteration {iteration}.", self.n));
        let result = timed(async {
            let observed: Vec<_> = self.backend.get(Kind::Skill, "shared").await?.into_iter().collect();
            let options =
                PlanOptions { apply_set: Some("shared".to_owned()), force_ownership: false, ..PlanOptions::default() };
            let plan = plan(&[Desired::new(wanted)], &observed, &options)?;
            match reconcile::apply(&self.backend, &plan, false).await {
                Ok(_) => Ok(false),
                Err(reconcile::ReconcileError::Backend(BackendError::Conflict { .. })) => Ok(true),
                Err(other) => Err(other.into()),
            }
        })
        .await;
        match result {
            Ok(conflict) => {
                self.stats.latencies[SHARED].push(started.elapsed());
                self.stats.conflicts += usize::from(conflict);
            }
            Err(error) => self.stats.error(self.n, "apply shared skill", error),
        }
    }

    async fn list(&mut self) {
        let started = Instant::now();
        let result = timed(async {
            let skills = self.backend.list(&ResourceQuery::kind(Kind::Skill)).await?;
            let expected = CLIENTS * SKILLS + 1;
            if skills.len() == expected {
                Ok(())
            } else {
                Err(format!("listed {} skills, expected {expected}", skills.len()).into())
            }
        })
        .await;
        match result {
            Ok(()) => self.stats.latencies[LIST].push(started.elapsed()),
            Err(error) => self.stats.error(self.n, "list skills", error),
        }
    }

    /// Gets the skill just applied and checks it reads back as written.
    async fn get(&mut self, k: usize) {
        let started = Instant::now();
        let name = self.name(k);
        let result = timed(async {
            let stored = self.backend.get(Kind::Skill, &name).await?.ok_or("missing")?;
            let text = stored.manifest.pointer("/spec/skillMd").and_then(serde_json::Value::as_str);
            if text == Some(self.texts[k].as_str()) {
                Ok(())
            } else {
                Err(format!("read back {text:?}, expected {:?}", self.texts[k]).into())
            }
        })
        .await;
        match result {
            Ok(()) => self.stats.latencies[GET].push(started.elapsed()),
            Err(error) => self.stats.error(self.n, &format!("get skill/{name}"), error),
        }
    }
}

/// Runs one operation, failing it when it takes longer than [`OP_TIMEOUT`].
async fn timed<T>(operation: impl Future<Output = BenchResult<T>>) -> BenchResult<T> {
    tokio::time::timeout(OP_TIMEOUT, operation)
        .await
        .unwrap_or_else(|_| Err(format!("no answer after {OP_TIMEOUT:?}").into()))
}

/// Reads the server's `VmRSS` once a second, on a thread of its own.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u64, u64)>>,
}

impl Sampler {
    fn start(pid: u32, started: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut second = 0;
            while !flag.load(Ordering::Acquire) {
                let next = started + Duration::from_secs(second);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                if let Some(kib) = read_status_kib(pid, "VmRSS:") {
                    samples.push((second, kib));
                }
                second += 1;
            }
            samples
        });
        Self { stop, thread }
    }

    /// `(second, KiB)` samples.
    fn stop(self) -> BenchResult<Vec<(u64, u64)>> {
        self.stop.store(true, Ordering::Release);
        Ok(self.thread.join().map_err(|_| "the RSS sampler panicked")?)
    }
}

/// User + system CPU time of a process, in clock ticks (usually 10 ms), from /proc.
fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("bad /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Lines of the server's log at WARN and at ERROR.
fn count_log_levels(log: &Path) -> BenchResult<(usize, usize)> {
    let text = fs::read_to_string(log)?;
    let count = |level: &str| text.lines().filter(|l| l.split_whitespace().nth(1) == Some(level)).count();
    Ok((count("WARN"), count("ERROR")))
}

/// Nearest-rank percentile.
fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn per_second(count: usize, secs: f64) -> f64 {
    count as f64 / secs
}

#[allow(clippy::cast_precision_loss, reason = "sizes and ticks far below 2^52")]
fn float(n: u64) -> f64 {
    n as f64
}

fn ratio_kib(a: u64, b: u64) -> f64 {
    float(a) / float(b)
}

fn show(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms >= 100.0 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
}

fn show_kib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", float(k) / 1024.0))
}
