//! Recording a run into a backend's execution log while it runs. The run's observer turns each
//! transition into JSON text once (redacted) and sends it on; a recorder running beside the run
//! appends whatever accumulated as one batch. Nothing is built twice: the text the observer makes
//! is the text the store keeps.

use serde_json::value::RawValue;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{Observer, TaskEvent};
use crate::backend::{Backend, BackendError};
use crate::secrets::Redactor;

/// The observer side: serializes each transition, redacted, and sends it to the recorder.
#[derive(Debug)]
pub struct EventSink {
    redactor: Redactor,
    sender: UnboundedSender<Box<RawValue>>,
    sent: usize,
}

/// The recorder side: the serialized transitions, in batches of whatever accumulated.
#[derive(Debug)]
pub struct EventBatches(UnboundedReceiver<Box<RawValue>>);

/// A sink for the run's observer and the batches it feeds.
pub fn channel(redactor: Redactor) -> (EventSink, EventBatches) {
    let (sender, receiver) = unbounded_channel();
    (EventSink { redactor, sender, sent: 0 }, EventBatches(receiver))
}

impl EventSink {
    /// Sends one event (a task transition, or an agent's step).
    pub fn send<T: serde::Serialize>(&mut self, event: &T) {
        if let Ok(raw) = serde_json::value::to_raw_value(event) {
            self.sent += 1;
            // The receiver outlives the run; a send can only fail once it is gone.
            let _ = self.sender.send(self.redactor.redact_raw(raw));
        }
    }

    /// How many transitions were sent.
    pub fn sent(&self) -> usize {
        self.sent
    }
}

impl Observer for EventSink {
    fn observe(&mut self, event: TaskEvent) {
        self.send(&event);
    }
}

impl EventBatches {
    /// The next batch: waits for one event, then takes everything else already waiting. `None`
    /// once the sink is gone and everything was taken.
    pub async fn next_batch(&mut self) -> Option<Vec<Box<RawValue>>> {
        let first = self.0.recv().await?;
        let mut batch = vec![first];
        while let Ok(more) = self.0.try_recv() {
            batch.push(more);
        }
        Some(batch)
    }

    /// Appends every batch to execution `id` (under the lease epoch `fence`) while the sink
    /// lives; the batch taken once it is gone is returned instead, for the caller to hand to
    /// `execution_finish` so the last events and the end are one write. After a failed append
    /// the rest is still drained (so the run never waits on a full channel) and the first error
    /// is returned, with nothing left over.
    pub async fn append_to<B: Backend>(
        mut self,
        backend: &B,
        id: &str,
        fence: Option<u64>,
    ) -> (Result<(), BackendError>, Vec<Box<RawValue>>) {
        let mut failure = None;
        while let Some(batch) = self.next_batch().await {
            // The sink is gone and this was all it had left: no batch comes after it.
            if self.0.is_closed() && self.0.is_empty() {
                return match failure {
                    None => (Ok(()), batch),
                    Some(error) => (Err(error), Vec::new()),
                };
            }
            if failure.is_none()
                && let Err(error) = backend.execution_append(id, fence, batch).await
            {
                failure = Some(error);
            }
        }
        (failure.map_or(Ok(()), Err), Vec::new())
    }
}
