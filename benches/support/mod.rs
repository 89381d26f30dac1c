//! Shared by the benches; each uses part of it.

#![allow(dead_code, reason = "each bench uses part of the support module")]

pub mod corpus;
// The tests' private PostgreSQL cluster, shared rather than copied.
#[path = "../../tests/support/postgres.rs"]
pub mod postgres;
pub mod runs;
pub mod server;
