//! What agent runs spend: the tokens the provider reported for every answer, summed per model,
//! what they cost under a price table, and the run limits (`maxTurns`, `maxTokens`, `maxCost`,
//! `maxDuration`) checked against them as a run goes.
//!
//! The history is the truth: an execution's spending is read back from its `assistantMessage`
//! events — every one, a sub-agent's and a retried attempt's too, since each was a request
//! someone pays for.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::provider::Usage;
use crate::model::RunLimits;

/// Tokens spent, and the answers they were spent on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Model answers (requests).
    pub turns: u64,
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Answer tokens.
    pub output: u64,
    /// Prompt tokens the provider read from its cache (a part of `input`).
    pub cached: u64,
}

impl Tokens {
    /// Input and output.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    fn add(&mut self, other: &Self) {
        self.turns += other.turns;
        self.input += other.input;
        self.output += other.output;
        self.cached += other.cached;
    }
}

/// Tokens spent, per model as the provider named it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Spent(pub BTreeMap<String, Tokens>);

impl Spent {
    /// What an execution's history says it spent.
    pub fn of_events<'a>(events: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut spent = Self::default();
        for event in events {
            if event.get("event").and_then(Value::as_str) != Some("assistantMessage") {
                continue;
            }
            let count = |key: &str| event.get(key).and_then(Value::as_u64).unwrap_or(0);
            let usage = Usage {
                input_tokens: count("inputTokens"),
                output_tokens: count("outputTokens"),
                cached_tokens: count("cachedTokens"),
            };
            spent.record(event.get("model").and_then(Value::as_str).unwrap_or(""), usage);
        }
        spent
    }

    /// One answer of `model`.
    pub fn record(&mut self, model: &str, usage: Usage) {
        let tokens =
            Tokens { turns: 1, input: usage.input_tokens, output: usage.output_tokens, cached: usage.cached_tokens };
        self.0.entry(model.to_owned()).or_default().add(&tokens);
    }

    /// Adds what `other` spent.
    pub fn merge(&mut self, other: &Self) {
        for (model, tokens) in &other.0 {
            self.0.entry(model.clone()).or_default().add(tokens);
        }
    }

    /// Every model together.
    #[must_use]
    pub fn total(&self) -> Tokens {
        let mut total = Tokens::default();
        self.0.values().for_each(|tokens| total.add(tokens));
        total
    }
}

/// A model's price per million tokens, in the table's currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million answer tokens.
    pub output: f64,
    /// Per million prompt tokens read from the provider's cache (`input` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<f64>,
}

/// The price table (`model_prices` in `config.yaml`): model → price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prices(pub BTreeMap<String, Price>);

/// What spending cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    /// The priced models' cost.
    pub amount: f64,
    /// Models with tokens spent and no price.
    pub unpriced: Vec<String>,
}

impl Prices {
    /// Whether the table has no price.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The price of `model`: its own entry, else the longest entry it starts with (a provider
    /// answers `gpt-4o-2024-08-06` for `gpt-4o`), a `provider/` prefix ignored either way.
    #[must_use]
    pub fn of(&self, model: &str) -> Option<&Price> {
        let bare = |name: &str| name.rsplit_once('/').map_or(name, |(_, bare)| bare).to_owned();
        let wanted = bare(model);
        self.0
            .iter()
            .filter(|(name, _)| wanted.starts_with(&bare(name)))
            .max_by_key(|(name, _)| bare(name).len())
            .map(|(_, price)| price)
    }

    /// What `spent` cost.
    #[must_use]
    pub fn cost(&self, spent: &Spent) -> Cost {
        let mut cost = Cost::default();
        for (model, tokens) in &spent.0 {
            match self.of(model) {
                Some(price) => cost.amount += price.of(tokens),
                None if tokens.total() > 0 => cost.unpriced.push(model.clone()),
                None => {}
            }
        }
        cost
    }
}

