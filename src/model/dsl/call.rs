//! The kinds of `call`: HTTP, gRPC, OpenAPI, A2A and MCP calls, Stigmer's `agent` call, calls
//! to custom or cataloged functions, and the parts of AsyncAPI calls that hold no tasks, with
//! their typed `with` arguments. (`CallTask` and `call: asyncapi` itself hold tasks, through a
//! subscription's `foreach`, so they are in `task.rs`.)

// Doc comments are the JSON Schema descriptions editors show: product names (OAuth2, OpenAPI,
// AsyncAPI, CloudEvents) are written as prose, not code.
#![allow(clippy::doc_markdown, reason = "doc comments double as schema descriptions")]

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::ReferenceableAuthenticationPolicy;
use super::base::TaskBase;
use super::data::{Duration, Endpoint, ExternalResource, ObjectOrExpression};
use super::support::{self, deserialize_string_or_object};

/// Gives each built-in call kind its `call` value (`CALL`) and adds it, as a constant
/// property, to the kind's schema.
macro_rules! call_discriminator {
    ($($ty:ident = $name:literal),+ $(,)?) => {
        $(
            impl $ty {
                /// The value of `call` that selects this kind.
                pub(super) const CALL: &'static str = $name;

                /// Adds the `call` discriminator to this call's schema.
                fn add_call_property(schema: &mut schemars::Schema) {
                    super::support::add_const_property(schema, "call", $name);
                }
            }
        )+
    };
}
pub(super) use call_discriminator;

/// The `call` values of the built-in call kinds; any other value calls a function. (Each is
/// also its kind's `CALL`; a test in `dispatch.rs` keeps the two the same.)
pub const BUILTIN_CALLS: &[&str] = &["asyncapi", "grpc", "http", "openapi", "a2a", "mcp", "agent"];

call_discriminator! {
    CallGrpc = "grpc",
    CallHttp = "http",
    CallOpenApi = "openapi",
    CallA2a = "a2a",
    CallMcp = "mcp",
    CallAgent = "agent",
}

/// `call: http`: an HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallHttp::add_call_property)]
pub struct CallHttp {
    /// The request to send.
    pub with: HttpArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an HTTP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpArguments {
    /// The HTTP method, e.g. `get` or `post`.
    pub method: String,
    /// The endpoint to send the request to.
    pub endpoint: Endpoint,
    /// The request headers: a name/value map, or a runtime expression producing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<StringMapOrExpression>,
    /// The request body, if any.
    #[serde(default, deserialize_with = "support::deserialize_present", skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The query parameters: a name/value map, or a runtime expression producing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<StringMapOrExpression>,
    /// What the call outputs; defaults to `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<HttpOutputFormat>,
    /// Whether 3xx statuses are accepted instead of raising errors; defaults to `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
}

impl HttpArguments {
    /// A request with this method to this endpoint.
    #[must_use]
    pub fn new(method: impl Into<String>, endpoint: impl Into<Endpoint>) -> Self {
        Self {
            method: method.into(),
            endpoint: endpoint.into(),
            headers: None,
            body: None,
            query: None,
            output: None,
            redirect: None,
        }
    }
}

/// A map of strings, or a runtime expression producing one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum StringMapOrExpression {
    /// A name/value map.
    Map(IndexMap<String, String>),
    /// A runtime expression producing the map.
    #[schemars(schema_with = "support::runtime_expression_schema")]
    Expression(String),
}
deserialize_string_or_object!(StringMapOrExpression, "map", Expression, Map);

/// What an HTTP or OpenAPI call outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HttpOutputFormat {
    /// The base64-encoded response content.
    Raw,
    /// The response content, deserialized when possible.
    Content,
    /// The whole HTTP response.
    Response,
}

/// `call: grpc`: a gRPC method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallGrpc::add_call_property)]
pub struct CallGrpc {
    /// The method to call.
    pub with: GrpcArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of a gRPC call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcArguments {
    /// The proto resource describing the service.
    pub proto: ExternalResource,
    /// The service to call.
    pub service: GrpcService,
    /// The name of the method to call.
    pub method: String,
    /// The arguments, if any, of the method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Map<String, Value>>,
}

/// A gRPC service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcService {
    /// The name of the service.
    pub name: String,
    /// The host of the service.
    #[schemars(regex(pattern = r"^[a-zA-Z0-9](?:[a-zA-Z0-9-.]{0,61}[a-zA-Z0-9])?$"))]
    pub host: String,
    /// The port of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The authentication policy, if any, of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<ReferenceableAuthenticationPolicy>>,
}

