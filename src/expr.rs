//! Runtime expressions of the Serverless Workflow DSL: recognizing `${ … }` and compiling jq.
//!
//! Validation compiles every expression so a typo is reported with its place before anything
//! runs; the workflow runner compiles the same way, so what validates also runs.

use std::fmt::Write as _;

use jaq_core::load::{Arena, File, Loader, lex, parse};
use jaq_core::{Compiler, compile};

/// The variables every runtime expression may use (DSL 1.0 "runtime arguments").
pub const RUNTIME_VARIABLES: [&str; 8] =
    ["$context", "$input", "$output", "$secret", "$task", "$workflow", "$runtime", "$authorization"];

/// The jq text of a `${ … }` string, or `None` when the string is a plain value.
#[must_use]
pub fn enclosed(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    trimmed.strip_prefix("${")?.strip_suffix('}').map(str::trim)
}

/// Why a jq expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// 0-based character offset in the expression, when known.
    pub offset: Option<usize>,
}

/// Compiles a jq expression (the text inside `${ }`), with the runtime variables and jq's
/// standard library in scope.
///
/// # Errors
/// Returns the first lexing, parsing or compile error, with its offset in `code`.
pub fn check(code: &str) -> Result<(), ExprError> {
    check_with(code, &[])
}

/// Compiles a jq expression with extra variables in scope besides the runtime ones (a `for`
/// loop's `$item`/`$index`, a `catch`'s `$error`), named with their `$`.
///
/// # Errors
/// Returns the first lexing, parsing or compile error, with its offset in `code`.
pub fn check_with(code: &str, extra_variables: &[String]) -> Result<(), ExprError> {
    type Data = jaq_core::data::JustLut<jaq_json::Val>;
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs::<Data>().chain(jaq_std::funs::<Data>()).chain(jaq_json::funs::<Data>());
    let arena = Arena::default();
    let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|errors| load_error(code, errors))?;
    Compiler::default()
        .with_funs(funs)
        .with_global_vars(RUNTIME_VARIABLES.into_iter().chain(extra_variables.iter().map(String::as_str)))
        .compile(modules)
        .map(|_| ())
        .map_err(|errors| compile_error(code, errors))
}

/// An expression to check, with the variables its place puts in scope (named with `$`).
#[derive(Debug, Clone, Copy)]
pub struct Expression<'a> {
    /// The jq text.
    pub code: &'a str,
    /// Variables in scope besides the runtime ones.
    pub variables: &'a [String],
}

