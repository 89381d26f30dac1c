//! The server's scheduler loop: every [`TICK`], one tick of `backend::schedule::Scheduler` per
//! org. A tick that fails is logged and tried again at the next; nothing here decides what a
//! schedule means.
//!
//! On a database several replicas share, one of them fires at a time: the one holding the
//! scheduler's session lock ([`crate::store::postgres::Leadership`]). When it dies its session
//! ends, the lock goes, and another replica takes over within a second. Slots fire exactly once
//! either way — the slot's key in the database is the guarantee; the lock only keeps the
//! replicas from racing each other's schedule state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::schedule::{Scheduler, TICK};
use crate::store::postgres::{Leadership, PgStore};

use super::Service;

/// How often a replica that does not lead tries to, and one that leads checks it still does.
const LOOK_AT_LEADERSHIP: Duration = Duration::from_secs(1);

/// Runs until `shutdown` completes.
pub async fn run(service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut schedulers: HashMap<String, Scheduler> = HashMap::new();
    let mut leading = Leading::new(service.database().cloned());
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = &mut shutdown => return,
        }
        if !leading.leads().await {
            // What another replica fires, this one's schedulers must read afresh when it leads.
            schedulers.clear();
            continue;
        }
        let backends = match service.org_backends().await {
            Ok(backends) => backends,
            Err(error) => {
                tracing::warn!(%error, "the scheduler cannot open the org stores");
                continue;
            }
        };
        for (org, backend) in backends {
            let scheduler = schedulers.entry(org.clone()).or_default();
            match scheduler.tick(&backend, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(started) => tracing::info!(org, started, "schedules fired"),
                Err(error) => tracing::warn!(org, %error, "a schedule tick failed"),
            }
        }
    }
}

/// Whether this replica fires schedules now.
enum Leading {
    /// A server on its own data directory: always.
    Alone,
    /// A replica of a database: while it holds the scheduler's lock.
    Replica { database: PgStore, held: Option<Leadership>, looked: Option<Instant> },
}

impl Leading {
    fn new(database: Option<PgStore>) -> Self {
        match database {
            Some(database) => Self::Replica { database, held: None, looked: None },
            None => Self::Alone,
        }
    }

    async fn leads(&mut self) -> bool {
        let Self::Replica { database, held, looked } = self else { return true };
        if looked.is_some_and(|at| at.elapsed() < LOOK_AT_LEADERSHIP) {
            return held.is_some();
        }
        *looked = Some(Instant::now());
        match held {
            Some(leadership) => {
                if !leadership.holds().await {
                    tracing::warn!(
                        "lost the scheduler's lock with the database connection; another replica fires schedules"
                    );
                    *held = None;
                }
            }
            None => match database.lead_schedules().await {
                Ok(Some(leadership)) => {
                    tracing::info!("this replica fires the schedules");
                    *held = Some(leadership);
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot ask the database who fires the schedules"),
            },
        }
        held.is_some()
    }
}
