//! `cargo bench --bench reconcile`: how long `stigmer apply`, `get` and `validate` take on a
//! project of 10,000 resources, measured on the release binary as a user runs it.
//!
//! One run generates 10,000 manifests (100 files of 100 documents, every kind, references that
//! resolve within the set) in a temporary directory, applies them into a temporary
//! `STIGMER_HOME`, and prints a table of whole-process timings, each as a ratio to parsing the
//! same files in-process (`manifest::load`), plus the peak RSS of each child process (sampled
//! from `/proc/<pid>/status`), in-process phase timings (load, validate, canonical form, plan,
//! store read and write) and the targets met or missed. See BENCHMARKS.md for results.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use stigmer::backend::{Backend, ResourceQuery};
use stigmer::manifest::{InputPath, ManifestSet, load};
use stigmer::model::canonical::Canonical;
use stigmer::reconcile::{self, Desired, Observed, PlanOptions, plan};
use stigmer::store::redb::LocalBackend;
use stigmer::validate::{NoResources, check_documents, validate};

mod support;

use support::corpus::{BenchResult, PER_FILE, Revisions, TOTAL, agent_name, generate};

/// The apply set of the generated project (its `stigmer.yaml`).
const APPLY_SET: &str = "bench";
/// Resources changed by the "1% changed" apply: one per file.
const CHANGED: usize = 100;
/// Runs of repeatable whole-process operations.
const RUNS: usize = 3;
/// Runs of `stigmer get KIND NAME`.
const GET_ONE_RUNS: usize = 20;
/// How often a child's `VmHWM` is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);
/// In-process phases slower than this run once (the bench should stay under ~3 minutes).
const REPEAT_PHASE_BELOW: Duration = Duration::from_secs(2);

/// The targets of issue 21, and the figures measured before the work on them (main at
/// 1d786c6, 10,000 resources), printed beside today's.
const TARGET_PARSE_MB_S: f64 = 25.0;
const TARGET_NOOP: f64 = 1.3;
const TARGET_CACHED_NOOP: f64 = 0.2;
const TARGET_FIRST_APPLY: f64 = 2.0;
const TARGET_VALIDATE: f64 = 1.5;
const TARGET_RSS_KIB: u64 = 100 * 1024;
const TARGET_SCALED_TIME: f64 = 10.0;
const TARGET_SCALED_RSS_KIB: u64 = 400 * 1000 * 1000 / 1024;

