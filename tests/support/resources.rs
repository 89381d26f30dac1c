//! Generators of resources of every declarative kind, for the property tests: full of text
//! YAML finds awkward (scalars that read as other types, quotes, backslashes, control and non-BMP
//! characters, multi-line text with trailing spaces, very long lines, keys spelled like fields),
//! free-form data with numbers at the edges, every optional field, and references that resolve
//! within the generated set.

#![allow(clippy::unwrap_used, reason = "a generator that cannot build its value fails loudly")]

use std::collections::BTreeSet;
use std::sync::Arc;

use indexmap::IndexMap;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use stigmer::model::{
    Agent, AgentInstance, AgentInstanceSpec, AgentSpec, AnyResource, DockerTransport, Environment, EnvironmentSpec,
    EnvironmentValue, HttpTransport, McpServer, McpServerDefinition, McpServerSpec, McpServerUsage, ModelConfig,
    ObjectMeta, PortMapping, ResourceRef, Skill, SkillBundle, SkillFile, SkillSpec, StdioTransport, SubAgent,
    ToolApproval, ToolApprovalOverride, ToolSelection, VariableSpec, Visibility, VolumeMount, Workflow,
    WorkflowInstance, WorkflowInstanceSpec, WorkflowSpec,
};

// ---------------------------------------------------------------------------------------------
// Strings

/// Scalars a YAML writer must quote or escape to keep them strings, and text that breaks
/// naive block scalars.
#[rustfmt::skip]
pub const AWKWARD: &[&str] = &[
    "", " ", "  ", "\t", "yes", "no", "Yes", "NO", "on", "off", "y", "n", "true", "False", "TRUE", "null", "Null",
    "NULL", "~", "1e3", "1E3", "-1e-3", "0x10", "0o10", "0b101", "010", "+1", "-1", "1_000", ".5", "1.", "-0", "0.0",
    "1e400", "9223372036854775807", "9223372036854775808", "18446744073709551616", ".inf", "-.inf", ".Inf", ".nan",
    ".NaN", "-", "- ", "-x", "? ", "?", ": ", ":", "a: b", "a:b", "a #b", "#", "# x", "&a", "*a", "!tag", "!!str",
    "!", "%", "%YAML 1.2", "@", "`", "---", "...", "--- x", "... x", "|", ">", "|-", ">+", "|2", "[", "]", "{", "}",
    "[a, b]", "{a: b}", ",", "'", "\"", "''", "\"\"", "\\", "\\n", "\\\"", "'quoted'", "\"dq\"", "<<", "=", "12:30",
    "12:30:45", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "\u{feff}bom", "\u{85}", "\u{2028}", "\u{2029}",
    "\u{a0}", "\r", "\r\n", "\n", "\n\n", " \n", "\n ", "a\n", "a\n\n", "a \nb", "\ta", "a\t", "\u{1b}[0m", "\u{7f}",
    "\u{1}", "\u{0}", "\u{ffff}", "\u{fffe}", "\u{e000}", "\u{10ffff}", "🚀 emoji", "ünïcødé", "日本語", "עברית",
    "a\u{200b}b", "\u{301}accent", "${ .x }", "$", "$$", "${", "}",
];

/// Field names of the manifests, in both spellings (camelCase, `snake_case`) (the validator
/// renames `snake_case` keys where the schema has the field, and must leave free-form keys be),
/// and keys of the envelope and the DSL.
#[rustfmt::skip]
pub const FIELD_NAMES: &[&str] = &[
    "api_version", "apiVersion", "base_url", "container_name", "container_path", "default_enabled_tools",
    "enabled_tools", "enabledTools", "env_placeholders", "env_spec", "envSpec", "environment_refs", "except_when",
    "host_path", "icon_url", "is_secret", "isSecret", "max_tokens", "mcp_server_ref", "mcp_servers", "query_params",
    "read_only", "secret_ref", "secretRef", "skill_md", "skill_refs", "sub_agents", "timeout_seconds", "working_dir",
    "agent_ref", "workflow_ref", "value", "description", "name", "kind", "status", "spec", "metadata", "labels", "do",
    "set", "call", "with", "if", "then", "document", "schema", "as", "from", "body", "$ref", "$schema", "type",
    "properties", "bundle", "path",
];

