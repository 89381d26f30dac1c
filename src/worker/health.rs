//! The server's health loop: each org's resources probed (`runner::health`) soon after its
//! store changes and every interval otherwise, the conditions recorded in the org's store.
//! A probe that fails to record is logged and tried at the next turn.
//!
//! Every replica on a shared database probes: probes only read and record observations, so
//! doing it twice costs MCP server starts, never correctness.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::runner::health::{self, ProbeOptions};
use crate::server::Service;

/// How often the loop looks for stores that changed.
const LOOK: Duration = Duration::from_secs(2);

/// Runs until `shutdown` completes; `interval` apart at most, per org.
pub async fn run(service: Arc<Service>, interval: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    // Per org: the store version last probed, and when.
    let mut probed: HashMap<String, (u64, Instant)> = HashMap::new();
    loop {
        let backends = match service.org_backends().await {
            Ok(backends) => backends,
            Err(error) => {
                tracing::warn!(%error, "the health loop cannot open the org stores");
                Vec::new()
            }
        };
        for (org, backend) in backends {
            let Ok(version) = backend.version().await else { continue };
            let due = probed.get(&org).is_none_or(|(seen, at)| *seen != version || at.elapsed() >= interval);
            if !due {
                continue;
            }
            let probing = async {
                let found = health::probe(&backend, ProbeOptions::default()).await?;
                let failing = found
                    .iter()
                    .flat_map(|o| &o.conditions)
                    .filter(|c| c.status == crate::backend::condition::ConditionStatus::False)
                    .count();
                backend.conditions_record(found).await?;
                Ok::<_, crate::backend::BackendError>(failing)
            };
            tokio::select! {
                outcome = probing => match outcome {
                    Ok(0) => tracing::debug!(org, "health probed"),
                    Ok(failing) => tracing::warn!(org, failing, "health probed: conditions not ready"),
                    Err(error) => tracing::warn!(org, %error, "health probe failed"),
                },
                () = &mut shutdown => return,
            }
            probed.insert(org, (version, Instant::now()));
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK) => {}
            () = &mut shutdown => return,
        }
    }
}
