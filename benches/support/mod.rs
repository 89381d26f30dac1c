//! Shared by the benches; each uses part of it.

#![allow(dead_code, reason = "each bench uses part of the support module")]

pub mod corpus;
// The tests' private PostgreSQL cluster, shared rather than copied.
#[path = "../../tests/support/postgres.rs"]
pub mod postgres;
pub mod runs;
pub mod server;

/// The sample at quantile `q` (0.5: the median) of `sorted`, sorted ascending.
pub fn quantile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss, reason = "an index")]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
