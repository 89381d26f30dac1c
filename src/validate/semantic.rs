//! Checks across resources: the same resource declared twice, references that do not
//! resolve, and rules within a kind that a schema cannot say ("exactly one of").

use std::collections::{BTreeSet, HashMap};

use super::{ResourceLookup, ValidResource, location_of};
use crate::manifest::{Diagnostic, Location, ManifestSet, did_you_mean};
use crate::model::{AnyResource, Kind};

/// Runs every cross-resource check and appends what it finds.
pub fn check(set: &ManifestSet, resources: &[ValidResource], existing: &dyn ResourceLookup, out: &mut Vec<Diagnostic>) {
    let at = |r: &ValidResource, pointer: &str| location_of(set, &set.documents[r.document], pointer, None);
    let mut first: HashMap<(Kind, &str), &ValidResource> = HashMap::new();
    for resource in resources {
        let name = resource.resource.name();
        match first.get(&(resource.resource.kind(), name)) {
            Some(earlier) => out.push(
                Diagnostic::error("duplicate", format!("{} is declared twice", resource.resource.address()))
                    .at(at(resource, "/metadata/name"))
                    .note(at(earlier, "/metadata/name"), "first declared here")
                    .hint("rename one of them, or remove the copy"),
            ),
            None => {
                first.insert((resource.resource.kind(), name), resource);
            }
        }
        for (pointer, message, hint) in kind_rules(&resource.resource) {
            out.push(Diagnostic::error("invalid-spec", message).at(at(resource, &pointer)).hint(hint));
        }
        for (pointer, key, value) in plaintext_secrets(&resource.resource) {
            out.push(
                Diagnostic::warning(
                    "plaintext-secret",
                    format!("{}: {key} is marked secret but its value is written in the file", resource.resource.address()),
                )
                .at(at(resource, &pointer))
                .conceal(value)
                .hint(
                    "apply moves it into the encrypted secret store, but it stays in this file (and in git): store it with `stigmer secret set` and write `secretRef:` instead",
                ),
            );
        }
    }
    check_references(set, resources, &first, existing, out);
    if let Some(org) = existing.org() {
        check_orgs(set, resources, org, out);
    }
    environment_coverage(set, resources, &first, out);
}

/// On a server, a resource belongs to the caller's organization: a manifest that names another
/// (in `metadata.org`, or in a reference) is refused where it says so.
fn check_orgs(set: &ManifestSet, resources: &[ValidResource], org: &str, out: &mut Vec<Diagnostic>) {
    for resource in resources {
        let address = resource.resource.address();
        for named in resource.resource.named_orgs().into_iter().filter(|named| named.org != org) {
            let (message, hint) = match &named.reference {
                None => (
                    format!("{address} is declared in org \"{}\", but this context acts in org \"{org}\"", named.org),
                    format!(
                        "remove metadata.org to use the context's org, or log in to org {0} (`stigmer login --org {0}`)",
                        named.org
                    ),
                ),
                Some(reference) => (
                    format!(
                        "{address} refers to {} \"{}\" in org \"{}\", but this context acts in org \"{org}\"; references stay within one org",
                        reference.kinds.first().copied().unwrap_or(Kind::Agent).cli_name(),
                        reference.name,
                        named.org
                    ),
                    format!("remove org from the reference, or set it to {org}"),
                ),
            };
            let location = location_of(set, &set.documents[resource.document], &named.pointer(), None);
            out.push(Diagnostic::error("wrong-org", message).at(location).hint(hint));
        }
    }
}

