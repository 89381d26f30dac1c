//! Running what the backend stores. Shared by the workflow and agent runners: the environment a
//! run gets (`environment`).
//! The Serverless Workflow interpreter core: `workflow`. The agent runner, so far its LLM
//! providers: `agent`. A stored skill's files written into a run's workspace: `skills`.

pub mod agent;
pub mod environment;
pub mod skills;
pub mod workflow;