fn main() -> BenchResult<()> {
    // `cargo bench --bench reconcile -- --scale 100000`: the same project, that many resources.
    let args: Vec<String> = std::env::args().collect();
    let scale = match args.iter().position(|a| a == "--scale") {
        Some(at) => {
            let total: usize = args.get(at + 1).ok_or("--scale takes a number of resources")?.parse()?;
            if total == 0 || !total.is_multiple_of(TOTAL) {
                return Err(format!("--scale takes a multiple of {TOTAL}").into());
            }
            total / TOTAL
        }
        None => 1,
    };
    let bin = stigmer_binary()?;
    let mut scratch = tempfile::Builder::new().prefix("stigmer-bench-").tempdir()?;
    // STIGMER_BENCH_KEEP=1 keeps the project and stores, to profile a command on them.
    let keep = std::env::var_os("STIGMER_BENCH_KEEP").is_some_and(|v| !v.is_empty());
    scratch.disable_cleanup(keep);
    let homes = scratch.path().join("homes");
    fs::create_dir_all(&homes)?;
    let runner = Runner { bin, logs: scratch.path().to_path_buf() };

    println!("stigmer reconcile benchmark");
    println!("  binary:  {}", runner.bin.display());
    println!("  scratch: {}{}", scratch.path().display(), if keep { " (kept)" } else { " (removed at the end)" });
    println!("  load:    {} (1, 5, 15 min; the machine should be otherwise idle)", load_average());
    println!("  cores:   {}", thread::available_parallelism().map_or(1, std::num::NonZero::get));
    if scale > 1 {
        return scaled(&runner, scratch.path(), scale);
    }

    // 1. The project.
    let project = scratch.path().join("project");
    let started = Instant::now();
    let bytes = generate(&project, &Revisions::none())?;
    println!(
        "  project: {} resources in {} files + stigmer.yaml, {:.1} MiB, generated in {}",
        TOTAL,
        TOTAL / PER_FILE,
        mib(bytes),
        show(started.elapsed())
    );
    let project_arg = project.display().to_string();
    let validate_home = homes.join("validate");
    check_valid(&runner, &validate_home, &project_arg)?;

    // 2a. Parse-only, in process: the baseline every ratio is taken against (all cores), and
    // the parser's throughput on one core.
    let mut phases: Vec<Phase> = Vec::new();
    let one_core = repeat(RUNS, || Ok(parse_on_one_core(&project)))?;
    let one_core_mb_s = mb_per_s(bytes, median(&one_core));
    phases.push(Phase { label: "read + parse each file in turn, one core", times: one_core });
    // The floor under that: the same files through the parser alone, nothing kept.
    let files = project_files(&project)?;
    let events = repeat(RUNS, || parser_floor(&files, ParserFloor::Events))?;
    let events_mb_s = mb_per_s(bytes, median(&events));
    phases.push(Phase { label: "YAML events only (granit-parser), one core: the parser's floor", times: events });
    let ignored = repeat(RUNS, || parser_floor(&files, ParserFloor::Ignored))?;
    phases.push(Phase { label: "serde-saphyr into IgnoredAny, one core", times: ignored });
    let json = repeat(RUNS, || parser_floor(&files, ParserFloor::Json))?;
    phases.push(Phase { label: "serde-saphyr into serde_json::Value, one core", times: json });
    let parse_times = repeat(RUNS, || {
        let started = Instant::now();
        let set = load_project(&project);
        let elapsed = started.elapsed();
        (set.documents.len() == TOTAL).then_some(elapsed).ok_or_else(|| "manifest::load lost documents".into())
    })?;
    let parse = median(&parse_times);
    phases.push(Phase {
        label: "manifest::load (read + parse YAML, all cores): the parse-only baseline",
        times: parse_times,
    });

    // 2b. Whole processes.
    let mut rows: Vec<Row> = Vec::new();
    rows.push(runner.measure("stigmer --version (process start floor)", RUNS, &validate_home, &["--version"], None)?);
    rows.push(runner.measure(
        "stigmer validate -f DIR",
        RUNS,
        &validate_home,
        &["validate", "-f", &project_arg],
        None,
    )?);

    let apply = ["apply", "-f", project_arg.as_str()];
    let full = ["apply", "-f", project_arg.as_str(), "--no-cache"];
    let created = format!("{TOTAL} created, 0 updated, 0 deleted, 0 unchanged");
    let first_runs = (1..=RUNS)
        .map(|n| runner.run_checked(&homes.join(format!("first-{n}")), &apply, Some(&created)))
        .collect::<BenchResult<Vec<_>>>()?;
    rows.push(Row::new("stigmer apply -f DIR (first, empty store)", &first_runs));
    // The store of the last first apply is the one every later measurement uses.
    let home = homes.join(format!("first-{RUNS}"));

    let unchanged = format!("0 created, 0 updated, 0 deleted, {TOTAL} unchanged");
    rows.push(runner.measure(
        "stigmer apply -f DIR --no-cache (no-op re-apply)",
        RUNS,
        &home,
        &full,
        Some(&unchanged),
    )?);
    rows.push(runner.measure(
        "stigmer apply -f DIR (no-op, no file changed since the last apply)",
        RUNS,
        &home,
        &apply,
        Some(&unchanged),
    )?);

    // 1% changed: rewrite the files holding the changed resources, alternating between the
    // edited and the original text, so each run changes exactly 100 resources. The store
    // matches the files after each run.
    let updated = format!("0 created, {CHANGED} updated, 0 deleted, {} unchanged", TOTAL - CHANGED);
    let mut change_runs = Vec::new();
    for n in 0..RUNS {
        let revisions = if n.is_multiple_of(2) { Revisions::one_percent() } else { Revisions::none() };
        generate(&project, &revisions)?;
        change_runs.push(runner.run_checked(&home, &apply, Some(&updated))?);
    }
    rows.push(Row::new("stigmer apply -f DIR (1% changed)", &change_runs));

    let get_all = runner.measure("stigmer get -o json (all)", RUNS, &home, &["get", "-o", "json"], None)?;
    let get_all_bytes = fs::metadata(runner.logs.join("stdout.txt"))?.len();
    rows.push(get_all);
    let one = agent_name(1234);
    rows.push(runner.measure(
        "stigmer get agent NAME -o json",
        GET_ONE_RUNS,
        &home,
        &["get", "agent", &one, "-o", "json"],
        None,
    )?);

    // 3. In-process phases, to see where an apply's time goes.
    in_process_phases(&project, &homes, &home, &mut phases)?;

    // 4. Report.
    println!();
    println!("Whole processes (release binary, STIGMER_HOME on a temporary directory):");
    println!();
    println!("| measurement | runs | median | p90 | min – max | × parse-only | peak RSS (sampled) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| `{}` | {} | {} | {} | {} | {:.2}× | {} |",
            row.label,
            row.runs.len(),
            show(row.median),
            if row.runs.len() >= 10 { show(row.p90) } else { "—".to_owned() },
            spread(&row.runs),
            ratio(row.median, parse),
            row.hwm_kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", mib_kib(k)))
        );
    }
    println!();
    println!("`get -o json` of everything wrote {:.1} MiB.", mib(get_all_bytes));
    println!(
        "Peak RSS is the last VmHWM read from /proc/<pid>/status, polled every {} ms while the child \
         runs: a lower bound, exact unless the peak came in the last few ms.",
        SAMPLE_EVERY.as_millis()
    );
    println!();
    println!("In process (this bench; median of the runs):");
    println!();
    println!("| phase | runs | median | min – max | × parse-only |");
    println!("|---|---:|---:|---:|---:|");
    for phase in &phases {
        println!(
            "| {} | {} | {} | {} | {:.2}× |",
            phase.label,
            phase.times.len(),
            show(median(&phase.times)),
            spread(&phase.times),
            ratio(median(&phase.times), parse)
        );
    }
    println!();
    println!("Targets (issue 21; \"before\" is main at 1d786c6 on this machine, ratios to parse-only):");
    println!();
    println!("| measure, 10,000 resources | before | target | now | verdict |");
    println!("|---|---:|---:|---:|---|");
    let find = |prefix: &str| rows.iter().find(|r| r.label.starts_with(prefix));
    println!(
        "| parse-only throughput, one core | 11 MB/s | ≥ {TARGET_PARSE_MB_S:.0} MB/s | {one_core_mb_s:.1} MB/s | {} |",
        verdict(one_core_mb_s >= TARGET_PARSE_MB_S)
    );
    println!(
        "| the YAML parser's own events, one core | — | (the floor) | {events_mb_s:.1} MB/s ({:.0}% of it is stigmer's) | — |",
        100.0 * (1.0 - one_core_mb_s / events_mb_s)
    );
    println!(
        "| parse-only, all cores | 1 core | all cores | {:.1} MB/s ({:.2}× one core) | — |",
        mb_per_s(bytes, parse),
        mb_per_s(bytes, parse) / one_core_mb_s
    );
    let ratio_rows = [
        ("no-op re-apply / parse-only", "stigmer apply -f DIR --no-cache", 2.54, TARGET_NOOP),
        (
            "no-op re-apply, no file changed / parse-only",
            "stigmer apply -f DIR (no-op, no file",
            2.54,
            TARGET_CACHED_NOOP,
        ),
        ("first apply / parse-only", "stigmer apply -f DIR (first", 2.88, TARGET_FIRST_APPLY),
        ("validate / parse-only", "stigmer validate", 2.21, TARGET_VALIDATE),
    ];
    for (name, prefix, before, target) in ratio_rows {
        if let Some(row) = find(prefix) {
            let now = ratio(row.median, parse);
            println!(
                "| {name} | {before:.2}× | ≤ {target:.1}× | {now:.2}× ({}) | {} |",
                show(row.median),
                verdict(now <= target)
            );
        }
    }
    let applies = rows.iter().filter(|r| r.label.starts_with("stigmer apply") && !r.label.contains("1%"));
    if let Some((kib, label)) = applies.filter_map(|r| r.hwm_kib.map(|k| (k, r.label))).max() {
        println!(
            "| peak RSS, first or no-op apply | 319 MiB | ≤ {:.0} MiB | {:.1} MiB (`{label}`) | {} |",
            mib_kib(TARGET_RSS_KIB),
            mib_kib(kib),
            verdict(kib <= TARGET_RSS_KIB)
        );
    }
    println!("| 100,000 resources | | | `cargo bench --bench reconcile -- --scale 100000` | |");
    println!("| remote / local apply, server RSS | | | `cargo bench --bench remote` | |");
    println!("| watch: one file saved → committed | | | `cargo bench --bench watch` | |");
    println!();
    println!(
        "bench process VmHWM: {}",
        own_hwm().map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", mib_kib(k)))
    );
    println!("load average at the end: {}", load_average());
    println!("total bench time: {}", show(started.elapsed()));
    Ok(())
}