/// Warns about an agent instance whose environments, as far as the manifests show them, leave
/// a variable the agent (or an MCP server it uses) requires without a value: running it would
/// fail. Environments that live only in the backend are not known here, so an instance using
/// one is not judged.
fn environment_coverage(
    set: &ManifestSet,
    resources: &[ValidResource],
    declared: &HashMap<(Kind, &str), &ValidResource>,
    out: &mut Vec<Diagnostic>,
) {
    let declared_as = |kind: Kind, name: &str| declared.get(&(kind, name)).map(|r| r.resource.as_ref());
    for resource in resources {
        let AnyResource::AgentInstance(instance) = resource.resource.as_ref() else { continue };
        let Some(agent_ref) = &instance.spec.agent_ref else { continue };
        let Some(AnyResource::Agent(agent)) = declared_as(Kind::Agent, &agent_ref.name) else { continue };
        let environments: Option<Vec<_>> = (instance.spec.environment_refs.iter())
            .map(|reference| match declared_as(Kind::Environment, &reference.name) {
                Some(AnyResource::Environment(environment)) => Some(environment),
                _ => None,
            })
            .collect();
        let Some(environments) = environments else { continue };
        let servers = agent.spec.mcp_server_usages.iter().filter_map(|usage| {
            match declared_as(Kind::McpServer, &usage.mcp_server_ref.name) {
                Some(AnyResource::McpServer(server)) => Some((server.address(), &server.spec)),
                _ => None,
            }
        });
        let declared = agent.spec.declarations(&agent.address(), servers);
        for (key, declaration) in declared.required() {
            if environments.iter().any(|e| e.spec.provides(key)) {
                continue;
            }
            let given_by = if environments.is_empty() {
                "it has no environments".to_owned()
            } else {
                format!(
                    "none of its environments ({}) gives it",
                    environments.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
                )
            };
            let pointer = if instance.spec.environment_refs.is_empty() { "/spec" } else { "/spec/environmentRefs" };
            out.push(
                Diagnostic::warning(
                    "unprovided-variable",
                    format!(
                        "{}: {} requires {key}, and {given_by}",
                        resource.resource.address(),
                        declaration.declared_by
                    ),
                )
                .at(location_of(set, &set.documents[resource.document], pointer, None))
                .hint(format!(
                    "add {key} to an environment of the instance, or give it with --env/--secret when executing; running the instance without it fails"
                )),
            );
        }
    }
}

/// Values marked `isSecret` but written in plain text in an Environment: (pointer, key, value).
fn plaintext_secrets(resource: &AnyResource) -> Vec<(String, &str, &str)> {
    let AnyResource::Environment(env) = resource else { return Vec::new() };
    env.spec
        .data
        .iter()
        .filter(|(_, value)| value.is_secret)
        .filter_map(|(key, value)| {
            let secret = value.value.as_deref()?;
            Some((format!("/spec/data/{}/value", super::locate::escape(key)), key.as_str(), secret))
        })
        .collect()
}

