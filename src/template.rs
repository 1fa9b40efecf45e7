//! Workload templates for `graft bench`: a small text format that expands, for a scale `N`,
//! into facts in the language's syntax, so that a workload of 10^5 requests is a few lines in
//! the repository rather than a 10^5-line file.
//!
//! The format (documented in `docs/bench.md`), one statement per line, `//` comments:
//!
//! ```text
//! committed decided;                        // the relation whose rows count as committed
//! scale 100000;                             // the default scale (`--scale` overrides it)
//! include "topology.facts";                 // a facts file (path relative to the template)
//! topology voter_of("L", "v1")@1;           // a topology fact
//! for I in 1..=N: request("L", I)@1 + I / 1000;       // a workload fact per I
//! topology for P in 1..=N: for A in 1..=3: acceptor_of("p{P}", "a{A}")@1;
//! ```
//!
//! A fact's values are integer expressions (`+ - * / %`, parentheses, the scale `N` and the
//! variables of the enclosing `for`s), strings (where `{EXPR}` is replaced by the
//! expression's value), `true` and `false`; its tick (after `@`) is an integer expression of
//! at least 1. `for V in A..=B:` repeats what follows it (empty when B < A). Facts marked
//! `topology` (and the facts of included files) describe the nodes; the others are the
//! workload.
//!
//! Expansion is pure and deterministic: the same template and scale give the same text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The relation whose distinct rows count as committed requests.
    pub committed: Option<String>,
    /// The scale used when none is given.
    pub default_scale: Option<u64>,
    /// Facts files to include, as written (relative to the template).
    pub includes: Vec<String>,
    statements: Vec<Statement>,
}

#[derive(Clone, Debug)]
struct Statement {
    line: usize,
    topology: bool,
    loops: Vec<(String, Expr, Expr)>,
    relation: String,
    args: Vec<Arg>,
    tick: Expr,
}

#[derive(Clone, Debug)]
enum Arg {
    Int(Expr),
    /// Literal text and interpolated expressions, in order.
    Str(Vec<Piece>),
    Bool(bool),
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Debug)]
enum Expr {
    Int(i64),
    Var(String),
    Neg(Box<Expr>),
    Binary(char, Box<Expr>, Box<Expr>),
}

/// A template problem, with the line it is on (1-based; 0 when it is about the whole file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for TemplateError {}

fn error(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

/// The facts a template expands to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Topology facts, one per line in the language's syntax.
    pub topology: String,
    /// Workload facts, one per line.
    pub workload: String,
    /// The template line of each workload fact, in order.
    pub workload_lines: Vec<usize>,
    pub workload_facts: usize,
}

/// The most facts one expansion may produce (a guard against a typo such as `1..=N*N`).
pub const MAX_FACTS: usize = 20_000_000;