/// A map key: a field name, an awkward scalar on its own, or any text.
pub fn key() -> BoxedStrategy<String> {
    prop_oneof![
        1 => prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => prop::sample::select(AWKWARD).prop_map(str::to_owned),
        2 => text(),
    ]
    .boxed()
}

pub const LOWER_ALPHANUMERIC: &[char] = &['a', 'b', 'e', 'f', 'n', 'o', 'x', 'y', 'z', '0', '1', '9'];
pub const NAME_CHARS: &[char] = &['a', 'e', 'f', 'n', 'x', 'z', '0', '1', '-'];
pub const FILE_CHARS: &[char] = &['a', 'b', 'z', '0', '9', '_', ' ', '-'];

#[rustfmt::skip]
pub const ALPHANUMERIC: &[char] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w',
    'x', 'y', 'z', 'A', 'Z', '0', '1', '2', '9',
];

/// Text of characters from a set. (Cheaper than a regex strategy, which compiles its regex
/// for every value.)
pub fn chars(set: &'static [char], length: std::ops::Range<usize>) -> BoxedStrategy<String> {
    prop::collection::vec(prop::sample::select(set), length).prop_map(String::from_iter).boxed()
}

/// One piece of awkward text.
pub fn piece() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(AWKWARD).prop_map(str::to_owned),
        2 => chars(ALPHANUMERIC, 1..8),
        1 => chars(&[' ', '\t', '\n'], 1..3),
        2 => prop::collection::vec(any::<char>(), 1..6).prop_map(String::from_iter),
    ]
    .boxed()
}

/// Text as people and tools write it, and worse: awkward pieces run together, multi-line text
/// with trailing spaces and indented lines, and very long lines.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        12 => prop::sample::select(AWKWARD).prop_map(str::to_owned),
        20 => prop::collection::vec(piece(), 0..6).prop_map(|pieces| pieces.concat()),
        8 => prop::collection::vec((0..4_usize, piece(), prop::bool::ANY), 1..6).prop_map(|lines| {
            lines
                .into_iter()
                .map(|(indent, line, trailing)| format!("{}{line}{}", " ".repeat(indent), if trailing { "  " } else { "" }))
                .collect::<Vec<_>>()
                .join("\n")
        }),
        1 => (piece(), 100..400_usize).prop_map(|(piece, n)| piece.repeat(n)),
        1 => (piece(), 1_000..5_000_usize, piece()).prop_map(|(a, n, b)| format!("{a}{}{b}", "x".repeat(n))),
    ]
    .boxed()
}

pub fn maybe_text() -> BoxedStrategy<Option<String>> {
    prop::option::of(text()).boxed()
}

pub fn texts() -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(text(), 0..3).boxed()
}

pub fn text_map() -> BoxedStrategy<IndexMap<String, String>> {
    prop::collection::vec((key(), text()), 0..3).prop_map(|pairs| pairs.into_iter().collect()).boxed()
}

/// Text in a workflow, where a string enclosed in `${ }` is a jq expression: awkward text with
/// no accidental `${`, or an expression that compiles.
pub fn workflow_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => text().prop_map(|t| t.replace("${", "$ {")),
        1 => prop::sample::select(&["${ . }", "${ .a + 1 }", "  ${ $input.x }  ", "${ \"q: \\\"x\\\"\" }"][..])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A map key in a workflow (no accidental `${`).
pub fn workflow_key() -> BoxedStrategy<String> {
    key().prop_map(|k| k.replace("${", "$ {")).boxed()
}

/// A resource name: a DNS label, among them ones YAML reads as other types when unquoted.
pub fn name() -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::sample::select(
            &[
                "yes", "no", "y", "n", "on", "off", "null", "true", "false", "nan", "inf", "1e3", "1e-3", "010", "0x10",
                "0o7", "0b1", "123", "0", "1-0", "2001-12-14", "12-30",
            ][..]
        )
        .prop_map(str::to_owned),
        3 => (chars(LOWER_ALPHANUMERIC, 1..2), chars(NAME_CHARS, 0..12), chars(LOWER_ALPHANUMERIC, 0..2))
            .prop_map(|(first, middle, last)| if last.is_empty() { first } else { format!("{first}{middle}{last}") }),
        1 => Just("a".repeat(63)),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Free-form data

