//! `cargo bench --bench console`: how long the web console takes to answer each kind of page
//! for a store of 10,000 resources (the `reconcile` bench's project, applied twice so 100 of
//! them have history) and 10,000 executions of 10 events each, plus one of 20,000 events — on a
//! `stigmer server` over a data directory, one over PostgreSQL, and `stigmer ui` over the local
//! store. Release binary, loopback HTTP, one run; results go in BENCHMARKS.md.
//! `STIGMER_BENCH_CONSOLE=files,postgres,ui` picks the stores (all by default).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stigmer::backend::{Backend, Definition, ExecutionRecord, ExecutionStatus};
use stigmer::remote::{RemoteBackend, RemoteOptions};

mod support;

use support::corpus::{self, BenchResult, Revisions};
use support::server::{BENCH_MASTER_KEY, Server, durable_postgres, load_average, make_token_in};

/// Executions in the store, and events in each.
const EXECUTIONS: usize = 10_000;
const EVENTS_EACH: usize = 10;
/// Events of the one long execution.
const LONG_EVENTS: usize = 20_000;
/// Requests timed per page, after the first (cold) one.
const SAMPLES: usize = 30;
/// Executions written at once while filling a store.
const WRITERS: usize = 16;

fn main() -> BenchResult<()> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::Builder::new().prefix("stigmer-bench-console-").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _entered = runtime.enter();
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("stigmer web console benchmark");
    println!("  binary: {}", bin.display());
    println!("  load:   {}", load_average());
    let project = scratch.path().join("project");
    corpus::generate(&project, &Revisions::none())?;
    let edited = scratch.path().join("project-edited");
    corpus::generate(&edited, &Revisions::one_percent())?;

    let only = std::env::var("STIGMER_BENCH_CONSOLE").unwrap_or_default();
    let wanted = |target: &str| only.is_empty() || only.split(',').any(|t| t == target);

    // A server over a data directory.
    if wanted("files") {
        let data = scratch.path().join("files");
        let files = Server::start_with(
            &bin,
            &data,
            &scratch.path().join("files.log"),
            &["--workers", "0", "--http-listen", "127.0.0.1:0"],
        )?;
        let token = make_token_in(&bin, &["--data", &data.display().to_string()], "acme", "admin")?;
        measure_server(&runtime, &bin, &files, &token, &project, &edited, "server, data directory", scratch.path())?;
    }

    // A server over PostgreSQL.
    if wanted("postgres") {
        let cluster = durable_postgres().ok_or("this bench needs PostgreSQL (apt-get install postgresql)")?;
        let url = cluster.database();
        let server = Server::start_with(
            &bin,
            &scratch.path().join("postgres"),
            &scratch.path().join("postgres.log"),
            &["--store", &url, "--workers", "0", "--http-listen", "127.0.0.1:0"],
        )?;
        let token = make_token_in(&bin, &["--store", &url], "acme", "admin")?;
        measure_server(&runtime, &bin, &server, &token, &project, &edited, "server, PostgreSQL", scratch.path())?;
    }
    if !wanted("ui") {
        return Ok(());
    }

    // `stigmer ui` over the local store.
    let home = scratch.path().join("home");
    let cli = |args: &[&str]| -> BenchResult<()> {
        let output = Command::new(&bin)
            .args(args)
            .env("STIGMER_HOME", &home)
            .env("STIGMER_MASTER_KEY", BENCH_MASTER_KEY)
            .output()?;
        if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned().into()) }
    };
    cli(&["apply", "-f", &project.display().to_string()])?;
    cli(&["apply", "-f", &edited.display().to_string()])?;
    // One process may hold the store at a time: the writers share one opening, closed before
    // `stigmer ui` opens it.
    let options = stigmer::store::redb::OpenOptions::new(Duration::from_secs(10), "bench");
    let store = Arc::new(stigmer::store::redb::Store::open(&home.join("local.db"), &options)?);
    let local = stigmer::store::redb::LocalBackend::shared(store, "bench");
    let long = runtime.block_on(fill_executions(Arc::new(local)))?;
    let (link, _ui) = start_ui(&bin, &home)?;
    let base = link.split("/login").next().unwrap_or_default().to_owned();
    let cookie = runtime.block_on(follow_link(&link))?;
    let apply = |dir: &Path| cli(&["apply", "-f", &dir.display().to_string()]);
    let after_applies = AfterApplies { apply: &apply, project: &project, edited: &edited };
    runtime.block_on(measure_pages("stigmer ui, local store", &base, &cookie, &long, &after_applies))?;
    Ok(())
}

