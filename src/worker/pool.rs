//! A pool of execution slots that claims work from a source and runs it: `stigmer worker`
//! against a server, and the server's own workers (`stigmer server --workers N`) against every
//! org it holds. It reports what it does through a callback and prints nothing.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::backend::{Backend, BackendError, Claim, ClaimRequest, ExecutionStatus, WorkerInfo};
use crate::server::{ServerBackend, Service};

/// How a pool works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Its id, unique per process.
    pub id: String,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// How many executions it runs at once.
    pub concurrency: u32,
    /// How long its leases last; renewed every third of it.
    pub lease: Duration,
    /// How long one claim waits for work.
    pub wait: Duration,
    /// Where `call: agent` tasks get their workspaces.
    pub workspaces: PathBuf,
    /// What each model costs, for agents' `maxCost`.
    pub prices: crate::runner::agent::usage::Prices,
}

impl WorkerConfig {
    fn info(&self, running: u32) -> WorkerInfo {
        WorkerInfo {
            id: self.id.clone(),
            host: host(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            queues: self.queues.clone(),
            concurrency: self.concurrency,
            running,
            last_seen: jiff::Timestamp::UNIX_EPOCH,
        }
    }
}

/// This machine's name, for worker ids and `worker list`.
#[must_use]
pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Where a pool claims work.
pub trait Source: Send + Sync + 'static {
    /// The backend a claimed execution is run against.
    type Backend: Backend + Clone + Send + Sync + 'static;

    /// The next execution, waiting up to `request.wait`; `None` when none came.
    fn claim(
        &self,
        request: ClaimRequest,
    ) -> impl Future<Output = Result<Option<(Self::Backend, Claim)>, BackendError>> + Send;

    /// Says the worker is alive.
    fn heartbeat(&self, worker: WorkerInfo) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// One backend: a server a remote worker serves.
pub struct One<B>(pub B);

impl<B: Backend + Clone + Send + Sync + 'static> Source for One<B> {
    type Backend = B;

    async fn claim(&self, request: ClaimRequest) -> Result<Option<(B, Claim)>, BackendError> {
        Ok(self.0.execution_claim(request).await?.map(|claim| (self.0.clone(), claim)))
    }

    async fn heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        self.0.worker_heartbeat(worker).await
    }
}

/// Every org a server holds: its own workers.
pub struct Orgs(pub Arc<Service>);

impl Source for Orgs {
    type Backend = ServerBackend;

    async fn claim(&self, request: ClaimRequest) -> Result<Option<(ServerBackend, Claim)>, BackendError> {
        let deadline = tokio::time::Instant::now() + request.wait;
        let mut changes = self.0.changes().subscribe();
        loop {
            changes.borrow_and_update();
            for (_, backend) in self.0.org_backends().await? {
                let now = ClaimRequest { wait: Duration::ZERO, ..request.clone() };
                if let Some(claim) = backend.execution_claim(now).await? {
                    self.0.metrics().claimed(&claim.record);
                    return Ok(Some((backend, claim)));
                }
            }
            // Lapsed leases are found by time, not by a change: look again within a second.
            let until = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            if tokio::time::timeout_at(until, changes.changed()).await.is_err() && until >= deadline {
                return Ok(None);
            }
        }
    }

    async fn heartbeat(&self, worker: WorkerInfo) -> Result<(), BackendError> {
        for (_, backend) in self.0.org_backends().await? {
            backend.worker_heartbeat(worker.clone()).await?;
        }
        Ok(())
    }
}

/// What a pool tells its caller, to log.
#[derive(Debug)]
pub enum Report {
    /// It claimed an execution (`attempt` 1 for a first run, more for a resumed one).
    Claimed {
        /// The execution.
        id: String,
        /// Which claim of it this is.
        attempt: u64,
    },
    /// An execution it ran ended.
    Finished {
        /// The execution.
        id: String,
        /// How.
        status: &'static str,
    },
    /// It stopped an execution whose lease it lost.
    LeaseLost {
        /// The execution.
        id: String,
        /// Why.
        reason: String,
    },
    /// Something failed that the pool carries on after (a claim, a record).
    Trouble(String),
}