impl Price {
    /// What `tokens` cost at this price.
    #[must_use]
    #[allow(clippy::cast_precision_loss, reason = "token counts are far below 2^52")]
    pub fn of(&self, tokens: &Tokens) -> f64 {
        let fresh = tokens.input.saturating_sub(tokens.cached) as f64;
        let cached = tokens.cached as f64 * self.cached.unwrap_or(self.input);
        (fresh * self.input + cached + tokens.output as f64 * self.output) / 1_000_000.0
    }
}

/// Why a run was stopped by its limits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitExceeded {
    /// A limit was reached.
    #[error("limit exceeded: {limit} (spent {spent})")]
    Reached {
        /// The limit, as written (`maxTokens 1000`).
        limit: String,
        /// What the run had spent.
        spent: String,
    },
    /// `maxCost` is set, and a model the run used has no price.
    #[error("limit cannot be checked: maxCost is set, and model `{model}` has no price")]
    Unpriced {
        /// The model.
        model: String,
    },
}

/// A run's spending, checked against its limits as it goes; shared by every agent of the run.
#[derive(Debug)]
pub struct Budget {
    limits: RunLimits,
    prices: Prices,
    started: Instant,
    spent: Mutex<Spent>,
}

impl Budget {
    /// A budget starting now, with nothing spent.
    #[must_use]
    pub fn new(limits: RunLimits, prices: Prices) -> Self {
        Self { limits, prices, started: Instant::now(), spent: Mutex::new(Spent::default()) }
    }

    /// How long the run may still take, when it has a limit.
    #[must_use]
    pub fn time_left(&self) -> Option<Duration> {
        self.limits.max_duration.map(|limit| limit.saturating_sub(self.started.elapsed()))
    }

    /// The run ran out of time (while the model answered).
    #[must_use]
    pub fn timed_out(&self) -> LimitExceeded {
        let limit = self.limits.max_duration.unwrap_or_default();
        reached(format!("maxDuration {limit:?}"), format!("{:.1?}", self.started.elapsed()))
    }

    /// Counts what an earlier attempt of the run spent (its answers are not asked again).
    pub fn count(&self, model: &str, usage: Usage) {
        if let Ok(mut spent) = self.spent.lock() {
            spent.record(model, usage);
        }
    }

    /// Checks, before the model is asked again, that the run may go on.
    ///
    /// # Errors
    /// A limit is reached.
    pub fn check(&self) -> Result<(), LimitExceeded> {
        let total = self.spent.lock().map(|spent| spent.total()).unwrap_or_default();
        if let Some(limit) = self.limits.max_turns
            && total.turns >= limit
        {
            return Err(reached(format!("maxTurns {limit}"), format!("{} turns", total.turns)));
        }
        if let Some(limit) = self.limits.max_duration
            && self.started.elapsed() >= limit
        {
            return Err(reached(format!("maxDuration {limit:?}"), format!("{:.1?}", self.started.elapsed())));
        }
        Ok(())
    }

    /// Charges one answer of `model` and checks the token and cost limits.
    ///
    /// # Errors
    /// A limit is passed, or `maxCost` is set and `model` has no price.
    pub fn charge(&self, model: &str, usage: Usage) -> Result<(), LimitExceeded> {
        let spent = match self.spent.lock() {
            Ok(mut spent) => {
                spent.record(model, usage);
                spent.clone()
            }
            Err(_) => return Ok(()),
        };
        let total = spent.total();
        if let Some(limit) = self.limits.max_tokens
            && total.total() > limit
        {
            return Err(reached(format!("maxTokens {limit}"), format!("{} tokens", total.total())));
        }
        if let Some(limit) = self.limits.max_cost {
            let cost = self.prices.cost(&spent);
            if let Some(model) = cost.unpriced.into_iter().next() {
                return Err(LimitExceeded::Unpriced { model });
            }
            if cost.amount > limit {
                return Err(reached(format!("maxCost {limit}"), format!("{:.4}", cost.amount)));
            }
        }
        Ok(())
    }
}

