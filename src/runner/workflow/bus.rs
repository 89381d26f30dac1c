//! The in-process event bus of a run: where `emit` tasks publish events, where events sent
//! from outside (`stigmer execution signal`) arrive, and where `listen` tasks consume them.
//!
//! Events wait in an inbox until a listener consumes them, so an event that arrives before the
//! workflow reaches its `listen` is not lost (a signal sent early is still delivered). Each event
//! is consumed at most once. A resumed run is told which event ids its earlier run consumed; those
//! are dropped when they are published again (signals re-read from the log, events re-emitted by
//! replayed `emit` tasks, whose ids are deterministic).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::{Notify, watch};

/// A run's events, shared by its tasks, its subflows and whoever feeds it signals.
#[derive(Debug)]
pub struct EventBus {
    state: Mutex<Inbox>,
    arrived: Notify,
    /// How many `listen` tasks are waiting right now (feeders poll only while one is).
    listeners: watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct Inbox {
    waiting: VecDeque<Value>,
    consumed: HashSet<String>,
    /// How many events each emitting task (by key) published, for their deterministic ids.
    emitted: HashMap<String, u64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self { state: Mutex::new(Inbox::default()), arrived: Notify::new(), listeners: watch::Sender::new(0) }
    }

    /// Marks events an earlier run of the same execution consumed: they are never delivered again
    /// (builder style).
    #[must_use]
    pub fn consumed(self, ids: impl IntoIterator<Item = String>) -> Self {
        self.lock().consumed.extend(ids);
        self
    }

    /// Delivers one event (its JSON envelope); one whose id was already consumed is dropped.
    pub fn publish(&self, event: Value) {
        {
            let mut inbox = self.lock();
            if let Some(id) = event.get("id").and_then(Value::as_str)
                && inbox.consumed.contains(id)
            {
                return;
            }
            inbox.waiting.push_back(event);
        }
        self.arrived.notify_waiters();
    }

    /// The next number for an event emitted by `key` (a task), counting from 0. A run and its
    /// resumption emit in the same order, so ids built from it are the same in both.
    pub(crate) fn next_number(&self, key: &str) -> u64 {
        let mut inbox = self.lock();
        let count = inbox.emitted.entry(key.to_owned()).or_default();
        *count += 1;
        *count - 1
    }

    /// Completes once at least one `listen` task is waiting for an event.
    pub async fn listening(&self) {
        let mut listeners = self.listeners.subscribe();
        // The sender lives as long as the bus, so this cannot fail while it is borrowed.
        let _ = listeners.wait_for(|count| *count > 0).await;
    }

    /// Completes once no `listen` task is waiting.
    pub async fn not_listening(&self) {
        let mut listeners = self.listeners.subscribe();
        let _ = listeners.wait_for(|count| *count == 0).await;
    }

    /// Waits until `pick` finds what it wants among the waiting events. `pick` sees every waiting
    /// event, oldest first, removes those it consumes, and returns `Some` once it is satisfied;
    /// it runs again after each new arrival and keeps its own state between runs.
    pub(crate) async fn receive<T, E>(
        &self,
        mut pick: impl FnMut(&mut VecDeque<Value>) -> Result<Option<T>, E>,
    ) -> Result<T, E> {
        self.listeners.send_modify(|count| *count += 1);
        let _waiting = Listener(&self.listeners);
        loop {
            let arrival = self.arrived.notified();
            tokio::pin!(arrival);
            // Registered before looking, so an event published in between still wakes us.
            arrival.as_mut().enable();
            let picked = pick(&mut self.lock().waiting);
            if let Some(found) = picked? {
                return Ok(found);
            }
            arrival.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a waiting listener for as long as it waits (even when its task is cancelled).
struct Listener<'a>(&'a watch::Sender<usize>);

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn first_of_type(kind: &str) -> impl FnMut(&mut VecDeque<Value>) -> Result<Option<Value>, ()> + '_ {
        move |waiting| {
            let at = waiting.iter().position(|event| event["type"] == kind);
            Ok(at.and_then(|at| waiting.remove(at)))
        }
    }

    #[tokio::test]
    async fn an_event_published_before_the_listener_waits_for_it() {
        let bus = EventBus::new();
        bus.publish(json!({ "id": "1", "type": "a" }));
        assert_eq!(bus.receive(first_of_type("a")).await, Ok(json!({ "id": "1", "type": "a" })));
    }

    #[tokio::test]
    async fn a_listener_wakes_on_a_later_arrival_and_others_stay_waiting() {
        let bus = Arc::new(EventBus::new());
        let listener = tokio::spawn({
            let bus = bus.clone();
            async move { bus.receive(first_of_type("b")).await }
        });
        tokio::time::timeout(Duration::from_secs(5), bus.listening()).await.unwrap();
        bus.publish(json!({ "id": "1", "type": "a" }));
        bus.publish(json!({ "id": "2", "type": "b" }));
        assert_eq!(listener.await.unwrap(), Ok(json!({ "id": "2", "type": "b" })));
        // The unmatched event is still there for a later listener; nobody is waiting now.
        assert_eq!(*bus.listeners.borrow(), 0);
        assert_eq!(bus.receive(first_of_type("a")).await, Ok(json!({ "id": "1", "type": "a" })));
    }

    #[tokio::test]
    async fn events_consumed_by_an_earlier_run_are_not_delivered_again() {
        let bus = EventBus::new().consumed(["old".to_owned()]);
        bus.publish(json!({ "id": "old", "type": "a" }));
        bus.publish(json!({ "id": "new", "type": "a" }));
        assert_eq!(bus.receive(first_of_type("a")).await, Ok(json!({ "id": "new", "type": "a" })));
    }
}
