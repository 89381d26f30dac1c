//! Validation of a manifest set: structure against each kind's schema, then the checks across
//! resources (names, duplicates, references, workflow documents). Every diagnostic is returned
//! at once; nothing stops at the first problem.

mod checked;
pub mod locate;
mod semantic;
mod shapes;
mod skill_path;
pub mod structure;
mod workflow;

use serde_json::Value;

use crate::manifest::{Diagnostic, LoadedDocument, Location, ManifestSet, did_you_mean};
use std::sync::Arc;

use crate::model::canonical::Canonical;
use crate::model::{API_VERSION, AnyResource, Kind};
use locate::locate;
use shapes::KnownFields;
use structure::SchemaProblem;

pub use checked::{Checked, check_file, load_checked};
pub use skill_path::skill_dirs;
pub use workflow::TASK_KINDS;

/// Resources that exist outside the manifests being validated (in a backend), so references to
/// them resolve. The reconciler passes the backend's state; `stigmer validate` passes none.
pub trait ResourceLookup {
    /// Names of the existing resources of `kind`.
    fn names(&self, kind: Kind) -> Vec<String>;

    /// The name of the existing resource of `kind` that the backend stored with this id:
    /// `Some(None)` when none has it, `None` when this lookup cannot tell (no backend).
    fn name_of_id(&self, kind: Kind, id: &str) -> Option<Option<String>> {
        let _ = (kind, id);
        None
    }

    /// The organization the backend acts in (a server caller's org); `None` for the local store,
    /// where `metadata.org` is kept as written.
    fn org(&self) -> Option<&str> {
        None
    }
}

/// No resources outside the manifest set.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResources;

impl ResourceLookup for NoResources {
    fn names(&self, _: Kind) -> Vec<String> {
        Vec::new()
    }
}

/// A resource that passed the structural checks, with the document it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidResource {
    /// The typed resource (shared with the document's cached outcome in watch mode).
    pub resource: Arc<AnyResource>,
    /// Index into [`ManifestSet::documents`].
    pub document: usize,
    /// Its canonical manifest and content hash.
    pub canonical: Arc<Canonical>,
}

