//! The interpreter: runs task lists, applies each task's data flow (`if`, `input`, `output`,
//! `export`), follows flow directives and drives the composite tasks.
//!
//! Futures are boxed where tasks nest (the tree is recursive) and fork branches are polled
//! together on the run's own tokio task, so nothing needs `'static` and a losing branch is
//! cancelled just by dropping it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::bus::EventBus;
use super::error::WorkflowError;
use super::eval::{self, Variables, expression_code, truthy};
use super::events::{Observer, TaskEvent, Transition};
use super::http::{self, Credentials};
use super::listen::{self, Consumption, Judge};
use super::oauth2;
use super::openapi;
use super::process::{self, Spawn};
use super::{Recorded, RunOptions};
use crate::expr::enclosed;
use crate::model::dsl::duration;
use crate::model::dsl::{
    self, AuthenticationPolicy, BasicAuthentication, BearerAuthentication, CallTask, Catch, DataSchema, EmitTask,
    Endpoint, ErrorDefinition, ErrorFilter, ErrorOrReference, FlowDirective, ForTask, ForkTask, HttpArguments,
    HttpOutputFormat, ListenRead, ListenTask, ObjectOrExpression, Process, ProcessReturnType,
    ReferenceableAuthenticationPolicy, RetryBackoff, RetryPolicy, RetryPolicyOrReference, RunConfiguration,
    ScriptSource, StringMapOrExpression, SwitchTask, Task, TaskItem, TaskList, TimeoutOrReference, TryTask, Workflow,
    describe,
};
use crate::model::dsl::{DigestAuthentication, OAuth2Authentication, OidcAuthentication, OpenApiArguments};
use crate::model::escape_pointer;

type BoxFuture<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

/// How often (in tasks run) the interpreter yields to the scheduler, so a loop of instant tasks
/// (`set` + `then` jumping back) cannot hog a runtime thread.
const YIELD_EVERY: u64 = 64;

/// The state of one run, shared by every task of it (including concurrent fork branches).
pub(crate) struct Runner<'a> {
    workflow: &'a Workflow,
    secrets: Value,
    context: Mutex<Value>,
    observer: Mutex<&'a mut dyn Observer>,
    workflow_descriptor: Value,
    runtime_descriptor: Value,
    loose: bool,
    steps: AtomicU64,
    /// The run's HTTP clients, built by its first HTTP call.
    http: OnceLock<Result<http::Clients, String>>,
    /// Earlier completions to reuse when resuming, by task reference (see `RunOptions::replaying`).
    replay: Mutex<HashMap<String, VecDeque<Recorded>>>,
    /// What `run: workflow` tasks need: the options the run was given.
    options: RunOptions,
    /// Where `emit` publishes and `listen` consumes (shared with subflows).
    bus: Arc<EventBus>,
}

/// What a task's kind produced: its raw output and, when the kind decides it (a `switch`
/// match, an `end` inside a nested list), what runs next instead of the task's `then`.
struct Exec {
    output: Value,
    flow: Option<FlowDirective>,
}

/// A task's transformed output and what runs next.
struct Step {
    output: Value,
    flow: FlowDirective,
}

/// Where an expression is evaluated: the task, its data so far and the variables in scope.
#[derive(Clone, Copy)]
struct Frame<'t> {
    pointer: &'t str,
    name: &'t str,
    task: Option<&'t Task>,
    scope: &'t Variables,
    raw_input: &'t Value,
    input: Option<&'t Value>,
    output: Option<&'t Value>,
    started_at: jiff::Timestamp,
}

/// Why a call kind cannot run here.
fn unsupported_call(call: &CallTask) -> String {
    let why = match call {
        CallTask::Grpc(_) => "a gRPC client would have to be generated from the `.proto` document at run time",
        CallTask::Mcp(_) => "MCP calls go through the agent runner's MCP client, which is not built yet",
        _ => "this protocol has no client in stigmer",
    };
    format!("`call: {}` tasks are not supported yet by this runtime: {why}", call.function_name())
}

/// A listener's expressions, evaluated in its task's frame.
struct Judging<'r, 'a> {
    runner: &'r Runner<'a>,
    input: &'r Value,
    frame: &'r Frame<'r>,
}

impl Judge for Judging<'_, '_> {
    fn evaluate(&self, code: &str, data: &Value) -> Result<Value, WorkflowError> {
        self.runner.evaluate(code, data, self.frame)
    }

    fn expected(&self, text: &str) -> Result<Value, WorkflowError> {
        match enclosed(text) {
            Some(code) => self.runner.evaluate(code, self.input, self.frame),
            None => Ok(Value::String(text.to_owned())),
        }
    }
}