/// `--scale N`: the 10,000-resource project and one `scale` times larger, each applied once
/// into an empty store, then re-applied in full and with nothing changed; time and peak RSS
/// side by side.
fn scaled(runner: &Runner, scratch: &Path, scale: usize) -> BenchResult<()> {
    let mut figures = Vec::new();
    for factor in [1, scale] {
        let total = TOTAL * factor;
        let project = scratch.join(format!("project-{total}"));
        let bytes = support::corpus::generate_scaled(&project, &Revisions::none(), factor)?;
        let arg = project.display().to_string();
        let home = scratch.join("homes").join(format!("scaled-{total}"));
        let started = Instant::now();
        let set = load_project(&project);
        let parse = started.elapsed();
        if set.documents.len() != total {
            return Err("manifest::load lost documents".into());
        }
        drop(set);
        let created = format!("{total} created, 0 updated, 0 deleted, 0 unchanged");
        let unchanged = format!("0 created, 0 updated, 0 deleted, {total} unchanged");
        let first = runner.run_checked(&home, &["apply", "-f", &arg], Some(&created))?;
        let full = runner.run_checked(&home, &["apply", "-f", &arg, "--no-cache"], Some(&unchanged))?;
        let cached = runner.run_checked(&home, &["apply", "-f", &arg], Some(&unchanged))?;
        println!(
            "  {total} resources, {:.1} MiB: parse-only {}, first apply {} ({}), no-op {} ({}), no-op with no file changed {} ({})",
            mib(bytes),
            show(parse),
            show(first.elapsed),
            kib_text(first.hwm_kib),
            show(full.elapsed),
            kib_text(full.hwm_kib),
            show(cached.elapsed),
            kib_text(cached.hwm_kib)
        );
        figures.push((total, parse, first, full, cached));
    }
    let [(_, _, _, small, _), (total, parse, first, full, cached)] = figures.as_slice() else {
        return Err("two scales were measured".into());
    };
    println!();
    println!("| measure, {total} resources | before | target | now | verdict |");
    println!("|---|---:|---:|---:|---|");
    let times = ratio(full.elapsed, small.elapsed);
    println!(
        "| no-op apply time | 9.6 s | ≤ {TARGET_SCALED_TIME:.0}× the 10k figure | {} = {times:.1}× ({} at 10k) | {} |",
        show(full.elapsed),
        show(small.elapsed),
        verdict(times <= TARGET_SCALED_TIME)
    );
    let peak = [first.hwm_kib, full.hwm_kib, cached.hwm_kib].into_iter().flatten().max().unwrap_or_default();
    println!(
        "| peak RSS, first or no-op apply | 1.70 GB | ≤ 400 MB | {:.0} MB | {} |",
        mib_kib(peak) * 1.048_576,
        verdict(peak <= TARGET_SCALED_RSS_KIB)
    );
    println!(
        "| first apply / parse-only | | | {:.2}× ({}, parse-only {}) | |",
        ratio(first.elapsed, *parse),
        show(first.elapsed),
        show(*parse)
    );
    println!(
        "| no-op with no file changed | | | {} ({:.2}× parse-only) | |",
        show(cached.elapsed),
        ratio(cached.elapsed, *parse)
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn kib_text(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", mib_kib(k)))
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

/// Reads and parses every file of the project one after the other on this thread: the YAML
/// parser's own throughput here, with stigmer's span-carrying tree.
fn parse_on_one_core(project: &Path) -> Duration {
    let discovery = stigmer::manifest::discover(&[InputPath::Path(project.to_path_buf())]);
    let started = Instant::now();
    for entry in &discovery.entries {
        if let stigmer::manifest::Entry::Manifest(path) | stigmer::manifest::Entry::Project(path) = entry {
            drop(stigmer::manifest::read_manifest(path));
        }
    }
    started.elapsed()
}

/// Every manifest file of the project, read into memory (reading is not what the floor measures).
fn project_files(project: &Path) -> BenchResult<Vec<String>> {
    let discovery = stigmer::manifest::discover(&[InputPath::Path(project.to_path_buf())]);
    let mut files = Vec::new();
    for entry in &discovery.entries {
        if let stigmer::manifest::Entry::Manifest(path) | stigmer::manifest::Entry::Project(path) = entry {
            files.push(fs::read_to_string(path)?);
        }
    }
    Ok(files)
}

/// How far [`parser_floor`] goes past the YAML scanner.
#[derive(Clone, Copy)]
enum ParserFloor {
    /// The parser's event stream, nothing built.
    Events,
    /// serde-saphyr's deserializer, every value skipped.
    Ignored,
    /// serde-saphyr into plain JSON values (no positions).
    Json,
}

/// Parses every file on this thread with the YAML parser alone: what a one-core parse could
/// reach with this parser, without stigmer's span tree, budgets or document handling. Fails
/// unless every document was parsed, so a refusal cannot pass for speed.
fn parser_floor(files: &[String], depth: ParserFloor) -> BenchResult<Duration> {
    use serde_saphyr::granit_parser::{Event, Parser};
    let started = Instant::now();
    let mut documents = 0;
    for text in files {
        match depth {
            ParserFloor::Events => {
                let mut parser = Parser::new_from_str(text);
                while let Some(next) = parser.next_event() {
                    documents += usize::from(matches!(next?.0, Event::DocumentStart(..)));
                }
            }
            ParserFloor::Ignored => {
                for document in serde_saphyr::read::<_, serde::de::IgnoredAny>(&mut text.as_bytes()) {
                    document?;
                    documents += 1;
                }
            }
            ParserFloor::Json => {
                for document in serde_saphyr::read::<_, serde_json::Value>(&mut text.as_bytes()) {
                    document?;
                    documents += 1;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    // The project's documents and `stigmer.yaml`.
    if documents == TOTAL + 1 { Ok(elapsed) } else { Err(format!("the parser read {documents} documents").into()) }
}

// ---------------------------------------------------------------------------------------------
// The binary and child processes.

/// The `stigmer` binary of this build: cargo builds the package's binaries, in the bench's
/// profile, before it runs a bench, and says where (`CARGO_BIN_EXE_stigmer`). That is the
/// `stigmer` next to the bench's directory (`target/release/deps/..`) too.
fn stigmer_binary() -> BenchResult<PathBuf> {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    if built.is_file() {
        return Ok(built);
    }
    let beside = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("stigmer{}", std::env::consts::EXE_SUFFIX)));
    match beside {
        Some(path) if path.is_file() => Ok(path),
        _ => Err(format!(
            "the release stigmer binary is missing ({}); build it with `cargo build --release --bin stigmer`, \
             or run the bench with `cargo bench --bench reconcile`, which builds it",
            built.display()
        )
        .into()),
    }
}

struct Runner {
    bin: PathBuf,
    /// Where each child's stdout and stderr go (the last run's are kept).
    logs: PathBuf,
}

/// One child process.
#[derive(Debug, Clone)]
struct Run {
    elapsed: Duration,
    hwm_kib: Option<u64>,
}

impl Runner {
    /// Runs `stigmer ARGS` with `STIGMER_HOME=home`, stdout and stderr to files, timing it from
    /// spawn to exit while another thread samples its `VmHWM`.
    fn run(&self, home: &Path, args: &[&str]) -> BenchResult<(Run, bool)> {
        let stdout = fs::File::create(self.logs.join("stdout.txt"))?;
        let stderr = fs::File::create(self.logs.join("stderr.txt"))?;
        let started = Instant::now();
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("STIGMER_HOME", home)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()?;
        let pid = child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut last = None;
                while !stop.load(Ordering::Acquire) {
                    if let Some(kib) = read_hwm(&format!("/proc/{pid}/status")) {
                        last = Some(kib);
                    }
                    thread::sleep(SAMPLE_EVERY);
                }
                last
            })
        };
        let status = child.wait();
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Release);
        let hwm_kib = sampler.join().map_err(|_| "the RSS sampler panicked")?;
        Ok((Run { elapsed, hwm_kib }, status?.success()))
    }

    /// [`Runner::run`], failing unless the child succeeds and, when given, the last line of
    /// its stdout is `summary`.
    fn run_checked(&self, home: &Path, args: &[&str], summary: Option<&str>) -> BenchResult<Run> {
        let (run, ok) = self.run(home, args)?;
        let stdout = fs::read_to_string(self.logs.join("stdout.txt"))?;
        let last = stdout.lines().last().unwrap_or_default();
        if !ok || summary.is_some_and(|s| s != last) {
            let stderr = fs::read_to_string(self.logs.join("stderr.txt"))?;
            let tail: Vec<&str> = stderr.lines().take(40).collect();
            return Err(format!(
                "`stigmer {}` {}; expected {:?}, stdout ended with {last:?}; stderr:\n{}",
                args.join(" "),
                if ok { "succeeded" } else { "failed" },
                summary.unwrap_or("success"),
                tail.join("\n")
            )
            .into());
        }
        Ok(run)
    }

    fn measure(
        &self,
        label: &'static str,
        runs: usize,
        home: &Path,
        args: &[&str],
        summary: Option<&str>,
    ) -> BenchResult<Row> {
        let runs = repeat(runs, || self.run_checked(home, args, summary))?;
        Ok(Row::new(label, &runs))
    }
}

/// A line of the table.
struct Row {
    label: &'static str,
    runs: Vec<Duration>,
    median: Duration,
    p90: Duration,
    hwm_kib: Option<u64>,
}

impl Row {
    fn new(label: &'static str, runs: &[Run]) -> Self {
        let times: Vec<Duration> = runs.iter().map(|r| r.elapsed).collect();
        Self {
            label,
            median: median(&times),
            p90: percentile(&times, 90),
            hwm_kib: runs.iter().filter_map(|r| r.hwm_kib).max(),
            runs: times,
        }
    }
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB (`None` once the process is a zombie).
fn read_hwm(status: &str) -> Option<u64> {
    let text = fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn own_hwm() -> Option<u64> {
    read_hwm("/proc/self/status")
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "n/a".to_owned(), |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Runs `stigmer validate -f DIR -o json` once and fails unless every resource is valid, with
/// no warning either.
fn check_valid(runner: &Runner, home: &Path, project: &str) -> BenchResult<()> {
    let (_, ok) = runner.run(home, &["validate", "-f", project, "-o", "json"])?;
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(runner.logs.join("stdout.txt"))?)?;
    let count = |key: &str| report.get(key).and_then(serde_json::Value::as_u64);
    let resources = report.get("resources").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
    if !ok || count("errors") != Some(0) || count("warnings") != Some(0) || resources != TOTAL {
        let diagnostics = report.get("diagnostics").map(ToString::to_string).unwrap_or_default();
        let head: String = diagnostics.chars().take(4000).collect();
        return Err(format!(
            "the generated project does not validate cleanly: {resources} resources, errors {:?}, warnings {:?}: {head}",
            count("errors"),
            count("warnings")
        )
        .into());
    }
    println!("  stigmer validate: {resources} resources, 0 errors, 0 warnings");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In-process phases.

fn load_project(project: &Path) -> ManifestSet {
    load(&[InputPath::Path(project.to_path_buf())], &mut std::io::empty())
}

fn in_process_phases(project: &Path, homes: &Path, applied: &Path, phases: &mut Vec<Phase>) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = load_project(project);
    let options = PlanOptions { apply_set: Some(APPLY_SET.to_owned()), ..PlanOptions::default() };

    let validation = timed(&mut *phases, "validate::validate (no backend)", || validate(&set, &NoResources));
    if validation.has_errors() || validation.resources.len() != TOTAL {
        return Err("in-process validation disagrees with `stigmer validate`".into());
    }
    // Validation computes each resource's canonical form; time that part on its own.
    timed(&mut *phases, "Canonical::of × 10,000 (canonical manifest + hash)", || {
        validation.resources.iter().map(|r| Canonical::of(&r.resource)).collect::<Vec<_>>()
    });
    let desired: Vec<Desired> = validation
        .resources
        .iter()
        .map(|r| Desired { resource: r.resource.clone(), canonical: r.canonical.clone() })
        .collect();
    let first_plan = timed(&mut *phases, "reconcile::plan vs an empty store", || plan(&desired, &[], &options))?;

    let backend = LocalBackend::new(applied.join("local.db"), "bench");
    let observed = timed(&mut *phases, "LocalBackend::list (open store, read 10,000)", || {
        runtime.block_on(backend.list(&ResourceQuery::all()))
    })?;
    let heads = timed(&mut *phases, "LocalBackend::heads (open store, read 10,000 without manifests)", || {
        runtime.block_on(backend.heads())
    })?;
    let noop =
        timed(&mut *phases, "reconcile::plan vs the applied store (no-op)", || plan(&desired, &observed, &options))?;
    if noop.has_changes() {
        return Err("the in-process no-op plan has changes".into());
    }
    let prepared =
        timed(&mut *phases, "reconcile::prepare, whole (heads + validate + canonical + plan), no-op", || {
            runtime.block_on(reconcile::prepare(&backend, &set, check_documents(&set), &options))
        })?;
    if prepared.plan.is_none_or(|p| p.has_changes()) {
        return Err("the in-process no-op prepare has changes".into());
    }

    // Where validation's time goes: each kind's documents on their own, references resolved
    // against the applied store.
    for (kind, label) in [
        ("Environment", "validate::validate, only the 1,000 Environments"),
        ("Skill", "validate::validate, only the 2,000 Skills"),
        ("McpServer", "validate::validate, only the 1,000 McpServers"),
        ("Agent", "validate::validate, only the 2,500 Agents"),
        ("AgentInstance", "validate::validate, only the 1,500 AgentInstances"),
        ("Workflow", "validate::validate, only the 1,500 Workflows"),
        ("WorkflowInstance", "validate::validate, only the 500 WorkflowInstances"),
    ] {
        let subset = only_kind(&set, kind);
        let validation = timed(&mut *phases, label, || validate(&subset, &Observed::local(&heads)));
        if validation.has_errors() {
            return Err(format!("in-process validation of the {kind}s alone failed").into());
        }
    }

    // Writing the first apply's batch (10,000 creates, one commit) into fresh stores.
    let mut writes = Vec::new();
    for n in 0..RUNS {
        let fresh = LocalBackend::new(homes.join(format!("in-process-{n}")).join("local.db"), "bench");
        let started = Instant::now();
        let receipt = runtime.block_on(reconcile::apply(&fresh, &first_plan, false))?;
        writes.push(started.elapsed());
        if !receipt.committed || receipt.written.len() != TOTAL {
            return Err("the in-process first apply did not write every resource".into());
        }
    }
    phases.push(Phase { label: "reconcile::apply of the first plan (10,000 creates, one commit)", times: writes });
    Ok(())
}

/// An in-process measurement.
struct Phase {
    label: &'static str,
    times: Vec<Duration>,
}

/// Runs `f` once, and [`RUNS`] times in all when that was quick; records the median under
/// `label` and returns the last result.
fn timed<T>(phases: &mut Vec<Phase>, label: &'static str, mut f: impl FnMut() -> T) -> T {
    let mut started = Instant::now();
    let mut value = f();
    let mut times = vec![started.elapsed()];
    while times.len() < RUNS && times[0] < REPEAT_PHASE_BELOW {
        drop(value);
        started = Instant::now();
        value = f();
        times.push(started.elapsed());
    }
    phases.push(Phase { label, times });
    value
}

/// The documents of one kind, as a set of their own (same sources).
fn only_kind(set: &ManifestSet, kind: &str) -> ManifestSet {
    let documents = set
        .documents
        .iter()
        .filter(|d| set.tree(d).to_json().get("kind").and_then(serde_json::Value::as_str) == Some(kind))
        .cloned()
        .collect();
    let mut subset = set.clone();
    subset.documents = documents;
    subset.diagnostics.clear();
    subset
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

fn repeat<T>(runs: usize, mut f: impl FnMut() -> BenchResult<T>) -> BenchResult<Vec<T>> {
    (0..runs).map(|_| f()).collect()
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

/// Nearest-rank percentile.
fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

/// `1.2 s – 1.4 s`, or `—` for a single run.
fn spread(times: &[Duration]) -> String {
    match (times.iter().min(), times.iter().max()) {
        (Some(min), Some(max)) if times.len() > 1 => format!("{} – {}", show(*min), show(*max)),
        _ => "—".to_owned(),
    }
}

fn ratio(time: Duration, base: Duration) -> f64 {
    time.as_secs_f64() / base.as_secs_f64()
}

fn show(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn mib_kib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
