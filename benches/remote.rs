//! `cargo bench --bench remote`: `stigmer apply` of the 10,000-resource project into a
//! `stigmer server` on 127.0.0.1 — one keeping its data in a directory (redb), one in
//! PostgreSQL (a private cluster that syncs every commit, as redb does) — against the same apply
//! into a local store, as whole processes of the release binary, taking turns so all see the
//! same machine. Results go in BENCHMARKS.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::corpus::{BenchResult, Revisions, TOTAL, generate};
use support::server::{Server, durable_postgres, load_average, make_token, make_token_in, read_status_kib};

/// Runs of each measurement.
const RUNS: usize = 3;
/// Target: a remote first apply within this factor of the local one.
const FIRST_APPLY_MAX_RATIO: f64 = 1.5;
/// Target: an apply to a server on PostgreSQL within this factor of one on redb.
const POSTGRES_MAX_RATIO: f64 = 1.5;

fn main() -> BenchResult<()> {
    let started = Instant::now();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::Builder::new().prefix("stigmer-bench-remote-").tempdir()?;
    let project = scratch.path().join("project");
    generate(&project, &Revisions::none())?;
    let data = scratch.path().join("server");
    let server = Server::start(&bin, &data, &scratch.path().join("server.log"))?;
    let cluster = durable_postgres().ok_or("this bench needs PostgreSQL (apt-get install postgresql)")?;
    let url = cluster.database();
    let on_postgres = Server::start_with(
        &bin,
        &scratch.path().join("postgres-server"),
        &scratch.path().join("postgres-server.log"),
        &["--store", &url],
    )?;
    println!("stigmer remote apply benchmark");
    println!("  binary:  {}", bin.display());
    println!("  server:  {} (data in {})", server.endpoint, data.display());
    println!("  server:  {} (data in PostgreSQL, fsync on)", on_postgres.endpoint);
    println!("  project: {TOTAL} resources");
    println!("  load:    {}", load_average());

    let runner = Runner { bin: bin.clone(), project, stderr: scratch.path().join("stderr.txt") };
    let (mut local_first, mut local_noop) = (Vec::new(), Vec::new());
    let (mut remote_first, mut remote_noop) = (Vec::new(), Vec::new());
    let (mut pg_first, mut pg_noop) = (Vec::new(), Vec::new());
    for n in 0..RUNS {
        let home = scratch.path().join(format!("local-{n}"));
        let org = format!("run-{n}");
        let token = make_token(&bin, &data, &org)?;
        let pg_token = make_token_in(&bin, &["--store", &url], &org, "admin")?;
        let remote = Target::Remote { endpoint: &server.endpoint, token: &token, org: &org };
        let postgres = Target::Remote { endpoint: &on_postgres.endpoint, token: &pg_token, org: &org };
        let remote_home = scratch.path().join(format!("remote-home-{n}"));
        let pg_home = scratch.path().join(format!("postgres-home-{n}"));
        // Take turns at going first, so none always runs on a warmer cache.
        let mut order: Vec<(&Target<'_>, &Path, &mut Vec<Duration>, &mut Vec<Duration>)> = vec![
            (&Target::Local, home.as_path(), &mut local_first, &mut local_noop),
            (&remote, remote_home.as_path(), &mut remote_first, &mut remote_noop),
            (&postgres, pg_home.as_path(), &mut pg_first, &mut pg_noop),
        ];
        order.rotate_left(n % 3);
        for (target, home, first, _) in &mut order {
            first.push(runner.apply(home, target)?);
        }
        for (target, home, _, noop) in &mut order {
            noop.push(runner.apply(home, target)?);
        }
        println!(
            "  run {n}: first local {} redb {} postgres {}; no-op local {} redb {} postgres {}",
            show(local_first[n]),
            show(remote_first[n]),
            show(pg_first[n]),
            show(local_noop[n]),
            show(remote_noop[n]),
            show(pg_noop[n])
        );
    }
    let pg_rss = read_status_kib(on_postgres.child.id(), "VmHWM:");
    let server_rss = read_status_kib(server.child.id(), "VmRSS:");
    let server_hwm = read_status_kib(server.child.id(), "VmHWM:");

    let (lf, rf, ln, rn) = (median(&local_first), median(&remote_first), median(&local_noop), median(&remote_noop));
    let (pf, pn) = (median(&pg_first), median(&pg_noop));
    println!();
    println!(
        "| `stigmer apply -f DIR` ({TOTAL} resources) | runs | local median | server on redb | server on PostgreSQL | redb / local | PostgreSQL / redb |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| first apply (empty store / new org) | {RUNS} | {} ({}) | {} ({}) | {} ({}) | {:.2}× | {:.2}× |",
        show(lf),
        spread(&local_first),
        show(rf),
        spread(&remote_first),
        show(pf),
        spread(&pg_first),
        ratio(rf, lf),
        ratio(pf, rf)
    );
    println!(
        "| no-op re-apply | {RUNS} | {} ({}) | {} ({}) | {} ({}) | {:.2}× | {:.2}× |",
        show(ln),
        spread(&local_noop),
        show(rn),
        spread(&remote_noop),
        show(pn),
        spread(&pg_noop),
        ratio(rn, ln),
        ratio(pn, rn)
    );
    println!();
    println!("| server (after {RUNS} orgs of {TOTAL} resources) | value |");
    println!("|---|---:|");
    println!("| peak RSS (VmHWM) | {} |", show_kib(server_hwm));
    println!("| RSS at the end (VmRSS) | {} |", show_kib(server_rss));
    println!("| server on PostgreSQL: peak RSS (VmHWM) | {} |", show_kib(pg_rss));
    println!();
    let actual = ratio(rf, lf);
    let verdict = if actual <= FIRST_APPLY_MAX_RATIO {
        "met".to_owned()
    } else {
        format!(
            "missed ({:.2}× the budget of {})",
            actual / FIRST_APPLY_MAX_RATIO,
            show(lf.mul_f64(FIRST_APPLY_MAX_RATIO))
        )
    };
    println!("target: remote first apply ≤ {FIRST_APPLY_MAX_RATIO}× the local first apply: {actual:.2}× — {verdict}");
    let on_postgres_ratio = ratio(pf, rf);
    let met = if on_postgres_ratio <= POSTGRES_MAX_RATIO { "met" } else { "missed" };
    println!(
        "target: first apply on PostgreSQL ≤ {POSTGRES_MAX_RATIO}× on redb: {on_postgres_ratio:.2}× — {met} (no-op {:.2}×)",
        ratio(pn, rn)
    );
    println!("total bench time: {}", show(started.elapsed()));
    drop(server);
    drop(on_postgres);
    Ok(())
}