fn reached(limit: String, spent: String) -> LimitExceeded {
    LimitExceeded::Reached { limit, spent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(input: u64, output: u64, cached: u64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, cached_tokens: cached }
    }

    #[test]
    fn spending_is_read_from_every_answer_of_the_history() {
        let events = [
            json!({"event": "assistantMessage", "model": "gpt-4o", "inputTokens": 100, "outputTokens": 10, "cachedTokens": 40}),
            json!({"event": "toolResult", "inputTokens": 999}),
            json!({"event": "assistantMessage", "agent": "lead/sub", "model": "gpt-4o", "inputTokens": 50, "outputTokens": 5}),
            json!({"event": "assistantMessage", "model": "claude", "inputTokens": 7, "outputTokens": 3}),
        ];
        let spent = Spent::of_events(&events);
        assert_eq!(spent.0["gpt-4o"], Tokens { turns: 2, input: 150, output: 15, cached: 40 });
        assert_eq!(spent.total(), Tokens { turns: 3, input: 157, output: 18, cached: 40 });
    }

    #[test]
    fn cached_tokens_cost_their_own_price_and_a_dated_model_takes_its_family_price() {
        let prices = Prices(BTreeMap::from([
            ("gpt-4o".to_owned(), Price { input: 2.5, output: 10.0, cached: Some(1.25) }),
            ("gpt-4o-mini".to_owned(), Price { input: 0.15, output: 0.6, cached: None }),
        ]));
        let mut spent = Spent::default();
        spent.record("openai/gpt-4o-2024-08-06", usage(1_000_000, 100_000, 400_000));
        spent.record("gpt-4o-mini", usage(1_000_000, 0, 0));
        spent.record("llama3", usage(10, 1, 0));
        let cost = prices.cost(&spent);
        // 600k fresh at 2.5 + 400k cached at 1.25 + 100k out at 10, then 1M at 0.15.
        assert!((cost.amount - (1.5 + 0.5 + 1.0 + 0.15)).abs() < 1e-9, "{cost:?}");
        assert_eq!(cost.unpriced, ["llama3"]);
    }

    #[test]
    fn a_budget_stops_at_each_limit() {
        let turns = Budget::new(RunLimits { max_turns: Some(2), ..RunLimits::default() }, Prices::default());
        turns.charge("m", usage(1, 1, 0)).unwrap();
        turns.check().unwrap();
        turns.charge("m", usage(1, 1, 0)).unwrap();
        assert!(matches!(turns.check(), Err(LimitExceeded::Reached { .. })));

        let tokens = Budget::new(RunLimits { max_tokens: Some(100), ..RunLimits::default() }, Prices::default());
        tokens.count("m", usage(60, 0, 0));
        let error = tokens.charge("m", usage(30, 20, 0)).unwrap_err();
        assert_eq!(error.to_string(), "limit exceeded: maxTokens 100 (spent 110 tokens)");

        let prices = Prices(BTreeMap::from([("m".to_owned(), Price { input: 1.0, output: 1.0, cached: None })]));
        let cost = Budget::new(RunLimits { max_cost: Some(1.0), ..RunLimits::default() }, prices);
        cost.charge("m", usage(600_000, 0, 0)).unwrap();
        assert!(cost.charge("m", usage(600_000, 0, 0)).is_err());
        let unpriced = Budget::new(RunLimits { max_cost: Some(1.0), ..RunLimits::default() }, Prices::default());
        assert_eq!(unpriced.charge("m", usage(1, 1, 0)), Err(LimitExceeded::Unpriced { model: "m".into() }));

        let time =
            Budget::new(RunLimits { max_duration: Some(Duration::ZERO), ..RunLimits::default() }, Prices::default());
        assert!(time.check().is_err());
    }
}
