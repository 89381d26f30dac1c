//! Evaluating runtime expressions with jaq, and the `${ … }` templates tasks are written with.
//!
//! Expressions compile exactly as [`crate::expr::check_with`] compiles them (jq's standard
//! library, the runtime variables, the place's extra variables), so what validates also runs.
//! Compiling pulls in the whole standard library, so compiled filters are cached per thread:
//! jaq's values are `Rc`-based and never cross an `.await` or a thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;
use serde_json::{Map, Number, Value};

use crate::expr::{RUNTIME_VARIABLES, enclosed};

type Data = jaq_core::data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// How many compiled filters a thread keeps before starting over; bounds memory in a long-lived
/// process that runs many different workflows.
const CACHE_LIMIT: usize = 1024;

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Filter>>> = RefCell::new(HashMap::new());
}

/// The variables an expression sees: the runtime ones (named without `$`; missing ones are
/// `null`) and the extra ones its place puts in scope (`item`, `index`, `error`, …).
#[derive(Debug, Clone, Default)]
pub(crate) struct Variables {
    values: Vec<(String, Value)>,
}

impl Variables {
    /// Sets a variable (named without `$`), replacing an outer one of the same name.
    pub(crate) fn set(&mut self, name: &str, value: Value) {
        self.values.retain(|(existing, _)| existing != name);
        self.values.push((name.to_owned(), value));
    }

    /// The names in compile order: the runtime variables, then the extra ones sorted.
    fn layout(&self) -> (Vec<String>, Vec<&Value>) {
        let mut names: Vec<String> = RUNTIME_VARIABLES.iter().map(|name| (*name).to_owned()).collect();
        let mut values: Vec<&Value> = Vec::with_capacity(names.len() + self.values.len());
        for name in RUNTIME_VARIABLES {
            let bare = &name[1..];
            values.push(self.values.iter().find(|(n, _)| n == bare).map_or(&Value::Null, |(_, v)| v));
        }
        let mut extra: Vec<&(String, Value)> = self
            .values
            .iter()
            .filter(|(name, _)| !RUNTIME_VARIABLES.iter().any(|runtime| &runtime[1..] == name))
            .collect();
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in extra {
            names.push(format!("${name}"));
            values.push(value);
        }
        (names, values)
    }
}

/// Evaluates jq `code` on `input`: the first output, `null` when there is none.
///
/// # Errors
/// The compile or run error, as text.
pub(crate) fn evaluate(code: &str, input: &Value, variables: &Variables) -> Result<Value, String> {
    let (names, values) = variables.layout();
    let filter = compiled(code, &names)?;
    let vars = Vars::new(values.into_iter().map(to_val));
    let ctx = Ctx::<Data>::new(&filter.lut, vars);
    let mut outputs = filter.id.run((ctx, to_val(input)));
    match outputs.next() {
        None => Ok(Value::Null),
        Some(Ok(value)) => Ok(from_val(&value)),
        Some(Err(exception)) => Err(match exception.get_err() {
            Ok(error) => error.to_string(),
            Err(_) => "the expression halted".to_owned(),
        }),
    }
}

/// The compiled filter for `code` with these variable names, from the cache when possible.
fn compiled(code: &str, names: &[String]) -> Result<Rc<Filter>, String> {
    let key = format!("{}\u{0}{code}", names.join(","));
    if let Some(filter) = CACHE.with(|cache| cache.borrow().get(&key).cloned()) {
        return Ok(filter);
    }
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs::<Data>().chain(jaq_std::funs::<Data>()).chain(jaq_json::funs::<Data>());
    let arena = Arena::default();
    // Reuse the validator's messages: same loader and compiler, same errors.
    let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|_| {
        crate::expr::check_with(code, &extra_names(names))
            .err()
            .map_or_else(|| "cannot parse the expression".to_owned(), |error| error.message)
    })?;
    let filter = Compiler::default()
        .with_funs(funs)
        .with_global_vars(names.iter().map(String::as_str))
        .compile(modules)
        .map_err(|errors| {
            errors.into_iter().flat_map(|(_, errs)| errs).next().map_or_else(
                || "cannot compile the expression".to_owned(),
                |(name, undefined)| format!("undefined {} \"{name}\"", undefined.as_str()),
            )
        })?;
    let filter = Rc::new(filter);
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, Rc::clone(&filter));
    });
    Ok(filter)
}

fn extra_names(names: &[String]) -> Vec<String> {
    names.iter().skip(RUNTIME_VARIABLES.len()).cloned().collect()
}

/// The jq text of a property that is always an expression (`if`, `when`, `for.in`, `input.from`
/// …): written as `${ … }` or bare, as the specification's own examples do.
pub(crate) fn expression_code(text: &str) -> &str {
    enclosed(text).unwrap_or_else(|| text.trim())
}

/// Evaluates a template: `${ … }` strings are expressions, other strings are literals (or, in
/// loose mode, expressions when they evaluate), objects and arrays are evaluated recursively.
///
/// # Errors
/// The failing expression's text and its error.
pub(crate) fn evaluate_template(
    template: &Value,
    input: &Value,
    variables: &Variables,
    loose: bool,
) -> Result<Value, (String, String)> {
    match template {
        Value::String(text) => match enclosed(text) {
            Some(code) => evaluate(code, input, variables).map_err(|error| (text.clone(), error)),
            None if loose => Ok(evaluate(text, input, variables).unwrap_or_else(|_| template.clone())),
            None => Ok(template.clone()),
        },
        Value::Array(items) => items
            .iter()
            .map(|item| evaluate_template(item, input, variables, loose))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                out.insert(key.clone(), evaluate_template(value, input, variables, loose)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// jq truthiness: everything but `false` and `null` holds.
pub(crate) fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

fn to_val(value: &Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().and_then(|i| isize::try_from(i).ok()) {
                Val::from(i)
            } else if let Some(u) = n.as_u64().and_then(|u| usize::try_from(u).ok()) {
                Val::from(u)
            } else {
                Val::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Val::from(s.clone()),
        Value::Array(items) => items.iter().map(to_val).collect(),
        Value::Object(map) => Val::obj(map.iter().map(|(k, v)| (Val::from(k.clone()), to_val(v))).collect()),
    }
}

fn from_val(value: &Val) -> Value {
    match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n),
        Val::TStr(bytes) | Val::BStr(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(from_val).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        other => other.to_string(),
                    };
                    (key, from_val(v))
                })
                .collect(),
        ),
    }
}

/// A jq number as JSON; non-finite floats become `null`, as jq prints them.
fn number(n: &jaq_json::Num) -> Value {
    match n {
        jaq_json::Num::Int(i) => Value::Number(Number::from(*i as i64)),
        jaq_json::Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => {
            let text = other.to_string();
            serde_json::from_str::<Number>(&text)
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
                .map_or(Value::Null, Value::Number)
        }
    }
}