/// Where an apply goes.
enum Target<'a> {
    Local,
    Remote { endpoint: &'a str, token: &'a str, org: &'a str },
}

struct Runner {
    bin: PathBuf,
    project: PathBuf,
    /// Where each child's stderr goes (the last run's is kept).
    stderr: PathBuf,
}

impl Runner {
    /// Times `stigmer apply -f PROJECT --no-cache` from spawn to exit (the no-op plans against
    /// the backend in full, not from the digest cache); fails with its stderr unless it succeeds.
    fn apply(&self, home: &Path, target: &Target<'_>) -> BenchResult<Duration> {
        let mut command = Command::new(&self.bin);
        command
            .args(["apply", "--no-cache", "-f"])
            .arg(&self.project)
            .env("STIGMER_HOME", home)
            .env("NO_COLOR", "1")
            .env_remove("STIGMER_ENDPOINT")
            .env_remove("STIGMER_TOKEN")
            .env_remove("STIGMER_ORG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&self.stderr)?);
        if let Target::Remote { endpoint, token, org } = target {
            command.env("STIGMER_ENDPOINT", endpoint).env("STIGMER_TOKEN", token).env("STIGMER_ORG", org);
        }
        let started = Instant::now();
        let status = command.status()?;
        let elapsed = started.elapsed();
        if !status.success() {
            let where_ = match target {
                Target::Local => format!("into {}", home.display()),
                Target::Remote { endpoint, org, .. } => format!("to {endpoint} org {org}"),
            };
            return Err(format!(
                "`stigmer apply -f {}` {where_} failed ({status}); stderr:\n{}",
                self.project.display(),
                fs::read_to_string(&self.stderr)?
            )
            .into());
        }
        Ok(elapsed)
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn spread(times: &[Duration]) -> String {
    match (times.iter().min(), times.iter().max()) {
        (Some(min), Some(max)) => format!("{} – {}", show(*min), show(*max)),
        _ => "—".to_owned(),
    }
}

fn ratio(time: Duration, base: Duration) -> f64 {
    time.as_secs_f64() / base.as_secs_f64()
}

fn show(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 { format!("{:.2} s", ms / 1000.0) } else { format!("{ms:.0} ms") }
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn show_kib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