/// `call: openapi`: an operation described by an OpenAPI document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallOpenApi::add_call_property)]
pub struct CallOpenApi {
    /// The operation to call.
    pub with: OpenApiArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an OpenAPI call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenApiArguments {
    /// The OpenAPI document defining the operation.
    pub document: ExternalResource,
    /// The id of the operation to call.
    pub operation_id: String,
    /// The parameters, if any, of the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// The authentication policy, if any, to call the operation with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<ReferenceableAuthenticationPolicy>>,
    /// What the call outputs; defaults to `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<HttpOutputFormat>,
    /// Whether 3xx statuses are accepted instead of raising errors; defaults to `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
}

/// The server an AsyncAPI operation is called on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncApiServer {
    /// The server's name.
    pub name: String,
    /// The server's variables, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Map<String, Value>>,
}

/// A protocol used to select an AsyncAPI server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AsyncApiProtocol {
    /// AMQP 0-9-1.
    Amqp,
    /// AMQP 1.0.
    Amqp1,
    /// Anypoint MQ.
    #[serde(rename = "anypointmq")]
    AnypointMq,
    /// Google Cloud Pub/Sub.
    #[serde(rename = "googlepubsub")]
    GooglePubSub,
    /// HTTP.
    Http,
    /// IBM MQ.
    #[serde(rename = "ibmmq")]
    IbmMq,
    /// JMS.
    Jms,
    /// Kafka.
    Kafka,
    /// Mercure.
    Mercure,
    /// MQTT.
    Mqtt,
    /// MQTT 5.
    Mqtt5,
    /// NATS.
    Nats,
    /// Pulsar.
    Pulsar,
    /// Redis.
    Redis,
    /// Amazon SNS.
    Sns,
    /// Solace.
    Solace,
    /// Amazon SQS.
    Sqs,
    /// STOMP.
    Stomp,
    /// WebSockets.
    Ws,
}

/// A message to publish with an AsyncAPI operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncApiOutboundMessage {
    /// The message's payload, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
    /// The message's headers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
}

/// A message consumed by an AsyncAPI subscription (the items a subscription outputs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncApiInboundMessage {
    /// The message's payload, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
    /// The message's headers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    /// The message's correlation id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// How many messages, or for how long, a subscription consumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct AsyncApiMessageConsumptionPolicy {
    /// When to stop consuming: after an amount of messages, while or until a condition holds.
    #[serde(flatten)]
    pub limit: ConsumptionLimit,
    /// The period over which messages are consumed, if limited.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
}

/// When a subscription stops consuming messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConsumptionLimit {
    /// After this many (filtered) messages.
    Amount(u64),
    /// While this runtime expression, evaluated after each message, holds.
    #[schemars(schema_with = "support::runtime_expression_schema")]
    While(String),
    /// Until this runtime expression, evaluated before each message, holds.
    #[schemars(schema_with = "support::runtime_expression_schema")]
    Until(String),
}

/// `call: a2a`: an A2A (agent-to-agent) JSON-RPC method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallA2a::add_call_property)]
pub struct CallA2a {
    /// The method to call.
    pub with: A2aArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an A2A call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A2aArguments {
    /// The agent card describing the agent to call; required unless `server` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_card: Option<ExternalResource>,
    /// The A2A server to call; required unless `agentCard` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Endpoint>,
    /// The JSON-RPC method to send.
    pub method: A2aMethod,
    /// The method's parameters: an object, or a runtime expression producing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ObjectOrExpression>,
}

/// An A2A JSON-RPC method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum A2aMethod {
    /// `message/send`.
    #[serde(rename = "message/send")]
    MessageSend,
    /// `message/stream`.
    #[serde(rename = "message/stream")]
    MessageStream,
    /// `tasks/get`.
    #[serde(rename = "tasks/get")]
    TasksGet,
    /// `tasks/list`.
    #[serde(rename = "tasks/list")]
    TasksList,
    /// `tasks/cancel`.
    #[serde(rename = "tasks/cancel")]
    TasksCancel,
    /// `tasks/resubscribe`.
    #[serde(rename = "tasks/resubscribe")]
    TasksResubscribe,
    /// `tasks/pushNotificationConfig/set`.
    #[serde(rename = "tasks/pushNotificationConfig/set")]
    TasksPushNotificationConfigSet,
    /// `tasks/pushNotificationConfig/get`.
    #[serde(rename = "tasks/pushNotificationConfig/get")]
    TasksPushNotificationConfigGet,
    /// `tasks/pushNotificationConfig/list`.
    #[serde(rename = "tasks/pushNotificationConfig/list")]
    TasksPushNotificationConfigList,
    /// `tasks/pushNotificationConfig/delete`.
    #[serde(rename = "tasks/pushNotificationConfig/delete")]
    TasksPushNotificationConfigDelete,
    /// `agent/getAuthenticatedExtendedCard`.
    #[serde(rename = "agent/getAuthenticatedExtendedCard")]
    AgentGetAuthenticatedExtendedCard,
}

