//! `Workflow`: a CNCF Serverless Workflow 1.0 document carried in `spec`, plus Stigmer's
//! `envSpec`. The `document` block may be omitted; it is then derived from the metadata.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dsl;
use super::environment::EnvironmentSpec;
use super::kind::Kind;
use super::reference::{Reference, ResourceRef};
use super::resource::{Resource, ResourceSpec};

/// A `Workflow` resource.
pub type Workflow = Resource<WorkflowSpec>;

/// The DSL version a derived `document` declares.
pub const DSL_VERSION: &str = "1.0.0";

/// A Serverless Workflow 1.0 document, with Stigmer's `envSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSpec {
    /// The DSL document header; derived from the metadata when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<dsl::Document>,
    /// How the workflow's input is validated and transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<dsl::Input>,
    /// Reusable components: authentications, errors, extensions, functions, retries, secrets.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<dsl::Use>,
    /// The tasks, run in order.
    #[serde(rename = "do")]
    pub do_: dsl::TaskList,
    /// How long the workflow may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<dsl::TimeoutOrReference>,
    /// How the workflow's output is transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<dsl::Output>,
    /// When the workflow runs on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<dsl::Schedule>,
    /// How its schedule's slots are handled: the time zone of a `cron`, missed slots, overlapping
    /// runs (a stigmer extension; the DSL allows nothing more in `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_policy: Option<super::schedule::SchedulePolicy>,
    /// How runtime expressions are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<dsl::Evaluate>,
    /// Variables the workflow needs, available as `$secret`/`$context` at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_spec: Option<EnvironmentSpec>,
}

impl ResourceSpec for WorkflowSpec {
    const KIND: Kind = Kind::Workflow;

    fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        self.do_.walk("/spec", &mut |visit| {
            if let dsl::Task::Call(dsl::CallTask::Agent(call)) = visit.task {
                let target = ResourceRef::named(call.with.agent.clone());
                out.push(Reference::to(
                    &[Kind::Agent, Kind::AgentInstance],
                    &target,
                    format!("{}/with/agent", visit.pointer),
                ));
            }
        });
        out
    }
}

impl WorkflowSpec {
    /// A workflow running these tasks.
    #[must_use]
    pub fn new(tasks: dsl::TaskList) -> Self {
        Self { do_: tasks, ..Self::default() }
    }

    /// The `document` header: as written, or derived from the resource's name.
    #[must_use]
    pub fn document_for(&self, name: &str, namespace: Option<&str>) -> dsl::Document {
        self.document.clone().unwrap_or_else(|| {
            let mut document = dsl::Document::new(namespace.unwrap_or("default"), name, "0.1.0");
            DSL_VERSION.clone_into(&mut document.dsl);
            document
        })
    }

    /// The bare Serverless Workflow document this spec describes (without `envSpec`).
    #[must_use]
    pub fn to_dsl(&self, name: &str, namespace: Option<&str>) -> dsl::Workflow {
        dsl::Workflow {
            document: self.document_for(name, namespace),
            input: self.input.clone(),
            use_: self.use_.clone(),
            do_: self.do_.clone(),
            timeout: self.timeout.clone(),
            output: self.output.clone(),
            schedule: self.schedule.clone(),
            evaluate: self.evaluate.clone(),
        }
    }
}
