//! Running what the backend stores. Shared by the workflow and agent runners: the environment a
//! run gets (`environment`). The Serverless Workflow interpreter: `workflow`. The agent runner
//! (providers, MCP client, the tool loop, sessions): `agent`. A stored skill's files written into
//! a run's workspace: `skills`.

pub mod agent;
pub mod environment;
pub mod health;
pub mod skills;
pub mod workflow;
