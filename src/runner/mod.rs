//! Running what the backend stores. Shared by the workflow and agent runners: the environment a
//! run gets (`environment`).
//! The Serverless Workflow interpreter core: `workflow`. The agent runner, so far its LLM
//! providers: `agent`.

pub mod agent;
pub mod environment;
pub mod workflow;
