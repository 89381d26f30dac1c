//! What a `listen` task consumes: its event consumption strategy (`one`, `all`, `any` with
//! `until`), event filters and correlations, applied to the events waiting on the run's bus.
//!
//! Decisions where the reference is open:
//! - A filter property matches when the event has that attribute and it is equal to the value;
//!   a string value may also be a regular expression the whole attribute matches, or a runtime
//!   expression evaluated on the attribute (`data: ${ .temperature > 38 }`) that must be truthy;
//!   an object value matches an object attribute holding at least those properties.
//! - `all` consumes, for each event in arrival order, the first filter still unmatched that it
//!   matches; events are output in the order they were consumed.
//! - `any` without `until` stops after one event. An `until` expression is evaluated after each
//!   consumed event, on the array of events consumed so far (as `read` gives them). Events an
//!   `until` strategy consumes stop the listener and are not output.
//! - A correlation's `expect` is a constant or a runtime expression on the task's input; without
//!   one, the first event that matches sets the value later events must have.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::error::WorkflowError;
use super::eval::truthy;
use crate::expr::enclosed;
use crate::model::dsl::{AnyEventUntil, EventConsumptionStrategy, EventFilter, ListenRead};

/// Evaluates the expressions a listener holds.
pub(super) trait Judge {
    /// A runtime expression's code (without `${ }`) on `data`.
    fn evaluate(&self, code: &str, data: &Value) -> Result<Value, WorkflowError>;
    /// A correlation's `expect`: a constant, or an expression on the task's input.
    fn expected(&self, text: &str) -> Result<Value, WorkflowError>;
}

/// A listener's progress through its strategy, kept between arrivals.
pub(super) struct Consumption<'s> {
    strategy: &'s EventConsumptionStrategy,
    read: ListenRead,
    /// Events consumed for the output, in order.
    kept: Vec<Value>,
    /// For `all`: which filters an event matched.
    matched: Vec<bool>,
    /// For `any` with an `until` strategy: its own progress.
    until: Option<Box<Consumption<'s>>>,
    /// Correlation values fixed by the first matching event, by name.
    correlations: HashMap<String, Value>,
}

/// What a consumption does with one event.
enum Offer {
    Ignore,
    Keep,
    /// Consumed by an `until` strategy: it counts, but is not output.
    Absorb,
}

impl<'s> Consumption<'s> {
    pub(super) fn new(strategy: &'s EventConsumptionStrategy, read: ListenRead) -> Self {
        let (matched, until) = match strategy {
            EventConsumptionStrategy::All(all) => (vec![false; all.all.len()], None),
            EventConsumptionStrategy::Any(any) => match &any.until {
                Some(AnyEventUntil::Events(until)) => (Vec::new(), Some(Box::new(Self::new(until, read)))),
                _ => (Vec::new(), None),
            },
            EventConsumptionStrategy::One(_) => (Vec::new(), None),
        };
        Self { strategy, read, kept: Vec::new(), matched, until, correlations: HashMap::new() }
    }

    /// Offers the waiting events, oldest first, removing those consumed. `Some` with the consumed
    /// events (whole envelopes, in order) once the strategy is satisfied.
    pub(super) fn feed(
        &mut self,
        waiting: &mut VecDeque<Value>,
        judge: &dyn Judge,
    ) -> Result<Option<Vec<Value>>, WorkflowError> {
        let mut index = 0;
        while let Some(event) = waiting.get(index) {
            let offer = self.offer(event, judge)?;
            if matches!(offer, Offer::Ignore) {
                index += 1;
                continue;
            }
            let event = waiting.remove(index).unwrap_or_default();
            let absorbed = matches!(offer, Offer::Absorb);
            if !absorbed {
                self.kept.push(event);
            }
            if self.satisfied(absorbed, judge)? {
                return Ok(Some(std::mem::take(&mut self.kept)));
            }
        }
        Ok(None)
    }

