//! Events sent in (`stigmer event send`, `POST /v1/events`): CloudEvents 1.0 checked, made
//! durable, de-duplicated by (`source`, `id`), handed to the executions whose `listen` may
//! consume them and used to start the workflows whose `schedule.on` consumes them — all in one
//! store transaction, before the sender is told the event was accepted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::storage::{EventEffects, Storage};
use super::{
    Backend, BackendError, Definition, ExecutionQuery, ExecutionRecord, ExecutionStatus, ScheduleState, StoreBackend,
    address,
};
use crate::model::Kind;
use crate::model::dsl::{self, EventConsumptionStrategy};
use crate::model::schedule::Trigger;

/// What became of an accepted event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReceipt {
    /// The event's id.
    pub id: String,
    /// It was sent before (same `source` and `id`): nothing was done again.
    pub duplicate: bool,
    /// The executions it was handed to.
    pub delivered: Vec<String>,
    /// The executions it started (`schedule.on`).
    pub started: Vec<String>,
}

/// Checks a CloudEvent 1.0 in its JSON form: the required attributes (`specversion` 1.0, `id`,
/// `source`, `type`) are non-empty strings, and the optional ones have their types.
///
/// # Errors
/// What is wrong, for the sender.
pub fn check(event: &Value) -> Result<(), String> {
    let Value::Object(fields) = event else { return Err("a CloudEvent is a JSON object".to_owned()) };
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    match fields.get("specversion") {
        Some(Value::String(version)) if version == "1.0" => {}
        Some(other) => return Err(format!("specversion is {other}; this server takes CloudEvents 1.0")),
        None => return Err("specversion is missing; it must be \"1.0\"".to_owned()),
    }
    for required in ["id", "source", "type"] {
        match text(required) {
            Some(value) if !value.is_empty() => {}
            Some(_) => return Err(format!("{required} is empty")),
            None if fields.contains_key(required) => return Err(format!("{required} must be a string")),
            None => return Err(format!("{required} is missing")),
        }
    }
    for optional in ["subject", "datacontenttype", "dataschema", "time"] {
        if fields.get(optional).is_some_and(|v| !v.is_string()) {
            return Err(format!("{optional} must be a string"));
        }
    }
    if let Some(time) = text("time")
        && time.parse::<jiff::Timestamp>().is_err()
    {
        return Err(format!("time {time:?} is not an RFC 3339 timestamp"));
    }
    if fields.contains_key("data") && fields.contains_key("data_base64") {
        return Err("an event has data or data_base64, not both".to_owned());
    }
    Ok(())
}

/// A CloudEvent from its parts, for senders that give them one by one.
#[must_use]
pub fn new(type_: &str, source: &str, subject: Option<&str>, data: Option<Value>) -> Value {
    let mut event = Map::new();
    event.insert("specversion".to_owned(), Value::from("1.0"));
    event.insert("id".to_owned(), Value::from(uuid::Uuid::new_v4().to_string()));
    event.insert("source".to_owned(), Value::from(source));
    event.insert("type".to_owned(), Value::from(type_));
    event.insert("time".to_owned(), Value::from(jiff::Timestamp::now().to_string()));
    if let Some(subject) = subject {
        event.insert("subject".to_owned(), Value::from(subject));
    }
    if let Some(data) = data {
        event.insert("datacontenttype".to_owned(), Value::from("application/json"));
        event.insert("data".to_owned(), data);
    }
    Value::Object(event)
}

