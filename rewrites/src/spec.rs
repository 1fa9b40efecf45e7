//! Pass requests: `NAME(ARGS)` as written after `--pass`, parsed into typed parameters.
//!
//! Arguments are positional values or `key=value` pairs; a value is a word, a number, `true` /
//! `false`, or a bracketed list `[a, b]`. Every pass and parameter is described by
//! [`describe_passes`] (what `graft rewrite --list` prints).

use std::fmt;

/// Where a decoupled role's nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placement {
    /// One new node per old node, on the same machine (`X/role`).
    Colocated,
    /// One new node per old node, on a machine of its own (`X/role`).
    New,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Colocated => "colocated",
            Placement::New => "new",
        }
    }
}

/// A membership change of the quorum pass.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Membership {
    /// Add node `node` to role `role` (its facts are copied from the role's first member).
    Add { role: String, node: String },
    /// Remove node `node` of role `role` (every fact naming it is dropped).
    Remove { role: String, node: String },
}

/// A requested pass with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassSpec {
    Decouple {
        role: String,
        relations: Vec<String>,
        to: String,
        placement: Placement,
    },
    Partition {
        role: String,
        by: String,
        n: u32,
        partial: bool,
    },
    Batch {
        channel: String,
        ticks: u32,
        size: Option<u32>,
    },
    Quorum {
        constants: Vec<(String, i64)>,
        membership: Vec<Membership>,
    },
}

impl PassSpec {
    /// The pass's stable name.
    pub fn name(&self) -> &'static str {
        match self {
            PassSpec::Decouple { .. } => "decouple",
            PassSpec::Partition { .. } => "partition",
            PassSpec::Batch { .. } => "batch",
            PassSpec::Quorum { .. } => "quorum",
        }
    }

    /// The request in its canonical written form, e.g. `partition(participant, by=tx, n=2)`.
    pub fn text(&self) -> String {
        match self {
            PassSpec::Decouple {
                role,
                relations,
                to,
                placement,
            } => format!(
                "decouple({role}, rels=[{}], to={to}, on={})",
                relations.join(", "),
                placement.as_str()
            ),
            PassSpec::Partition {
                role,
                by,
                n,
                partial,
            } => {
                let partial = if *partial { ", partial=true" } else { "" };
                format!("partition({role}, by={by}, n={n}{partial})")
            }
            PassSpec::Batch {
                channel,
                ticks,
                size,
            } => match size {
                Some(size) => format!("batch({channel}, ticks={ticks}, size={size})"),
                None => format!("batch({channel}, ticks={ticks})"),
            },
            PassSpec::Quorum {
                constants,
                membership,
            } => {
                let mut parts: Vec<String> = constants
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                for change in membership {
                    parts.push(match change {
                        Membership::Add { role, node } => format!("add={role}:{node}"),
                        Membership::Remove { role, node } => format!("remove={role}:{node}"),
                    });
                }
                format!("quorum({})", parts.join(", "))
            }
        }
    }

    /// The parameters as JSON, for justification records.
    pub fn params_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            PassSpec::Decouple {
                role,
                relations,
                to,
                placement,
            } => json!({"role": role, "rels": relations, "to": to, "on": placement.as_str()}),
            PassSpec::Partition {
                role,
                by,
                n,
                partial,
            } => json!({"role": role, "by": by, "n": n, "partial": partial}),
            PassSpec::Batch {
                channel,
                ticks,
                size,
            } => json!({"channel": channel, "ticks": ticks, "size": size}),
            PassSpec::Quorum {
                constants,
                membership,
            } => {
                let constants: serde_json::Map<String, serde_json::Value> = constants
                    .iter()
                    .map(|(name, value)| (name.clone(), json!(value)))
                    .collect();
                let membership: Vec<serde_json::Value> = membership
                    .iter()
                    .map(|change| match change {
                        Membership::Add { role, node } => json!({"add": node, "role": role}),
                        Membership::Remove { role, node } => {
                            json!({"remove": node, "role": role})
                        }
                    })
                    .collect();
                json!({"constants": constants, "membership": membership})
            }
        }
    }
}

/// A malformed pass request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

fn error<T>(message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError {
        message: message.into(),
    })
}

/// One argument: positional or `key=value`; values are words or lists of words.
#[derive(Clone, Debug)]
struct Arg {
    key: Option<String>,
    values: Vec<String>,
    list: bool,
}

