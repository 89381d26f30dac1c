//! The server's scheduler loop: every [`TICK`], one tick of `backend::schedule::Scheduler` per
//! org. A tick that fails is logged and tried again at the next; nothing here decides what a
//! schedule means.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::schedule::{Scheduler, TICK};

use super::Service;

/// Runs until `shutdown` completes.
pub async fn run(service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut schedulers: HashMap<PathBuf, Scheduler> = HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = &mut shutdown => return,
        }
        let backends = match service.org_backends().await {
            Ok(backends) => backends,
            Err(error) => {
                tracing::warn!(%error, "the scheduler cannot open the org stores");
                continue;
            }
        };
        for (_, backend) in backends {
            let scheduler = schedulers.entry(backend.path().to_path_buf()).or_default();
            match scheduler.tick(&backend, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(started) => tracing::info!(store = %backend.path().display(), started, "schedules fired"),
                Err(error) => tracing::warn!(store = %backend.path().display(), %error, "a schedule tick failed"),
            }
        }
    }
}
