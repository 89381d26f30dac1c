//! The scheduler: fires the slots of every scheduled Workflow in a store, by its `schedule` and
//! `schedulePolicy` (`model::schedule`), with its state in the store. The server runs one tick
//! per org every [`TICK`]; a slot and the execution it starts are written in one transaction, so
//! a slot fires exactly once across restarts. A changed schedule takes effect at the next tick
//! (the workflows are read again whenever the store's version moves); a deleted workflow's
//! schedule stops; pausing is stored, so it survives a restart.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::storage::{Fire, Storage};
use super::{
    Backend, BackendError, Definition, ExecutionRecord, ExecutionStatus, ResourceQuery, StoreBackend, address,
};
use crate::model::schedule::{Overlap, SchedulePolicy, Trigger, to_fire};
use crate::model::{AnyResource, Kind};

/// How often the scheduler looks at the clock.
pub const TICK: Duration = Duration::from_millis(50);

/// Where one scheduled workflow's slots stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleState {
    /// The schedule (and policy) these slots are of: a changed one starts again from now.
    pub spec: Value,
    /// Where `every` counts from: when the schedule was first seen.
    pub anchor: Timestamp,
    /// The last slot handled (fired, skipped or buffered).
    pub last_slot: Timestamp,
    /// The last execution it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<String>,
    /// Paused with `schedule pause`.
    #[serde(default)]
    pub paused: bool,
    /// A slot waiting for the previous run to end (`overlap: buffer-one`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffered: Option<Timestamp>,
    /// For `schedule.on` with `all`: the events collected so far, one per filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collected: Vec<Option<Value>>,
}

impl ScheduleState {
    /// The state of a schedule `spec` first seen at `now`: its slots count from then.
    pub fn new(spec: Value, now: Timestamp) -> Self {
        Self {
            spec,
            anchor: now,
            last_slot: now,
            last_execution: None,
            paused: false,
            buffered: None,
            collected: Vec::new(),
        }
    }
}

/// A scheduled workflow, as `schedule list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInfo {
    /// The workflow.
    pub workflow: String,
    /// `every PT1S`, `cron 0 9 * * *`, `after PT5M`, `on events`.
    pub spec: String,
    /// Paused with `schedule pause`.
    pub paused: bool,
    /// When it fires next, when that is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Timestamp>,
    /// The last execution it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<String>,
    /// How that execution stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<ExecutionStatus>,
}

/// A scheduled workflow as the scheduler reads it.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The workflow's name.
    pub name: String,
    /// When it fires.
    pub trigger: Trigger,
    /// How its slots are handled.
    pub policy: SchedulePolicy,
    /// The schedule and policy as JSON, to notice a change.
    spec: Value,
    /// `every PT1S`, for `schedule list`.
    pub text: String,
}

impl Scheduled {
    /// The schedule and policy as the state records them.
    pub fn spec(&self) -> Value {
        self.spec.clone()
    }
}

/// Every Workflow in the backend with a usable schedule, by name.
///
/// # Errors
/// The backend cannot be read.
pub async fn scheduled<S: Storage>(backend: &StoreBackend<S>) -> Result<Vec<Scheduled>, BackendError> {
    // Most workflows have no schedule: the store leaves them out without reading them whole.
    let query = ResourceQuery { kinds: vec![Kind::Workflow], ..ResourceQuery::default() };
    let mut found = Vec::new();
    for stored in backend.storage().list_setting(&query, &["spec", "schedule"]).await? {
        let Ok(AnyResource::Workflow(resource)) =
            AnyResource::from_value(Kind::Workflow, Arc::unwrap_or_clone(stored.manifest))
        else {
            continue;
        };
        let Some(schedule) = resource.spec.schedule.clone() else { continue };
        let policy = resource.spec.schedule_policy.clone().unwrap_or_default();
        // Apply refuses a schedule that cannot fire; one stored before that check is left out.
        let Ok(Some(trigger)) = Trigger::of(&schedule, Some(&policy)) else { continue };
        let text = match (&schedule.every, &schedule.cron, &schedule.after) {
            (Some(every), _, _) => format!("every {}", duration_text(every)),
            (_, Some(cron), _) => match &policy.timezone {
                Some(zone) => format!("cron {cron} ({zone})"),
                None => format!("cron {cron}"),
            },
            (_, _, Some(after)) => format!("after {}", duration_text(after)),
            _ => "on events".to_owned(),
        };
        let spec = serde_json::json!({ "schedule": schedule, "policy": policy });
        found.push(Scheduled { name: stored.name, trigger, policy, spec, text });
    }
    Ok(found)
}