/// Rules of one kind that the schema cannot express: (pointer, message, hint).
fn kind_rules(resource: &AnyResource) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let address = resource.address();
    let exactly_one =
        |out: &mut Vec<(String, String, String)>, pointer: String, what: &str, set: &[&str], choices: &str| match set
            .len()
        {
            1 => {}
            0 => out.push((
                pointer,
                format!("{address}: {what} sets none of {choices}"),
                format!("set exactly one of {choices}"),
            )),
            _ => out.push((
                pointer,
                format!("{address}: {what} sets {}; only one is allowed", set.join(" and ")),
                format!("keep exactly one of {choices}"),
            )),
        };
    match resource {
        AnyResource::McpServer(server) => {
            exactly_one(
                &mut out,
                "/spec".to_owned(),
                "the MCP server",
                &server.spec.transports(),
                "stdio, http or docker",
            );
        }
        AnyResource::Skill(skill) => {
            let set: Vec<&str> = [("skillMd", skill.spec.skill_md.is_some()), ("path", skill.spec.path.is_some())]
                .into_iter()
                .filter_map(|(n, s)| s.then_some(n))
                .collect();
            exactly_one(&mut out, "/spec".to_owned(), "the skill", &set, "skillMd or path");
        }
        AnyResource::Environment(env) => {
            for (key, value) in &env.spec.data {
                if value.value.is_some() && value.secret_ref.is_some() {
                    out.push((
                        format!("/spec/data/{}", super::locate::escape(key)),
                        format!("{address}: {key} sets both value and secretRef"),
                        "keep one: a plain value, or the name of a stored secret".to_owned(),
                    ));
                }
                // An inline secret is stored under `<environment>.<KEY>`: refused here, with its
                // place, rather than when the apply stores it.
                if value.is_secret && value.value.is_some() {
                    let secret = crate::model::environment::inline_secret_name(env.name(), key);
                    if let Err(error) = crate::backend::check_secret_name(&secret) {
                        out.push((
                            format!("/spec/data/{}", super::locate::escape(key)),
                            format!("{address}: the inline secret {key:?} cannot be stored: {error}"),
                            "rename the key, or store the value with `stigmer secret set` and refer to it with secretRef".to_owned(),
                        ));
                    }
                }
            }
        }
        AnyResource::Agent(agent) => {
            let mut names: HashMap<&str, usize> = HashMap::new();
            for (i, server) in agent.spec.mcp_servers.iter().enumerate() {
                exactly_one(
                    &mut out,
                    format!("/spec/mcpServers/{i}"),
                    &format!("MCP server \"{}\"", server.name),
                    &server.transports(),
                    "stdio, http or docker",
                );
                if names.insert(server.name.as_str(), i).is_some() {
                    out.push((
                        format!("/spec/mcpServers/{i}/name"),
                        format!("{address}: MCP server name \"{}\" is used twice", server.name),
                        "give each MCP server its own name".to_owned(),
                    ));
                }
            }
            check_limits(
                &address,
                &[("approvalTimeout", &agent.spec.approval_timeout), ("maxDuration", &agent.spec.max_duration)],
                agent.spec.max_cost,
                &mut out,
            );
            let available = agent.spec.mcp_server_names();
            for (i, sub) in agent.spec.sub_agents.iter().enumerate() {
                match (&sub.instructions, &sub.agent_ref) {
                    (Some(_), Some(_)) => out.push((
                        format!("/spec/subAgents/{i}"),
                        format!("{address}: sub-agent \"{}\" has both instructions and agentRef", sub.name),
                        "define it inline with instructions, or point agentRef at another agent, not both".to_owned(),
                    )),
                    (None, None) => out.push((
                        format!("/spec/subAgents/{i}"),
                        format!("{address}: sub-agent \"{}\" has neither instructions nor agentRef", sub.name),
                        "give it instructions, or point agentRef at another agent".to_owned(),
                    )),
                    _ => {}
                }
                let selected = sub
                    .mcp_servers
                    .iter()
                    .enumerate()
                    .map(|(j, n)| (format!("/spec/subAgents/{i}/mcpServers/{j}"), n.as_str()));
                let selections = sub.mcp_tool_selections.keys().map(|n| {
                    (format!("/spec/subAgents/{i}/mcpToolSelections/{}", super::locate::escape(n)), n.as_str())
                });
                for (pointer, name) in selected.chain(selections) {
                    if !available.contains(&name) {
                        let hint = did_you_mean(name, available.iter().copied()).map_or_else(
                            || {
                                if available.is_empty() {
                                    "the agent has no MCP servers; add them to mcpServers or mcpServerUsages".to_owned()
                                } else {
                                    format!("the agent's MCP servers are: {}", available.join(", "))
                                }
                            },
                            |s| format!("did you mean \"{s}\"?"),
                        );
                        out.push((
                            pointer,
                            format!(
                                "{address}: sub-agent \"{}\" uses MCP server \"{name}\", which the agent does not have",
                                sub.name
                            ),
                            hint,
                        ));
                    }
                }
            }
        }
        AnyResource::AgentInstance(instance) => {
            let set: Vec<&str> =
                [("agentRef", instance.spec.agent_ref.is_some()), ("agentId", instance.spec.agent_id.is_some())]
                    .into_iter()
                    .filter_map(|(n, s)| s.then_some(n))
                    .collect();
            exactly_one(&mut out, "/spec".to_owned(), "the agent instance", &set, "agentRef or agentId");
            check_limits(&address, &[("maxDuration", &instance.spec.max_duration)], instance.spec.max_cost, &mut out);
        }
        _ => {}
    }
    out
}

/// Durations written as ISO 8601, and a cost limit that is a positive number.
fn check_limits(
    address: &str,
    durations: &[(&str, &Option<String>)],
    max_cost: Option<f64>,
    out: &mut Vec<(String, String, String)>,
) {
    for (field, text) in durations {
        if let Some(text) = text
            && let Err(why) = crate::model::dsl::duration::iso8601(text)
        {
            out.push((
                format!("/spec/{field}"),
                format!("{address}: {field} {why}"),
                "write it as an ISO 8601 duration, like PT15M or PT1H".to_owned(),
            ));
        }
    }
    if let Some(cost) = max_cost
        && !(cost.is_finite() && cost > 0.0)
    {
        out.push((
            "/spec/maxCost".to_owned(),
            format!("{address}: maxCost must be a positive number, not {cost}"),
            "give the most a run may cost, in the currency of model_prices".to_owned(),
        ));
    }
}

