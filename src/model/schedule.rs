//! When a workflow runs on its own: the DSL's `schedule` (`every`, `cron`, `after`, `on`) read
//! as a [`Trigger`], with stigmer's `schedulePolicy` beside it on the Workflow spec (the DSL's
//! schema allows nothing else in `schedule`): the time zone of a `cron`, what happens to slots
//! missed while no scheduler ran, and what happens when a slot comes while the previous run is
//! still going. Pure: the scheduler (`backend::schedule`) decides with these and the clock.

use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dsl;

/// How a scheduled workflow's slots are handled (a stigmer extension on the Workflow spec).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulePolicy {
    /// The IANA time zone a `cron` is read in (`Europe/Paris`); UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What to do with the slots missed while no scheduler ran.
    #[serde(default, skip_serializing_if = "is_default")]
    pub catch_up: CatchUp,
    /// With `catchUp: all`, the most missed slots fired (the latest ones); 10 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_limit: Option<u32>,
    /// What to do when a slot comes while the previous run is still going.
    #[serde(default, skip_serializing_if = "is_default")]
    pub overlap: Overlap,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// What happens to slots missed while no scheduler ran (a server down, say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// Missed slots are not run; the schedule goes on from now.
    #[default]
    Skip,
    /// One run for all of them.
    One,
    /// One run for each, up to `catchUpLimit` (the latest ones).
    All,
}

/// What happens when a slot comes while the previous run of the schedule is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// The slot is not run.
    #[default]
    Skip,
    /// It runs beside the previous one.
    Allow,
    /// The previous run is cancelled, and the slot runs.
    CancelPrevious,
    /// The slot runs once the previous one ends (one slot waits at most; later ones are skipped).
    BufferOne,
}

/// A slot is missed once it is this late: a scheduler that runs sees each slot within a tick.
pub const MISSED_AFTER: Duration = Duration::from_secs(1);

/// What `catchUpLimit` is when unset.
pub const DEFAULT_CATCH_UP_LIMIT: u32 = 10;

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// At every multiple of the interval from when the schedule was first seen.
    Every(Duration),
    /// At the times a cron expression matches, in a time zone.
    Cron(Box<croner::Cron>, jiff::tz::TimeZone),
    /// This long after the previous run ended (the first run at once).
    After(Duration),
    /// For each matching event (`schedule.on`).
    On(Box<dsl::EventConsumptionStrategy>),
}

/// The cron parser: 5 fields, or 6 with seconds first.
fn cron(text: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|error| format!("\"{text}\" is not a cron expression: {error}"))
}

impl Trigger {
    /// The trigger a schedule describes (`None` for an empty one).
    ///
    /// # Errors
    /// An invalid cron or time zone, a duration that is not one or is zero, or more than one of
    /// `every`, `cron`, `after`, `on`.
    pub fn of(schedule: &dsl::Schedule, policy: Option<&SchedulePolicy>) -> Result<Option<Self>, String> {
        let set = [schedule.every.is_some(), schedule.cron.is_some(), schedule.after.is_some(), schedule.on.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err("a schedule has one of every, cron, after and on".to_owned());
        }
        let length = |duration: &dsl::Duration| {
            let length = dsl::duration::literal(duration)?;
            if length.is_zero() { Err("a schedule's interval must be more than zero".to_owned()) } else { Ok(length) }
        };
        if let Some(every) = &schedule.every {
            return Ok(Some(Self::Every(length(every)?)));
        }
        if let Some(after) = &schedule.after {
            return Ok(Some(Self::After(length(after)?)));
        }
        if let Some(text) = &schedule.cron {
            let zone = match policy.and_then(|p| p.timezone.as_deref()) {
                None => jiff::tz::TimeZone::UTC,
                Some(name) => {
                    jiff::tz::TimeZone::get(name).map_err(|error| format!("\"{name}\" is not a time zone: {error}"))?
                }
            };
            return Ok(Some(Self::Cron(Box::new(cron(text)?), zone)));
        }
        Ok(schedule.on.clone().map(|on| Self::On(Box::new(on))))
    }

    /// The first slot after `after` (`every` counts from `anchor`); `None` for `after` and `on`,
    /// whose times depend on runs and events.
    pub fn next(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Every(interval) => {
                let step = i64::try_from(interval.as_millis()).ok()?.max(1);
                let since = after.as_millisecond().saturating_sub(anchor.as_millisecond());
                let k = if since < 0 { 0 } else { since / step + 1 };
                Timestamp::from_millisecond(anchor.as_millisecond().saturating_add(k.saturating_mul(step))).ok()
            }
            Self::Cron(cron, zone) => {
                let zoned = after.to_zoned(zone.clone());
                cron.find_next_occurrence(&zoned, false).ok().map(|next| next.timestamp())
            }
            Self::After(_) | Self::On(_) => None,
        }
    }

    /// The slots due in (`since`, `now`], oldest first: at most the latest `keep`, and how many
    /// there were in all (bounded, for a cron of seconds left unwatched for years).
    pub fn due(&self, anchor: Timestamp, since: Timestamp, now: Timestamp, keep: usize) -> (Vec<Timestamp>, usize) {
        const MOST: usize = 1_000_000;
        let mut latest = std::collections::VecDeque::with_capacity(keep + 1);
        let mut count = 0;
        let mut at = since;
        while let Some(slot) = self.next(anchor, at).filter(|slot| *slot <= now) {
            count += 1;
            latest.push_back(slot);
            if latest.len() > keep {
                latest.pop_front();
            }
            if count >= MOST {
                break;
            }
            at = slot;
        }
        (latest.into(), count)
    }
}