/// [`super::Backend::event_publish`] on the local store (and so on each org of a server).
pub(crate) async fn publish<S: Storage>(backend: &StoreBackend<S>, event: Value) -> Result<EventReceipt, BackendError> {
    check(&event).map_err(BackendError::BadEvent)?;
    let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    // Who may consume it: the executions not over whose workflow listens for such an event.
    let mut deliver = Vec::new();
    for status in [ExecutionStatus::Pending, ExecutionStatus::Running, ExecutionStatus::Waiting] {
        let query = ExecutionQuery { status: Some(status), definitions: true, ..ExecutionQuery::default() };
        for record in backend.execution_list(&query).await? {
            let listens = record
                .definition
                .as_ref()
                .and_then(|d| serde_json::from_value::<Definition>(d.clone()).ok())
                .is_some_and(|d| listens_for(&d.workflow, &event));
            if listens {
                deliver.push(record.id);
            }
        }
    }
    // Which workflows it starts.
    let states: std::collections::HashMap<String, ScheduleState> =
        backend.schedule_states().await?.into_iter().collect();
    let now = jiff::Timestamp::now();
    let mut start = Vec::new();
    for workflow in super::schedule::scheduled(backend).await? {
        let Trigger::On(strategy) = &workflow.trigger else { continue };
        let mut state = states.get(&workflow.name).cloned().unwrap_or_else(|| ScheduleState::new(workflow.spec(), now));
        if state.paused {
            continue;
        }
        let Some(events) = consume(strategy, &mut state.collected, &event) else {
            if !state.collected.is_empty() {
                // An `all` holds the event until the others come.
                start.push((workflow.name.clone(), None, state));
            }
            continue;
        };
        let Some(definition) = Definition::of_stored(backend, &workflow.name).await? else { continue };
        let mut record = ExecutionRecord::new(
            uuid::Uuid::new_v4().to_string(),
            address(Kind::Workflow, &workflow.name),
            "event".to_owned(),
            // The DSL: an event-started workflow's input is the array of events that started it.
            Value::Array(events),
            ExecutionStatus::Pending,
        );
        record.definition = serde_json::to_value(&definition).ok();
        state.last_execution = Some(record.id.clone());
        start.push((workflow.name.clone(), Some(record), state));
    }
    let started: Vec<String> =
        start.iter().filter_map(|(_, record, _)| record.as_ref().map(|r| r.id.clone())).collect();
    let fresh = backend.keep_event(&event, EventEffects { deliver: deliver.clone(), start }).await?;
    Ok(if fresh {
        EventReceipt { id, duplicate: false, delivered: deliver, started }
    } else {
        EventReceipt { id, duplicate: true, delivered: Vec::new(), started: Vec::new() }
    })
}

/// Whether a workflow has a `listen` that may consume `event`.
pub(crate) fn listens_for(workflow: &dsl::Workflow, event: &Value) -> bool {
    let mut found = false;
    workflow.do_.walk("", &mut |visit| {
        if let dsl::Task::Listen(task) = visit.task {
            found |= task.listen.to.may_consume(event);
        }
    });
    found
}

/// What an event does to a `schedule.on` strategy that has `collected` events so far (one slot
/// per filter of an `all`): the events of the execution it starts, if it starts one.
pub(crate) fn consume(
    strategy: &EventConsumptionStrategy,
    collected: &mut Vec<Option<Value>>,
    event: &Value,
) -> Option<Vec<Value>> {
    match strategy {
        EventConsumptionStrategy::One(_) | EventConsumptionStrategy::Any(_) => {
            strategy.may_consume(event).then(|| vec![event.clone()])
        }
        EventConsumptionStrategy::All(all) => {
            collected.resize(all.all.len(), None);
            let slot = all
                .all
                .iter()
                .zip(collected.iter())
                .position(|(filter, have)| have.is_none() && filter.may_match(event))?;
            collected[slot] = Some(event.clone());
            if collected.iter().all(Option::is_some) { Some(collected.drain(..).flatten().collect()) } else { None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloud_events_are_checked_for_what_the_spec_requires() {
        assert!(check(&new("com.example.t", "tests", None, Some(json!({"a": 1})))).is_ok());
        let base = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t"});
        assert!(check(&base).is_ok());
        for (field, value, says) in [
            ("specversion", json!("0.3"), "CloudEvents 1.0"),
            ("id", json!(""), "id is empty"),
            ("type", json!(7), "type must be a string"),
            ("time", json!("yesterday"), "not an RFC 3339"),
        ] {
            let mut event = base.clone();
            event[field] = value;
            assert!(check(&event).unwrap_err().contains(says), "{field}");
        }
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("source");
        assert_eq!(check(&missing).unwrap_err(), "source is missing");
    }

    #[test]
    fn an_all_strategy_starts_once_every_filter_has_its_event() {
        let strategy: EventConsumptionStrategy =
            serde_json::from_value(json!({"all": [{"with": {"type": "a"}}, {"with": {"type": "b"}}]})).unwrap();
        let mut collected = Vec::new();
        let event = |t: &str| json!({"specversion": "1.0", "id": t, "source": "s", "type": t});
        assert_eq!(consume(&strategy, &mut collected, &event("a")), None);
        assert_eq!(consume(&strategy, &mut collected, &event("a")), None, "a second a waits for b");
        assert_eq!(consume(&strategy, &mut collected, &event("b")), Some(vec![event("a"), event("b")]));
        assert!(collected.is_empty());
        let one: EventConsumptionStrategy = serde_json::from_value(json!({"one": {"with": {"type": "a.*"}}})).unwrap();
        assert_eq!(consume(&one, &mut Vec::new(), &event("ab")), Some(vec![event("ab")]));
        assert_eq!(consume(&one, &mut Vec::new(), &event("b")), None);
    }
}
