//! The vocabulary of executions and the execution service: an execution's record and status,
//! the queue it waits in, the lease a worker holds it by, and the feed that follows it.
//!
//! The life of an execution: created `pending` in a queue; claimed by a worker, which makes it
//! `running` under a lease (a holder, an epoch, an expiry); the worker renews the lease while
//! it runs and appends the history under the lease's epoch; it ends `completed`, `faulted` or
//! `cancelled`. A lease that expires makes the execution claimable again, with a higher epoch:
//! the next worker resumes from the history, and the old worker's appends are refused.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Backend, BackendError};
use crate::model::{AnyResource, EnvironmentSpec, Kind, dsl};
use crate::secrets::SecretValue;

/// The queue an execution waits in when nothing names another.
pub const DEFAULT_QUEUE: &str = "default";

/// How long a claim holds an execution unless its worker renews it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Queued: waiting for a worker to claim it.
    Pending,
    /// Claimed and running (or its worker died and the lease has yet to expire).
    Running,
    /// Running, and blocked in a `listen` until an event comes; its worker still holds it.
    Waiting,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Faulted,
    /// Stopped on request.
    Cancelled,
}

impl ExecutionStatus {
    /// `pending`, `running`, `waiting`, `completed`, `faulted`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Completed => "completed",
            Self::Faulted => "faulted",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the execution is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Faulted | Self::Cancelled)
    }
}

impl std::str::FromStr for ExecutionStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "pending" | "queued" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "waiting" => Ok(Self::Waiting),
            "completed" | "succeeded" => Ok(Self::Completed),
            "faulted" | "failed" => Ok(Self::Faulted),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            other => Err(format!(
                "unknown status {other:?}; statuses are pending, running, waiting, completed (succeeded), faulted \
                 (failed), cancelled"
            )),
        }
    }
}

/// The claim a worker holds an execution by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The worker holding it.
    pub worker: String,
    /// The token the worker claimed it with (`server` for the server's own workers): only that
    /// token may read the execution's secrets.
    pub token: String,
    /// Grows by one with every claim; appends under an older epoch are refused.
    pub epoch: u64,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// One run of a workflow or an agent, as the backend records it. Inputs, outputs and errors are
/// stored as the runner hands them over: already redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// A random id.
    pub id: String,
    /// What ran: `workflow/ticket-triage`, or `file:flow.yaml` for a document run from a file.
    pub target: String,
    /// How it stands.
    pub status: ExecutionStatus,
    /// When it was created.
    pub started_at: Timestamp,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Who started it.
    pub actor: String,
    /// The input it was given.
    pub input: serde_json::Value,
    /// Its output, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Its error, once faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// What ran and with which variable declarations, so a resumed run runs the same
    /// definition: `{"workflow": <Serverless Workflow document>, "envSpec": …, "workflows": …,
    /// "env": [[KEY, VALUE], …]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    /// The queue it waits in.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The lease of the worker running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// How many times it was claimed; the epoch of the current lease.
    #[serde(default)]
    pub attempts: u64,
}

fn default_queue() -> String {
    DEFAULT_QUEUE.to_owned()
}

impl ExecutionRecord {
    /// A new execution, pending in `queue` (or, with `Running`, already run by its creator).
    pub fn new(id: String, target: String, actor: String, input: serde_json::Value, status: ExecutionStatus) -> Self {
        Self {
            id,
            target,
            status,
            started_at: Timestamp::now(),
            finished_at: None,
            actor,
            input,
            output: None,
            error: None,
            definition: None,
            queue: default_queue(),
            lease: None,
            attempts: 0,
        }
    }
}

/// Which executions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionQuery {
    /// Only those of this target (`workflow/ticket-triage`).
    pub target: Option<String>,
    /// Only those whose target starts with one of these (`agent/`); any target when empty.
    pub target_prefixes: Vec<String>,
    /// Only those whose target holds this text, in any case (`triage`).
    pub target_contains: Option<String>,
    /// Only those with this status.
    pub status: Option<ExecutionStatus>,
    /// Only those started at or after this time.
    pub since: Option<Timestamp>,
    /// One page of them, newest first, instead of all of them oldest first.
    pub page: Option<ExecutionPage>,
    /// With each one's definition, which a list leaves out otherwise (for the few callers that
    /// look into what the executions run, in one read rather than one per execution).
    pub definitions: bool,
}

