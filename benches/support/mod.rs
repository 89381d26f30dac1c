//! Shared by the benches.

pub mod corpus;
