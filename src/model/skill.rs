//! `Skill`: instructions (a `SKILL.md`) and files an agent can use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::resource::{Resource, ResourceSpec};

/// A `Skill` resource.
pub type Skill = Resource<SkillSpec>;

/// A skill: its `SKILL.md` inline, or a directory holding `SKILL.md` and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillSpec {
    /// What the skill does; shown to the agent next to its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A tag that references may pin (`stable`, `v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The skill's instructions as Markdown (the content of a `SKILL.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_md: Option<String>,
    /// A directory, relative to the manifest, holding `SKILL.md` and the skill's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ResourceSpec for SkillSpec {
    const KIND: Kind = Kind::Skill;
}

impl SkillSpec {
    /// A skill whose instructions are written inline.
    #[must_use]
    pub fn markdown(skill_md: impl Into<String>) -> Self {
        Self { skill_md: Some(skill_md.into()), ..Self::default() }
    }

    /// A skill bundled from a directory relative to the manifest.
    #[must_use]
    pub fn directory(path: impl Into<String>) -> Self {
        Self { path: Some(path.into()), ..Self::default() }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}
