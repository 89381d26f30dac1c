//! `cargo bench --bench watch`: how fast `stigmer apply --watch` follows one saved file in a tree
//! of 10,000 resources, whether it re-reads only that file, and whether it stays idle when
//! nothing changes. Results go in BENCHMARKS.md.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use support::corpus::{BenchResult, Revisions, TOTAL, generate};

/// Saves measured, one file each.
const SAVES: usize = 10;
/// How long the idle check watches the process.
const IDLE: Duration = Duration::from_secs(5);
/// Target from the issue: from writing a file to the change committed, debounce included.
const LATENCY_TARGET: Duration = Duration::from_millis(150);

fn main() -> BenchResult<()> {
    let stigmer = PathBuf::from(env!("CARGO_BIN_EXE_stigmer"));
    let scratch = tempfile::tempdir()?;
    let project = scratch.path().join("project");
    let home = scratch.path().join("home");
    generate(&project, &Revisions::none())?;
    let status = Command::new(&stigmer)
        .env("STIGMER_HOME", &home)
        .args(["apply", "-f"])
        .arg(&project)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("the initial apply failed".into());
    }

    let mut child = Command::new(&stigmer)
        .env("STIGMER_HOME", &home)
        .env("NO_COLOR", "1")
        .args(["apply", "--watch", "-f"])
        .arg(&project)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let lines = read_lines(&mut child)?;
    let started = Instant::now();
    let first = lines.recv_timeout(Duration::from_mins(2))?;
    println!("watch start-up (load, check and plan {TOTAL} resources): {:.2?} — {first}", started.elapsed());

    let mut latencies = Vec::new();
    let mut files_read = Vec::new();
    for save in 0..SAVES {
        let file = project.join("agents").join(format!("agents-{save:02}.yaml"));
        let text = fs::read_to_string(&file)?;
        let edited = text.replacen("instructions: |", &format!("instructions: |\n    Save {save}."), 1);
        let written = Instant::now();
        fs::write(&file, edited)?;
        let line = lines.recv_timeout(Duration::from_secs(30))?;
        latencies.push(written.elapsed());
        files_read.push(line.rsplit('(').next().unwrap_or_default().trim_end_matches(')').to_owned());
        std::thread::sleep(Duration::from_millis(200));
    }

    let before = cpu_ticks(child.id())?;
    std::thread::sleep(IDLE);
    let idle_ticks = cpu_ticks(child.id())? - before;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait()?;

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    println!();
    println!("| measurement | value |");
    println!("|---|---|");
    println!("| saves measured | {SAVES} (one agent's instructions in one file of 100 documents) |");
    println!("| write → committed, median | {median:.1?} |");
    println!("| write → committed, worst | {worst:.1?} |");
    println!("| files read per reconcile | {} |", files_read.join("; "));
    println!("| CPU while idle for {IDLE:?} | {idle_ticks} clock ticks (≈ {} ms) |", idle_ticks * 10);
    println!("| exit on SIGTERM | {exit} |");
    println!();
    let verdict = if median <= LATENCY_TARGET {
        "met".to_owned()
    } else {
        format!("missed by {:.0?}", median.saturating_sub(LATENCY_TARGET))
    };
    println!("target: write → committed ≤ {LATENCY_TARGET:?} (median): {verdict}");
    Ok(())
}

/// Forwards the child's stdout lines to a channel.
fn read_lines(child: &mut Child) -> BenchResult<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

/// User + system CPU time of a process, in clock ticks (usually 10 ms), from /proc.
fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("bad /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15 (1-based overall).
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}