impl Template {
    /// Parses a template's text.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut template = Template {
            committed: None,
            default_scale: None,
            includes: Vec::new(),
            statements: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let code = strip_comment(raw).trim();
            if code.is_empty() {
                continue;
            }
            let Some(code) = code.strip_suffix(';') else {
                return Err(error(line, "a statement ends with `;`"));
            };
            let mut cursor = Cursor::new(code, line);
            let word = cursor.peek_word();
            match word.as_deref() {
                Some("committed") => {
                    cursor.word();
                    let name = cursor
                        .word()
                        .ok_or_else(|| error(line, "`committed` names a relation"))?;
                    cursor.end()?;
                    if template.committed.replace(name).is_some() {
                        return Err(error(line, "`committed` is given twice"));
                    }
                }
                Some("scale") => {
                    cursor.word();
                    let value = cursor.integer()?;
                    cursor.end()?;
                    let scale = u64::try_from(value)
                        .ok()
                        .filter(|scale| *scale >= 1)
                        .ok_or_else(|| error(line, "`scale` is a whole number from 1"))?;
                    template.default_scale = Some(scale);
                }
                Some("include") => {
                    cursor.word();
                    let path = cursor.string_literal()?;
                    cursor.end()?;
                    template.includes.push(path);
                }
                _ => template.statements.push(cursor.statement()?),
            }
        }
        Ok(template)
    }

    /// Expands the template at `scale` (the variable `N`).
    pub fn expand(&self, scale: u64) -> Result<Expansion, TemplateError> {
        let scale = i64::try_from(scale).map_err(|_| error(0, "the scale is too large"))?;
        let mut expansion = Expansion::default();
        let mut count = 0_usize;
        for statement in &self.statements {
            let mut env = BTreeMap::new();
            env.insert("N".to_owned(), scale);
            expand_loops(statement, 0, &mut env, &mut |env| {
                count += 1;
                if count > MAX_FACTS {
                    return Err(error(
                        statement.line,
                        format!(
                            "the template expands to more than {MAX_FACTS} facts at this scale"
                        ),
                    ));
                }
                let text = render(statement, env)?;
                if statement.topology {
                    expansion.topology.push_str(&text);
                } else {
                    expansion.workload.push_str(&text);
                    expansion.workload_lines.push(statement.line);
                    expansion.workload_facts += 1;
                }
                Ok(())
            })?;
        }
        Ok(expansion)
    }
}

fn strip_comment(line: &str) -> &str {
    // `//` outside a string starts a comment.
    let mut in_string = false;
    let bytes = line.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        match byte {
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(index + 1) == Some(&b'/') => return &line[..index],
            _ => {}
        }
    }
    line
}

/// The values of `N` and of the enclosing `for`s' variables.
type Env = BTreeMap<String, i64>;

fn expand_loops(
    statement: &Statement,
    depth: usize,
    env: &mut Env,
    emit: &mut dyn FnMut(&Env) -> Result<(), TemplateError>,
) -> Result<(), TemplateError> {
    let Some((var, from, to)) = statement.loops.get(depth) else {
        return emit(env);
    };
    let from = eval(from, env, statement.line)?;
    let to = eval(to, env, statement.line)?;
    let mut value = from;
    while value <= to {
        env.insert(var.clone(), value);
        expand_loops(statement, depth + 1, env, emit)?;
        value += 1;
    }
    env.remove(var);
    Ok(())
}

fn eval(expr: &Expr, env: &BTreeMap<String, i64>, line: usize) -> Result<i64, TemplateError> {
    let overflow = || error(line, "integer overflow in an expression");
    Ok(match expr {
        Expr::Int(value) => *value,
        Expr::Var(name) => *env.get(name).ok_or_else(|| {
            error(
                line,
                format!("`{name}` is not defined here (use N or a variable of an enclosing `for`)"),
            )
        })?,
        Expr::Neg(inner) => eval(inner, env, line)?.checked_neg().ok_or_else(overflow)?,
        Expr::Binary(op, lhs, rhs) => {
            let (a, b) = (eval(lhs, env, line)?, eval(rhs, env, line)?);
            match op {
                '+' => a.checked_add(b).ok_or_else(overflow)?,
                '-' => a.checked_sub(b).ok_or_else(overflow)?,
                '*' => a.checked_mul(b).ok_or_else(overflow)?,
                '/' | '%' if b == 0 => return Err(error(line, "division by zero")),
                '/' => a.div_euclid(b),
                _ => a.rem_euclid(b),
            }
        }
    })
}

fn render(statement: &Statement, env: &BTreeMap<String, i64>) -> Result<String, TemplateError> {
    let line = statement.line;
    let mut text = String::new();
    text.push_str(&statement.relation);
    text.push('(');
    for (index, arg) in statement.args.iter().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        match arg {
            Arg::Int(expr) => {
                let _ = write!(text, "{}", eval(expr, env, line)?);
            }
            Arg::Bool(flag) => text.push_str(if *flag { "true" } else { "false" }),
            Arg::Str(pieces) => {
                text.push('"');
                for piece in pieces {
                    match piece {
                        Piece::Text(literal) => text.push_str(literal),
                        Piece::Expr(expr) => {
                            let _ = write!(text, "{}", eval(expr, env, line)?);
                        }
                    }
                }
                text.push('"');
            }
        }
    }
    let tick = eval(&statement.tick, env, line)?;
    if tick < 1 {
        return Err(error(
            line,
            format!("a fact's tick is at least 1, but this one is at tick {tick}"),
        ));
    }
    let _ = writeln!(text, ")@{tick};");
    Ok(text)
}