fn duration_text(duration: &crate::model::dsl::Duration) -> String {
    match duration {
        crate::model::dsl::Duration::Iso8601(text) => text.clone(),
        crate::model::dsl::Duration::Inline(_) => {
            dsl_duration_millis(duration).map_or_else(|| "?".to_owned(), |ms| format!("{ms}ms"))
        }
    }
}

fn dsl_duration_millis(duration: &crate::model::dsl::Duration) -> Option<u128> {
    crate::model::dsl::duration::literal(duration).ok().map(|d| d.as_millis())
}

/// The scheduler of one store: what it last read of the workflows.
#[derive(Default)]
pub struct Scheduler {
    /// The store version the workflows were read at, and what was read: each scheduled
    /// workflow with the definition its runs get.
    read: Option<(u64, Vec<(Scheduled, Definition)>)>,
}

impl Scheduler {
    /// Fires every slot that is due at `now`, all in one transaction; returns how many
    /// executions it started.
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub async fn tick<S: Storage>(&mut self, backend: &StoreBackend<S>, now: Timestamp) -> Result<usize, BackendError> {
        let version = backend.version().await?;
        if self.read.as_ref().is_none_or(|(at, _)| *at != version) {
            let mut read = Vec::new();
            for workflow in scheduled(backend).await? {
                if let Some(definition) = Definition::of_stored(backend, &workflow.name).await? {
                    read.push((workflow, definition));
                }
            }
            self.read = Some((version, read));
        }
        let Some((_, workflows)) = &self.read else { return Ok(0) };
        if workflows.is_empty() {
            return Ok(0);
        }
        let states: std::collections::HashMap<String, ScheduleState> =
            backend.schedule_states().await?.into_iter().collect();
        let mut fires = Vec::new();
        for (workflow, definition) in workflows {
            if matches!(workflow.trigger, Trigger::On(_)) {
                continue;
            }
            let state = match states.get(&workflow.name) {
                Some(state) if state.spec == workflow.spec => state.clone(),
                // New, or changed: its slots count from now.
                _ => {
                    let state = ScheduleState {
                        last_execution: states.get(&workflow.name).and_then(|s| s.last_execution.clone()),
                        paused: states.get(&workflow.name).is_some_and(|s| s.paused),
                        ..ScheduleState::new(workflow.spec.clone(), now)
                    };
                    if matches!(workflow.trigger, Trigger::After(_)) && state.last_execution.is_none() {
                        fires.push(fire(workflow, definition, state, now));
                    } else {
                        backend.put_schedule_state(&workflow.name, state).await?;
                    }
                    continue;
                }
            };
            if !state.paused {
                advance(backend, workflow, definition, state, now, &mut fires).await?;
            }
        }
        let outcomes = backend.fire_slots(fires).await?;
        Ok(outcomes.into_iter().filter(|started| *started).count())
    }
}

