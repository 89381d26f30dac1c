//! Property tests of the pure planner: applying a plan and planning again changes nothing;
//! creates come after what they reference and deletes before what they reference; prune never
//! touches resources of another set or made by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use stigmer::backend::StoredResource;
use stigmer::model::{
    Agent, AgentInstance, AgentInstanceSpec, AgentSpec, AnyResource, Environment, EnvironmentSpec, Kind, Skill,
    SkillSpec,
};
use stigmer::reconcile::{Change, Desired, PlanOptions, plan};

/// A small universe of names so sets overlap often.
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// A desired state: environments, skills, agents using some skills, instances of agents.
fn desired_state() -> impl Strategy<Value = Vec<AnyResource>> {
    let envs = prop::sample::subsequence(NAMES.to_vec(), 0..=4);
    let skills = prop::sample::subsequence(NAMES.to_vec(), 0..=4);
    let agents = prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), (any::<u8>(), any::<u8>()), 0..=4);
    (envs, skills, agents, any::<u8>()).prop_map(|(envs, skills, agents, text)| {
        let mut out: Vec<AnyResource> = Vec::new();
        for e in &envs {
            out.push(Environment::new(*e, EnvironmentSpec::new().value("K", format!("{text}"))).into());
        }
        for s in &skills {
            out.push(Skill::new(*s, SkillSpec::markdown(format!("skill {s} v{}", text % 3))).into());
        }
        for (name, (pick, variant)) in &agents {
            let mut spec = AgentSpec::new(format!("agent {name} v{}", variant % 2));
            if !skills.is_empty() {
                spec = spec.skill(skills[usize::from(*pick) % skills.len()]);
            }
            out.push(Agent::new(*name, spec).into());
            if !envs.is_empty() && pick % 2 == 0 {
                let instance = AgentInstanceSpec::new(*name).environment(envs[usize::from(*pick) % envs.len()]);
                out.push(AgentInstance::new(format!("{name}-prod"), instance).into());
            }
        }
        out
    })
}

/// Applies a plan to an in-memory store the way the backend does.
fn apply(observed: &[StoredResource], changes: &[Change], set: Option<&str>) -> Vec<StoredResource> {
    let mut by_key: BTreeMap<(Kind, String), StoredResource> =
        observed.iter().map(|r| ((r.kind, r.name.clone()), r.clone())).collect();
    let now = jiff::Timestamp::UNIX_EPOCH;
    for change in changes {
        let key = (change.kind(), change.name().to_owned());
        match change {
            Change::Create { after, .. } | Change::Update { after, .. } | Change::Rename { after, .. } => {
                // A rename takes the old name's resource (and its generation) under the new name.
                let old = match change {
                    Change::Rename { from, .. } => by_key.remove(&(key.0, from.clone())),
                    _ => by_key.get(&key).cloned(),
                };
                let generation = old.map_or(0, |r| r.generation) + 1;
                by_key.insert(
                    key.clone(),
                    StoredResource {
                        kind: key.0,
                        name: key.1.clone(),
                        uid: "uid".into(),
                        generation,
                        created_at: now,
                        updated_at: now,
                        hash: stigmer::reconcile::canonical::hash(after),
                        apply_set: set.map(str::to_owned),
                        manifest: std::sync::Arc::clone(after),
                        status: None,
                    },
                );
            }
            Change::Delete { .. } => {
                by_key.remove(&key);
            }
            Change::Unchanged { .. } => {}
        }
    }
    by_key.into_values().collect()
}

fn desired(resources: &[AnyResource]) -> Vec<Desired> {
    resources.iter().cloned().map(Desired::new).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn planning_after_applying_yields_no_change(before in desired_state(), after in desired_state(), prune in any::<bool>()) {
        let options = PlanOptions { apply_set: Some("set".into()), prune, ..PlanOptions::default() };
        let first = plan(&desired(&before), &[], &options).unwrap();
        let observed = apply(&[], &first.changes, Some("set"));
        // Prune may be refused when a kept resource would lose a reference; that is fine here.
        let Ok(second) = plan(&desired(&after), &observed, &options) else { return Ok(()) };
        let observed = apply(&observed, &second.changes, Some("set"));
        let third = plan(&desired(&after), &observed, &options).unwrap();
        prop_assert!(!third.has_changes(), "{:?}", third.changes);
    }

    #[test]
    fn plan_order_respects_references(state in desired_state()) {
        let options = PlanOptions { apply_set: Some("set".into()), ..PlanOptions::default() };
        let plan = plan(&desired(&state), &[], &options).unwrap();
        let position: BTreeMap<(Kind, String), usize> =
            plan.changes.iter().enumerate().map(|(i, c)| ((c.kind(), c.name().to_owned()), i)).collect();
        for resource in &state {
            let at = position[&(resource.kind(), resource.name().to_owned())];
            for reference in resource.references() {
                for kind in reference.kinds {
                    if let Some(target) = position.get(&(*kind, reference.name.clone())) {
                        prop_assert!(target < &at, "{} is created before {}", resource.address(), reference.name);
                    }
                }
            }
        }
    }

    #[test]
    fn prune_never_touches_other_sets_or_hand_made_resources(state in desired_state(), theirs in desired_state()) {
        let mine = PlanOptions { apply_set: Some("mine".into()), prune: true, ..PlanOptions::default() };
        let observed = apply(&[], &plan(&desired(&theirs), &[], &PlanOptions { apply_set: Some("theirs".into()), ..PlanOptions::default() }).unwrap().changes, Some("theirs"));
        let hand_made = apply(&[], &plan(&desired(&theirs), &[], &PlanOptions::default()).unwrap().changes, None);
        for observed in [observed, hand_made] {
            // Only declare names the others do not hold, so no takeover is involved.
            let fresh: Vec<AnyResource> = state.iter().filter(|r| !observed.iter().any(|o| o.kind == r.kind() && o.name == r.name())).cloned().collect();
            if let Ok(plan) = plan(&desired(&fresh), &observed, &mine) {
                prop_assert!(plan.changes.iter().all(|c| !matches!(c, Change::Delete { .. })), "{:?}", plan.changes);
            }
        }
    }
}