/// How long in-flight executions may finish once the pool is told to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the pool until `shutdown` completes (then lets running executions finish for up to
/// [`SHUTDOWN_GRACE`]; any still running are left to their leases, and another worker resumes
/// them), or until the source refuses the worker for good.
///
/// # Errors
/// The source refused the worker: its token is unknown, revoked or of the wrong role, or it
/// speaks another protocol. The pool stops claiming.
pub async fn serve<S: Source>(
    source: Arc<S>,
    config: WorkerConfig,
    report: Arc<dyn Fn(Report) + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BackendError> {
    let slots = Arc::new(Semaphore::new(usize::try_from(config.concurrency.max(1)).unwrap_or(1)));
    let running = Arc::new(AtomicU32::new(0));
    let heartbeat = {
        let (source, config, running, report) = (source.clone(), config.clone(), running.clone(), report.clone());
        tokio::spawn(async move {
            loop {
                if let Err(error) = source.heartbeat(config.info(running.load(Ordering::Relaxed))).await {
                    report(Report::Trouble(format!("heartbeat failed: {error}")));
                }
                tokio::time::sleep(config.lease / 3).await;
            }
        })
    };
    let claiming = async {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { return Ok(()) };
            let request = ClaimRequest {
                worker: config.info(running.load(Ordering::Relaxed)),
                lease: config.lease,
                wait: config.wait,
                id: None,
                take_over: None,
            };
            let (backend, claim) = match source.claim(request).await {
                Ok(Some(claimed)) => claimed,
                Ok(None) => continue,
                Err(
                    error @ (BackendError::Unauthenticated(_)
                    | BackendError::PermissionDenied(_)
                    | BackendError::Incompatible(_)),
                ) => return Err(error),
                Err(error) => {
                    report(Report::Trouble(format!("claiming failed: {error}")));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            report(Report::Claimed { id: claim.record.id.clone(), attempt: claim.record.attempts });
            running.fetch_add(1, Ordering::Relaxed);
            let (running, report, config) = (running.clone(), report.clone(), config.clone());
            tokio::spawn(async move {
                execute(&backend, claim, &config, report.as_ref()).await;
                running.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            });
        }
    };
    let result = tokio::select! {
        result = claiming => result,
        () = shutdown => Ok(()),
    };
    heartbeat.abort();
    let all = config.concurrency.max(1);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    result
}

/// Runs one claimed execution, a workflow or an agent, and reports how it ended.
async fn execute<B: Backend + Clone + 'static>(
    backend: &B,
    claim: Claim,
    config: &WorkerConfig,
    report: &(dyn Fn(Report) + Send + Sync),
) {
    let id = claim.record.id.clone();
    let extra = crate::runner::environment::Overrides::default();
    let ran = if super::agent::is_agent(&claim.record.target) {
        match super::agent::prepare(backend, claim.clone(), extra, config.lease, &config.workspaces).await {
            Ok(prepared) => {
                let outcome =
                    Box::pin(super::agent::run(backend, prepared, &config.prices, &mut (), std::future::pending()))
                        .await;
                Ok((outcome.ended.status(), outcome.ended.lost().map(str::to_owned), outcome.recorded))
            }
            Err(why) => Err(why),
        }
    } else {
        match super::prepare(backend, claim.clone(), extra, config.lease, config.workspaces.clone()).await {
            Ok(prepared) => {
                let outcome = Box::pin(super::run(backend, prepared, &mut (), std::future::pending())).await;
                Ok((outcome.ended.status(), outcome.ended.lost().map(str::to_owned), outcome.recorded))
            }
            Err(why) => Err(why),
        }
    };
    let (status, lost, recorded) = match ran {
        Ok(ran) => ran,
        Err(why) => {
            if let Err(error) = super::fault(backend, &claim, &why).await {
                report(Report::Trouble(format!(
                    "execution {id} cannot run ({why}) nor be recorded as faulted: {error}"
                )));
            } else {
                report(Report::Finished { id, status: ExecutionStatus::Faulted.as_str() });
            }
            return;
        }
    };
    if let Err(error) = &recorded {
        report(Report::Trouble(format!("execution {id}: its history is incomplete: {error}")));
    }
    report(match lost {
        Some(reason) => Report::LeaseLost { id, reason },
        None => Report::Finished { id, status: status.as_str() },
    });
}