/// Handles the slots of one schedule due at `now`: what it fires goes to `fires`, to be
/// committed with the others of the tick.
async fn advance<S: Storage>(
    backend: &StoreBackend<S>,
    workflow: &Scheduled,
    definition: &Definition,
    mut state: ScheduleState,
    now: Timestamp,
    fires: &mut Vec<Fire>,
) -> Result<(), BackendError> {
    let previous = match &state.last_execution {
        Some(id) => backend.execution_get(id).await?,
        None => None,
    };
    let mut running = previous.as_ref().is_some_and(|p| !p.status.is_final());
    if let Some(buffered) = state.buffered.filter(|_| !running) {
        state.buffered = None;
        fires.push(fire(workflow, definition, state, buffered));
        return Ok(());
    }
    let slots = match &workflow.trigger {
        Trigger::After(after) => {
            let ended = previous.as_ref().and_then(|p| p.finished_at);
            match ended.and_then(|at| at.checked_add(*after).ok()) {
                Some(due) if due <= now && due > state.last_slot => vec![due],
                _ => Vec::new(),
            }
        }
        trigger => {
            let keep = usize::try_from(workflow.policy.catch_up_limit.unwrap_or(10)).unwrap_or(10).max(1);
            let (due, _) = trigger.due(state.anchor, state.last_slot, now, keep);
            let fire_now = to_fire(&due, &workflow.policy, now);
            if fire_now.is_empty()
                && let Some(last) = due.last()
            {
                // Missed and skipped: the schedule goes on from the latest.
                state.last_slot = *last;
                return backend.put_schedule_state(&workflow.name, state).await;
            }
            fire_now
        }
    };
    let (mut changed, mut pushed) = (false, false);
    for slot in slots {
        if running {
            match workflow.policy.overlap {
                Overlap::Skip | Overlap::BufferOne => {
                    state.last_slot = slot;
                    if workflow.policy.overlap == Overlap::BufferOne {
                        state.buffered = Some(slot);
                    }
                    changed = true;
                    continue;
                }
                Overlap::CancelPrevious => {
                    if let Some(previous) = &state.last_execution {
                        let cancelled = backend
                            .execution_finish(previous, None, ExecutionStatus::Cancelled, None, None, Vec::new())
                            .await;
                        // It may have ended in between; that is what was wanted.
                        if let Err(error) = cancelled
                            && !matches!(error, BackendError::LeaseLost { .. })
                        {
                            return Err(error);
                        }
                    }
                }
                Overlap::Allow => {}
            }
        }
        let next = fire(workflow, definition, state, slot);
        state = next.state.clone();
        fires.push(next);
        running = true;
        pushed = true;
    }
    match fires.last_mut() {
        // A slot skipped after one fired: the state goes with that fire.
        Some(last) if changed && pushed => last.state = state,
        _ if changed => backend.put_schedule_state(&workflow.name, state).await?,
        _ => {}
    }
    Ok(())
}

/// What firing one slot writes: its execution, and the schedule's state after it. A later fire
/// of the same schedule in the tick carries the state on, so the last one written wins.
fn fire(workflow: &Scheduled, definition: &Definition, mut state: ScheduleState, slot: Timestamp) -> Fire {
    let mut record = ExecutionRecord::new(
        uuid::Uuid::new_v4().to_string(),
        address(Kind::Workflow, &workflow.name),
        "schedule".to_owned(),
        // A scheduled run's input says which slot it is, so it can tell what period it covers.
        serde_json::json!({ "scheduledFor": slot.to_string() }),
        ExecutionStatus::Pending,
    );
    record.definition = serde_json::to_value(definition).ok();
    state.last_slot = state.last_slot.max(slot);
    state.last_execution = Some(record.id.clone());
    Fire { workflow: workflow.name.clone(), slot, state, record }
}