/// A cursor over one statement's text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, line: usize) -> Cursor<'a> {
        Cursor { text, at: 0, line }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn fail<T>(&self, expected: &str) -> Result<T, TemplateError> {
        let found = self.rest().trim();
        let found = if found.is_empty() {
            "the end of the statement".to_owned()
        } else {
            format!("`{}`", found.chars().take(24).collect::<String>())
        };
        Err(error(
            self.line,
            format!("expected {expected}, found {found}"),
        ))
    }

    fn peek_word(&mut self) -> Option<String> {
        self.skip_space();
        let word: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit())).then_some(word)
    }

    fn word(&mut self) -> Option<String> {
        let word = self.peek_word()?;
        self.at += word.len();
        Some(word)
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), TemplateError> {
        if self.eat(token) {
            Ok(())
        } else {
            self.fail(&format!("`{token}`"))
        }
    }

    fn end(&mut self) -> Result<(), TemplateError> {
        self.skip_space();
        if self.rest().is_empty() {
            Ok(())
        } else {
            self.fail("the end of the statement")
        }
    }

    fn integer(&mut self) -> Result<i64, TemplateError> {
        self.skip_space();
        let digits: String = self
            .rest()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.is_empty() {
            return self.fail("a number");
        }
        self.at += digits.len();
        digits
            .parse()
            .map_err(|_| error(self.line, format!("`{digits}` is too large")))
    }

    fn string_literal(&mut self) -> Result<String, TemplateError> {
        let pieces = self.string()?;
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(literal) => text.push_str(&literal),
                Piece::Expr(_) => {
                    return Err(error(self.line, "an included path cannot hold `{...}`"));
                }
            }
        }
        Ok(text)
    }

    /// A string literal, with `{EXPR}` pieces.
    fn string(&mut self) -> Result<Vec<Piece>, TemplateError> {
        self.expect("\"")?;
        let mut pieces = Vec::new();
        let mut literal = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(error(self.line, "a string is not closed with `\"`"));
            };
            self.at += c.len_utf8();
            match c {
                '"' => break,
                '\\' => return Err(error(self.line, "templates do not support `\\` in strings")),
                '{' => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Expr(self.expr()?));
                    self.expect("}")?;
                }
                '}' => return Err(error(self.line, "a `}` in a string without its `{`")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(pieces)
    }

    fn statement(&mut self) -> Result<Statement, TemplateError> {
        let mut topology = false;
        if self.peek_word().as_deref() == Some("topology") {
            self.word();
            topology = true;
        }
        let mut loops = Vec::new();
        while self.peek_word().as_deref() == Some("for") {
            self.word();
            let Some(var) = self.word() else {
                return self.fail("a variable after `for`");
            };
            if var == "N" {
                return Err(error(
                    self.line,
                    "`N` is the scale; name the variable otherwise",
                ));
            }
            if self.word().as_deref() != Some("in") {
                return self.fail("`in`");
            }
            let from = self.expr()?;
            self.expect("..=")?;
            let to = self.expr()?;
            self.expect(":")?;
            loops.push((var, from, to));
        }
        let Some(relation) = self.word() else {
            return self.fail("a fact `relation(values)@tick`");
        };
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                self.skip_space();
                let arg = if self.rest().starts_with('"') {
                    Arg::Str(self.string()?)
                } else if self.peek_word().as_deref() == Some("true") {
                    self.word();
                    Arg::Bool(true)
                } else if self.peek_word().as_deref() == Some("false") {
                    self.word();
                    Arg::Bool(false)
                } else {
                    Arg::Int(self.expr()?)
                };
                args.push(arg);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.expect("@")?;
        let tick = self.expr()?;
        self.end()?;
        Ok(Statement {
            line: self.line,
            topology,
            loops,
            relation,
            args,
            tick,
        })
    }

    fn expr(&mut self) -> Result<Expr, TemplateError> {
        let mut lhs = self.term()?;
        loop {
            self.skip_space();
            let rest = self.rest();
            // `..=` is a range, not a subtraction or an operator.
            let op = match rest.chars().next() {
                Some(op @ ('+' | '-')) => op,
                _ => return Ok(lhs),
            };
            self.at += 1;
            let rhs = self.term()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn term(&mut self) -> Result<Expr, TemplateError> {
        let mut lhs = self.factor()?;
        loop {
            self.skip_space();
            let op = match self.rest().chars().next() {
                Some(op @ ('*' | '/' | '%')) => op,
                _ => return Ok(lhs),
            };
            self.at += 1;
            let rhs = self.factor()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn factor(&mut self) -> Result<Expr, TemplateError> {
        self.skip_space();
        if self.eat("(") {
            let inner = self.expr()?;
            self.expect(")")?;
            return Ok(inner);
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.factor()?)));
        }
        if self.rest().starts_with(|c: char| c.is_ascii_digit()) {
            return Ok(Expr::Int(self.integer()?));
        }
        match self.word() {
            Some(name) => Ok(Expr::Var(name)),
            None => self.fail("a number, `N` or a variable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_loops_strings_and_ticks() {
        let template = Template::parse(
            "committed decided; // what counts\n\
             scale 10;\n\
             include \"topology.facts\";\n\
             topology for P in 1..=2: for A in 1..=2: acceptor_of(\"p{P}\", \"a{A}\")@1;\n\
             for I in 1..=N: request(\"L\", I * 2 - 1, true)@1 + I / 2;\n",
        )
        .unwrap();
        assert_eq!(template.committed.as_deref(), Some("decided"));
        assert_eq!(template.default_scale, Some(10));
        assert_eq!(template.includes, vec!["topology.facts".to_owned()]);
        let expansion = template.expand(3).unwrap();
        assert_eq!(
            expansion.topology,
            "acceptor_of(\"p1\", \"a1\")@1;\nacceptor_of(\"p1\", \"a2\")@1;\n\
             acceptor_of(\"p2\", \"a1\")@1;\nacceptor_of(\"p2\", \"a2\")@1;\n"
        );
        assert_eq!(
            expansion.workload,
            "request(\"L\", 1, true)@1;\nrequest(\"L\", 3, true)@2;\nrequest(\"L\", 5, true)@2;\n"
        );
        assert_eq!(expansion.workload_lines, vec![5, 5, 5]);
        assert_eq!(template.expand(3).unwrap(), expansion);
    }

    #[test]
    fn reports_problems_with_their_line() {
        let problem = |text: &str| Template::parse(text).and_then(|t| t.expand(2)).unwrap_err();
        assert_eq!(
            problem("\nfor I in 1..=N: request(\"L\", J)@1;").to_string(),
            "line 2: `J` is not defined here (use N or a variable of an enclosing `for`)"
        );
        assert_eq!(
            problem("request(\"L\", 1)@0;").to_string(),
            "line 1: a fact's tick is at least 1, but this one is at tick 0"
        );
        assert_eq!(
            problem("request(\"L\", 1)@1").to_string(),
            "line 1: a statement ends with `;`"
        );
        assert_eq!(
            problem("request(\"L\" 1)@1;").to_string(),
            "line 1: expected `,`, found `1)@1`"
        );
        assert_eq!(
            problem("request(\"L\", 1 / (N - 2))@1;").to_string(),
            "line 1: division by zero"
        );
    }
}