/// Splits `a, b=[c, d], e=f` at top-level commas.
fn split_args(text: &str) -> Result<Vec<Arg>, SpecError> {
    let mut pieces = Vec::new();
    let mut depth = 0_i32;
    let mut current = String::new();
    for character in text.chars() {
        match character {
            '[' => {
                depth += 1;
                current.push(character);
            }
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return error("unbalanced `]` in the pass arguments");
                }
                current.push(character);
            }
            ',' if depth == 0 => pieces.push(std::mem::take(&mut current)),
            _ => current.push(character),
        }
    }
    if depth != 0 {
        return error("unbalanced `[` in the pass arguments");
    }
    pieces.push(current);
    let mut args = Vec::new();
    for piece in pieces {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (key, value) = match piece.split_once('=') {
            Some((key, value)) => (Some(key.trim().to_owned()), value.trim()),
            None => (None, piece),
        };
        let (values, list) = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(inner) => (
                inner
                    .split(',')
                    .map(|item| item.trim().to_owned())
                    .filter(|item| !item.is_empty())
                    .collect(),
                true,
            ),
            None => (vec![value.to_owned()], false),
        };
        if values.iter().any(|value| value.is_empty()) {
            return error(format!("`{piece}` has no value"));
        }
        args.push(Arg { key, values, list });
    }
    Ok(args)
}

struct Args {
    pass: &'static str,
    args: Vec<Arg>,
    used: Vec<bool>,
}

impl Args {
    fn positional(&mut self, index: usize, what: &str) -> Result<String, SpecError> {
        let mut seen = 0;
        for (position, arg) in self.args.iter().enumerate() {
            if arg.key.is_none() {
                if seen == index {
                    self.used[position] = true;
                    return single(self.pass, what, arg);
                }
                seen += 1;
            }
        }
        error(format!(
            "{} needs {what} as argument {}",
            self.pass,
            index + 1
        ))
    }

    fn keyed(&mut self, key: &str) -> Option<&Arg> {
        let position = self
            .args
            .iter()
            .position(|arg| arg.key.as_deref() == Some(key))?;
        self.used[position] = true;
        self.args.get(position)
    }

    fn keyed_all(&mut self, key: &str) -> Vec<Arg> {
        let mut found = Vec::new();
        for (position, arg) in self.args.iter().enumerate() {
            if arg.key.as_deref() == Some(key) {
                self.used[position] = true;
                found.push(arg.clone());
            }
        }
        found
    }

    fn word(&mut self, key: &str) -> Result<Option<String>, SpecError> {
        let pass = self.pass;
        match self.keyed(key) {
            Some(arg) => single(pass, key, arg).map(Some),
            None => Ok(None),
        }
    }

    fn number(&mut self, key: &str) -> Result<Option<u32>, SpecError> {
        match self.word(key)? {
            Some(text) => match text.parse::<u32>() {
                Ok(value) => Ok(Some(value)),
                Err(_) => error(format!(
                    "{}: `{key}` takes a whole number, found `{text}`",
                    self.pass
                )),
            },
            None => Ok(None),
        }
    }

    fn finish(self) -> Result<(), SpecError> {
        for (arg, used) in self.args.iter().zip(&self.used) {
            if !used {
                let text = match &arg.key {
                    Some(key) => format!("`{key}=...`"),
                    None => format!("`{}`", arg.values.join(", ")),
                };
                return error(format!(
                    "{} does not take the argument {text}; `graft rewrite --list` describes its parameters",
                    self.pass
                ));
            }
        }
        Ok(())
    }
}

fn single(pass: &str, what: &str, arg: &Arg) -> Result<String, SpecError> {
    match (arg.list, arg.values.as_slice()) {
        (false, [value]) => Ok(value.clone()),
        _ => error(format!("{pass}: `{what}` takes one value, not a list")),
    }
}