/// Applies the project (twice: 100 resources get a second revision), fills the executions, and
/// times every page of `server`'s console.
#[allow(clippy::too_many_arguments, reason = "one call per store")]
fn measure_server(
    runtime: &tokio::runtime::Runtime,
    bin: &Path,
    server: &Server,
    token: &str,
    project: &Path,
    edited: &Path,
    label: &str,
    scratch: &Path,
) -> BenchResult<()> {
    let apply = |dir: &Path| -> BenchResult<()> {
        let output = Command::new(bin)
            .args(["apply", "-f"])
            .arg(dir)
            .env("STIGMER_HOME", scratch.join("cli-home"))
            .env("STIGMER_ENDPOINT", &server.endpoint)
            .env("STIGMER_TOKEN", token)
            .output()?;
        if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned().into()) }
    };
    apply(project)?;
    apply(edited)?;
    let options =
        RemoteOptions { endpoint: server.endpoint.clone(), token: token.to_owned(), org: None, ca_cert: None };
    let backend = RemoteBackend::new(&options)?;
    let long = runtime.block_on(fill_executions(Arc::new(backend)))?;
    let base = server.http.clone().ok_or("the server has no HTTP side")?;
    let cookie = runtime.block_on(log_in(&base, token))?;
    let after_applies = AfterApplies { apply: &apply, project, edited };
    runtime.block_on(measure_pages(label, &base, &cookie, &long, &after_applies))
}

fn raw(value: &Value) -> BenchResult<Box<serde_json::value::RawValue>> {
    Ok(serde_json::value::to_raw_value(value)?)
}

/// The events of a short workflow run: each task started and completed.
fn task_events(count: usize, offset: usize) -> BenchResult<Vec<Box<serde_json::value::RawValue>>> {
    let at = jiff::Timestamp::now().to_string();
    (0..count)
        .map(|i| {
            let n = usize::midpoint(offset, i);
            let event = if i % 2 == 0 { "started" } else { "completed" };
            raw(&json!({"event": event, "name": format!("step{n}"), "reference": format!("/do/{n}/step{n}"), "at": at, "input": {"n": n}}))
        })
        .collect()
}

