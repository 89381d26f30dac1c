//! stigmer: the open execution plane for AI agents and workflows.
//!
//! People keep agents, skills, MCP servers, environments and workflows as YAML manifests in a
//! directory. This library reads those manifests ([`manifest`]), models them as typed resources
//! ([`model`]) and validates them with precise, complete diagnostics ([`validate`]). The `stigmer`
//! binary is a thin layer over it ([`cli`]); the library itself never prints.

pub mod backend;
pub mod cli;
pub mod console;
pub mod expr;
pub mod manifest;
pub mod model;
pub mod parallel;
pub mod private_fs;
pub mod proto;
pub mod reconcile;
pub mod remote;
pub mod runner;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod store;
pub mod validate;
pub mod worker;