/// Which of the due slots run, by the catch-up policy: on time ones always (at most one, the
/// latest); missed ones as `catch_up` says.
pub fn to_fire(due: &[Timestamp], policy: &SchedulePolicy, now: Timestamp) -> Vec<Timestamp> {
    let Some(latest) = due.last() else { return Vec::new() };
    let on_time = now.duration_since(*latest).unsigned_abs() <= MISSED_AFTER;
    match policy.catch_up {
        CatchUp::Skip if on_time => vec![*latest],
        CatchUp::Skip => Vec::new(),
        CatchUp::One => vec![*latest],
        CatchUp::All => {
            let limit = usize::try_from(policy.catch_up_limit.unwrap_or(DEFAULT_CATCH_UP_LIMIT)).unwrap_or(usize::MAX);
            due[due.len().saturating_sub(limit)..].to_vec()
        }
    }
}

/// Checks a schedule as `apply` does: the message for a problem, if any.
#[must_use]
pub fn problem(schedule: &dsl::Schedule, policy: Option<&SchedulePolicy>) -> Option<String> {
    Trigger::of(schedule, policy).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_counts_from_its_anchor_and_cron_reads_five_or_six_fields_in_its_zone() {
        let every = Trigger::Every(Duration::from_secs(10));
        let anchor = at("2026-01-01T00:00:00Z");
        assert_eq!(every.next(anchor, at("2026-01-01T00:00:05Z")), Some(at("2026-01-01T00:00:10Z")));
        assert_eq!(every.next(anchor, at("2026-01-01T00:00:10Z")), Some(at("2026-01-01T00:00:20Z")));
        let (due, count) = every.due(anchor, anchor, at("2026-01-01T00:01:00Z"), 2);
        assert_eq!((due, count), (vec![at("2026-01-01T00:00:50Z"), at("2026-01-01T00:01:00Z")], 6));

        let schedule = |cron: &str| dsl::Schedule { cron: Some(cron.into()), ..dsl::Schedule::default() };
        let daily = Trigger::of(&schedule("0 9 * * *"), None).unwrap().unwrap();
        assert_eq!(daily.next(anchor, anchor), Some(at("2026-01-01T09:00:00Z")));
        let paris = SchedulePolicy { timezone: Some("Europe/Paris".into()), ..SchedulePolicy::default() };
        let daily = Trigger::of(&schedule("0 9 * * *"), Some(&paris)).unwrap().unwrap();
        assert_eq!(daily.next(anchor, anchor), Some(at("2026-01-01T08:00:00Z")), "09:00 in Paris is 08:00 UTC");
        let seconds = Trigger::of(&schedule("*/15 * * * * *"), None).unwrap().unwrap();
        assert_eq!(seconds.next(anchor, anchor), Some(at("2026-01-01T00:00:15Z")));
        assert!(problem(&schedule("61 * * * *"), None).unwrap().contains("is not a cron expression"));
        let nowhere = SchedulePolicy { timezone: Some("Mars/Olympus".into()), ..SchedulePolicy::default() };
        assert!(problem(&schedule("0 9 * * *"), Some(&nowhere)).unwrap().contains("not a time zone"));
    }

    #[test]
    fn missed_slots_follow_the_catch_up_policy_and_the_current_one_always_runs() {
        let now = at("2026-01-01T00:01:00.2Z");
        let due = [at("2026-01-01T00:00:40Z"), at("2026-01-01T00:00:50Z"), at("2026-01-01T00:01:00Z")];
        let policy = |catch_up, limit| SchedulePolicy { catch_up, catch_up_limit: limit, ..SchedulePolicy::default() };
        assert_eq!(to_fire(&due, &policy(CatchUp::Skip, None), now), [due[2]], "on time: it runs");
        assert_eq!(to_fire(&due[..2], &policy(CatchUp::Skip, None), now), [], "missed: skipped");
        assert_eq!(to_fire(&due[..2], &policy(CatchUp::One, None), now), [due[1]]);
        assert_eq!(to_fire(&due, &policy(CatchUp::All, Some(2)), now), due[1..]);
        assert_eq!(to_fire(&due, &policy(CatchUp::All, None), now), due);
    }
}
