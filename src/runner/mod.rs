//! Running what the backend stores. Shared by the workflow and agent runners: the environment a
//! run gets (`environment`). The Serverless Workflow interpreter: `workflow`. The agent runner
//! (providers, MCP client, the tool loop, sessions): `agent`.

pub mod agent;
pub mod environment;
pub mod workflow;