    fn offer(&mut self, event: &Value, judge: &dyn Judge) -> Result<Offer, WorkflowError> {
        match self.strategy {
            EventConsumptionStrategy::One(one) => {
                Ok(if self.accepts(&one.one, event, judge)? { Offer::Keep } else { Offer::Ignore })
            }
            EventConsumptionStrategy::All(all) => {
                for (index, filter) in all.all.iter().enumerate() {
                    if !self.matched[index] && self.accepts(filter, event, judge)? {
                        self.matched[index] = true;
                        return Ok(Offer::Keep);
                    }
                }
                Ok(Offer::Ignore)
            }
            EventConsumptionStrategy::Any(any) => {
                if let Some(until) = &mut self.until
                    && !matches!(until.offer(event, judge)?, Offer::Ignore)
                {
                    return Ok(Offer::Absorb);
                }
                if any.any.is_empty() {
                    return Ok(Offer::Keep);
                }
                for filter in &any.any {
                    if self.accepts(filter, event, judge)? {
                        return Ok(Offer::Keep);
                    }
                }
                Ok(Offer::Ignore)
            }
        }
    }

    /// Whether the strategy is satisfied after consuming one more event.
    fn satisfied(&mut self, absorbed: bool, judge: &dyn Judge) -> Result<bool, WorkflowError> {
        match self.strategy {
            EventConsumptionStrategy::One(_) => Ok(true),
            EventConsumptionStrategy::All(_) => Ok(self.matched.iter().all(|matched| *matched)),
            EventConsumptionStrategy::Any(any) => match &any.until {
                None => Ok(true),
                Some(AnyEventUntil::Condition(condition)) => {
                    let read: Vec<Value> = self.kept.iter().map(|event| read(event, self.read)).collect();
                    let code = enclosed(condition).unwrap_or(condition);
                    Ok(truthy(&judge.evaluate(code, &Value::Array(read))?))
                }
                Some(AnyEventUntil::Events(_)) => {
                    let Some(until) = &mut self.until else { return Ok(false) };
                    // The `until` strategy counts what it absorbed as its own consumption.
                    Ok(absorbed && until.satisfied(false, judge)?)
                }
            },
        }
    }

    /// Whether `event` passes `filter`: its properties, then its correlations.
    fn accepts(&mut self, filter: &EventFilter, event: &Value, judge: &dyn Judge) -> Result<bool, WorkflowError> {
        let wanted = serde_json::to_value(&filter.with).unwrap_or(Value::Null);
        if !properties_match(&wanted, event, judge)? {
            return Ok(false);
        }
        let mut fixed = Vec::new();
        for (name, correlation) in &filter.correlate {
            let code = enclosed(&correlation.from).unwrap_or(&correlation.from);
            let value = judge.evaluate(code, event)?;
            let expected = match &correlation.expect {
                Some(expect) => Some(judge.expected(expect)?),
                None => self.correlations.get(name).cloned(),
            };
            match expected {
                Some(expected) if expected != value => return Ok(false),
                Some(_) => {}
                None => fixed.push((name.clone(), value)),
            }
        }
        self.correlations.extend(fixed);
        Ok(true)
    }
}

/// A consumed event as `listen.read` asks: its data (the default), its whole envelope, or its
/// raw data (the data as sent; text stays text).
pub(super) fn read(event: &Value, mode: ListenRead) -> Value {
    match mode {
        ListenRead::Envelope => event.clone(),
        ListenRead::Data | ListenRead::Raw => event.get("data").cloned().unwrap_or(Value::Null),
    }
}