/// The outcome of validating a manifest set.
#[derive(Debug, Default)]
pub struct Validation {
    /// Every document that could be read as a resource.
    pub resources: Vec<ValidResource>,
    /// Every problem, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// Validates everything loaded, resolving references within the set and in `existing`.
#[must_use]
pub fn validate(set: &ManifestSet, existing: &dyn ResourceLookup) -> Validation {
    check_set(set, check_documents(set), existing)
}

/// Checks every document of a set on its own ([`check_document`]), on all cores.
#[must_use]
pub fn check_documents(set: &ManifestSet) -> Vec<DocumentOutcome> {
    crate::parallel::map(&set.documents, |document| check_document(set, document))
}

/// What checking one document on its own found: the typed resource, if it could be read, and
/// the document's diagnostics. Depends only on the document's own text, so it can be kept
/// while other files change (watch mode).
#[derive(Debug, Clone)]
pub struct DocumentOutcome {
    /// The resource, when the document is structurally valid.
    pub resource: Option<Arc<AnyResource>>,
    /// Problems in the document.
    pub diagnostics: Vec<Diagnostic>,
    /// The resource's canonical manifest and content hash, computed once per document.
    pub canonical: Option<Arc<Canonical>>,
    /// jq expressions not compiled yet, with where each is written: [`resolve_expressions`]
    /// compiles those of many documents together.
    pub expressions: Vec<(workflow::PendingExpression, Location)>,
}

/// Compiles the pending expressions of all these outcomes at once; an expression that does not
/// compile becomes a diagnostic of its document, and that document no longer yields a resource.
pub fn resolve_expressions(outcomes: &mut [DocumentOutcome]) {
    let mut owners = Vec::new();
    let mut pending = Vec::new();
    for (index, outcome) in outcomes.iter_mut().enumerate() {
        for (expression, location) in std::mem::take(&mut outcome.expressions) {
            owners.push((index, location));
            pending.push(expression);
        }
    }
    for (at, problem) in workflow::expression_problems(&pending) {
        let (index, location) = &owners[at];
        let outcome = &mut outcomes[*index];
        outcome.resource = None;
        outcome.canonical = None;
        outcome
            .diagnostics
            .push(Diagnostic::error(problem.code, problem.message).at(location.clone()).hint_opt(problem.hint));
    }
}

/// Checks one document: envelope, kind, schema, workflow structure and expressions.
#[must_use]
pub fn check_document(set: &ManifestSet, document: &LoadedDocument) -> DocumentOutcome {
    let mut check = DocumentCheck { set, document, diagnostics: Vec::new(), expressions: Vec::new() };
    let resource = check.run();
    let expressions = check
        .expressions
        .into_iter()
        .map(|expression| {
            let location = location_of(set, document, &expression.pointer, None);
            (expression, location)
        })
        .collect();
    let canonical = resource.as_ref().map(|resource| Arc::new(Canonical::of(resource)));
    DocumentOutcome { resource: resource.map(Arc::new), diagnostics: check.diagnostics, canonical, expressions }
}

/// Finishes validation from per-document outcomes (one per `set.documents`, in order): the
/// checks across resources — duplicates, references, rules within a kind.
#[must_use]
pub fn check_set(set: &ManifestSet, mut outcomes: Vec<DocumentOutcome>, existing: &dyn ResourceLookup) -> Validation {
    resolve_expressions(&mut outcomes);
    let mut validation = Validation { resources: Vec::new(), diagnostics: set.diagnostics.clone() };
    if set.documents.is_empty() && set.diagnostics.is_empty() {
        validation.diagnostics.push(
            Diagnostic::error("no-manifests", "no manifests found")
                .hint("-f takes YAML files (.yaml, .yml), directories of them, or - for stdin"),
        );
    }
    for (index, outcome) in outcomes.into_iter().enumerate() {
        if let (Some(resource), Some(canonical)) = (outcome.resource, outcome.canonical) {
            validation.resources.push(ValidResource { resource, document: index, canonical });
        }
        validation.diagnostics.extend(outcome.diagnostics);
    }
    // Skill directories are read here, not with each document's own checks, so that every
    // reconcile (watch mode included) sees the files as they are now.
    skill_path::bundle_skills(set, &mut validation.resources, &mut validation.diagnostics);
    semantic::check(set, &validation.resources, existing, &mut validation.diagnostics);
    conceal_inline_secrets(set, &mut validation.diagnostics);
    sort_by_source(set, &mut validation.diagnostics);
    validation
}

/// Masks every value an Environment marks `isSecret` in every diagnostic's snippet, whichever
/// rule reported it: an error on the line that holds a secret must not print the secret. Read
/// from the documents as written, so a document that failed its checks is masked too.
fn conceal_inline_secrets(set: &ManifestSet, diagnostics: &mut [Diagnostic]) {
    const MARKS: [&str; 2] = ["isSecret", "is_secret"];
    if diagnostics.is_empty() {
        return; // the usual case, and a large set need not be walked for it
    }
    let mut secrets = Vec::new();
    for document in &set.documents {
        // Trees are released after the checks: parse again only the files that can hold a mark.
        let text = set.sources.get(document.source).map_or("", |source| source.text.as_str());
        if !MARKS.iter().any(|mark| text.contains(mark)) {
            continue;
        }
        let root = set.tree(document);
        let kind = root.get("kind").map(|kind| kind.value.to_json());
        let is_environment =
            kind.as_ref().and_then(Value::as_str).and_then(Kind::from_manifest) == Some(Kind::Environment);
        let Some(spec) = root.get("spec").filter(|_| is_environment) else { continue };
        let spec = spec.value.to_json();
        let Some(data) = spec.get("data").and_then(Value::as_object) else { continue };
        for entry in data.values() {
            let marked = MARKS.iter().any(|key| entry.get(key) == Some(&Value::Bool(true)));
            if let (true, Some(value)) = (marked, entry.get("value").and_then(Value::as_str)) {
                secrets.push(value.to_owned());
            }
        }
    }
    if secrets.is_empty() {
        return;
    }
    for diagnostic in diagnostics {
        diagnostic
            .conceal
            .extend(secrets.iter().filter(|s| !diagnostic.conceal.contains(s)).cloned().collect::<Vec<_>>());
    }
}

/// Orders diagnostics as the sources were read, then by position.
fn sort_by_source(set: &ManifestSet, diagnostics: &mut [Diagnostic]) {
    let source_index = |location: &Option<Location>| {
        location.as_ref().map(|l| (set.sources.iter().position(|s| s.name == l.file).unwrap_or(usize::MAX), l.position))
    };
    diagnostics.sort_by_key(|d| source_index(&d.location));
}

/// The location of a pointer in a document: the key `at_key` of the object there, else the value.
pub(crate) fn location_of(
    set: &ManifestSet,
    document: &LoadedDocument,
    pointer: &str,
    at_key: Option<&str>,
) -> Location {
    let root = set.tree(document);
    let position = match at_key {
        Some(field) => {
            let found = locate(&root, &format!("{pointer}/{}", locate::escape(field)));
            found.key.filter(|_| found.exact).unwrap_or(found.value)
        }
        None => locate(&root, pointer).value,
    };
    set.location(document, position)
}

/// Kinds of Stigmer's cloud API that this runtime does not have: refused by name, with the
/// kinds it does have, rather than taken for a misspelling of one of them.
const CLOUD_ONLY_KINDS: &[&str] =
    &["AgentChannel", "ApiKey", "IamPolicy", "Identity", "IdentityProvider", "Integration", "Organization", "Team"];

struct DocumentCheck<'a> {
    set: &'a ManifestSet,
    document: &'a LoadedDocument,
    diagnostics: Vec<Diagnostic>,
    expressions: Vec<workflow::PendingExpression>,
}