/// Numbers at the edges of what JSON, YAML and serde agree on.
pub fn number() -> BoxedStrategy<Value> {
    #[rustfmt::skip]
    const FLOATS: [f64; 19] = [
        0.0, -0.0, 0.1, 0.300_000_000_000_000_04, 1.0, -1.5, 1e15, 1e16, 1e17, 1e21, 1e-7, 1e300, -1e300, 5e-324,
        f64::MAX, f64::MIN, f64::MIN_POSITIVE, f64::EPSILON, 123_456_789.123_456_79,
    ];
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(&[i64::MAX, i64::MIN, 0, -1, 1][..]).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        prop::sample::select(&FLOATS[..]).prop_map(Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
    ]
    .boxed()
}

/// A JSON value: scalars of every type, and nested arrays and objects with awkward keys.
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        workflow_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((workflow_key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

pub fn json_object(min: usize) -> BoxedStrategy<Map<String, Value>> {
    prop::collection::vec((workflow_key(), json_value()), min..4)
        .prop_map(|pairs| pairs.into_iter().collect::<Map<_, _>>())
        .prop_filter("enough distinct keys", move |map| map.len() >= min)
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Resources

/// Names of the resources generated, per kind, so references resolve within the stream.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub environments: Vec<String>,
    pub skills: Vec<String>,
    pub mcp_servers: Vec<String>,
    pub agents: Vec<String>,
    pub workflows: Vec<String>,
}

pub fn pick(names: &[String], index: Index) -> Option<&String> {
    (!names.is_empty()).then(|| &names[index.index(names.len())])
}

pub fn metadata(name: String) -> BoxedStrategy<ObjectMeta> {
    (
        maybe_text(),
        prop::option::of(prop::sample::select(&Visibility::ALL[..])),
        prop::collection::btree_map(key(), text(), 0..3),
        prop::collection::btree_map(key(), text(), 0..3),
        prop::collection::vec(key(), 0..2),
    )
        .prop_map(move |(org, visibility, labels, annotations, previous_names)| ObjectMeta {
            name: name.clone(),
            org,
            visibility,
            labels,
            annotations,
            previous_names,
        })
        .boxed()
}

/// A reference to `name`: the plain name, or the object form with every field.
pub fn reference(name: String, kind: &'static str) -> BoxedStrategy<ResourceRef> {
    prop_oneof![
        3 => Just(ResourceRef::named(name.clone())),
        1 => (prop::option::of(Just(kind.to_owned())), maybe_text(), maybe_text(), maybe_text()).prop_map(
            move |(kind, org, scope, version)| ResourceRef { name: name.clone(), kind, org, scope, version }
        ),
    ]
    .boxed()
}

pub fn references(names: &[String], kind: &'static str) -> BoxedStrategy<Vec<ResourceRef>> {
    if names.is_empty() {
        return Just(Vec::new()).boxed();
    }
    let names = names.to_vec();
    prop::collection::vec(any::<Index>(), 0..3)
        .prop_flat_map(move |picks| {
            picks.iter().map(|i| reference(pick(&names, *i).unwrap().clone(), kind)).collect::<Vec<_>>()
        })
        .boxed()
}

pub fn environment_value() -> BoxedStrategy<EnvironmentValue> {
    (0..4_u8, text(), any::<bool>(), maybe_text())
        .prop_map(|(shape, text, is_secret, description)| match shape {
            // A plain value, or (marked secret) one that import moves to the secret store.
            0 | 1 => EnvironmentValue { value: Some(text), is_secret, description, ..EnvironmentValue::default() },
            2 => EnvironmentValue { secret_ref: Some(text), is_secret, description, ..EnvironmentValue::default() },
            // A declared variable (envSpec), with no value.
            _ => EnvironmentValue { description, ..EnvironmentValue::default() },
        })
        .boxed()
}

pub fn environment_spec() -> BoxedStrategy<EnvironmentSpec> {
    (maybe_text(), prop::collection::vec((key(), environment_value()), 0..4))
        .prop_map(|(description, data)| EnvironmentSpec { description, data: data.into_iter().collect() })
        .boxed()
}

pub fn environment(name: String) -> BoxedStrategy<AnyResource> {
    (metadata(name), environment_spec())
        .prop_map(|(metadata, spec)| Environment { metadata, spec, status: None }.into())
        .boxed()
}

/// A file name in a skill directory: never hidden (reading a directory skips those), always
/// with an extension so it cannot clash with the `scripts` directory.
pub fn skill_file_name() -> BoxedStrategy<String> {
    (chars(LOWER_ALPHANUMERIC, 1..2), chars(FILE_CHARS, 0..6), chars(LOWER_ALPHANUMERIC, 1..3))
        .prop_map(|(first, middle, extension)| format!("{first}{middle}.{extension}"))
        .boxed()
}

/// A skill's files as stored: `SKILL.md` and a few text or binary files, some executable.
pub fn bundle() -> BoxedStrategy<SkillBundle> {
    let content = prop_oneof![text().prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..64)];
    (text(), prop::collection::btree_map((any::<bool>(), skill_file_name()), (content, any::<bool>()), 0..4))
        .prop_map(|(skill_md, files)| {
            let mut all = vec![SkillFile::new("SKILL.md", skill_md.as_bytes(), false)];
            for ((nested, name), (bytes, executable)) in files {
                let path = if nested { format!("scripts/{name}") } else { name };
                all.push(SkillFile::new(path, &bytes, executable));
            }
            SkillBundle::new(all).unwrap()
        })
        .boxed()
}

pub fn skill(name: String) -> BoxedStrategy<AnyResource> {
    let spec = prop_oneof![
        (maybe_text(), maybe_text(), text()).prop_map(|(description, tag, skill_md)| SkillSpec {
            description,
            tag,
            skill_md: Some(skill_md),
            ..SkillSpec::default()
        }),
        // Applied from a directory: stored with its path and files.
        (maybe_text(), maybe_text(), text(), bundle()).prop_map(|(description, tag, path, bundle)| SkillSpec {
            description,
            tag,
            path: Some(path),
            bundle: Some(bundle),
            ..SkillSpec::default()
        }),
    ];
    (metadata(name), spec).prop_map(|(metadata, spec)| Skill { metadata, spec, status: None }.into()).boxed()
}

pub fn stdio() -> BoxedStrategy<StdioTransport> {
    (text(), texts(), maybe_text(), text_map())
        .prop_map(|(command, args, working_dir, env_placeholders)| StdioTransport {
            command,
            args,
            working_dir,
            env_placeholders,
        })
        .boxed()
}

pub fn http() -> BoxedStrategy<HttpTransport> {
    (text(), text_map(), text_map(), prop::option::of(prop_oneof![Just(0), Just(u32::MAX), any::<u32>()]))
        .prop_map(|(url, headers, query_params, timeout_seconds)| HttpTransport {
            url,
            headers,
            query_params,
            timeout_seconds,
        })
        .boxed()
}

pub fn docker() -> BoxedStrategy<DockerTransport> {
    let volume = (text(), text(), any::<bool>()).prop_map(|(host_path, container_path, read_only)| VolumeMount {
        host_path,
        container_path,
        read_only,
    });
    let port = (any::<u16>(), prop_oneof![Just(0), Just(u16::MAX), any::<u16>()], maybe_text())
        .prop_map(|(host_port, container_port, protocol)| PortMapping { host_port, container_port, protocol });
    (
        text(),
        texts(),
        text_map(),
        prop::collection::vec(volume, 0..2),
        prop::collection::vec(port, 0..2),
        maybe_text(),
        maybe_text(),
    )
        .prop_map(|(image, args, env_placeholders, volumes, ports, network, container_name)| DockerTransport {
            image,
            args,
            env_placeholders,
            volumes,
            ports,
            network,
            container_name,
        })
        .boxed()
}

/// Exactly one transport, as validation requires.
#[derive(Debug, Clone)]
pub enum Transport {
    Stdio(StdioTransport),
    Http(HttpTransport),
    Docker(DockerTransport),
}

impl Transport {
    /// Sets this transport in a spec's three transport fields.
    fn set_in(
        self,
        stdio: &mut Option<StdioTransport>,
        http: &mut Option<HttpTransport>,
        docker: &mut Option<DockerTransport>,
    ) {
        match self {
            Self::Stdio(t) => *stdio = Some(t),
            Self::Http(t) => *http = Some(t),
            Self::Docker(t) => *docker = Some(t),
        }
    }
}

pub fn transport() -> BoxedStrategy<Transport> {
    prop_oneof![
        stdio().prop_map(Transport::Stdio),
        http().prop_map(Transport::Http),
        docker().prop_map(Transport::Docker)
    ]
    .boxed()
}

/// Stigmer's `env`: variables a resource needs, each with any of its optional fields.
pub fn variables() -> BoxedStrategy<IndexMap<String, VariableSpec>> {
    let variable = (maybe_text(), any::<bool>(), any::<bool>(), maybe_text()).prop_map(
        |(description, is_secret, optional, default_value)| VariableSpec {
            description,
            is_secret,
            optional,
            default_value,
        },
    );
    prop::collection::vec((key(), variable), 0..3).prop_map(|pairs| pairs.into_iter().collect()).boxed()
}

/// A usage's `toolApprovalOverrides`: absent, empty (every tool gated), or listed.
pub fn tool_approval_overrides() -> BoxedStrategy<Option<Vec<ToolApprovalOverride>>> {
    let listed = (text(), any::<bool>(), maybe_text()).prop_map(|(tool_name, requires_approval, message)| {
        ToolApprovalOverride { tool_name, requires_approval, message }
    });
    prop::option::of(prop::collection::vec(listed, 0..3)).boxed()
}

pub fn mcp_server(name: String) -> BoxedStrategy<AnyResource> {
    (metadata(name), maybe_text(), transport(), texts(), prop::option::of(environment_spec()), variables())
        .prop_map(|(metadata, description, transport, default_enabled_tools, env_spec, env)| {
            let mut spec =
                McpServerSpec { description, default_enabled_tools, env_spec, env, ..McpServerSpec::default() };
            transport.set_in(&mut spec.stdio, &mut spec.http, &mut spec.docker);
            McpServer { metadata, spec, status: None }.into()
        })
        .boxed()
}

pub fn model_config() -> BoxedStrategy<ModelConfig> {
    let temperature = prop_oneof![
        prop::sample::select(
            &[0.0, 2.0, 0.1, 0.7, 1.0, 0.300_000_000_000_000_04, 5e-324, 1e-300, 1.999_999_999_999_999_8][..]
        ),
        0.0..=2.0_f64,
    ];
    (
        maybe_text(),
        maybe_text(),
        prop::option::of(temperature),
        prop::option::of(prop_oneof![Just(1), Just(u32::MAX), 1..=u32::MAX]),
        maybe_text(),
    )
        .prop_map(|(provider, name, temperature, max_tokens, base_url)| ModelConfig {
            provider,
            name,
            temperature,
            max_tokens,
            base_url,
        })
        .boxed()
}

/// An ISO 8601 duration.
fn duration() -> impl Strategy<Value = String> + Clone {
    prop_oneof![Just("PT30S".to_owned()), Just("PT15M".to_owned()), Just("PT1H".to_owned())]
}

/// Run limits: turns, tokens, cost (exact in binary, so it survives every text form unchanged)
/// and duration.
fn limits() -> impl Strategy<Value = (Option<u64>, Option<u64>, Option<f64>, Option<String>)> {
    (
        prop::option::of(1..500u64),
        prop::option::of(1..1_000_000u64),
        prop::option::of(prop_oneof![Just(0.5), Just(2.25), Just(10.0)]),
        prop::option::of(duration()),
    )
}

/// An agent's approval mode and timeout, and its run limits.
#[allow(clippy::type_complexity, reason = "the tuple is the strategy's value, named where it is taken apart")]
fn operations()
-> impl Strategy<Value = (Option<ToolApproval>, Option<String>, (Option<u64>, Option<u64>, Option<f64>, Option<String>))>
{
    let mode = prop_oneof![Just(ToolApproval::Listed), Just(ToolApproval::Always), Just(ToolApproval::Never)];
    (prop::option::of(mode), prop::option::of(duration()), limits())
}

/// An agent: inline MCP servers with distinct names, usages of shared servers, skills, and
/// sub-agents (inline, selecting among the agent's servers, or earlier agents by reference).
pub fn agent(name: String, earlier_agents: Vec<String>, names: &Names) -> BoxedStrategy<AnyResource> {
    let inline_servers = prop::collection::btree_map(key(), (transport(), texts()), 0..3).prop_map(|servers| {
        servers
            .into_iter()
            .map(|(name, (transport, enabled_tools))| {
                let mut definition = McpServerDefinition { name, enabled_tools, ..McpServerDefinition::default() };
                transport.set_in(&mut definition.stdio, &mut definition.http, &mut definition.docker);
                definition
            })
            .collect::<Vec<_>>()
    });
    let usages = references(&names.mcp_servers, "McpServer").prop_flat_map(|refs| {
        refs.into_iter()
            .map(|mcp_server_ref| {
                (texts(), tool_approval_overrides()).prop_map(move |(enabled_tools, tool_approval_overrides)| {
                    McpServerUsage { mcp_server_ref: mcp_server_ref.clone(), enabled_tools, tool_approval_overrides }
                })
            })
            .collect::<Vec<_>>()
    });
    let base = (
        metadata(name),
        text(),
        maybe_text(),
        maybe_text(),
        prop::option::of(model_config()),
        inline_servers,
        usages,
        references(&names.skills, "Skill"),
        prop::option::of(environment_spec()),
        variables(),
        operations(),
    );
    let skills = names.skills.clone();
    base.prop_flat_map(
        move |(
            metadata,
            instructions,
            description,
            icon_url,
            model,
            mcp_servers,
            mcp_server_usages,
            skill_refs,
            env_spec,
            env,
            (tool_approval, approval_timeout, (max_turns, max_tokens, max_cost, max_duration)),
        )| {
            let spec = AgentSpec {
                description,
                icon_url,
                instructions,
                model,
                mcp_servers,
                mcp_server_usages,
                skill_refs,
                sub_agents: Vec::new(),
                env_spec,
                env,
                tool_approval,
                approval_timeout,
                max_turns,
                max_tokens,
                max_cost,
                max_duration,
            };
            let available: Vec<String> = spec.mcp_server_names().into_iter().map(str::to_owned).collect();
            let sub_agents = prop::collection::vec(sub_agent(available, earlier_agents.clone(), &skills), 0..3)
                .prop_filter("sub-agents have distinct names", |subs| {
                    subs.iter().map(|s| &s.name).collect::<BTreeSet<_>>().len() == subs.len()
                });
            (Just(metadata.clone()), Just(spec), sub_agents).prop_map(|(metadata, mut spec, sub_agents)| {
                spec.sub_agents = sub_agents;
                Agent { metadata, spec, status: None }.into()
            })
        },
    )
    .boxed()
}

pub fn sub_agent(available: Vec<String>, agents: Vec<String>, skills: &[String]) -> BoxedStrategy<SubAgent> {
    let selection = |available: Vec<String>| {
        if available.is_empty() {
            return Just(Vec::new()).boxed();
        }
        prop::collection::vec(any::<Index>(), 0..3)
            .prop_map(move |picks| picks.iter().map(|i| pick(&available, *i).unwrap().clone()).collect::<Vec<_>>())
            .boxed()
    };
    let tool_selections = selection(available.clone()).prop_flat_map(|servers| {
        servers
            .into_iter()
            .map(|server| texts().prop_map(move |enabled_tools| (server.clone(), ToolSelection { enabled_tools })))
            .collect::<Vec<_>>()
    });
    let inline = (
        text(),
        maybe_text(),
        text(),
        prop::option::of(model_config()),
        selection(available),
        tool_selections,
        references(skills, "Skill"),
    )
        .prop_map(|(name, description, instructions, model, mcp_servers, selections, skill_refs)| SubAgent {
            name,
            description,
            instructions: Some(instructions),
            model,
            mcp_servers,
            mcp_tool_selections: selections.into_iter().collect(),
            skill_refs,
            agent_ref: None,
        })
        .boxed();
    if agents.is_empty() {
        return inline;
    }
    let by_reference = (text(), maybe_text(), any::<Index>())
        .prop_flat_map(move |(name, description, index)| {
            let target = pick(&agents, index).unwrap().clone();
            reference(target, "Agent").prop_map(move |agent_ref| SubAgent {
                name: name.clone(),
                description: description.clone(),
                agent_ref: Some(agent_ref),
                ..SubAgent::default()
            })
        })
        .boxed();
    prop_oneof![2 => inline, 1 => by_reference].boxed()
}

pub fn agent_instance(name: String, names: &Names) -> BoxedStrategy<AnyResource> {
    let bare = instance(
        name,
        &names.environments,
        names.agents.clone(),
        "Agent",
        |metadata, agent_ref, description, environment_refs| {
            AgentInstance {
                metadata,
                spec: AgentInstanceSpec {
                    agent_ref: Some(agent_ref),
                    description,
                    environment_refs,
                    ..AgentInstanceSpec::new("")
                },
                status: None,
            }
            .into()
        },
    );
    (bare, limits())
        .prop_map(|(mut resource, (max_turns, max_tokens, max_cost, max_duration))| {
            if let AnyResource::AgentInstance(instance) = &mut resource {
                instance.spec.max_turns = max_turns;
                instance.spec.max_tokens = max_tokens;
                instance.spec.max_cost = max_cost;
                instance.spec.max_duration = max_duration;
            }
            resource
        })
        .boxed()
}

pub fn workflow_instance(name: String, names: &Names) -> BoxedStrategy<AnyResource> {
    instance(
        name,
        &names.environments,
        names.workflows.clone(),
        "Workflow",
        |metadata, workflow_ref, description, environment_refs| {
            let spec = WorkflowInstanceSpec { workflow_ref, description, environment_refs };
            WorkflowInstance { metadata, spec, status: None }.into()
        },
    )
}

/// An instance of one of `targets` (of `kind`), with a description and environments: `build`
/// puts the parts together as an `AgentInstance` or a `WorkflowInstance`.
pub fn instance(
    name: String,
    environments: &[String],
    targets: Vec<String>,
    kind: &'static str,
    build: fn(ObjectMeta, ResourceRef, Option<String>, Vec<ResourceRef>) -> AnyResource,
) -> BoxedStrategy<AnyResource> {
    (metadata(name), any::<Index>(), maybe_text(), references(environments, "Environment"))
        .prop_flat_map(move |(metadata, index, description, environment_refs)| {
            let target = pick(&targets, index).unwrap().clone();
            reference(target, kind).prop_map(move |target_ref| {
                build(metadata.clone(), target_ref, description.clone(), environment_refs.clone())
            })
        })
        .boxed()
}

/// A task of a workflow, as JSON: `set` with free-form data, `call: agent`, `call: http` with a
/// free-form body, `wait`, or `do` with nested tasks; any of them with free-form `metadata`.
pub fn task(agents: Vec<String>) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        json_object(1).prop_map(|set| json!({"set": set})),
        (any::<Index>(), workflow_text(), prop::collection::vec((workflow_key(), workflow_text()), 0..3)).prop_map(
            move |(index, message, env)| match pick(&agents, index) {
                Some(agent) => json!({"call": "agent", "with": {
                    "agent": agent, "message": message, "env": env.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>()
                }}),
                None => json!({"set": {"message": message}}),
            }
        ),
        (json_value(), prop::sample::select(&["get", "post", "put"][..])).prop_map(|(body, method)| json!({
            "call": "http",
            "with": {"method": method, "endpoint": "https://example.com/hooks", "body": body},
        })),
        prop_oneof![Just(0_u64), Just(u64::from(u32::MAX)), 0..100_000_u64]
            .prop_map(|seconds| json!({"wait": {"seconds": seconds}})),
    ];
    let with_metadata = (leaf, prop::option::of(json_object(0))).prop_map(|(mut task, metadata)| {
        if let Some(metadata) = metadata {
            task["metadata"] = Value::Object(metadata);
        }
        task
    });
    with_metadata.prop_recursive(2, 8, 3, |inner| task_list(inner).prop_map(|tasks| json!({"do": tasks}))).boxed()
}

