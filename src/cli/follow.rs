//! Following an execution that runs elsewhere (on a server's worker): its events as they are
//! appended, until it is over. Shared by `workflow run` against a server and `execution logs -f`.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;

use super::{CommandError, common};
use crate::backend::{Backend, BackendError, ExecutionRecord};
use crate::cli::backend::AnyBackend;

/// How long to wait before following again when the server could not be reached.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What following saw at the end.
pub(super) enum Followed {
    /// The execution is over: its final record.
    Ended(Box<ExecutionRecord>),
    /// Ctrl-C: the run goes on without us.
    Detached,
}

/// Follows execution `id` from event `after`, handing every batch of new events to `show`,
/// until it is over or Ctrl-C. A broken stream (a server restart) is followed again from the
/// last event seen.
///
/// # Errors
/// The execution does not exist, or the backend refused.
pub(super) async fn events(
    backend: &AnyBackend,
    id: &str,
    mut after: u64,
    mut show: impl FnMut(&[(u64, Value)]) -> Result<(), CommandError>,
) -> Result<Followed, CommandError> {
    let interrupted = common::shutdown();
    tokio::pin!(interrupted);
    loop {
        let feed = tokio::select! {
            feed = backend.execution_follow(id, after) => feed,
            () = &mut interrupted => return Ok(Followed::Detached),
        };
        match feed {
            Ok(mut feed) => loop {
                let update = tokio::select! {
                    update = feed.next() => update,
                    () = &mut interrupted => return Ok(Followed::Detached),
                };
                match update {
                    Some(Ok(update)) => {
                        after = update.events.last().map_or(after, |(sequence, _)| *sequence);
                        show(&update.events)?;
                        if update.record.status.is_final() {
                            return Ok(Followed::Ended(Box::new(update.record)));
                        }
                    }
                    Some(Err(BackendError::Unreachable { .. })) | None => break,
                    Some(Err(error)) => return Err(error.into()),
                }
            },
            Err(BackendError::Unreachable { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
            () = &mut interrupted => return Ok(Followed::Detached),
        }
    }
}
