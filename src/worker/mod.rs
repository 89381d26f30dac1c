//! The worker: the small piece that joins the runners to a backend's execution service. It
//! claims an execution, reads its history, runs the workflow with the interpreter (completed
//! tasks replayed from the history, not run again) or the agent with its tool loop
//! ([`agent`]), appends every transition under its lease's epoch, renews the lease while it
//! runs, and stops at once when the execution is cancelled or the lease is lost. The runners
//! know nothing of queues or leases; the backend knows nothing of runners.
//!
//! Guarantees, with the store's fencing:
//! - at-least-once per task: a task in flight when its worker died runs again on the next one;
//!   a task whose completion is in the history never runs again;
//! - one writer per execution: appends and the finish carry the lease epoch, and a worker whose
//!   lease was taken over is refused, stops, and writes nothing more.

pub mod agent;
pub mod health;
pub mod pool;
pub mod replay;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;

use crate::backend::{Backend, BackendError, Claim, Definition, ExecutionStatus};
use crate::model::dsl;
use crate::runner::agent::launch::WorkflowAgents;
use crate::runner::environment::{self, Overrides, ResolveError};
use crate::runner::workflow::record;
use crate::runner::workflow::{self as interpreter, EventBus, Observer, RunOptions, TaskEvent, WorkflowError};
use crate::secrets::Redactor;

pub use replay::{Replay, replay};

/// Why a claimed execution cannot run at all; it is recorded as faulted.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The record holds no workflow definition this worker can run.
    #[error("execution {id} records no workflow this worker can run: {detail}")]
    Definition {
        /// The execution.
        id: String,
        /// What is wrong.
        detail: String,
    },
    /// Its variables cannot be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Its agent cannot be made ready.
    #[error(transparent)]
    Agent(#[from] crate::runner::agent::launch::LaunchError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A claimed execution, ready to run.
pub struct Prepared {
    /// Its id.
    pub id: String,
    /// The lease epoch every write carries.
    pub epoch: u64,
    /// How long the lease lasts; renewed every third of it.
    pub lease: Duration,
    /// What runs.
    pub workflow: dsl::Workflow,
    /// Its input.
    pub input: Value,
    /// The run's options: secrets, replay, bus, sub-workflows, agents.
    pub options: RunOptions,
    /// Masks the run's secret values.
    pub redactor: Redactor,
    /// What its history said.
    pub replay: Replay,
    bus: Arc<EventBus>,
}

/// Reads a claimed execution's definition and history and resolves its variables, with
/// `extra` values over those it was started with (`execution resume --env …`). `workspaces` is where `call: agent` tasks get their workspaces.
///
/// # Errors
/// A record with no runnable definition, variables that cannot be resolved, or a backend error.
pub async fn prepare<B: Backend + Clone + 'static>(
    backend: &B,
    claim: Claim,
    extra: Overrides,
    lease: Duration,
    workspaces: std::path::PathBuf,
) -> Result<Prepared, PrepareError> {
    let epoch = claim.epoch();
    let record = claim.record;
    let id = record.id.clone();
    let definition: Definition = record
        .definition
        .clone()
        .ok_or_else(|| "it has no definition".to_owned())
        .and_then(|d| serde_json::from_value(d).map_err(|e| e.to_string()))
        .map_err(|detail| PrepareError::Definition { id: id.clone(), detail })?;
    let mut declared = crate::model::Declarations::default();
    declared.env_spec(&record.target, definition.env_spec.as_ref());
    let mut overrides = Overrides { env: definition.env.clone(), secret: claim.secrets };
    overrides.env.extend(extra.env);
    overrides.secret.extend(extra.secret);
    let resolved = environment::resolve(backend, &declared, &[], &overrides).await?;
    let history = backend.execution_events(&id, 0, None).await?;
    let replay = replay(&history);
    let bus = Arc::new(EventBus::new().consumed(replay.consumed.clone()));
    for signal in &replay.signals {
        bus.publish(signal.clone());
    }
    let agents = WorkflowAgents::new(backend.clone(), workspaces);
    let mut options =
        RunOptions::new().replaying(replay.completed.clone()).events(bus.clone()).agents(Arc::new(agents));
    for (name, subflow) in definition.workflows {
        options = options.workflow(name, subflow);
    }
    options.instance_id = Some(id.clone());
    for (name, variable) in &resolved.variables {
        options = options.secret(name.clone(), &variable.value);
    }
    Ok(Prepared {
        id,
        epoch,
        lease,
        workflow: definition.workflow,
        input: record.input,
        options,
        redactor: resolved.redactor(),
        replay,
        bus,
    })
}