impl DocumentCheck<'_> {
    fn at(&self, pointer: &str) -> Location {
        location_of(self.set, self.document, pointer, None)
    }

    fn error(&mut self, code: &'static str, pointer: &str, message: String, hint: Option<String>) {
        let location = self.at(pointer);
        self.diagnostics.push(Diagnostic::error(code, message).at(location).hint_opt(hint));
    }

    fn push_problems(&mut self, problems: Vec<SchemaProblem>) {
        for problem in problems {
            let location = location_of(self.set, self.document, &problem.pointer, problem.at_key.as_deref());
            self.diagnostics.push(Diagnostic::error(problem.code, problem.message).at(location).hint_opt(problem.hint));
        }
    }

    fn run(&mut self) -> Option<AnyResource> {
        let mut json = self.set.tree(self.document).to_json();
        let Some(fields) = json.as_object() else {
            self.error(
                "not-a-manifest",
                "",
                "a manifest must be a mapping with apiVersion, kind, metadata and spec".to_owned(),
                Some(format!("start the document with `apiVersion: {API_VERSION}`")),
            );
            return None;
        };
        let kind = self.kind(fields.get("kind"))?;
        let Some(schema) = structure::kind_schema(kind) else {
            self.error("internal", "", format!("no schema for kind {kind}"), None);
            return None;
        };
        schema.shapes().normalize(&mut json);

        if kind == Kind::Workflow
            && let Some(spec) = json.get_mut("spec")
            && !self.description_synonym(spec)
        {
            return None;
        }
        let mut problems = Vec::new();
        if kind == Kind::Workflow
            && let Some(spec) = json.get("spec")
        {
            let (task_problems, expressions) = workflow::check_tasks(spec);
            problems.extend(task_problems);
            self.expressions = expressions;
        }
        let mut precise: Vec<String> = problems.iter().map(|p| p.pointer.clone()).collect();
        if kind == Kind::Skill && json.pointer("/spec/bundle").is_some() {
            // The schema has `bundle` (stored skills carry it), but only stigmer writes it.
            precise.push("/spec/bundle".to_owned());
            problems.push(SchemaProblem {
                pointer: "/spec".to_owned(),
                at_key: Some("bundle".to_owned()),
                message: "spec.bundle is computed by stigmer from spec.path; a manifest cannot set it".to_owned(),
                hint: Some(
                    "remove bundle; set path to the skill's directory (stigmer reads its files on apply), or write skillMd inline"
                        .to_owned(),
                ),
                code: "computed-field",
            });
        }
        let known = KnownFields::new(&json, schema.shapes());
        problems.extend(
            structure::check(schema, &json, "", &known).into_iter().filter(|p| !overlaps(&precise, &p.pointer)),
        );
        if kind == Kind::Workflow
            && problems.is_empty()
            && let Some(spec) = json.get("spec")
        {
            let name = json.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("workflow");
            problems.extend(workflow::check_dsl_schema(spec, name, &known));
        }
        if !problems.is_empty() {
            // An invalid document reports its bad expressions now too: every problem at once.
            let expressions = std::mem::take(&mut self.expressions);
            problems.extend(workflow::expression_problems(&expressions).into_iter().map(|(_, p)| p));
            self.push_problems(problems);
            return None;
        }
        // `status` is server-owned: accepted in input and ignored.
        if let Some(fields) = json.as_object_mut() {
            fields.remove("status");
        }
        match AnyResource::from_value(kind, json) {
            Ok(resource) => Some(resource),
            Err(error) => {
                self.error("invalid-manifest", "", format!("invalid {kind}: {error}"), None);
                None
            }
        }
    }

    /// `document.description` is read as `document.summary`, with a warning; both at once is an
    /// error (and `false`).
    fn description_synonym(&mut self, spec: &mut Value) -> bool {
        let Some(diagnostic) = description_as_summary(self.set, self.document, spec, "/spec") else { return true };
        let fine = !diagnostic.is_error();
        self.diagnostics.push(diagnostic);
        fine
    }

    fn kind(&mut self, kind: Option<&Value>) -> Option<Kind> {
        let known = || Kind::DECLARATIVE.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        let Some(name) = kind.and_then(Value::as_str) else {
            let message = if kind.is_some() { "kind must be a string" } else { "the manifest has no kind" };
            self.error("missing-kind", "/kind", message.to_owned(), Some(format!("kind is one of {}", known())));
            return None;
        };
        match Kind::from_manifest(name) {
            Some(kind) if kind.is_declarative() => Some(kind),
            Some(kind) => {
                self.error(
                    "runtime-kind",
                    "/kind",
                    format!("{kind} is created by running agents and workflows; it cannot be applied from a manifest"),
                    Some(format!("manifests declare {}", known())),
                );
                None
            }
            None => {
                let exact = Kind::from_cli(name).filter(|k| k.is_declarative());
                // A kind of Stigmer's cloud is no typo of ours: name what this runtime has.
                let guess = exact.map(Kind::as_str).or_else(|| {
                    (!CLOUD_ONLY_KINDS.contains(&name))
                        .then(|| did_you_mean(name, Kind::DECLARATIVE.iter().map(|k| k.as_str())))
                        .flatten()
                });
                let hint = match guess {
                    Some(guess) => format!("did you mean \"{guess}\"? The supported kinds are {}", known()),
                    None => format!("the supported kinds are {}", known()),
                };
                let message = if CLOUD_ONLY_KINDS.contains(&name) {
                    format!("kind \"{name}\" exists in Stigmer's cloud but is not supported by this runtime")
                } else {
                    format!("kind \"{name}\" is not supported by this runtime")
                };
                self.error("unknown-kind", "/kind", message, Some(hint));
                None
            }
        }
    }
}

