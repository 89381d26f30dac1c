//! The agent runner: an LLM with tools from MCP servers, skills and sub-agents. It must not
//! hard-code a provider. So far it holds the MCP client (`mcp`).

pub mod mcp;