/// `call: mcp`: a Model Context Protocol method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallMcp::add_call_property)]
pub struct CallMcp {
    /// The method to call.
    pub with: McpArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an MCP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpArguments {
    /// The MCP protocol version; defaults to `2025-06-18`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The MCP method to call.
    pub method: McpMethod,
    /// The method's parameters: an object, or a runtime expression producing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ObjectOrExpression>,
    /// How long the call may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How to reach the MCP server.
    pub transport: McpTransport,
    /// The client performing the call, if described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<McpClient>,
}

/// An MCP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum McpMethod {
    /// `tools/list`: lists the available tools.
    #[serde(rename = "tools/list")]
    ToolsList,
    /// `tools/call`: calls a tool.
    #[serde(rename = "tools/call")]
    ToolsCall,
    /// `prompts/list`: lists the available prompts.
    #[serde(rename = "prompts/list")]
    PromptsList,
    /// `prompts/get`: gets a prompt.
    #[serde(rename = "prompts/get")]
    PromptsGet,
    /// `resources/list`: lists the available resources.
    #[serde(rename = "resources/list")]
    ResourcesList,
    /// `resources/read`: reads a resource.
    #[serde(rename = "resources/read")]
    ResourcesRead,
    /// `resources/templates/list`: lists the available resource templates.
    #[serde(rename = "resources/templates/list")]
    ResourcesTemplatesList,
}

/// How an MCP call reaches its server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct McpTransport {
    /// The transport: `http` or `stdio`.
    #[serde(flatten)]
    pub kind: McpTransportKind,
    /// Additional transport-specific options, if any.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
}

/// An MCP transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum McpTransportKind {
    /// Streamable HTTP.
    Http(McpHttpTransport),
    /// A local process speaking over standard input/output.
    Stdio(McpStdioTransport),
}

/// The HTTP transport of an MCP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpHttpTransport {
    /// The MCP server endpoint.
    pub endpoint: Endpoint,
    /// The HTTP headers, if any, sent with requests.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
}

/// The STDIO transport of an MCP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpStdioTransport {
    /// The command running the MCP server.
    pub command: String,
    /// The command's arguments, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The environment variables, if any, of the MCP server.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, String>,
}

/// The client of an MCP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpClient {
    /// The client's name.
    pub name: String,
    /// The client's version.
    pub version: String,
}

/// `call: agent` (Stigmer extension): sends a message to a Stigmer `Agent` resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallAgent::add_call_property)]
pub struct CallAgent {
    /// The agent and the message to send it.
    pub with: CallAgentArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an agent call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallAgentArguments {
    /// The name of the `Agent` resource to call.
    pub agent: String,
    /// The message to send (may embed runtime expressions).
    pub message: String,
    /// Environment variables, if any, for this call.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Overrides, if any, of the agent's execution settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<AgentCallConfig>,
}

impl CallAgentArguments {
    /// A message to the named agent.
    #[must_use]
    pub fn new(agent: impl Into<String>, message: impl Into<String>) -> Self {
        Self { agent: agent.into(), message: message.into(), env: IndexMap::new(), config: None }
    }
}

/// Overrides of an agent's execution settings for one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentCallConfig {
    /// The model to use instead of the agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How long the call may take, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

/// A call to a function: declared in `use.functions`, custom, or cataloged (`name:version@catalog`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct CallFunction {
    /// The name of the function to call.
    #[schemars(schema_with = "function_name_schema")]
    pub call: String,
    /// The arguments, if any, of the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Map<String, Value>>,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// Schema of a function name: any string but the built-in call kinds.
fn function_name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    support::schema_from(serde_json::json!({
        "type": "string",
        "description": "The name of the function to call.",
        "not": { "enum": BUILTIN_CALLS },
    }))
}
