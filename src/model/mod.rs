//! Typed resources: the envelope, one file per kind, references and schema derivation.
//! This layer does no I/O.
//!
//! The model is also stigmer's Rust SDK: build resources in code and print them as the manifests
//! `stigmer export` writes.
//!
//! ```
//! use stigmer::model::dsl::{Task, TaskList};
//! use stigmer::model::{Agent, AgentSpec, Workflow, WorkflowSpec};
//!
//! let agent = Agent::new(
//!     "support-bot",
//!     AgentSpec::new("You answer customer questions politely.")
//!         .description("First-line support")
//!         .model("ollama", "qwen2.5-coder:7b")
//!         .skill("refund-policy")
//!         .mcp_server("tickets", ["search", "create"]),
//! )
//! .label("team", "cs");
//!
//! let workflow = Workflow::new(
//!     "triage",
//!     WorkflowSpec::new(
//!         TaskList::new()
//!             .push("classify", Task::call_agent("support-bot", "${ .ticket.text }"))
//!             .push("done", Task::set(serde_json::json!({"triaged": true}))),
//!     ),
//! );
//!
//! let yaml = agent.to_yaml().unwrap();
//! assert!(yaml.contains("kind: Agent"));
//! assert!(yaml.contains("skillRefs:"));
//! println!("{yaml}---\n{}", workflow.to_yaml().unwrap());
//! ```

pub mod agent;
pub mod canonical;
pub mod dsl;
pub mod environment;
pub mod instance;
pub mod kind;
pub mod mcp_server;
pub mod meta;
pub mod reference;
pub mod resource;
pub mod runtime;
pub mod schedule;
pub mod skill;
pub mod workflow;

pub use agent::{
    Agent, AgentSpec, McpServerDefinition, McpServerUsage, ModelConfig, RunLimits, SubAgent, ToolApproval,
    ToolApprovalOverride, ToolSelection,
};
pub use environment::{Declaration, Declarations, Environment, EnvironmentSpec, EnvironmentValue, VariableSpec};
pub use instance::{AgentInstance, AgentInstanceSpec, WorkflowInstance, WorkflowInstanceSpec};
pub use kind::{Kind, UnknownKind};
pub use mcp_server::{
    DockerTransport, HttpTransport, McpServer, McpServerSpec, PortMapping, StdioTransport, VolumeMount,
};
pub use meta::{API_VERSION, ObjectMeta, Visibility};
pub use reference::{Reference, ResourceRef};
pub use resource::{Resource, ResourceSpec};
pub use runtime::{AgentExecution, AgentExecutionSpec, Session, SessionSpec, WorkflowExecution, WorkflowExecutionSpec};
pub use skill::{BundleContentError, Skill, SkillBundle, SkillFile, SkillSpec};
pub use workflow::{Workflow, WorkflowSpec};

/// Escapes one reference token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`): task and
/// map-key names become pointer segments wherever diagnostics name a place.
#[must_use]
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Expands `$m!(Variant, SpecType)` for every kind, so per-kind dispatch is written once.
macro_rules! for_each_kind {
    ($m:ident) => {
        $m! {
            Environment => EnvironmentSpec,
            Skill => SkillSpec,
            McpServer => McpServerSpec,
            Agent => AgentSpec,
            AgentInstance => AgentInstanceSpec,
            Workflow => WorkflowSpec,
            WorkflowInstance => WorkflowInstanceSpec,
            Session => SessionSpec,
            AgentExecution => AgentExecutionSpec,
            WorkflowExecution => WorkflowExecutionSpec,
        }
    };
}
pub(crate) use for_each_kind;

macro_rules! any_resource {
    ($($kind:ident => $spec:ident),* $(,)?) => {
        /// A resource of any kind: the dynamic form, for streams of mixed manifests.
        // Boxed: a workflow is ~2.7 KB and an environment a few hundred bytes, and an unboxed
        // enum is sized by its largest variant — 29 MB for 10,000 resources held while applying.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyResource {
            $(
                #[doc = concat!("A `", stringify!($kind), "`.")]
                $kind(Box<Resource<$spec>>),
            )*
        }

        impl AnyResource {
            /// The resource's kind.
            #[must_use]
            pub fn kind(&self) -> Kind {
                match self { $(Self::$kind(_) => Kind::$kind,)* }
            }

            /// The resource's metadata.
            #[must_use]
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Self::$kind(r) => &r.metadata,)* }
            }

            /// References to other resources, with JSON pointers from the manifest root.
            #[must_use]
            pub fn references(&self) -> Vec<Reference> {
                match self { $(Self::$kind(r) => r.spec.references(),)* }
            }

            /// Reads a manifest whose kind is already known.
            ///
            /// # Errors
            /// Fails when the value does not match the kind's shape.
            pub fn from_value(kind: Kind, value: serde_json::Value) -> Result<Self, serde_json::Error> {
                match kind { $(Kind::$kind => serde_json::from_value(value).map(|r| Self::$kind(Box::new(r))),)* }
            }

            /// The JSON Schema of one kind's manifests.
            #[must_use]
            pub fn schema_for(kind: Kind) -> schemars::Schema {
                let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
                match kind { $(Kind::$kind => generator.into_root_schema_for::<Resource<$spec>>(),)* }
            }
        }

        impl serde::Serialize for AnyResource {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self { $(Self::$kind(r) => r.serialize(serializer),)* }
            }
        }

        $(
            impl From<Resource<$spec>> for AnyResource {
                fn from(resource: Resource<$spec>) -> Self {
                    Self::$kind(Box::new(resource))
                }
            }

            impl From<Box<Resource<$spec>>> for AnyResource {
                fn from(resource: Box<Resource<$spec>>) -> Self {
                    Self::$kind(resource)
                }
            }
        )*
    };
}
for_each_kind!(any_resource);

impl AnyResource {
    /// The resource's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The address people type and read: `agent/support-bot`.
    #[must_use]
    pub fn address(&self) -> String {
        format!("{}/{}", self.kind().cli_name(), self.name())
    }

    /// Every organization the resource names: its own (`metadata.org`) and those its references
    /// name. On a server each must be the caller's; validation and the org store both ask here.
    #[must_use]
    pub fn named_orgs(&self) -> Vec<NamedOrg> {
        let own = self.metadata().org.iter().map(|org| NamedOrg { org: org.clone(), reference: None });
        let referenced = (self.references().into_iter())
            .filter_map(|reference| Some(NamedOrg { org: reference.org.clone()?, reference: Some(reference) }));
        own.chain(referenced).collect()
    }
}

/// An organization a resource names, in its metadata or in one of its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedOrg {
    /// The organization.
    pub org: String,
    /// The reference that names it; `None` for the resource's own `metadata.org`.
    pub reference: Option<Reference>,
}

impl NamedOrg {
    /// Where the manifest says it: `/metadata/org`, or the reference's `.../org`.
    #[must_use]
    pub fn pointer(&self) -> String {
        self.reference.as_ref().map_or_else(|| "/metadata/org".to_owned(), |r| format!("{}/org", r.pointer))
    }
}