/// How a run ended; `R` is what the runner returned.
#[derive(Debug)]
pub enum Ended<R> {
    /// The run completed or faulted, and that was recorded.
    Ran(R),
    /// The execution was cancelled (`execution cancel`): its record already says so.
    Cancelled,
    /// The caller's `stop` fired (Ctrl-C): recorded as cancelled.
    Interrupted,
    /// The lease was lost (it lapsed and another worker took the execution over, or the backend
    /// could not be reached for longer than the lease): nothing more was written.
    LeaseLost(String),
}

impl<T, E> Ended<Result<T, E>> {
    /// The status the execution ended in, as far as this run knows.
    pub fn status(&self) -> ExecutionStatus {
        match self {
            Self::Ran(Ok(_)) => ExecutionStatus::Completed,
            Self::Ran(Err(_)) => ExecutionStatus::Faulted,
            Self::Cancelled | Self::Interrupted | Self::LeaseLost(_) => ExecutionStatus::Cancelled,
        }
    }
}

impl<R> Ended<R> {
    /// Why the lease was lost, when it was.
    pub fn lost(&self) -> Option<&str> {
        match self {
            Self::LeaseLost(reason) => Some(reason),
            _ => None,
        }
    }
}

/// A run's end, and whether its history was recorded whole.
#[derive(Debug)]
pub struct Outcome<R> {
    /// How it ended.
    pub ended: Ended<R>,
    /// The first failure to record it (the run itself went on).
    pub recorded: Result<(), BackendError>,
}

/// Why the watch over a running execution stops it.
enum Stop {
    Cancelled,
    LeaseLost(String),
}

/// Runs a prepared execution to its end: every transition goes to `observer` and, redacted, to
/// the execution's history under the lease's epoch; the lease is renewed every third of its
/// length; a cancel, or an event sent to the execution, reaches the run as soon as the backend
/// feeds it. `stop` ends the run early (recorded as cancelled).
pub async fn run<B: Backend, O: Observer + Send>(
    backend: &B,
    prepared: Prepared,
    observer: &mut O,
    stop: impl Future<Output = ()>,
) -> Outcome<Result<Value, WorkflowError>> {
    let Prepared { id, epoch, lease, workflow, input, options, redactor, replay, bus } = prepared;
    let held = Held { id, epoch, lease, after: replay.last };
    let work = |sink| async move {
        let mut tee = Tee { sink, observer };
        interpreter::run(&workflow, input, &options, &mut tee).await
    };
    let finish = |result: &Result<Value, WorkflowError>| match result {
        Ok(value) => Close::Finish(ExecutionStatus::Completed, Some(redactor.redact_json(value.clone())), None),
        Err(error) => Close::Finish(ExecutionStatus::Faulted, None, Some(redactor.redact_json(error.to_value()))),
    };
    drive(backend, &held, &redactor, Some(&bus), work, stop, finish).await
}

/// The lease a run holds on its execution, and the last event it has seen.
struct Held {
    id: String,
    epoch: u64,
    lease: Duration,
    after: u64,
}

/// What a run records when it ends by itself.
enum Close {
    /// Its status, output and error.
    Finish(ExecutionStatus, Option<Value>, Option<Value>),
    /// It waits for a person, held by no worker, until the time given (or a decision).
    Park(Option<jiff::Timestamp>),
}

/// Runs `work` under the lease `held`: what it sends to its sink is appended, redacted, under the
/// lease's epoch; the watch renews the lease, feeds sent events to `bus` and stops the work when
/// the execution is cancelled or the lease lost; `finish` says how to record its result.
async fn drive<B, R, W, F>(
    backend: &B,
    held: &Held,
    redactor: &Redactor,
    bus: Option<&EventBus>,
    work: impl FnOnce(record::EventSink) -> W,
    stop: impl Future<Output = ()>,
    finish: F,
) -> Outcome<R>
where
    B: Backend,
    W: Future<Output = R>,
    F: FnOnce(&R) -> Close,
{
    let Held { id, epoch, lease, after } = held;
    let (sink, batches) = record::channel(redactor.clone());
    let recording = batches.append_to(backend, id, Some(*epoch));
    // When the select ends, the work (and with it the sink) is dropped, which ends the recorder
    // once it has appended the last batch.
    let running = async {
        tokio::select! {
            result = work(sink) => Ended::Ran(result),
            () = stop => Ended::Interrupted,
            stopped = watch(backend, id, *epoch, *lease, *after, bus) => match stopped {
                Stop::Cancelled => Ended::Cancelled,
                Stop::LeaseLost(reason) => Ended::LeaseLost(reason),
            },
        }
    };
    let (ended, (mut recorded, last)) = tokio::join!(running, recording);
    let finished = match &ended {
        Ended::Ran(result) => Some(finish(result)),
        Ended::Interrupted => Some(Close::Finish(ExecutionStatus::Cancelled, None, None)),
        Ended::Cancelled | Ended::LeaseLost(_) => None,
    };
    let Some(close) = finished else {
        // Ended elsewhere: what the run still had to say is refused if the lease is gone.
        if !last.is_empty()
            && let Err(error) = backend.execution_append(id, Some(*epoch), last).await
        {
            recorded = recorded.and(Err(error));
        }
        return Outcome { ended, recorded };
    };
    let closed = match close {
        Close::Finish(status, output, error) => {
            backend.execution_finish(id, Some(*epoch), status, output, error, last).await
        }
        Close::Park(until) => backend.execution_park(id, *epoch, until, last).await,
    };
    if let Err(error) = closed {
        if let BackendError::LeaseLost { reason, .. } = &error {
            return Outcome { ended: Ended::LeaseLost(reason.clone()), recorded };
        }
        recorded = recorded.and(Err(error));
    }
    Outcome { ended, recorded }
}

