//! `stigmer event send`: a CloudEvent in, to wake the executions whose `listen` waits for it and
//! start the workflows whose `schedule.on` consumes it.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::common;
use super::help;
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Send events to the workflows that listen for them.
///
/// The event is kept (once per `source` and `id`), handed to every running execution whose
/// `listen` may consume it, and starts every workflow whose `schedule.on` consumes it — before
/// the command returns. A server also takes events over HTTP: `POST /v1/events`.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer event send --type com.example.order.paid --source shop --data '{\"order\": 7}'",
        "stigmer event send --type com.example.upload --source s3 --data @event-data.json",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct EventArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EventCommand,
}

/// `stigmer event …`.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Send one CloudEvent.
    #[command(after_help = help::after(
        &[
            "stigmer event send --type com.example.order.paid --source shop --data '{\"order\": 7}'",
            "stigmer event send --type com.example.note --source cli --subject order-7 --data 'shipped'",
            "stigmer event send --type com.example.upload --source s3 --id upload-42 --data @data.json",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Send {
        /// The event's `type`.
        #[arg(long = "type", value_name = "TYPE")]
        type_: String,
        /// The event's `source`.
        #[arg(long, default_value = "stigmer:cli")]
        source: String,
        /// The event's `subject`.
        #[arg(long)]
        subject: Option<String>,
        /// The event's `id` [default: a new UUID]; an event with a `source` and `id` sent before
        /// is not delivered again.
        #[arg(long)]
        id: Option<String>,
        /// The event's `data`: JSON, @FILE holding JSON, or plain text sent as a string.
        #[arg(long, value_name = "JSON|@FILE")]
        data: Option<String>,
    },
}

/// The largest `--data @FILE` read.
const MAX_DATA_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `stigmer event`.
pub async fn run(ctx: &CommandContext, args: &EventArgs) -> Result<(), CommandError> {
    let EventCommand::Send { type_, source, subject, id, data } = &args.command;
    let data = match data.as_deref() {
        Some(text) if text.starts_with('@') => {
            let path = std::path::Path::new(&text[1..]);
            let bytes = common::read_file(path, MAX_DATA_BYTES, "--data")?;
            Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                CommandError::user(format!("{} is not JSON: {e}", path.display()))
                    .hint("--data @FILE takes a JSON file")
            })?)
        }
        Some(text) => Some(super::execution::signal_data(text)?),
        None => None,
    };
    let mut event = crate::backend::events::new(type_, source, subject.as_deref(), data);
    if let Some(id) = id {
        event["id"] = Value::String(id.clone());
    }
    let backend = ctx.settings.backend()?;
    let receipt = backend.event_publish(event).await?;
    let text = if receipt.duplicate {
        format!("event {} from {source} was sent before; nothing more was done\n", receipt.id)
    } else {
        let mut text = format!(
            "sent {type_} (event {}): delivered to {} execution{}, started {}\n",
            receipt.id,
            receipt.delivered.len(),
            if receipt.delivered.len() == 1 { "" } else { "s" },
            receipt.started.len()
        );
        for started in &receipt.started {
            let _ = writeln!(text, "  started execution {started}");
        }
        text
    };
    ctx.out(&text)
}
