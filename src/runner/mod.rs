//! Running what the backend stores. Shared by the workflow and agent runners (which arrive with
//! their own modules): the environment a run gets (`environment`).
//! The Serverless Workflow interpreter core: `workflow`. The agent runner: `agent`.

pub mod agent;
pub mod environment;
pub mod workflow;
