//! What an execution's history says for resuming it: the history is the truth, so a worker
//! that claims an execution another worker left reads it and carries on from there.

use serde_json::Value;

/// What an execution's history says for resuming it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Replay {
    /// Each completed task's output, in order: those tasks are not run again.
    pub completed: Vec<(String, Value)>,
    /// The simple tasks that started but never finished (in flight when the runner died): they
    /// run again — at least once per task.
    pub interrupted: Vec<String>,
    /// The ids of the events `listen` tasks that completed consumed.
    pub consumed: Vec<String>,
    /// The signals sent to the execution (`execution signal`, `event send`), in order.
    pub signals: Vec<Value>,
    /// The sequence number of the last event read.
    pub last: u64,
}

/// Reads a history, oldest first.
pub fn replay(events: &[(u64, Value)]) -> Replay {
    let mut replay = Replay::default();
    let mut open: Vec<String> = Vec::new();
    // Events consumed by a listener that has not completed yet, by its reference.
    let mut consuming: Vec<(String, String)> = Vec::new();
    for (sequence, event) in events {
        replay.last = *sequence;
        let reference = event.get("reference").and_then(Value::as_str).unwrap_or_default().to_owned();
        match event.get("event").and_then(Value::as_str) {
            Some("started") => open.push(reference),
            Some("completed") => {
                replay.completed.push((reference.clone(), event.get("output").cloned().unwrap_or(Value::Null)));
                close(&mut open, &reference);
                let (done, waiting) = consuming.drain(..).partition(|(by, _)| by == &reference);
                consuming = waiting;
                replay.consumed.extend(done.into_iter().map(|(_, id): (String, String)| id));
            }
            Some("failed" | "cancelled") => close(&mut open, &reference),
            Some("consumed") => {
                if let Some(id) = event.pointer("/cloudEvent/id").and_then(Value::as_str) {
                    consuming.push((reference, id.to_owned()));
                }
            }
            Some("signal") => {
                if let Some(signal) = event.get("cloudEvent") {
                    replay.signals.push(signal.clone());
                }
            }
            _ => {}
        }
    }
    // Tasks holding others are re-entered anyway; name only the innermost ones.
    replay.interrupted =
        open.iter().filter(|r| !open.iter().any(|other| other.starts_with(&format!("{r}/")))).cloned().collect();
    replay
}

fn close(open: &mut Vec<String>, reference: &str) {
    if let Some(at) = open.iter().rposition(|r| r == reference) {
        open.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completed_tasks_replay_and_the_innermost_open_ones_run_again() {
        let events: Vec<(u64, Value)> = [
            json!({"event": "started", "reference": "/do/0/a"}),
            json!({"event": "completed", "reference": "/do/0/a", "output": 1}),
            json!({"event": "started", "reference": "/do/1/b"}),
            json!({"event": "started", "reference": "/do/1/b/do/0/c"}),
            json!({"event": "signal", "cloudEvent": {"id": "s1", "type": "t"}}),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, e)| (n as u64 + 1, e))
        .collect();
        let replay = replay(&events);
        assert_eq!(replay.completed, [("/do/0/a".to_owned(), json!(1))]);
        assert_eq!(replay.interrupted, ["/do/1/b/do/0/c"]);
        assert_eq!(replay.signals, [json!({"id": "s1", "type": "t"})]);
        assert_eq!(replay.last, 5);
    }
}
