//! Shared by the benches; each uses part of it.

#![allow(dead_code, reason = "each bench uses part of the support module")]

pub mod corpus;
pub mod server;