/// Writes the executions (one in ten faulted), and the long one; returns the long one's id.
async fn fill_executions<B: Backend + 'static>(backend: Arc<B>) -> BenchResult<String> {
    let started = Instant::now();
    // What a run of a stored workflow records, as a real `workflow run` would.
    let definition = Definition::of_stored(&*backend, "workflow-0001").await?.ok_or("workflow-0001 is not stored")?;
    let definition = serde_json::to_value(definition)?;
    let definition_bytes = definition.to_string().len();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let backend = backend.clone();
        let definition = definition.clone();
        writers.push(tokio::spawn(async move {
            let mut n = writer;
            while n < EXECUTIONS {
                let id = uuid::Uuid::new_v4().to_string();
                let target = format!("workflow/{}", corpus::agent_name(n % 1500).replace("agent", "workflow"));
                let mut record =
                    ExecutionRecord::new(id.clone(), target, "bench".into(), json!({"n": n}), ExecutionStatus::Running);
                record.definition = Some(definition.clone());
                backend.execution_create(record, Vec::new()).await.map_err(|e| e.to_string())?;
                backend
                    .execution_append(&id, None, task_events(EVENTS_EACH, 0).map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
                let (status, output, error) = if n % 10 == 3 {
                    (
                        ExecutionStatus::Faulted,
                        None,
                        Some(
                            json!({"type": "https://serverlessworkflow.io/spec/1.0.0/errors/runtime", "title": "boom"}),
                        ),
                    )
                } else {
                    (ExecutionStatus::Completed, Some(json!({"done": n})), None)
                };
                backend
                    .execution_finish(&id, None, status, output, error, Vec::new())
                    .await
                    .map_err(|e| e.to_string())?;
                n += WRITERS;
            }
            Ok::<(), String>(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let long = "long-run".to_owned();
    let record = ExecutionRecord::new(
        long.clone(),
        "workflow/workflow-0001".into(),
        "bench".into(),
        json!({}),
        ExecutionStatus::Running,
    );
    backend.execution_create(record, Vec::new()).await?;
    for chunk in 0..LONG_EVENTS / 1000 {
        backend.execution_append(&long, None, task_events(1000, chunk * 1000)?).await?;
    }
    println!(
        "  (filled {EXECUTIONS} executions, each recording a {definition_bytes}-byte definition, and one of \
         {LONG_EVENTS} events in {:.1?})",
        started.elapsed()
    );
    Ok(long)
}

fn client() -> BenchResult<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?)
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .map(ToOwned::to_owned)
}

/// Logs in through the form; the session cookie.
async fn log_in(base: &str, token: &str) -> BenchResult<String> {
    let client = client()?;
    let form = client.get(format!("{base}/login")).send().await?;
    let pairing = cookie_of(&form, "stigmer_login").ok_or("no pairing cookie")?;
    let page = form.text().await?;
    let marker = "name=\"login\" value=\"";
    let start = page.find(marker).ok_or("no login field")? + marker.len();
    let login = page[start..].split('"').next().unwrap_or_default().to_owned();
    let response = client
        .post(format!("{base}/login"))
        .header("cookie", pairing)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&login={login}"))
        .send()
        .await?;
    cookie_of(&response, "stigmer_session").ok_or_else(|| "the login was refused".into())
}

/// Follows a `stigmer ui` link; the session cookie.
async fn follow_link(link: &str) -> BenchResult<String> {
    let response = client()?.get(link).send().await?;
    cookie_of(&response, "stigmer_session").ok_or_else(|| "the link was refused".into())
}

fn start_ui(bin: &Path, home: &Path) -> BenchResult<(String, Killed)> {
    let mut child = Command::new(bin)
        .args(["ui", "--port", "0", "--no-open"])
        .env("STIGMER_HOME", home)
        .env("STIGMER_MASTER_KEY", BENCH_MASTER_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut said = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut said)?;
    let link = said.split_whitespace().last().ok_or("no link")?.to_owned();
    Ok((link, Killed(child)))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How to change the store's resources, for the overview after an apply: applying `project`
/// over `edited` (or back) changes 100 of them.
struct AfterApplies<'a> {
    apply: &'a dyn Fn(&Path) -> BenchResult<()>,
    project: &'a Path,
    edited: &'a Path,
}

/// Times every page: the first request (cold: the resource catalog is read and cached then),
/// then [`SAMPLES`] more; prints one line per page. Then the overview once a second after an
/// apply (the catalog read again in the background meanwhile), and once right after one.
async fn measure_pages(
    label: &str,
    base: &str,
    cookie: &str,
    long: &str,
    after_applies: &AfterApplies<'_>,
) -> BenchResult<()> {
    let client = client()?;
    let pages = [
        ("overview", "/".to_owned()),
        ("resource kinds", "/resources".to_owned()),
        ("agents, page 1 of 50", "/resources/agent".to_owned()),
        ("agents, filtered by label", "/resources/agent?label=team%3Dteam-07".to_owned()),
        ("an agent", format!("/resources/agent/{}", corpus::agent_name(37))),
        ("an agent's history + diff", format!("/resources/agent/{}/history", corpus::agent_name(37))),
        ("rollback confirmation", format!("/resources/agent/{}/rollback?to=1", corpus::agent_name(37))),
        ("executions, page 1 of 200", "/executions".to_owned()),
        ("executions, faulted", "/executions?status=faulted".to_owned()),
        ("an execution (10 events)", String::new()),
        ("an execution (20,000 events)", format!("/executions/{long}")),
        ("its events, page 40", format!("/executions/{long}/events?after=19500")),
        ("audit log", "/audit".to_owned()),
    ];
    // One ordinary execution's id, from the list.
    let listing =
        client.get(format!("{base}/executions?status=completed")).header("cookie", cookie).send().await?.text().await?;
    let marker = "<a href=\"/executions/";
    let start = listing.find(marker).ok_or("no execution listed")? + marker.len();
    let short = listing[start..].split('"').next().unwrap_or_default().to_owned();
    println!("{label}: {} resources, {EXECUTIONS} executions; ms per page: cold, p50, p95, max (bytes)", corpus::TOTAL);
    for (name, path) in pages {
        let path = if path.is_empty() { format!("/executions/{short}") } else { path };
        let mut samples = Vec::with_capacity(SAMPLES);
        let mut cold = Duration::ZERO;
        let mut size = 0;
        for attempt in 0..=SAMPLES {
            let asked = Instant::now();
            let response = client.get(format!("{base}{path}")).header("cookie", cookie).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            let took = asked.elapsed();
            if !status.is_success() {
                return Err(format!("{path}: {status}: {}", String::from_utf8_lossy(&body)).into());
            }
            size = body.len();
            if attempt == 0 { cold = took } else { samples.push(took) }
        }
        samples.sort();
        let at = |q: f64| support::quantile(&samples, q);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {name:<30} {:>7.1} {:>7.1} {:>7.1} {:>7.1}  ({size} B)",
            ms(cold),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(samples.last().copied().unwrap_or_default())
        );
    }
    for (dir, wait, name) in [
        (after_applies.project, Duration::from_secs(1), "overview, 1 s after an apply"),
        (after_applies.edited, Duration::ZERO, "overview, right after an apply"),
    ] {
        (after_applies.apply)(dir)?;
        tokio::time::sleep(wait).await;
        let asked = Instant::now();
        let response = client.get(format!("{base}/")).header("cookie", cookie).send().await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            return Err(format!("/ after an apply: {status}").into());
        }
        println!("  {name:<30} {:>7.1}", asked.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(())
}