/// Reads a workflow document's `document.description` (many existing files carry it) as
/// `document.summary`, the field the DSL defines, in `workflow`: the document at `pointer` of
/// `document` (`/spec` of a manifest, the root of a bare document). Returns what to report at the
/// field: a warning, or an error when both are written.
pub fn description_as_summary(
    set: &ManifestSet,
    document: &LoadedDocument,
    workflow: &mut Value,
    pointer: &str,
) -> Option<Diagnostic> {
    let diagnostic = match crate::model::dsl::summary_from_description(workflow) {
        crate::model::dsl::DescriptionField::Absent => return None,
        crate::model::dsl::DescriptionField::ReadAsSummary => Diagnostic::warning(
            "description-is-summary",
            "document.description is not a Serverless Workflow field; it is read as document.summary",
        )
        .hint("rename description to summary, the field the DSL defines"),
        crate::model::dsl::DescriptionField::BesideSummary => Diagnostic::error(
            "description-is-summary",
            "document has both summary and description, which means summary too",
        )
        .hint("keep summary and remove description"),
    };
    Some(diagnostic.at(location_of(set, document, &format!("{pointer}/document"), Some("description"))))
}

/// Whether `pointer` is at, above or below one of `reported`, so a precise diagnostic there
/// already covers it.
fn overlaps(reported: &[String], pointer: &str) -> bool {
    let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"));
    reported.iter().any(|r| related(r, pointer) && !r.is_empty())
}