/// A task list: distinct names (awkward ones too), one task each.
pub fn task_list(task: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::btree_map(workflow_key(), task, 1..4)
        .prop_map(|tasks| Value::Array(tasks.into_iter().map(|(name, task)| json!({ name: task })).collect()))
        .boxed()
}

pub fn workflow(name: String, names: &Names) -> BoxedStrategy<AnyResource> {
    let document = (
        chars(LOWER_ALPHANUMERIC, 1..8),
        prop::sample::select(&["0.1.0", "1.0.0", "10.0.0", "1.2.3-rc.1+build.5"][..]),
        prop::option::of(workflow_text()),
        prop::option::of(workflow_text()),
        prop::option::of(json_object(0)),
        prop::option::of(json_object(0)),
    )
        .prop_map(|(namespace, version, title, summary, tags, metadata)| {
            let mut document = json!({"dsl": "1.0.0", "namespace": namespace, "name": "doc", "version": version});
            for (key, value) in [("title", title.map(Value::String)), ("summary", summary.map(Value::String))] {
                if let Some(value) = value {
                    document[key] = value;
                }
            }
            for (key, value) in [("tags", tags), ("metadata", metadata)] {
                if let Some(value) = value {
                    document[key] = Value::Object(value);
                }
            }
            document
        });
    let input = (json_object(0), prop::option::of(json_object(1))).prop_map(|(schema, from)| {
        let mut input = json!({"schema": {"format": "json", "document": schema}});
        if let Some(from) = from {
            input["from"] = Value::Object(from);
        }
        input
    });
    let output = (json_object(1), prop::option::of(json_object(0))).prop_map(|(as_, schema)| {
        let mut output = json!({"as": as_});
        if let Some(schema) = schema {
            output["schema"] = json!({"format": "json", "document": schema});
        }
        output
    });
    (
        metadata(name),
        prop::option::of(document),
        prop::option::of(input),
        task_list(task(names.agents.clone())),
        prop::option::of(output),
        prop::option::of(environment_spec()),
    )
        .prop_map(|(metadata, document, input, tasks, output, env_spec)| {
            let mut spec = json!({"do": tasks});
            if let Some(document) = document {
                spec["document"] = document;
            }
            if let Some(input) = input {
                spec["input"] = input;
            }
            if let Some(output) = output {
                spec["output"] = output;
            }
            if let Some(env_spec) = env_spec {
                spec["envSpec"] = serde_json::to_value(env_spec).unwrap();
            }
            let spec: WorkflowSpec = serde_json::from_value(spec).unwrap();
            Workflow { metadata, spec, status: None }.into()
        })
        .boxed()
}