/// A page of a list of executions, newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionPage {
    /// How many of the newest to pass over.
    pub skip: usize,
    /// How many to list, at most.
    pub take: usize,
}

impl ExecutionQuery {
    /// Whether it leaves any execution out: whether any filter is set (what it asks of each one
    /// it keeps, a page or their definitions, aside).
    pub fn narrows(&self) -> bool {
        *self != Self { page: self.page, definitions: self.definitions, ..Self::default() }
    }

    /// Whether an execution of `target`, standing at `status`, started at `started_at` is one
    /// the query asks for.
    pub fn admits(&self, target: &str, status: ExecutionStatus, started_at: Timestamp) -> bool {
        self.target.as_deref().is_none_or(|t| t == target)
            && (self.target_prefixes.is_empty() || self.target_prefixes.iter().any(|p| target.starts_with(p.as_str())))
            && self.target_contains.as_deref().is_none_or(|part| target.to_lowercase().contains(&part.to_lowercase()))
            && self.status.is_none_or(|s| s == status)
            && self.since.is_none_or(|since| started_at >= since)
    }
}

/// How many executions stand at each status (a status none stands at is left out).
pub type ExecutionCounts = std::collections::BTreeMap<ExecutionStatus, u64>;

/// A worker, as it says who it is when it claims work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Unique per worker process: `HOST-PID` (and a number for the server's own workers).
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// Its stigmer version.
    pub version: String,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// How many executions it may run at once.
    pub concurrency: u32,
    /// How many it runs now.
    pub running: u32,
    /// When the backend last heard from it (set by the backend).
    #[serde(default = "epoch")]
    pub last_seen: Timestamp,
}

fn epoch() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

/// A worker asking for the next execution.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Who asks.
    pub worker: WorkerInfo,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
    /// How long to wait for work when there is none (0: answer at once).
    pub wait: Duration,
    /// This execution and no other (`execution resume`, and a CLI running its own): claimable
    /// when pending, or running without a live lease.
    pub id: Option<String>,
    /// With `id`: the worker known to be gone (a CLI process that died), whose live lease this
    /// claim may take over at once instead of waiting for it to lapse.
    pub take_over: Option<String>,
}

/// An execution a worker now holds.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Its record, with the new lease.
    pub record: ExecutionRecord,
    /// The secret values given for this run only (`--secret`), opened for the holder.
    pub secrets: Vec<(String, SecretValue)>,
}

impl Claim {
    /// The epoch every append and the finish must carry.
    pub fn epoch(&self) -> u64 {
        self.record.lease.as_ref().map_or(0, |lease| lease.epoch)
    }
}

/// What changed in a followed execution: its events since the last update, and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedUpdate {
    /// New events, with their sequence numbers.
    pub events: Vec<(u64, serde_json::Value)>,
    /// The record as it stands now.
    pub record: ExecutionRecord,
}

/// An execution followed as it runs: updates until it is over and its last events were sent.
pub type ExecutionFeed = Pin<Box<dyn Stream<Item = Result<FeedUpdate, BackendError>> + Send>>;

/// What a workflow execution records as its definition, so any worker can run it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// The Serverless Workflow document.
    pub workflow: dsl::Workflow,
    /// Its variable declarations.
    #[serde(default)]
    pub env_spec: Option<EnvironmentSpec>,
    /// The stored workflows its `run: workflow` tasks may run, by name.
    #[serde(default)]
    pub workflows: std::collections::BTreeMap<String, dsl::Workflow>,
    /// `--env` values given when it was started.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

impl Definition {
    /// A stored Workflow's definition: its document, its `envSpec`, and every stored Workflow
    /// its `run: workflow` tasks name, directly or through each other (a name that is not stored
    /// is left out: the task that names it fails with a clear error if it runs). `None` when
    /// the workflow is not stored.
    ///
    /// # Errors
    /// The backend cannot be read, or the stored resource does not read as a Workflow.
    pub async fn of_stored<B: Backend>(backend: &B, name: &str) -> Result<Option<Self>, BackendError> {
        let Some((workflow, env_spec)) = stored_workflow(backend, name).await? else { return Ok(None) };
        Self::with_subflows(backend, workflow, env_spec).await.map(Some)
    }