/// Parses `NAME(ARGS)`.
pub fn parse_pass(text: &str) -> Result<PassSpec, SpecError> {
    let text = text.trim();
    let (name, rest) = match text.split_once('(') {
        Some((name, rest)) => match rest.trim_end().strip_suffix(')') {
            Some(inner) => (name.trim(), inner),
            None => {
                return error(format!(
                    "`{text}`: expected `NAME(ARGS)` with a closing `)`"
                ));
            }
        },
        None => (text, ""),
    };
    let pass: &'static str = match name {
        "decouple" => "decouple",
        "partition" => "partition",
        "batch" => "batch",
        "quorum" => "quorum",
        other => {
            return error(format!(
                "unknown pass `{other}`; the passes are decouple, partition, batch and quorum (`graft rewrite --list`)"
            ));
        }
    };
    let parsed = split_args(rest)?;
    let mut args = Args {
        pass,
        used: vec![false; parsed.len()],
        args: parsed,
    };
    let spec = match pass {
        "decouple" => {
            let role = args.positional(0, "the role to split")?;
            let relations = match args.keyed("rels") {
                Some(arg) => arg.values.clone(),
                None => return error("decouple needs `rels=[a, b]`: the relations to move"),
            };
            if relations.is_empty() {
                return error("decouple: `rels` names no relation");
            }
            let to = match args.word("to")? {
                Some(to) => to,
                None => format!("{role}_{}", relations[0]),
            };
            let placement = match args.word("on")?.as_deref() {
                None | Some("colocated") => Placement::Colocated,
                Some("new") => Placement::New,
                Some(other) => {
                    return error(format!(
                        "decouple: `on` is `colocated` or `new`, found `{other}`"
                    ));
                }
            };
            PassSpec::Decouple {
                role,
                relations,
                to,
                placement,
            }
        }
        "partition" => {
            let role = args.positional(0, "the role to partition")?;
            let Some(by) = args.word("by")? else {
                return error("partition needs `by=COLUMN`: the distribution key's column name");
            };
            let n = args.number("n")?.unwrap_or(2);
            if n < 2 {
                return error("partition: `n` must be at least 2");
            }
            let partial = match args.word("partial")?.as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return error(format!(
                        "partition: `partial` is true or false, found `{other}`"
                    ));
                }
            };
            PassSpec::Partition {
                role,
                by,
                n,
                partial,
            }
        }
        "batch" => {
            let channel = args.positional(0, "the channel to batch")?;
            let size = args.number("size")?;
            let ticks = args.number("ticks")?.unwrap_or(2);
            if ticks == 0 || size == Some(0) {
                return error("batch: `ticks` and `size` must be at least 1");
            }
            PassSpec::Batch {
                channel,
                ticks,
                size,
            }
        }
        _ => {
            let mut membership = Vec::new();
            for (key, add) in [("add", true), ("remove", false)] {
                for arg in args.keyed_all(key) {
                    for value in &arg.values {
                        let Some((role, node)) = value.split_once(':') else {
                            return error(format!(
                                "quorum: `{key}` takes ROLE:NODE, found `{value}`"
                            ));
                        };
                        let (role, node) = (role.trim().to_owned(), node.trim().to_owned());
                        membership.push(if add {
                            Membership::Add { role, node }
                        } else {
                            Membership::Remove { role, node }
                        });
                    }
                }
            }
            let mut constants = Vec::new();
            for (position, arg) in args.args.iter().enumerate() {
                let Some(key) = &arg.key else { continue };
                if key == "add" || key == "remove" {
                    continue;
                }
                let value = single("quorum", key, arg)?;
                let Ok(number) = value.parse::<i64>() else {
                    return error(format!("quorum: `{key}` takes an integer, found `{value}`"));
                };
                args.used[position] = true;
                constants.push((key.clone(), number));
            }
            if constants.is_empty() && membership.is_empty() {
                return error(
                    "quorum needs at least one change: `NAME=VALUE`, `add=ROLE:NODE` or `remove=ROLE:NODE`",
                );
            }
            PassSpec::Quorum {
                constants,
                membership,
            }
        }
    };
    args.finish()?;
    Ok(spec)
}

/// What `graft rewrite --list` prints.
pub fn describe_passes() -> &'static str {
    "\
decouple(ROLE, rels=[R1, R2, ...], to=NEWROLE, on=colocated|new)
    Move relations R1, R2, ... of ROLE (and the rules that derive them) to a new role NEWROLE,
    one new node `X/NEWROLE` per node X of ROLE. Applies in one of three safe cases, reported
    in the justification: mutually-independent (no dataflow between the halves; messages are
    readdressed, none added), monotonic (the moved half has no negation or aggregation and
    reads only persisted state, which is forwarded and persisted at NEWROLE), functional (the
    moved half is a stateless per-fact map).
      ROLE     the role to split
      rels     the relations to move (derived relations located at ROLE)
      to       the new role's name (default ROLE_R1)
      on       colocated (default) or new: where the new nodes run

partition(ROLE, by=COLUMN, n=N, partial=false)
    Run every node X of ROLE as N partitions `X/0` .. `X/N-1`. Each relation of ROLE gets one
    distribution key (the column named COLUMN, one inherited through the rules that derive
    it, or COLUMN as a declared `key(c)` of a table of ROLE determines it from column c) such
    that every join, group-by and negation is local to a partition. Senders route by the key
    modulo N (non-int keys by a stable hash). Relations with no such key are refused, or, with
    partial=true, replicated on every partition (read-only inputs are copied; updates are
    broadcast to every partition; inputs that write replicated state go through a
    coordinator round that resends until acknowledged).
      ROLE     the role to partition
      by       the distribution key's column name (any type)
      n        the number of partitions (default 2)
      partial  true to replicate relations that cannot be partitioned (default false)

batch(CHANNEL, ticks=T, size=S)
    Buffer CHANNEL's tuples at each sender, per destination, and send them together as one
    sealed batch when the oldest has waited T ticks or at least S tuples are buffered.
    Requires the consumer to be confluent: it reads the channel only through monotone rules
    over persisted state, and nothing downstream negates, aggregates or retracts.
      CHANNEL  the channel to batch
      ticks    flush when the oldest buffered tuple is T ticks old (default 2)
      size     also flush once at least S distinct tuples are buffered (optional)

quorum(NAME=VALUE, ..., add=ROLE:NODE, remove=ROLE:NODE)
    Change quorum constants (a count is compared against them, or a `require` relates them
    to one) and the membership of a role; any other constant (a timer) is refused. Every
    `require` of the program must still hold with the new values (for example Flexible
    Paxos's `require Q1 + Q2 > N`); a change that breaks one is refused, naming it. An added
    member gets a copy of the facts of the role's first member; a removed member's facts are
    dropped. The new version must pass `graft verify` under the bounds of its protocol.json
    (or --facts with --eot) before it is written.
"
}