/// The next time a schedule fires, as far as the clock alone says (`after` and `on` depend on
/// runs and events).
pub fn next_fire(workflow: &Scheduled, state: Option<&ScheduleState>, now: Timestamp) -> Option<Timestamp> {
    let (anchor, after) = state.map_or((now, now), |s| (s.anchor, s.last_slot.max(now)));
    workflow.trigger.next(anchor, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{ApplyBatch, BatchItem, Write};

    /// A local store holding one `every: PT1S` workflow with `overlap`.
    use crate::store::redb::LocalBackend;

    async fn store_with(dir: &tempfile::TempDir, overlap: &str) -> LocalBackend {
        let backend = LocalBackend::new(dir.path().join("local.db"), "t");
        let manifest = serde_json::json!({
            "apiVersion": "agentic.stigmer.ai/v1",
            "kind": "Workflow",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": {"every": "PT1S"},
                "schedulePolicy": {"overlap": overlap},
                "do": [{"a": {"set": {"x": 1}}}],
            },
        });
        let item =
            BatchItem { kind: Kind::Workflow, name: "tick".into(), write: Write::Create { manifest: manifest.into() } };
        backend
            .apply(ApplyBatch { apply_set: None, items: vec![item], dry_run: false, correcting: false })
            .await
            .unwrap();
        backend
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    async fn runs(backend: &LocalBackend) -> Vec<ExecutionRecord> {
        backend.execution_list(&crate::backend::ExecutionQuery::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_slot_that_comes_while_the_last_run_goes_follows_the_overlap_policy() {
        for (overlap, after_second_slot) in [("skip", 1), ("allow", 2), ("cancel-previous", 2), ("buffer-one", 1)] {
            let dir = tempfile::tempdir().unwrap();
            let backend = store_with(&dir, overlap).await;
            let mut scheduler = Scheduler::default();
            assert_eq!(scheduler.tick(&backend, at(0)).await.unwrap(), 0, "first seen: counts from now");
            assert_eq!(scheduler.tick(&backend, at(1)).await.unwrap(), 1, "{overlap}: the first slot fires");
            assert_eq!(scheduler.tick(&backend, at(1)).await.unwrap(), 0, "{overlap}: a slot fires once");
            scheduler.tick(&backend, at(2)).await.unwrap();
            let all = runs(&backend).await;
            assert_eq!(all.len(), after_second_slot, "{overlap}: {all:#?}");
            if overlap == "cancel-previous" {
                assert_eq!(all.iter().filter(|r| r.status == ExecutionStatus::Cancelled).count(), 1);
            }
            if overlap == "buffer-one" {
                // The first run ends: the buffered slot runs at the next tick, once.
                let first = &all[0].id;
                backend
                    .execution_finish(first, None, ExecutionStatus::Completed, None, None, Vec::new())
                    .await
                    .unwrap();
                assert_eq!(scheduler.tick(&backend, at(2)).await.unwrap(), 1);
                assert_eq!(runs(&backend).await.len(), 2);
            }
        }
    }

    #[tokio::test]
    async fn a_paused_schedule_fires_nothing_and_a_missed_slot_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let backend = store_with(&dir, "allow").await;
        let mut scheduler = Scheduler::default();
        scheduler.tick(&backend, at(0)).await.unwrap();
        backend.schedule_pause("tick", true).await.unwrap();
        assert_eq!(scheduler.tick(&backend, at(5)).await.unwrap(), 0, "paused");
        backend.schedule_pause("tick", false).await.unwrap();
        // Slots 1..=10 are late; only the current one (10) fires, by the default catch-up.
        assert_eq!(scheduler.tick(&backend, at(10)).await.unwrap(), 1);
        let slot = runs(&backend).await[0].input["scheduledFor"].clone();
        assert_eq!(slot, serde_json::json!(at(10).to_string()));
    }

    /// A tick reads the states, then a person pauses, then the tick writes what it computed:
    /// the pause survives, and a slot the tick would fire is not fired.
    #[tokio::test]
    async fn a_pause_made_while_a_tick_computes_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let backend = store_with(&dir, "allow").await;
        let mut scheduler = Scheduler::default();
        scheduler.tick(&backend, at(0)).await.unwrap();
        let (_, stale) = backend.schedule_states().await.unwrap().into_iter().next().unwrap();
        assert!(!stale.paused);
        backend.schedule_pause("tick", true).await.unwrap();
        backend.put_schedule_state("tick", stale.clone()).await.unwrap();
        let (_, kept) = backend.schedule_states().await.unwrap().into_iter().next().unwrap();
        assert!(kept.paused, "the scheduler's write kept the pause");
        let Some((workflow, definition)) = scheduler.read.as_ref().and_then(|(_, read)| read.first()) else {
            panic!("the tick read the scheduled workflow")
        };
        let fired = backend.storage().fire_slots(vec![fire(workflow, definition, stale, at(1))]).await.unwrap();
        assert_eq!(fired, [false], "a paused schedule fires nothing, even from a stale tick");
        assert!(runs(&backend).await.is_empty());
    }
}