    /// The definition of `workflow`, with the stored Workflows its `run: workflow` tasks name.
    ///
    /// # Errors
    /// The backend cannot be read.
    pub async fn with_subflows<B: Backend>(
        backend: &B,
        workflow: dsl::Workflow,
        env_spec: Option<EnvironmentSpec>,
    ) -> Result<Self, BackendError> {
        let mut workflows = std::collections::BTreeMap::new();
        let mut wanted = named_subflows(&workflow);
        while let Some(name) = wanted.pop() {
            if workflows.contains_key(&name) {
                continue;
            }
            if let Some((subflow, _)) = stored_workflow(backend, &name).await? {
                wanted.extend(named_subflows(&subflow));
                workflows.insert(name, subflow);
            }
        }
        Ok(Self { workflow, env_spec, workflows, env: Vec::new() })
    }
}

/// A stored Workflow as a DSL document, with its `envSpec`.
async fn stored_workflow<B: Backend>(
    backend: &B,
    name: &str,
) -> Result<Option<(dsl::Workflow, Option<EnvironmentSpec>)>, BackendError> {
    let Some(stored) = backend.get(Kind::Workflow, name).await? else { return Ok(None) };
    match AnyResource::from_value(Kind::Workflow, Arc::unwrap_or_clone(stored.manifest)) {
        Ok(AnyResource::Workflow(resource)) => {
            Ok(Some((resource.spec.to_dsl(resource.name(), None), resource.spec.env_spec.clone())))
        }
        Ok(_) | Err(_) => Err(BackendError::Storage(format!("the stored workflow/{name} does not read as a Workflow"))),
    }
}

/// The workflows `run: workflow` tasks name.
fn named_subflows(workflow: &dsl::Workflow) -> Vec<String> {
    let mut names = Vec::new();
    workflow.do_.walk("", &mut |visit| {
        if let dsl::Task::Run(task) = visit.task
            && let dsl::Process::Workflow(config) = &task.run.process
        {
            names.push(config.name.clone());
        }
    });
    names
}

/// Why an execution could not be cancelled or sent an event.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// It is over already.
    #[error("execution {id} is already {status}")]
    Over {
        /// The execution.
        id: String,
        /// How it ended.
        status: &'static str,
    },
    /// The backend failed, or has no such execution.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The execution `id`, which must exist and not be over yet.
async fn live<B: Backend>(backend: &B, id: &str) -> Result<ExecutionRecord, ControlError> {
    let record = backend
        .execution_get(id)
        .await?
        .ok_or_else(|| BackendError::NotFound { address: format!("execution/{id}") })?;
    if record.status.is_final() {
        return Err(ControlError::Over { id: id.to_owned(), status: record.status.as_str() });
    }
    Ok(record)
}

/// Cancels execution `id`: its record says so at once (releasing its lease), and the worker
/// running it stops within a second.
///
/// # Errors
/// It does not exist, is over already, or the backend failed.
pub async fn cancel<B: Backend>(backend: &B, id: &str) -> Result<(), ControlError> {
    live(backend, id).await?;
    backend.execution_finish(id, None, ExecutionStatus::Cancelled, None, None, Vec::new()).await?;
    Ok(())
}

/// Hands CloudEvent `event` to execution `id`, as a `signal` in its history: the worker running
/// it passes it to the run's `listen` at once, and a resumed run gets it again.
///
/// # Errors
/// It does not exist, is over already, or the backend failed.
pub async fn signal<B: Backend>(backend: &B, id: &str, event: &serde_json::Value) -> Result<(), ControlError> {
    live(backend, id).await?;
    let signal = serde_json::json!({ "at": Timestamp::now(), "event": "signal", "cloudEvent": event });
    let raw = serde_json::value::to_raw_value(&signal)
        .map_err(|e| BackendError::Storage(format!("cannot encode the event: {e}")))?;
    backend.execution_append(id, None, vec![raw]).await?;
    Ok(())
}
