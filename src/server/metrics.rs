//! What `GET /metrics` reports, in the Prometheus text format: call latencies and claim
//! latencies counted as they happen, and per org what the stores hold at the scrape (executions
//! by status, queue depth, lapsed leases, workers). Names start with `stigmer_`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use super::ServerBackend;
use crate::backend::{Backend, BackendError, ExecutionQuery, ExecutionRecord, ExecutionStatus};

/// The upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram.
#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The counters kept as things happen.
#[derive(Debug, Default)]
pub struct Metrics {
    rpc: Mutex<BTreeMap<&'static str, Histogram>>,
    claims: Mutex<Histogram>,
}

impl Metrics {
    /// One call served, by method.
    pub fn rpc(&self, method: &'static str, took: Duration) {
        if let Ok(mut rpc) = self.rpc.lock() {
            rpc.entry(method).or_default().observe(took.as_secs_f64());
        }
    }

    /// One execution claimed: how long it waited in its queue (creation to claim; a resumed one
    /// counts from its creation too, so lapsed leases show as long waits).
    pub fn claimed(&self, record: &ExecutionRecord) {
        let waited = jiff::Timestamp::now().duration_since(record.started_at).as_secs_f64().max(0.0);
        if let Ok(mut claims) = self.claims.lock() {
            claims.observe(waited);
        }
    }

    /// The text of a scrape: the counters, then what each org's store holds.
    ///
    /// # Errors
    /// A store that cannot be read.
    pub async fn render(&self, orgs: &[(String, ServerBackend)]) -> Result<String, BackendError> {
        let mut out = String::new();
        out.push_str("# HELP stigmer_rpc_duration_seconds How long the server took to answer a call, by method.\n");
        out.push_str("# TYPE stigmer_rpc_duration_seconds histogram\n");
        if let Ok(rpc) = self.rpc.lock() {
            for (method, histogram) in rpc.iter() {
                histogram.write(&mut out, "stigmer_rpc_duration_seconds", &format!("method=\"{}\"", escape(method)));
            }
        }
        out.push_str("# HELP stigmer_claim_latency_seconds How long executions waited from creation to their claim.\n");
        out.push_str("# TYPE stigmer_claim_latency_seconds histogram\n");
        if let Ok(claims) = self.claims.lock() {
            claims.write(&mut out, "stigmer_claim_latency_seconds", "");
        }
        let mut executions = String::new();
        let mut depth = String::new();
        let mut lapsed = String::new();
        let mut workers = String::new();
        let now = jiff::Timestamp::now();
        for (org, backend) in orgs {
            let org = escape(org);
            let records = backend.execution_list(&ExecutionQuery::default()).await?;
            let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
            let mut queues: BTreeMap<&str, u64> = BTreeMap::new();
            let mut expired = 0;
            for record in &records {
                *by_status.entry(record.status.as_str()).or_default() += 1;
                if record.status == ExecutionStatus::Pending {
                    *queues.entry(record.queue.as_str()).or_default() += 1;
                }
                if matches!(record.status, ExecutionStatus::Running | ExecutionStatus::Waiting)
                    && record.lease.as_ref().is_some_and(|l| l.expires_at <= now)
                {
                    expired += 1;
                }
            }
            for (status, count) in by_status {
                let _ = writeln!(executions, "stigmer_executions{{org=\"{org}\",status=\"{status}\"}} {count}");
            }
            for (queue, count) in queues {
                let _ = writeln!(depth, "stigmer_queue_depth{{org=\"{org}\",queue=\"{}\"}} {count}", escape(queue));
            }
            let _ = writeln!(lapsed, "stigmer_leases_lapsed{{org=\"{org}\"}} {expired}");
            let alive =
                backend.worker_list().await?.iter().filter(|w| now.duration_since(w.last_seen).as_secs() < 60).count();
            let _ = writeln!(workers, "stigmer_workers{{org=\"{org}\"}} {alive}");
        }
        for (name, help, body) in [
            (
                "stigmer_executions",
                "Executions by status: started ones are pending or running, finished ones by outcome.",
                executions,
            ),
            ("stigmer_queue_depth", "Pending executions, by queue.", depth),
            (
                "stigmer_leases_lapsed",
                "Running executions whose lease lapsed and that no worker has claimed again yet.",
                lapsed,
            ),
            ("stigmer_workers", "Workers heard from in the last minute.", workers),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            out.push_str(&body);
        }
        Ok(out)
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
