//! `stigmer server migrate`: bring a store's schema up to this stigmer's version.

use std::time::Duration;

use clap::Args;

use super::super::{CommandContext, CommandError, help};
use super::{Place, PlaceArgs, connect, store_error};
use crate::server::migration::org_stores;
use crate::store::redb::{OpenOptions, Store};

/// Bring a store's schema up to this stigmer's version.
///
/// A database is migrated in place, one numbered migration at a time, each in its own
/// transaction (`stigmer server --store` does the same when it starts); a database whose schema
/// is newer than this stigmer is refused and left as it is. A data directory's org stores are
/// each brought to this stigmer's store format.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer server migrate --store postgres://stigmer@db.internal/stigmer",
        "stigmer server migrate --data /var/lib/stigmer",
    ],
    &[help::COLOR, help::HOME, help::STORE],
))]
pub struct MigrateArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// Runs `stigmer server migrate`.
pub async fn run(ctx: &CommandContext, args: &MigrateArgs) -> Result<(), CommandError> {
    match args.place.resolve(ctx) {
        Place::Database(options) => {
            let database = connect(&options).await?;
            let migrated = database.migrate().await.map_err(|e| store_error(e, &options))?;
            if migrated.from == migrated.to {
                ctx.out(&format!(
                    "{}: the stigmer schema is at version {}; nothing to do\n",
                    database.describe(),
                    migrated.to
                ))
            } else {
                ctx.out(&format!(
                    "{}: migrated the stigmer schema from version {} to {}\n",
                    database.describe(),
                    migrated.from,
                    migrated.to
                ))
            }
        }
        Place::Directory(data) => {
            let stores = org_stores(&data);
            let count = stores.len();
            for (org, path) in stores {
                let options = OpenOptions::new(
                    Duration::from_secs(10),
                    format!("stigmer server migrate (pid {})", std::process::id()),
                );
                tokio::task::spawn_blocking(move || Store::open(&path, &options).map(drop))
                    .await
                    .map_err(|e| CommandError::user(format!("migrating org {org} did not finish: {e}")))??;
            }
            ctx.out(&format!(
                "{}: {count} org store{} at store format {}\n",
                data.display(),
                if count == 1 { "" } else { "s" },
                crate::store::redb::FORMAT_VERSION
            ))
        }
    }
}
