//! References by stored id, resolved to names before planning: an `AgentInstance` may name its
//! agent by the id the backend gave it (Stigmer's `agent_id`), but stigmer binds resources by
//! name, so what is stored — and diffed, exported, moved to another store — is `agentRef` with
//! the name that id had when applied. Validation has already refused an id no stored agent has.

use super::Desired;
use crate::backend::ResourceHead;
use crate::model::{AnyResource, Kind, ResourceRef};

/// Replaces each desired instance's `agentId` by `agentRef` to the stored agent with that id
/// (canonical form and hash recomputed). An id that matches nothing is left as written; the
/// validation that ran before reports it.
#[must_use]
pub fn resolve_agent_ids(desired: Vec<Desired>, observed: &[ResourceHead]) -> Vec<Desired> {
    desired
        .into_iter()
        .map(|wanted| {
            let AnyResource::AgentInstance(instance) = wanted.resource.as_ref() else { return wanted };
            let Some(id) = instance.spec.agent_id.as_deref() else { return wanted };
            let Some(agent) = observed.iter().find(|r| r.kind == Kind::Agent && r.uid == id) else { return wanted };
            let mut instance = instance.clone();
            instance.spec.agent_id = None;
            instance.spec.agent_ref = Some(ResourceRef::named(agent.name.clone()));
            Desired::new(instance.into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentInstance, AgentInstanceSpec};

    #[test]
    fn an_agent_id_becomes_a_reference_by_name() {
        let stored = ResourceHead {
            kind: Kind::Agent,
            name: "bot".into(),
            uid: "0f7c".into(),
            generation: 1,
            hash: String::new(),
            apply_set: None,
        };
        let spec = AgentInstanceSpec { agent_ref: None, agent_id: Some("0f7c".into()), ..AgentInstanceSpec::new("x") };
        let by_id = Desired::new(AgentInstance::new("bot-prod", spec).into());
        let by_name = Desired::new(AgentInstance::new("bot-prod", AgentInstanceSpec::new("bot")).into());
        let resolved = resolve_agent_ids(vec![by_id.clone()], std::slice::from_ref(&stored));
        assert_eq!(resolved, [by_name], "stored, hashed and exported as the reference by name");
        assert_eq!(resolve_agent_ids(vec![by_id.clone()], &[]), [by_id], "unknown: left for validation");
    }
}