/// A DSL date-time descriptor: ISO 8601 text and epoch seconds/milliseconds.
fn datetime(at: jiff::Timestamp) -> Value {
    json!({ "iso8601": at.to_string(), "epoch": { "seconds": at.as_second(), "milliseconds": at.as_millisecond() } })
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        workflow: &'a Workflow,
        raw_input: &Value,
        options: &RunOptions,
        observer: &'a mut dyn Observer,
    ) -> Self {
        let id = options.instance_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let definition = serde_json::to_value(workflow).unwrap_or(Value::Null);
        // The completions move into `replay`; the kept options (for subflows) go without them,
        // so a long log is not held twice.
        let mut options = options.clone();
        let replay = std::mem::take(&mut options.replay);
        let bus = options.bus.get_or_insert_with(|| Arc::new(EventBus::new())).clone();
        let loose = workflow.evaluate.as_ref().and_then(|evaluate| evaluate.mode) == Some(dsl::EvaluateMode::Loose);
        Self {
            workflow,
            secrets: Value::Object(options.secrets.clone()),
            context: Mutex::new(Value::Object(Map::new())),
            observer: Mutex::new(observer),
            workflow_descriptor: json!({
                "id": id,
                "definition": definition,
                "input": raw_input,
                "startedAt": datetime(jiff::Timestamp::now()),
            }),
            runtime_descriptor: json!({ "name": "stigmer", "version": env!("CARGO_PKG_VERSION"), "metadata": {} }),
            loose,
            steps: AtomicU64::new(0),
            http: OnceLock::new(),
            replay: Mutex::new(replay),
            options,
            bus,
        }
    }

    /// The recorded output of this task's next earlier completion, when resuming.
    fn replayed(&self, task: &Task, pointer: &str) -> Option<Recorded> {
        let simple = matches!(
            task,
            Task::Set(_) | Task::Call(_) | Task::Run(_) | Task::Wait(_) | Task::Emit(_) | Task::Listen(_)
        );
        if !simple {
            return None;
        }
        self.replay.lock().unwrap_or_else(PoisonError::into_inner).get_mut(pointer)?.pop_front()
    }

    /// The whole run: workflow input, the top-level `do`, workflow output.
    pub(crate) async fn run(&self, raw_input: Value) -> Result<Value, WorkflowError> {
        let scope = Variables::default();
        let root = Frame {
            pointer: "",
            name: &self.workflow.document.name,
            task: None,
            scope: &scope,
            raw_input: &raw_input,
            input: None,
            output: None,
            started_at: jiff::Timestamp::now(),
        };
        let input_config = self.workflow.input.as_ref();
        if let Some(schema) = input_config.and_then(|input| input.schema.as_ref()) {
            validate(schema, &raw_input, "/input/schema")?;
        }
        let input = match input_config.and_then(|input| input.from.as_ref()) {
            Some(from) => self.transform(from, &raw_input, &root, "/input/from")?,
            None => raw_input.clone(),
        };
        let (output, _) = self.run_list(&self.workflow.do_, "/do", input, &scope).await?;
        let output_config = self.workflow.output.as_ref();
        let output = match output_config.and_then(|output| output.as_.as_ref()) {
            Some(as_) => self.transform(as_, &output, &root, "/output/as")?,
            None => output,
        };
        if let Some(schema) = output_config.and_then(|output| output.schema.as_ref()) {
            validate(schema, &output, "/output/schema")?;
        }
        Ok(output)
    }

    fn emit(&self, name: &str, reference: &str, transition: Transition) {
        let event = TaskEvent {
            at: jiff::Timestamp::now(),
            name: name.to_owned(),
            reference: reference.to_owned(),
            transition,
        };
        self.observer.lock().unwrap_or_else(PoisonError::into_inner).observe(event);
    }

    /// Runs a list in order from its first task, following flow directives. Returns the last
    /// output and whether an `end` directive ended the workflow.
    fn run_list<'s>(
        &'s self,
        list: &'s TaskList,
        list_pointer: &'s str,
        input: Value,
        scope: &'s Variables,
    ) -> BoxFuture<'s, Result<(Value, bool), WorkflowError>> {
        Box::pin(async move {
            let mut data = input;
            let mut index = 0;
            while let Some(item) = list.0.get(index) {
                let pointer = format!("{list_pointer}/{index}/{}", escape_pointer(&item.name));
                let step = self.run_task(item, &pointer, data, scope).await?;
                data = step.output;
                match step.flow {
                    FlowDirective::Continue => index += 1,
                    FlowDirective::Exit => return Ok((data, false)),
                    FlowDirective::End => return Ok((data, true)),
                    FlowDirective::Goto(target) => {
                        index = list.0.iter().position(|task| task.name == target).ok_or_else(|| {
                            WorkflowError::configuration(
                                format!("`then: {target}` names no task of the same list"),
                                &pointer,
                            )
                        })?;
                    }
                }
            }
            Ok((data, false))
        })
    }

    /// Runs one task: `if`, input, the kind, output, export, with events for each transition.
    fn run_task<'s>(
        &'s self,
        item: &'s TaskItem,
        pointer: &'s str,
        raw_input: Value,
        scope: &'s Variables,
    ) -> BoxFuture<'s, Result<Step, WorkflowError>> {
        Box::pin(async move {
            if self.steps.fetch_add(1, Ordering::Relaxed) % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            match self.attempt_task(item, pointer, raw_input, scope).await {
                Ok(Outcome::Skipped(output)) => {
                    self.emit(&item.name, pointer, Transition::Skipped);
                    // A skipped task's `then` is not followed: it did not run.
                    Ok(Step { output, flow: FlowDirective::Continue })
                }
                Ok(Outcome::Ran(step)) => {
                    self.emit(&item.name, pointer, Transition::Completed { output: step.output.clone() });
                    Ok(step)
                }
                Ok(Outcome::Replayed(step)) => Ok(step),
                Err(error) => {
                    self.emit(&item.name, pointer, Transition::Failed { error: error.clone() });
                    Err(error)
                }
            }
        })
    }

    async fn attempt_task(
        &self,
        item: &TaskItem,
        pointer: &str,
        raw_input: Value,
        scope: &Variables,
    ) -> Result<Outcome, WorkflowError> {
        let task = &item.task;
        let base = task.base();
        let mut frame = Frame {
            pointer,
            name: &item.name,
            task: Some(task),
            scope,
            raw_input: &raw_input,
            input: None,
            output: None,
            started_at: jiff::Timestamp::now(),
        };
        if let Some(condition) = &base.if_
            && !truthy(&self.evaluate(expression_code(condition), &raw_input, &frame)?)
        {
            return Ok(Outcome::Skipped(raw_input));
        }
        if let Some(schema) = base.input.as_ref().and_then(|input| input.schema.as_ref()) {
            validate(schema, &raw_input, pointer)?;
        }
        let input = match base.input.as_ref().and_then(|input| input.from.as_ref()) {
            Some(from) => self.transform(from, &raw_input, &frame, pointer)?,
            None => raw_input.clone(),
        };
        frame.input = Some(&input);
        let replayed = self.replayed(task, pointer).map(|Recorded::Output(output)| output);
        let resumed = replayed.is_some();
        if resumed && let Task::Emit(emit) = task {
            // Its event may not have been consumed before the run stopped: publish it again (a
            // consumed one, known by its id, is dropped by the bus).
            self.publish(emit, pointer, &input, &frame)?;
        }
        if !resumed {
            self.emit(&item.name, pointer, Transition::Started { input: input.clone() });
        }
        let exec = if let Some(output) = replayed {
            Exec { output, flow: None }
        } else {
            match &base.timeout {
                Some(timeout) => {
                    let limit = self.timeout(timeout, &input, &frame)?;
                    tokio::time::timeout(limit, self.execute(task, pointer, &input, &frame)).await.map_err(|_| {
                        WorkflowError::timeout(format!("the task did not complete within {limit:?}"), pointer)
                    })??
                }
                None => self.execute(task, pointer, &input, &frame).await?,
            }
        };

        frame.output = Some(&exec.output);
        // A replayed output was recorded after `output.as`.
        let output = match base.output.as_ref().and_then(|output| output.as_.as_ref()) {
            Some(as_) if !resumed => self.transform(as_, &exec.output, &frame, pointer)?,
            _ => exec.output.clone(),
        };
        if let Some(schema) = base.output.as_ref().and_then(|output| output.schema.as_ref()) {
            validate(schema, &output, pointer)?;
        }
        if let Some(export) = &base.export {
            // `$output` is the transformed output here; `.` too.
            frame.output = Some(&output);
            if let Some(as_) = &export.as_ {
                let context = self.transform(as_, &output, &frame, pointer)?;
                if let Some(schema) = &export.schema {
                    validate(schema, &context, pointer)?;
                }
                *self.context.lock().unwrap_or_else(PoisonError::into_inner) = context;
            }
        }
        let flow = exec.flow.or_else(|| base.then.clone()).unwrap_or(FlowDirective::Continue);
        let step = Step { output, flow };
        Ok(if resumed { Outcome::Replayed(step) } else { Outcome::Ran(step) })
    }

    /// Runs the task's kind on its transformed input.
    async fn execute(
        &self,
        task: &Task,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Exec, WorkflowError> {
        let ended = |(output, ended): (Value, bool)| Exec { output, flow: ended.then_some(FlowDirective::End) };
        match task {
            Task::Do(task) => {
                self.run_list(&task.do_, &format!("{pointer}/do"), input.clone(), frame.scope).await.map(ended)
            }
            Task::Set(task) => {
                let output = match &task.set {
                    Value::String(text) => self.evaluate(expression_code(text), input, frame)?,
                    template => self.template(template, input, frame)?,
                };
                Ok(Exec { output, flow: None })
            }
            Task::Switch(task) => self.switch(task, input, frame),
            Task::For(task) => self.for_each(task, pointer, input, frame).await,
            Task::Fork(task) => self.fork(task, pointer, input, frame.scope).await,
            Task::Try(task) => self.try_catch(task, pointer, input, frame).await,
            Task::Raise(task) => {
                let definition = match &task.raise.error {
                    ErrorOrReference::Error(definition) => definition,
                    ErrorOrReference::Reference(name) => {
                        self.workflow.use_.as_ref().and_then(|uses| uses.errors.get(name)).ok_or_else(|| {
                            WorkflowError::configuration(format!("no error named \"{name}\" in use.errors"), pointer)
                        })?
                    }
                };
                Err(self.raised(definition, input, frame)?)
            }
            Task::Wait(task) => {
                tokio::time::sleep(self.duration(&task.wait, input, frame)?).await;
                Ok(Exec { output: input.clone(), flow: None })
            }
            Task::Call(call) => match call {
                CallTask::Http(call) => {
                    Ok(Exec { output: self.call_http(&call.with, pointer, input, frame).await?, flow: None })
                }
                CallTask::OpenApi(call) => {
                    Ok(Exec { output: self.call_openapi(&call.with, pointer, input, frame).await?, flow: None })
                }
                CallTask::Agent(call) => {
                    Ok(Exec { output: self.call_agent(&call.with, pointer, input, frame).await?, flow: None })
                }
                other => Err(WorkflowError::runtime(unsupported_call(other), pointer)),
            },
            Task::Run(task) => {
                Ok(Exec { output: self.run_process(&task.run, pointer, input, frame).await?, flow: None })
            }
            Task::Emit(emit) => {
                // The task's output is the event it emitted, as the spec defines it.
                let event = self.publish(emit, pointer, input, frame)?;
                self.emit(frame.name, pointer, Transition::Emitted { cloud_event: event.clone() });
                Ok(Exec { output: event, flow: None })
            }
            Task::Listen(listen) => Ok(Exec { output: self.listen(listen, pointer, input, frame).await?, flow: None }),
        }
    }

    /// `call: agent`: runs the agent through the run's [`AgentCaller`]; its final answer is the
    /// task's output. `config.timeout` (seconds) bounds the call.
    async fn call_agent(
        &self,
        with: &dsl::CallAgentArguments,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let caller = self.options.agents.as_ref().ok_or_else(|| {
            WorkflowError::runtime(
                "`call: agent` needs the agent runner: run the workflow with `stigmer workflow run`",
                pointer,
            )
        })?;
        let mut env = Vec::with_capacity(with.env.len());
        for (key, value) in &with.env {
            env.push((key.clone(), self.text(value, input, frame)?));
        }
        let call = super::AgentCall {
            agent: self.text(&with.agent, input, frame)?,
            message: self.text(&with.message, input, frame)?,
            env,
            model: with.config.as_ref().and_then(|config| config.model.clone()),
        };
        let agent = call.agent.clone();
        let answer = match with.config.as_ref().and_then(|config| config.timeout) {
            Some(seconds) => {
                let limit = Duration::from_secs(seconds);
                tokio::time::timeout(limit, caller.call(call)).await.map_err(|_| {
                    WorkflowError::timeout(format!("agent `{agent}` did not answer within {limit:?}"), pointer)
                })?
            }
            None => caller.call(call).await,
        };
        answer
            .map(Value::String)
            .map_err(|detail| WorkflowError::runtime(format!("agent `{agent}`: {detail}"), pointer))
    }

    /// Builds an `emit` task's event and publishes it on the run's bus. Unset attributes get
    /// `specversion` 1.0, the current `time`, and an `id` made from the execution, the task and
    /// how many events it emitted before, so a resumed run re-emits the same ids.
    fn publish(
        &self,
        task: &EmitTask,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let with = serde_json::to_value(&task.emit.event.with).unwrap_or(Value::Null);
        let mut event = match self.template(&with, input, frame)? {
            Value::Object(event) => event,
            Value::Null => Map::new(),
            other => {
                return Err(WorkflowError::configuration(
                    format!("`emit.event.with` must give an object, not {}", describe(&other)),
                    pointer,
                ));
            }
        };
        for required in ["source", "type"] {
            if !event.get(required).is_some_and(Value::is_string) {
                return Err(WorkflowError::configuration(
                    format!("the emitted event needs a `{required}` string in `emit.event.with`"),
                    pointer,
                ));
            }
        }
        let key = format!("{}{pointer}", self.options.depth_label());
        let number = self.bus.next_number(&key);
        let instance = self.workflow_descriptor["id"].as_str().unwrap_or_default();
        event.entry("id").or_insert_with(|| Value::String(format!("{instance}:{key}:{number}")));
        event.entry("specversion").or_insert_with(|| Value::from("1.0"));
        event.entry("time").or_insert_with(|| Value::String(jiff::Timestamp::now().to_string()));
        if event.contains_key("data") {
            event.entry("datacontenttype").or_insert_with(|| Value::from("application/json"));
        }
        let event = Value::Object(event);
        self.bus.publish(event.clone());
        Ok(event)
    }

    /// Waits on the run's bus until the `listen` task's strategy is satisfied; its output is the
    /// consumed events as `read` asks, each through `foreach` when there is one.
    async fn listen(
        &self,
        task: &ListenTask,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let mode = task.listen.read.unwrap_or(ListenRead::Data);
        let judge = Judging { runner: self, input, frame };
        let mut consumption = Consumption::new(&task.listen.to, mode);
        let events = self.bus.receive(|waiting| consumption.feed(waiting, &judge)).await?;
        let items: Vec<Value> = events.iter().map(|event| listen::read(event, mode)).collect();
        for event in events {
            self.emit(frame.name, pointer, Transition::Consumed { cloud_event: event });
        }
        let Some(each) = &task.foreach else { return Ok(Value::Array(items)) };
        let item_name = each.item.as_deref().unwrap_or("item");
        let at = each.at.as_deref().unwrap_or("index");
        let list_pointer = format!("{pointer}/foreach/do");
        let mut outputs = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let mut scope = frame.scope.clone();
            scope.set(item_name, item.clone());
            scope.set(at, Value::from(index));
            let output =
                if each.do_.is_empty() { item } else { self.run_list(&each.do_, &list_pointer, item, &scope).await?.0 };
            let iteration = Frame { scope: &scope, output: Some(&output), ..*frame };
            let output = match each.output.as_ref().and_then(|output| output.as_.as_ref()) {
                Some(as_) => self.transform(as_, &output, &iteration, pointer)?,
                None => output.clone(),
            };
            if let Some(schema) = each.output.as_ref().and_then(|output| output.schema.as_ref()) {
                validate(schema, &output, pointer)?;
            }
            if let Some(as_) = each.export.as_ref().and_then(|export| export.as_.as_ref()) {
                let context = self.transform(as_, &output, &iteration, pointer)?;
                *self.context.lock().unwrap_or_else(PoisonError::into_inner) = context;
            }
            outputs.push(output);
        }
        Ok(Value::Array(outputs))
    }

    /// The first case whose `when` holds (else the default case) decides what runs next.
    fn switch(&self, task: &SwitchTask, input: &Value, frame: &Frame<'_>) -> Result<Exec, WorkflowError> {
        let mut default = None;
        for item in &task.switch {
            match &item.case.when {
                Some(when) => {
                    if truthy(&self.evaluate(expression_code(when), input, frame)?) {
                        return Ok(Exec { output: input.clone(), flow: Some(item.case.then.clone()) });
                    }
                }
                None => default = default.or(Some(&item.case.then)),
            }
        }
        Ok(Exec { output: input.clone(), flow: default.cloned() })
    }

    /// Runs `do` once per item, each iteration's output being the next one's input.
    async fn for_each(
        &self,
        task: &ForTask,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Exec, WorkflowError> {
        let items = match self.evaluate(expression_code(&task.for_.in_), input, frame)? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => {
                return Err(WorkflowError::expression(
                    format!("`for.in` \"{}\" must give an array, not {}", task.for_.in_, describe(&other)),
                    pointer,
                ));
            }
        };
        let each = task.for_.each.as_deref().unwrap_or("item");
        let at = task.for_.at.as_deref().unwrap_or("index");
        let list_pointer = format!("{pointer}/do");
        let mut data = input.clone();
        for (index, item) in items.into_iter().enumerate() {
            let mut scope = frame.scope.clone();
            scope.set(each, item);
            scope.set(at, Value::from(index));
            if let Some(condition) = &task.while_ {
                let iteration = Frame { scope: &scope, ..*frame };
                if !truthy(&self.evaluate(expression_code(condition), &data, &iteration)?) {
                    break;
                }
            }
            let (output, ended) = self.run_list(&task.do_, &list_pointer, data, &scope).await?;
            data = output;
            if ended {
                return Ok(Exec { output: data, flow: Some(FlowDirective::End) });
            }
        }
        Ok(Exec { output: data, flow: None })
    }

    /// Runs the branches concurrently: all of them (outputs in declaration order; the first
    /// error cancels the rest), or, with `compete`, until the first succeeds.
    async fn fork(
        &self,
        task: &ForkTask,
        pointer: &str,
        input: &Value,
        scope: &Variables,
    ) -> Result<Exec, WorkflowError> {
        let pointers: Vec<String> = task
            .fork
            .branches
            .0
            .iter()
            .enumerate()
            .map(|(index, item)| format!("{pointer}/fork/branches/{index}/{}", escape_pointer(&item.name)))
            .collect();
        let mut branches: Vec<Option<BoxFuture<'_, Result<Step, WorkflowError>>>> = task
            .fork
            .branches
            .0
            .iter()
            .zip(&pointers)
            .map(|(item, branch_pointer)| Some(self.run_task(item, branch_pointer, input.clone(), scope)))
            .collect();
        let compete = task.fork.compete.unwrap_or(false);
        let mut outputs: Vec<Value> = vec![Value::Null; branches.len()];
        let mut first_error: Option<WorkflowError> = None;
        let winner = std::future::poll_fn(|cx| {
            for (index, slot) in branches.iter_mut().enumerate() {
                let Some(branch) = slot else { continue };
                if let Poll::Ready(result) = branch.as_mut().poll(cx) {
                    *slot = None;
                    match result {
                        Ok(step) if compete => return Poll::Ready(Ok(Some(step.output))),
                        Ok(step) => outputs[index] = step.output,
                        Err(error) if compete => {
                            first_error.get_or_insert(error);
                        }
                        Err(error) => return Poll::Ready(Err(error)),
                    }
                }
            }
            if branches.iter().all(Option::is_none) {
                return Poll::Ready(first_error.take().map_or(Ok(None), Err));
            }
            Poll::Pending
        })
        .await;
        // Whatever still runs lost (or is moot after an error): stop it, and say so.
        for (index, slot) in branches.iter_mut().enumerate() {
            if slot.take().is_some()
                && let Some(item) = task.fork.branches.0.get(index)
            {
                self.emit(&item.name, &pointers[index], Transition::Cancelled);
            }
        }
        match winner? {
            Some(output) => Ok(Exec { output, flow: None }),
            None => Ok(Exec { output: Value::Array(outputs), flow: None }),
        }
    }

    /// Runs `try`; a caught error is retried by the policy while it allows, then handled by
    /// `catch.do` (or swallowed, the input becoming the output, when there is none).
    async fn try_catch(
        &self,
        task: &TryTask,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Exec, WorkflowError> {
        let catch = &task.catch;
        let policy = match &catch.retry {
            None => None,
            Some(RetryPolicyOrReference::Policy(policy)) => Some(policy),
            Some(RetryPolicyOrReference::Reference(name)) => {
                Some(self.workflow.use_.as_ref().and_then(|uses| uses.retries.get(name)).ok_or_else(|| {
                    WorkflowError::configuration(format!("no retry policy named \"{name}\" in use.retries"), pointer)
                })?)
            }
        };
        let attempt_limit = match policy.and_then(|policy| policy.limit.as_ref()).and_then(|l| l.attempt.as_ref()) {
            Some(attempt) => attempt.duration.as_ref().map(|d| self.duration(d, input, frame)).transpose()?,
            None => None,
        };
        let try_pointer = format!("{pointer}/try");
        let started = Instant::now();
        let mut retries: u32 = 0;
        loop {
            let attempt = self.run_list(&task.try_, &try_pointer, input.clone(), frame.scope);
            let result = match attempt_limit {
                Some(limit) => tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
                    Err(WorkflowError::timeout(format!("the attempt did not complete within {limit:?}"), pointer))
                }),
                None => attempt.await,
            };
            let error = match result {
                Ok((output, ended)) => return Ok(Exec { output, flow: ended.then_some(FlowDirective::End) }),
                Err(error) => error,
            };
            let variable = catch.as_.as_deref().unwrap_or("error");
            let mut scope = frame.scope.clone();
            scope.set(variable, error.to_value());
            let caught_frame = Frame { scope: &scope, ..*frame };
            if !self.catches(catch, &error, input, &caught_frame)? {
                return Err(error);
            }
            if let Some(policy) = policy
                && let Some(delay) = self.retry_delay(policy, retries + 1, started.elapsed(), input, &caught_frame)?
            {
                retries += 1;
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                self.emit(frame.name, pointer, Transition::Retrying { attempt: retries, delay_ms });
                tokio::time::sleep(delay).await;
                continue;
            }
            if catch.do_.is_empty() {
                return Ok(Exec { output: input.clone(), flow: None });
            }
            let (output, ended) =
                self.run_list(&catch.do_, &format!("{pointer}/catch/do"), input.clone(), &scope).await?;
            return Ok(Exec { output, flow: ended.then_some(FlowDirective::End) });
        }
    }

    /// Whether `catch` catches `error`: its static filter matches, `when` holds and
    /// `exceptWhen` does not (both see the error variable).
    fn catches(
        &self,
        catch: &Catch,
        error: &WorkflowError,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<bool, WorkflowError> {
        if let Some(filter) = catch.errors.as_ref().and_then(|errors| errors.with.as_ref())
            && !filter_matches(filter, error)
        {
            return Ok(false);
        }
        if let Some(when) = &catch.when
            && !truthy(&self.evaluate(expression_code(when), input, frame)?)
        {
            return Ok(false);
        }
        if let Some(except) = &catch.except_when
            && truthy(&self.evaluate(expression_code(except), input, frame)?)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// The delay before retry number `retry` (1-based), or `None` when the policy gives up.
    fn retry_delay(
        &self,
        policy: &RetryPolicy,
        retry: u32,
        elapsed: Duration,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Option<Duration>, WorkflowError> {
        let limit = policy.limit.as_ref();
        if let Some(count) = limit.and_then(|limit| limit.attempt.as_ref()).and_then(|attempt| attempt.count)
            && u64::from(retry) > count
        {
            return Ok(None);
        }
        if let Some(when) = &policy.when
            && !truthy(&self.evaluate(expression_code(when), input, frame)?)
        {
            return Ok(None);
        }
        if let Some(except) = &policy.except_when
            && truthy(&self.evaluate(expression_code(except), input, frame)?)
        {
            return Ok(None);
        }
        let base = policy.delay.as_ref().map(|d| self.duration(d, input, frame)).transpose()?.unwrap_or_default();
        let mut delay = match &policy.backoff {
            None | Some(RetryBackoff::Constant(_)) => base,
            Some(RetryBackoff::Linear(_)) => base.saturating_mul(retry),
            Some(RetryBackoff::Exponential(_)) => base.saturating_mul(1u32 << (retry - 1).min(31)),
        };
        if let Some(jitter) = &policy.jitter {
            let from = self.duration(&jitter.from, input, frame)?;
            let to = self.duration(&jitter.to, input, frame)?;
            delay = delay.saturating_add(random_between(from, to));
        }
        if let Some(total) = limit.and_then(|limit| limit.duration.as_ref())
            && elapsed.saturating_add(delay) > self.duration(total, input, frame)?
        {
            return Ok(None);
        }
        Ok(Some(delay))
    }

    /// The error a `raise` task raises, its `${ }` fields evaluated.
    fn raised(
        &self,
        definition: &ErrorDefinition,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<WorkflowError, WorkflowError> {
        let field = |text: &Option<String>| -> Result<Option<String>, WorkflowError> {
            text.as_ref().map(|text| self.text(text, input, frame)).transpose()
        };
        let evaluated = ErrorDefinition {
            type_: self.text(&definition.type_, input, frame)?,
            status: definition.status,
            instance: field(&definition.instance)?,
            title: field(&definition.title)?,
            detail: field(&definition.detail)?,
        };
        Ok(WorkflowError::from_definition(&evaluated, frame.pointer))
    }

    /// A string property that may be a `${ }` expression: its value as text.
    fn text(&self, text: &str, input: &Value, frame: &Frame<'_>) -> Result<String, WorkflowError> {
        match enclosed(text) {
            None => Ok(text.to_owned()),
            Some(code) => Ok(match self.evaluate(code, input, frame)? {
                Value::String(text) => text,
                other => other.to_string(),
            }),
        }
    }

    fn timeout(
        &self,
        timeout: &TimeoutOrReference,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Duration, WorkflowError> {
        let after = match timeout {
            TimeoutOrReference::Timeout(timeout) => &timeout.after,
            TimeoutOrReference::Reference(name) => {
                &self
                    .workflow
                    .use_
                    .as_ref()
                    .and_then(|uses| uses.timeouts.get(name))
                    .ok_or_else(|| {
                        WorkflowError::configuration(
                            format!("no timeout named \"{name}\" in use.timeouts"),
                            frame.pointer,
                        )
                    })?
                    .after
            }
        };
        self.duration(after, input, frame)
    }

    /// A DSL duration; a `${ }` one is evaluated to an ISO 8601 string or an inline object.
    fn duration(&self, duration: &dsl::Duration, input: &Value, frame: &Frame<'_>) -> Result<Duration, WorkflowError> {
        let invalid = |error: String| WorkflowError::configuration(error, frame.pointer);
        match duration {
            dsl::Duration::Iso8601(text) => match enclosed(text) {
                None => duration::iso8601(text).map_err(invalid),
                Some(code) => match self.evaluate(code, input, frame)? {
                    Value::String(text) => duration::iso8601(&text).map_err(invalid),
                    value @ Value::Object(_) => serde_json::from_value(value)
                        .map(|inline| duration::inline(&inline))
                        .map_err(|error| invalid(format!("\"{text}\" is not a duration: {error}"))),
                    other => Err(WorkflowError::expression(
                        format!("\"{text}\" must give an ISO 8601 duration, not {}", describe(&other)),
                        frame.pointer,
                    )),
                },
            },
            literal @ dsl::Duration::Inline(_) => duration::literal(literal).map_err(invalid),
        }
    }

    /// An `input.from` / `output.as` / `export.as`: an expression, or an object template.
    fn transform(
        &self,
        transform: &ObjectOrExpression,
        data: &Value,
        frame: &Frame<'_>,
        instance: &str,
    ) -> Result<Value, WorkflowError> {
        let at = Frame { pointer: instance, ..*frame };
        match transform {
            ObjectOrExpression::Expression(text) => self.evaluate(expression_code(text), data, &at),
            ObjectOrExpression::Object(map) => self.template(&Value::Object(map.clone()), data, &at),
        }
    }

    fn template(&self, template: &Value, data: &Value, frame: &Frame<'_>) -> Result<Value, WorkflowError> {
        let variables = self.variables(frame, mentions_task(template));
        eval::evaluate_template(template, data, &variables, self.loose).map_err(|(text, error)| {
            WorkflowError::expression(format!("evaluating \"{text}\" failed: {error}"), frame.pointer)
        })
    }

    fn evaluate(&self, code: &str, data: &Value, frame: &Frame<'_>) -> Result<Value, WorkflowError> {
        let variables = self.variables(frame, code.contains("$task"));
        eval::evaluate(code, data, &variables).map_err(|error| {
            WorkflowError::expression(format!("evaluating \"${{ {code} }}\" failed: {error}"), frame.pointer)
        })
    }

    /// The runtime variables for an expression in `frame`; `$task` only when it is used, since
    /// it embeds the task's whole definition.
    fn variables(&self, frame: &Frame<'_>, with_task: bool) -> Variables {
        let mut variables = frame.scope.clone();
        variables.set("context", self.context.lock().unwrap_or_else(PoisonError::into_inner).clone());
        variables.set("secret", self.secrets.clone());
        variables.set("workflow", self.workflow_descriptor.clone());
        variables.set("runtime", self.runtime_descriptor.clone());
        variables.set("input", frame.input.cloned().unwrap_or(Value::Null));
        variables.set("output", frame.output.cloned().unwrap_or(Value::Null));
        if with_task {
            let mut task = json!({
                "name": frame.name,
                "reference": frame.pointer,
                "definition": frame.task.and_then(|task| serde_json::to_value(task).ok()),
                "input": frame.raw_input,
                "startedAt": datetime(frame.started_at),
            });
            if let (Some(output), Value::Object(map)) = (frame.output, &mut task) {
                map.insert("output".to_owned(), output.clone());
            }
            variables.set("task", task);
        }
        variables
    }
}

/// `call: http`, `call: openapi` and `run: shell` / `run: script`: evaluating their arguments
/// (the I/O lives in the `http`, `openapi` and `process` modules).
impl Runner<'_> {
    /// Sends the HTTP request `with` describes; see [`http`] for the output and errors.
    async fn call_http(
        &self,
        with: &HttpArguments,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let uri = self.endpoint_uri(&with.endpoint, pointer, input, frame)?;
        let credentials = match &with.endpoint {
            Endpoint::Configuration(configuration) => configuration
                .authentication
                .as_ref()
                .map(|policy| self.credentials(policy, input, frame))
                .transpose()?,
            Endpoint::Uri(_) => None,
        };
        let request = http::Request {
            method: self.text(&with.method, input, frame)?,
            uri,
            headers: self.string_map(with.headers.as_ref(), "headers", input, frame)?,
            query: self.string_map(with.query.as_ref(), "query", input, frame)?,
            body: with.body.as_ref().map(|body| self.template(body, input, frame)).transpose()?,
            credentials,
            output: with.output.unwrap_or(HttpOutputFormat::Content),
            redirect: with.redirect.unwrap_or(false),
        };
        let clients = self
            .http
            .get_or_init(http::Clients::new)
            .as_ref()
            .map_err(|error| WorkflowError::runtime(error.clone(), pointer))?;
        http::send(clients, request, pointer).await
    }

    /// The `headers` or `query` of an HTTP call: a map whose values may be `${ }` expressions,
    /// or an expression giving an object. Non-string values are written as JSON.
    fn string_map(
        &self,
        map: Option<&StringMapOrExpression>,
        what: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Vec<(String, String)>, WorkflowError> {
        let as_text = |value: Value| match value {
            Value::String(text) => text,
            other => other.to_string(),
        };
        match map {
            None => Ok(Vec::new()),
            Some(StringMapOrExpression::Map(map)) => {
                map.iter().map(|(name, value)| Ok((name.clone(), self.text(value, input, frame)?))).collect()
            }
            Some(StringMapOrExpression::Expression(text)) => {
                match self.evaluate(expression_code(text), input, frame)? {
                    Value::Object(map) => Ok(map.into_iter().map(|(name, value)| (name, as_text(value))).collect()),
                    Value::Null => Ok(Vec::new()),
                    other => Err(WorkflowError::expression(
                        format!("`{what}` \"{text}\" must give an object, not {}", describe(&other)),
                        frame.pointer,
                    )),
                }
            }
        }
    }

    /// The credentials of an authentication policy, inline (its strings may be expressions),
    /// by reference to `use.authentications`, or read from a secret.
    fn credentials(
        &self,
        policy: &ReferenceableAuthenticationPolicy,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Credentials, WorkflowError> {
        let policy = match policy {
            ReferenceableAuthenticationPolicy::Policy(policy) => policy,
            ReferenceableAuthenticationPolicy::Reference(reference) => {
                self.workflow.use_.as_ref().and_then(|uses| uses.authentications.get(&reference.use_)).ok_or_else(
                    || {
                        WorkflowError::configuration(
                            format!("no authentication named \"{}\" in use.authentications", reference.use_),
                            frame.pointer,
                        )
                    },
                )?
            }
        };
        match policy {
            AuthenticationPolicy::Basic(BasicAuthentication::Inline(inline)) => Ok(Credentials::Basic {
                username: self.text(&inline.username, input, frame)?,
                password: self.text(&inline.password, input, frame)?,
            }),
            AuthenticationPolicy::Basic(BasicAuthentication::Secret(secret)) => {
                let secret = self.secret(&secret.use_, frame)?;
                Ok(Credentials::Basic {
                    username: secret_field(&secret, "username", frame)?,
                    password: secret_field(&secret, "password", frame)?,
                })
            }
            AuthenticationPolicy::Bearer(BearerAuthentication::Inline(inline)) => {
                Ok(Credentials::Bearer(self.text(&inline.token, input, frame)?))
            }
            AuthenticationPolicy::Bearer(BearerAuthentication::Secret(secret)) => {
                match self.secret(&secret.use_, frame)? {
                    Value::String(token) => Ok(Credentials::Bearer(token)),
                    secret => Ok(Credentials::Bearer(secret_field(&secret, "token", frame)?)),
                }
            }
            AuthenticationPolicy::Digest(DigestAuthentication::Inline(inline)) => Ok(Credentials::Digest {
                username: self.text(&inline.username, input, frame)?,
                password: self.text(&inline.password, input, frame)?,
            }),
            AuthenticationPolicy::Digest(DigestAuthentication::Secret(secret)) => {
                let secret = self.secret(&secret.use_, frame)?;
                Ok(Credentials::Digest {
                    username: secret_field(&secret, "username", frame)?,
                    password: secret_field(&secret, "password", frame)?,
                })
            }
            AuthenticationPolicy::OAuth2(OAuth2Authentication::Inline(properties))
            | AuthenticationPolicy::Oidc(OidcAuthentication::Inline(properties)) => {
                let flavor = if matches!(policy, AuthenticationPolicy::Oidc(_)) {
                    oauth2::Flavor::Oidc
                } else {
                    oauth2::Flavor::OAuth2
                };
                let text = |text: &str| self.text(text, input, frame);
                Ok(Credentials::OAuth2(Box::new(oauth2::token_request(flavor, properties, &text, frame.pointer)?)))
            }
            AuthenticationPolicy::OAuth2(OAuth2Authentication::Secret(secret))
            | AuthenticationPolicy::Oidc(OidcAuthentication::Secret(secret)) => {
                let flavor = if matches!(policy, AuthenticationPolicy::Oidc(_)) {
                    oauth2::Flavor::Oidc
                } else {
                    oauth2::Flavor::OAuth2
                };
                let properties =
                    oauth2::secret_properties(&self.secret(&secret.use_, frame)?, &secret.use_, frame.pointer)?;
                // A secret's strings are values, not expressions.
                let text = |text: &str| Ok(text.to_owned());
                Ok(Credentials::OAuth2(Box::new(oauth2::token_request(flavor, &properties, &text, frame.pointer)?)))
            }
        }
    }

    /// A secret by name; a missing one is the DSL's `authorization` error.
    fn secret(&self, name: &str, frame: &Frame<'_>) -> Result<Value, WorkflowError> {
        self.secrets.get(name).cloned().ok_or_else(|| WorkflowError {
            type_: "https://serverlessworkflow.io/spec/1.0.0/errors/authorization".to_owned(),
            status: 403,
            title: Some("Authorization Error".to_owned()),
            detail: Some(format!("the secret \"{name}\" is not available to this run")),
            instance: Some(frame.pointer.to_owned()),
        })
    }

    /// Runs a `run: shell` or `run: script` process; see [`process`] for the output and errors.
    async fn run_process(
        &self,
        run: &RunConfiguration,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let task_name = frame.name.to_owned();
        let spawn = match &run.process {
            Process::Shell(shell) => {
                let mut arguments = vec!["-c".to_owned(), self.text(&shell.command, input, frame)?, task_name];
                arguments.extend(self.texts(&shell.arguments, input, frame)?);
                Spawn {
                    program: "sh".to_owned(),
                    arguments,
                    environment: self.environment(shell.environment.as_ref(), input, frame)?,
                    stdin: shell.stdin.as_ref().map(|stdin| self.text(stdin, input, frame)).transpose()?,
                    what: "the shell command".to_owned(),
                }
            }
            Process::Script(script) => {
                let code = match &script.source {
                    ScriptSource::Code(code) => code.clone(),
                    ScriptSource::Source(resource) => self.script_source(resource, pointer, input, frame).await?,
                };
                let (program, mut arguments) = match script.language.to_ascii_lowercase().as_str() {
                    "js" | "javascript" => ("node", vec!["-e".to_owned(), code, task_name]),
                    "python" | "python3" => ("python3", vec!["-c".to_owned(), code]),
                    other => {
                        return Err(WorkflowError::configuration(
                            format!("script language \"{other}\" is not supported (use js or python)"),
                            pointer,
                        ));
                    }
                };
                arguments.extend(self.texts(&script.arguments, input, frame)?);
                Spawn {
                    program: program.to_owned(),
                    arguments,
                    environment: self.environment(script.environment.as_ref(), input, frame)?,
                    stdin: script.stdin.as_ref().map(|stdin| self.text(stdin, input, frame)).transpose()?,
                    what: format!("the {} script", script.language),
                }
            }
            Process::Workflow(config) => return self.subflow(config, pointer, input, frame).await,
            Process::Container(_) => {
                return Err(WorkflowError::runtime(
                    "`run: container` tasks are not supported here: stigmer runs no container runtime",
                    pointer,
                ));
            }
        };
        if run.await_ == Some(false) {
            process::start(spawn, pointer)?;
            return Ok(input.clone());
        }
        process::run(spawn, run.return_.unwrap_or(ProcessReturnType::Stdout), pointer).await
    }

    /// `run: workflow`: a workflow the caller made available by name, run on the task's input
    /// (or its `input`, evaluated), its transitions reported under this task's reference.
    async fn subflow(
        &self,
        config: &dsl::SubflowConfiguration,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let workflow = self.options.workflows.get(&config.name).ok_or_else(|| {
            WorkflowError::configuration(
                format!("there is no stored Workflow named \"{}\" to run", config.name),
                pointer,
            )
        })?;
        let sub_input = match &config.input {
            Some(map) => self.template(&Value::Object(map.clone()), input, frame)?,
            None => input.clone(),
        };
        let prefix = format!("{pointer}/workflow");
        // The completions recorded under this task belong to the subflow, re-rooted at its `/do`.
        let replay = {
            let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
            let mine: Vec<String> =
                replay.keys().filter(|key| key.starts_with(&format!("{prefix}/"))).cloned().collect();
            mine.into_iter()
                .filter_map(|key| replay.remove(&key).map(|outputs| (key[prefix.len()..].to_owned(), outputs)))
                .collect()
        };
        let options = self.options.for_subflow(pointer, replay)?;
        let mut forward = Forward { parent: self, prefix };
        Box::pin(super::run(workflow, sub_input, &options, &mut forward)).await
    }

    fn texts(&self, texts: &[String], input: &Value, frame: &Frame<'_>) -> Result<Vec<String>, WorkflowError> {
        texts.iter().map(|text| self.text(text, input, frame)).collect()
    }

    /// A process's `environment`, evaluated as a template: strings as they are, `null` unsets
    /// the variable, other values as JSON.
    fn environment(
        &self,
        environment: Option<&Map<String, Value>>,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Vec<(String, Option<String>)>, WorkflowError> {
        let Some(environment) = environment else { return Ok(Vec::new()) };
        let Value::Object(evaluated) = self.template(&Value::Object(environment.clone()), input, frame)? else {
            return Ok(Vec::new());
        };
        Ok(evaluated
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Null => None,
                    Value::String(text) => Some(text),
                    other => Some(other.to_string()),
                };
                (name, value)
            })
            .collect())
    }

    /// An endpoint's URI: a `${ }` expression's value, or a URI template expanded from the
    /// top-level fields of `input`.
    /// The credentials of an endpoint's own authentication policy, if it has one.
    fn endpoint_credentials(
        &self,
        endpoint: &Endpoint,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Option<Credentials>, WorkflowError> {
        match endpoint {
            Endpoint::Configuration(configuration) => {
                configuration.authentication.as_ref().map(|policy| self.credentials(policy, input, frame)).transpose()
            }
            Endpoint::Uri(_) => Ok(None),
        }
    }

    /// A `run: script` task's code from its `source`: a local file (`file://` URI or a path) or an
    /// HTTP(S) resource fetched with the endpoint's authentication.
    async fn script_source(
        &self,
        resource: &dsl::ExternalResource,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<String, WorkflowError> {
        let uri = self.endpoint_uri(&resource.endpoint, pointer, input, frame)?;
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            let path = uri.strip_prefix("file://").unwrap_or(&uri);
            return tokio::fs::read_to_string(path)
                .await
                .map_err(|error| WorkflowError::runtime(format!("cannot read the script at {uri}: {error}"), pointer));
        }
        let clients = self
            .http
            .get_or_init(http::Clients::new)
            .as_ref()
            .map_err(|error| WorkflowError::runtime(error.clone(), pointer))?;
        let request = http::Request {
            method: "get".to_owned(),
            uri: uri.clone(),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            credentials: self.endpoint_credentials(&resource.endpoint, input, frame)?,
            output: HttpOutputFormat::Content,
            redirect: true,
        };
        match http::send(clients, request, pointer).await? {
            Value::String(code) => Ok(code),
            other => Err(WorkflowError::configuration(
                format!("the script at {uri} is not text but {}", describe(&other)),
                pointer,
            )),
        }
    }

    fn endpoint_uri(
        &self,
        endpoint: &Endpoint,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<String, WorkflowError> {
        let uri = endpoint.uri();
        Ok(match enclosed(uri) {
            Some(code) => match self.evaluate(code, input, frame)? {
                Value::String(uri) => uri,
                other => {
                    return Err(WorkflowError::expression(
                        format!("the endpoint \"{uri}\" must give a string, not {}", describe(&other)),
                        pointer,
                    ));
                }
            },
            None => http::expand_uri_template(uri, input).map_err(|name| {
                WorkflowError::expression(
                    format!("the URI template variable \"{name}\" must be a string, number, boolean or null"),
                    pointer,
                )
            })?,
        })
    }

    /// Calls the operation `with` names in its OpenAPI document; see [`openapi`] for how the
    /// request is built and [`http`] for the output and errors.
    async fn call_openapi(
        &self,
        with: &OpenApiArguments,
        pointer: &str,
        input: &Value,
        frame: &Frame<'_>,
    ) -> Result<Value, WorkflowError> {
        let clients = self
            .http
            .get_or_init(http::Clients::new)
            .as_ref()
            .map_err(|error| WorkflowError::runtime(error.clone(), pointer))?;
        let endpoint = &with.document.endpoint;
        let document_uri = self.endpoint_uri(endpoint, pointer, input, frame)?;
        let document_credentials = self.endpoint_credentials(endpoint, input, frame)?;
        let document = openapi::document(clients, &document_uri, document_credentials, pointer).await?;
        let parameters = match &with.parameters {
            Some(parameters) => match self.template(&Value::Object(parameters.clone()), input, frame)? {
                Value::Object(parameters) => parameters,
                _ => Map::new(),
            },
            None => Map::new(),
        };
        let operation = openapi::operation(&document, &document_uri, &with.operation_id, &parameters)
            .map_err(|detail| WorkflowError::configuration(detail, pointer))?;
        let request = http::Request {
            method: operation.method,
            uri: operation.uri,
            headers: operation.headers,
            query: operation.query,
            body: operation.body,
            credentials: with
                .authentication
                .as_ref()
                .map(|policy| self.credentials(policy, input, frame))
                .transpose()?,
            output: with.output.unwrap_or(HttpOutputFormat::Content),
            redirect: with.redirect.unwrap_or(false),
        };
        http::send(clients, request, pointer).await
    }
}

/// A string field of a structured secret (`username`, `password`, `token`).
fn secret_field(secret: &Value, field: &str, frame: &Frame<'_>) -> Result<String, WorkflowError> {
    match secret.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        _ => Err(WorkflowError::configuration(format!("the secret has no string `{field}`"), frame.pointer)),
    }
}

/// A task that ran, or one whose `if` did not hold (its raw input is its output).
enum Outcome {
    Ran(Step),
    /// Completed in an earlier run of the execution; its events are already recorded.
    Replayed(Step),
    Skipped(Value),
}

/// Reports a subflow's transitions to the parent run's observer, under the `run` task's reference.
struct Forward<'r, 'a> {
    parent: &'r Runner<'a>,
    prefix: String,
}

impl Observer for Forward<'_, '_> {
    fn observe(&mut self, mut event: TaskEvent) {
        event.reference = format!("{}{}", self.prefix, event.reference);
        self.parent.observer.lock().unwrap_or_else(PoisonError::into_inner).observe(event);
    }
}

/// Whether a template mentions `$task` anywhere.
fn mentions_task(template: &Value) -> bool {
    match template {
        Value::String(text) => text.contains("$task"),
        Value::Array(items) => items.iter().any(mentions_task),
        Value::Object(map) => map.values().any(mentions_task),
        _ => false,
    }
}

/// Whether every field the filter sets equals the error's.
fn filter_matches(filter: &ErrorFilter, error: &WorkflowError) -> bool {
    let same = |wanted: &Option<String>, actual: Option<&str>| wanted.as_deref().is_none_or(|w| Some(w) == actual);
    filter.type_.as_deref().is_none_or(|wanted| super::error::same_type(wanted, &error.type_))
        && filter.status.is_none_or(|status| status == error.status)
        && same(&filter.instance, error.instance.as_deref())
        && same(&filter.title, error.title.as_deref())
        && same(&filter.details, error.detail.as_deref())
}

/// A uniformly random duration in `[from, to]` (in whole microseconds).
fn random_between(from: Duration, to: Duration) -> Duration {
    let (low, high) = if from <= to { (from, to) } else { (to, from) };
    let span = u64::try_from(high.saturating_sub(low).as_micros()).unwrap_or(u64::MAX);
    if span == 0 {
        return low;
    }
    let random = getrandom::u64().unwrap_or(0);
    low.saturating_add(Duration::from_micros(random % span.saturating_add(1)))
}

/// Validates `value` against an inline JSON schema.
pub(super) fn validate(schema: &DataSchema, value: &Value, instance: &str) -> Result<(), WorkflowError> {
    let DataSchema::Inline(inline) = schema else {
        return Err(WorkflowError::runtime("external schemas are not supported yet by this runtime", instance));
    };
    if let Some(format) = inline.format.as_deref()
        && format != "json"
        && !format.starts_with("json:")
    {
        return Err(WorkflowError::runtime(format!("schema format \"{format}\" is not supported yet"), instance));
    }
    let validator = jsonschema::validator_for(&inline.document)
        .map_err(|error| WorkflowError::configuration(format!("the schema is invalid: {error}"), instance))?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|error| {
            let at = error.instance_path().to_string();
            if at.is_empty() { error.to_string() } else { format!("{error} (at {at})") }
        })
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(WorkflowError::validation(problems.join("; "), instance)) }
}