/// Records a claimed execution that cannot run as faulted, with why.
///
/// # Errors
/// The backend refused (the lease is gone, or it cannot be reached).
pub async fn fault<B: Backend>(backend: &B, claim: &Claim, why: &PrepareError) -> Result<(), BackendError> {
    let error = serde_json::json!({
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/configuration",
        "status": 400,
        "title": why.to_string(),
    });
    backend
        .execution_finish(
            &claim.record.id,
            Some(claim.epoch()),
            ExecutionStatus::Faulted,
            None,
            Some(error),
            Vec::new(),
        )
        .await
}

/// The run's observer: every transition to the history and to the caller's observer.
struct Tee<'a, O> {
    sink: record::EventSink,
    observer: &'a mut O,
}

impl<O: Observer> Observer for Tee<'_, O> {
    fn observe(&mut self, event: TaskEvent) {
        self.sink.send(&event);
        self.observer.observe(event);
    }
}

/// How long the watch waits before following again after the feed broke.
const FOLLOW_AGAIN: Duration = Duration::from_millis(250);

/// Completes when the run must stop: its record says cancelled, or the lease is gone. Meanwhile
/// renews the lease every third of its length and hands every event sent to the execution to
/// its bus, when it has one.
async fn watch<B: Backend>(
    backend: &B,
    id: &str,
    epoch: u64,
    lease: Duration,
    after: u64,
    bus: Option<&EventBus>,
) -> Stop {
    let renewing = async {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            match backend.execution_renew(id, epoch, lease).await {
                Ok(record) if record.status == ExecutionStatus::Cancelled => return Stop::Cancelled,
                Ok(_) => renewed = tokio::time::Instant::now(),
                Err(BackendError::LeaseLost { reason, .. }) => return Stop::LeaseLost(reason),
                // Unreachable for a while: keep trying, but once the lease has lapsed another
                // worker may hold the execution, so this one must stop.
                Err(error) if renewed.elapsed() >= lease => {
                    return Stop::LeaseLost(format!("the lease lapsed while the backend was unreachable: {error}"));
                }
                Err(_) => {}
            }
        }
    };
    let following = async {
        let mut after = after;
        loop {
            if let Ok(mut feed) = backend.execution_follow(id, after).await {
                while let Some(Ok(update)) = feed.next().await {
                    for (sequence, event) in &update.events {
                        after = *sequence;
                        if event.get("event").and_then(Value::as_str) == Some("signal")
                            && let Some(signal) = event.get("cloudEvent")
                            && let Some(bus) = bus
                        {
                            bus.publish(signal.clone());
                        }
                    }
                    match (&update.record.status, &update.record.lease) {
                        (ExecutionStatus::Cancelled, _) => return Stop::Cancelled,
                        (status, _) if status.is_final() => {
                            return Stop::LeaseLost(format!("it was ended elsewhere ({})", status.as_str()));
                        }
                        (_, Some(held)) if held.epoch != epoch => {
                            return Stop::LeaseLost(format!("{} took it over (lease {})", held.worker, held.epoch));
                        }
                        _ => {}
                    }
                }
            }
            tokio::time::sleep(FOLLOW_AGAIN).await;
        }
    };
    // `waiting` while a `listen` blocks the run, `running` again once it goes on. Showing it is
    // all this is for: a failed write is tried at the next change.
    let showing = async {
        let Some(bus) = bus else { return std::future::pending().await };
        loop {
            bus.listening().await;
            let _ = backend.execution_finish(id, Some(epoch), ExecutionStatus::Waiting, None, None, Vec::new()).await;
            bus.not_listening().await;
            let _ = backend.execution_finish(id, Some(epoch), ExecutionStatus::Running, None, None, Vec::new()).await;
        }
    };
    tokio::select! {
        stop = renewing => stop,
        stop = following => stop,
        never = showing => never,
    }
}