/// Checks many expressions at once, with the result of each in order.
///
/// Compiling pulls in jq's whole standard library, which costs far more than any one
/// expression, so the expressions are compiled together as one program of definitions (each
/// parsed on its own first, so one cannot swallow another); only when that fails are halves
/// compiled, down to the expressions at fault.
#[must_use]
pub fn check_all(expressions: &[Expression<'_>]) -> Vec<Result<(), ExprError>> {
    let mut results: Vec<Result<(), ExprError>> = expressions.iter().map(|e| parse_alone(e.code)).collect();
    let parsed: Vec<usize> = (0..expressions.len()).filter(|i| results[*i].is_ok()).collect();
    compile_together(expressions, &parsed, &mut results);
    results
}

/// Lexes and parses one expression without the standard library (cheap): syntax errors.
fn parse_alone(code: &str) -> Result<(), ExprError> {
    let arena = Arena::default();
    Loader::new(std::iter::empty())
        .load(&arena, File { code, path: () })
        .map(|_| ())
        .map_err(|errors| load_error(code, errors))
}

fn compile_together(expressions: &[Expression<'_>], indices: &[usize], results: &mut [Result<(), ExprError>]) {
    match indices {
        [] => {}
        [single] => results[*single] = check_with(expressions[*single].code, expressions[*single].variables),
        _ => {
            if compile_program(&program(expressions, indices)).is_err() {
                let (left, right) = indices.split_at(indices.len() / 2);
                compile_together(expressions, left, results);
                compile_together(expressions, right, results);
            }
        }
    }
}

/// `def __e0($item): (CODE);` for each expression, then `.`.
fn program(expressions: &[Expression<'_>], indices: &[usize]) -> String {
    let mut program = String::new();
    for index in indices {
        let expression = &expressions[*index];
        let parameters = if expression.variables.is_empty() {
            String::new()
        } else {
            format!("({})", expression.variables.join("; "))
        };
        let _ = write!(program, "def __stigmer_{index}{parameters}: (\n{}\n);\n", expression.code);
    }
    program.push('.');
    program
}

fn compile_program(code: &str) -> Result<(), ExprError> {
    check_with(code, &[])
}

/// Character offset of `part` inside `whole`, when `part` is a slice of it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(..start).map(|before| before.chars().count())
}

fn load_error(code: &str, errors: jaq_core::load::Errors<&str, ()>) -> ExprError {
    let first = errors.into_iter().next().map(|(_, e)| e);
    let (message, at) = match first {
        Some(jaq_core::load::Error::Lex(errs)) => errs.first().map_or_else(
            || ("cannot read the expression".to_owned(), None),
            |(expect, found)| (format!("expected {}", lex_expectation(expect)), Some(*found)),
        ),
        Some(jaq_core::load::Error::Parse(errs)) => errs.first().map_or_else(
            || ("cannot parse the expression".to_owned(), None),
            |(expect, found)| {
                let got = if found.is_empty() {
                    "end of expression".to_owned()
                } else {
                    format!("\"{}\"", first_token(found))
                };
                (format!("expected {}, found {got}", parse_expectation(expect)), Some(*found))
            },
        ),
        Some(jaq_core::load::Error::Io(errs)) => {
            (errs.first().map_or_else(|| "cannot load a module".to_owned(), |(_, m)| m.clone()), None)
        }
        None => ("cannot read the expression".to_owned(), None),
    };
    ExprError { message, offset: at.and_then(|s| offset_in(code, s)) }
}

fn lex_expectation(expect: &lex::Expect<&str>) -> String {
    // `Expect::as_str` panics on delimiters it does not know; spell them out here instead.
    match expect {
        lex::Expect::Delim(open) => match *open {
            "(" => "closing parenthesis".to_owned(),
            "[" => "closing bracket".to_owned(),
            "{" => "closing brace".to_owned(),
            "\"" => "closing quote".to_owned(),
            other => format!("a match for \"{other}\""),
        },
        lex::Expect::Digit => "digit".to_owned(),
        lex::Expect::Ident => "identifier".to_owned(),
        lex::Expect::Escape => "string escape sequence".to_owned(),
        lex::Expect::Unicode => "4-digit hexadecimal code point".to_owned(),
        _ => "a valid token".to_owned(),
    }
}

fn parse_expectation(expect: &parse::Expect<&str>) -> String {
    match expect.as_str() {
        // jaq says it expected "nothing" when the expression should have ended.
        "nothing" => "the end of the expression or an operator".to_owned(),
        other => other.to_owned(),
    }
}

fn first_token(text: &str) -> &str {
    let end = text.char_indices().find(|(_, c)| c.is_whitespace()).map_or(text.len(), |(i, _)| i);
    let end = end.min(text.char_indices().nth(12).map_or(text.len(), |(i, _)| i));
    &text[..end]
}

fn compile_error(code: &str, errors: compile::Errors<&str, ()>) -> ExprError {
    let first = errors.into_iter().next().and_then(|(_, errs)| errs.into_iter().next());
    match first {
        Some((name, undefined)) => {
            ExprError { message: format!("undefined {} \"{name}\"", undefined.as_str()), offset: offset_in(code, name) }
        }
        None => ExprError { message: "cannot compile the expression".to_owned(), offset: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosed_expressions_are_recognized() {
        assert_eq!(enclosed("${ .a }"), Some(".a"));
        assert_eq!(enclosed("  ${.a}"), Some(".a"));
        assert_eq!(enclosed("plain"), None);
        assert_eq!(enclosed("${ .a } and more"), None);
    }

    #[test]
    fn valid_jq_with_runtime_variables_compiles() {
        for code in [".a", "$input.x + 1", "[.[] | select(.ok)] | length", "$secret.token", "$context | keys", "now"] {
            assert_eq!(check(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn checking_together_finds_exactly_the_bad_ones() {
        let loop_vars = vec!["$item".to_owned()];
        let expressions = [
            Expression { code: ".a", variables: &[] },
            Expression { code: "$item + 1", variables: &loop_vars },
            Expression { code: "$nope", variables: &[] },
            Expression { code: "map(.x) | add", variables: &[] },
            Expression { code: ".a | (", variables: &[] },
            Expression { code: "nosuchfn", variables: &[] },
            // Cannot close the wrapper and smuggle in a definition: it is parsed on its own first.
            Expression { code: "1); def evil: (2", variables: &[] },
            Expression { code: "$item", variables: &[] },
        ];
        let ok: Vec<bool> = check_all(&expressions).iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, true, false, true, false, false, false, false]);
        assert_eq!(check_all(&[]).len(), 0);
    }

    #[test]
    fn broken_jq_is_reported_with_an_offset() {
        let error = check(".a | map(").unwrap_err();
        assert!(error.offset.is_some(), "{error:?}");
        let error = check("$nope").unwrap_err();
        assert_eq!(error.message, "undefined variable \"$nope\"");
        let error = check("nosuchfn(1)").unwrap_err();
        assert!(error.message.contains("undefined filter"), "{error:?}");
        assert!(check(".a |").is_err());
        assert!(check("\"abc").is_err());
    }
}