fn properties_match(wanted: &Value, event: &Value, judge: &dyn Judge) -> Result<bool, WorkflowError> {
    crate::model::dsl::properties_match(wanted, event, &mut |code, have| Ok(truthy(&judge.evaluate(code, have)?)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runner::workflow::eval::{self, Variables};

    /// Evaluates with no variables; `expect` expressions see `{"order": 7}` as input.
    struct Plain;

    impl Judge for Plain {
        fn evaluate(&self, code: &str, data: &Value) -> Result<Value, WorkflowError> {
            eval::evaluate(code, data, &Variables::default()).map_err(|e| WorkflowError::expression(e, "/"))
        }
        fn expected(&self, text: &str) -> Result<Value, WorkflowError> {
            match enclosed(text) {
                Some(code) => self.evaluate(code, &json!({ "order": 7 })),
                None => Ok(Value::String(text.to_owned())),
            }
        }
    }

    fn strategy(yaml: &str) -> EventConsumptionStrategy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn event(id: u32, kind: &str, data: &Value) -> Value {
        json!({ "id": id.to_string(), "source": "test", "type": kind, "data": data })
    }

    /// Feeds the events one at a time, as arrivals; the consumed ids once satisfied, and the
    /// ids of the events left waiting.
    fn consume(strategy: &EventConsumptionStrategy, events: Vec<Value>) -> (Option<Vec<String>>, Vec<String>) {
        let mut consumption = Consumption::new(strategy, ListenRead::Data);
        let mut waiting = VecDeque::new();
        let ids = |events: &[Value]| events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        for event in events {
            waiting.push_back(event);
            if let Some(done) = consumption.feed(&mut waiting, &Plain).unwrap() {
                return (Some(ids(&done)), ids(&Vec::from(waiting)));
            }
        }
        (None, ids(&Vec::from(waiting)))
    }

    #[test]
    fn one_takes_the_first_matching_event_and_leaves_the_rest() {
        let one = strategy("one: { with: { type: com.example.done } }");
        let events = vec![event(1, "com.example.other", &json!(1)), event(2, "com.example.done", &json!(2))];
        assert_eq!(consume(&one, events), (Some(vec!["2".into()]), vec!["1".into()]));
    }

    #[test]
    fn filters_match_by_regular_expression_expression_and_object_subset() {
        let by_regex = strategy("one: { with: { type: 'com\\.example\\..*' } }");
        assert_eq!(consume(&by_regex, vec![event(1, "com.example.x", &json!(0))]).0, Some(vec!["1".into()]));
        // A regular expression matches the whole attribute, not a part of it.
        assert_eq!(consume(&by_regex, vec![event(1, "org.com.example.x", &json!(0))]).0, None);
        let by_expression = strategy("one: { with: { type: t, data: '${ .temperature > 38 }' } }");
        let events = vec![event(1, "t", &json!({ "temperature": 37 })), event(2, "t", &json!({ "temperature": 39 }))];
        assert_eq!(consume(&by_expression, events).0, Some(vec!["2".into()]));
        let by_subset = strategy("one: { with: { data: { kind: order } } }");
        let events =
            vec![event(1, "t", &json!({ "kind": "refund" })), event(2, "t", &json!({ "kind": "order", "n": 1 }))];
        assert_eq!(consume(&by_subset, events).0, Some(vec!["2".into()]));
    }

    #[test]
    fn all_needs_one_event_per_filter_in_any_order() {
        let all = strategy("all: [ { with: { type: a } }, { with: { type: b } } ]");
        let events = vec![event(1, "b", &json!(0)), event(2, "b", &json!(0)), event(3, "a", &json!(0))];
        assert_eq!(consume(&all, events), (Some(vec!["1".into(), "3".into()]), vec!["2".into()]));
    }

    #[test]
    fn any_stops_at_one_event_or_when_its_until_holds() {
        let any = strategy("any: []");
        assert_eq!(consume(&any, vec![event(1, "x", &json!(0))]).0, Some(vec!["1".into()]));
        let counted = strategy("any: [ { with: { type: tick } } ]\nuntil: '${ length >= 2 }'");
        let events = vec![event(1, "tick", &json!(0)), event(2, "tock", &json!(0)), event(3, "tick", &json!(0))];
        assert_eq!(consume(&counted, events), (Some(vec!["1".into(), "3".into()]), vec!["2".into()]));
    }

    #[test]
    fn events_an_until_strategy_consumes_stop_the_listener_and_are_not_output() {
        let any = strategy("any: [ { with: { type: item } } ]\nuntil: { one: { with: { type: end } } }");
        let events = vec![event(1, "item", &json!(0)), event(2, "item", &json!(0)), event(3, "end", &json!(0))];
        assert_eq!(consume(&any, events), (Some(vec!["1".into(), "2".into()]), vec![]));
    }

    #[test]
    fn correlations_fix_on_the_first_event_or_on_what_is_expected() {
        let all = strategy(
            "all:\n  - with: { type: a }\n    correlate: { order: { from: .data.order } }\n  \
             - with: { type: b }\n    correlate: { order: { from: .data.order } }",
        );
        let events = vec![
            event(1, "a", &json!({ "order": 1 })),
            event(2, "b", &json!({ "order": 2 })),
            event(3, "b", &json!({ "order": 1 })),
        ];
        assert_eq!(consume(&all, events), (Some(vec!["1".into(), "3".into()]), vec!["2".into()]));
        let expecting =
            strategy("one:\n  with: { type: a }\n  correlate: { order: { from: .data.order, expect: '${ .order }' } }");
        let events = vec![event(1, "a", &json!({ "order": 1 })), event(2, "a", &json!({ "order": 7 }))];
        assert_eq!(consume(&expecting, events).0, Some(vec!["2".into()]));
    }
}