fn check_references(
    set: &ManifestSet,
    resources: &[ValidResource],
    declared: &HashMap<(Kind, &str), &ValidResource>,
    existing: &dyn ResourceLookup,
    out: &mut Vec<Diagnostic>,
) {
    let mut existing_cache: HashMap<Kind, BTreeSet<String>> = HashMap::new();
    // Old names of renamed resources: the rename frees them, so nothing may point at one.
    let mut renamed: HashMap<(Kind, String), String> = HashMap::new();
    for resource in resources {
        let r = &resource.resource;
        for old in &r.metadata().previous_names {
            renamed.insert((r.kind(), old.clone()), r.name().to_owned());
        }
    }
    for moved in set.project.iter().flat_map(|p| &p.moved) {
        renamed.insert((moved.kind, moved.from.clone()), moved.to.clone());
    }
    renamed.retain(|(kind, old), _| !declared.contains_key(&(*kind, old.as_str())));
    for resource in resources {
        let document = &set.documents[resource.document];
        for reference in resource.resource.references() {
            // Locations are only worked out for problems: most references resolve.
            let location = || location_of(set, document, &reference.pointer, None);
            // Refused only when nothing declared answers to the name (a reference that may be
            // an agent or an agent instance can mean the other one).
            let declared_as_any = reference.kinds.iter().any(|k| declared.contains_key(&(*k, reference.name.as_str())));
            if let Some((kind, new)) = reference
                .kinds
                .iter()
                .find_map(|kind| renamed.get(&(*kind, reference.name.clone())).map(|new| (*kind, new)))
                .filter(|_| !declared_as_any)
            {
                out.push(
                    Diagnostic::error(
                        "renamed-reference",
                        format!(
                            "{} references {} \"{}\", which is renamed to \"{new}\"",
                            resource.resource.address(),
                            kind.cli_name(),
                            reference.name
                        ),
                    )
                    .at(location())
                    .hint(format!("refer to it by its new name: {new}")),
                );
                continue;
            }
            let expected = reference.kinds.first().copied().unwrap_or(Kind::Agent);
            if let Some(written) = &reference.written_kind {
                let matches = reference.kinds.iter().any(|k| Kind::from_cli(written) == Some(*k));
                if !matches {
                    out.push(
                        Diagnostic::error(
                            "wrong-reference-kind",
                            format!(
                                "{} refers to kind {written} where kind {expected} is expected",
                                resource.resource.address()
                            ),
                        )
                        .at(location())
                        .hint(format!("set kind: {expected}, or leave kind out")),
                    );
                    continue;
                }
            }
            if reference.by_id {
                check_id_reference(resource, &reference, existing, location, out);
                continue;
            }
            let found = reference.kinds.iter().any(|kind| {
                declared.contains_key(&(*kind, reference.name.as_str()))
                    || existing_cache
                        .entry(*kind)
                        .or_insert_with(|| existing.names(*kind).into_iter().collect())
                        .contains(&reference.name)
            });
            if found {
                continue;
            }
            let mut candidates: Vec<(String, Option<Location>)> = Vec::new();
            for kind in reference.kinds {
                for ((k, name), r) in declared {
                    if k == kind {
                        candidates.push((
                            (*name).to_owned(),
                            Some(location_of(set, &set.documents[r.document], "/metadata/name", None)),
                        ));
                    }
                }
                for name in
                    existing_cache.entry(*kind).or_insert_with(|| existing.names(*kind).into_iter().collect()).iter()
                {
                    candidates.push((name.clone(), None));
                }
            }
            let suggestion = did_you_mean(&reference.name, candidates.iter().map(|(n, _)| n.as_str()));
            let hint = match suggestion.and_then(|s| candidates.iter().find(|(n, _)| n == s)) {
                Some((name, Some(defined))) => format!(
                    "did you mean \"{name}\"? ({} defined in {}:{})",
                    expected.cli_name(),
                    defined.file,
                    defined.position.line
                ),
                Some((name, None)) => format!("did you mean \"{name}\"? (it exists in the backend)"),
                None => format!("declare it (kind: {expected}) in the manifests, or fix the name"),
            };
            out.push(
                Diagnostic::error(
                    "dangling-reference",
                    format!(
                        "{} references {} \"{}\", which does not exist",
                        resource.resource.address(),
                        expected.cli_name(),
                        reference.name
                    ),
                )
                .at(location())
                .hint(hint),
            );
        }
    }
}

/// A reference by stored id (`agentId`) resolves only against the backend, where ids are given;
/// without a backend (`stigmer validate`) it cannot be judged.
fn check_id_reference(
    resource: &ValidResource,
    reference: &crate::model::Reference,
    existing: &dyn ResourceLookup,
    location: impl Fn() -> Location,
    out: &mut Vec<Diagnostic>,
) {
    let expected = reference.kinds.first().copied().unwrap_or(Kind::Agent);
    if let Some(None) = existing.name_of_id(expected, &reference.name) {
        out.push(
            Diagnostic::error(
                "unknown-id",
                format!(
                    "{} refers to {} id \"{}\", which no stored {} has",
                    resource.resource.address(),
                    expected.cli_name(),
                    reference.name,
                    expected.cli_name()
                ),
            )
            .at(location())
            .hint(format!(
                "`stigmer get {}s -o wide` lists the ids; or refer to the {} by name with agentRef",
                expected.cli_name(),
                expected.cli_name()
            )),
        );
    }
}