/// Distinct names for each kind (a kind may have none).
pub fn names(least: usize) -> BoxedStrategy<Names> {
    let some =
        move |n| prop::collection::btree_set(name(), least..=n).prop_map(|set| set.into_iter().collect::<Vec<_>>());
    (some(2), some(2), some(2), some(3), some(2))
        .prop_map(|(environments, skills, mcp_servers, agents, workflows)| Names {
            environments,
            skills,
            mcp_servers,
            agents,
            workflows,
        })
        .boxed()
}

/// Resources of every declarative kind whose references resolve among them; maybe none of a kind.
pub fn resources() -> BoxedStrategy<Vec<AnyResource>> {
    resources_with_at_least(0)
}

/// Resources whose references resolve among them, at least `least` (at most 2) of every kind.
pub fn resources_with_at_least(least: usize) -> BoxedStrategy<Vec<AnyResource>> {
    let instances = move || prop::collection::btree_set(name(), least..=2);
    (names(least), instances(), instances())
        .prop_flat_map(|(names, agent_instances, workflow_instances)| {
            let names = Arc::new(names);
            let mut all: Vec<BoxedStrategy<AnyResource>> = Vec::new();
            all.extend(names.environments.iter().map(|n| environment(n.clone())));
            all.extend(names.skills.iter().map(|n| skill(n.clone())));
            all.extend(names.mcp_servers.iter().map(|n| mcp_server(n.clone())));
            for (i, n) in names.agents.iter().enumerate() {
                all.push(agent(n.clone(), names.agents[..i].to_vec(), &names));
            }
            if !names.agents.is_empty() {
                all.extend(agent_instances.iter().map(|n| agent_instance(n.clone(), &names)));
            }
            all.extend(names.workflows.iter().map(|n| workflow(n.clone(), &names)));
            if !names.workflows.is_empty() {
                all.extend(workflow_instances.iter().map(|n| workflow_instance(n.clone(), &names)));
            }
            all
        })
        .boxed()
}
