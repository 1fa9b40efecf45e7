//! The pretty-printer behind `graft fmt`: one canonical layout for every program.
//!
//! [`format_source`] prints a parsed [`ast::SourceFile`] back to text. It is also what
//! `graft rewrite` emits, so its layout is the house style of every generated program.
//!
//! # The canonical layout
//!
//! - One item per line. A rule is `head :- a, b, c;` on one line when that fits in
//!   100 columns; otherwise the head and `:-` stand on the first line and each body item on a
//!   line of its own, indented four spaces, with `,` at the line ends and `;` after the last:
//!
//!   ```text
//!   decision(C, T, true)@async :-
//!       votes_all(C, T, N),
//!       count_yes(C, T, N);
//!   ```
//!
//! - `never` follows the same rule (`never a(X), b(X);`, or `never` alone on the first line).
//! - Facts are `rel(args)@N;`. Relation declarations are
//!   `input table votes(at: coordinator, tx: int) key(tx);` on one line, or, past 100
//!   columns, the opening line `input table votes(`, one column a line indented four spaces,
//!   and `) key(tx);` on the last line. `role x;`, `const N = 3;`, `require Q1 + Q2 > N;` and
//!   `include "path";` are always one line.
//! - Spaces after commas, around `:-`, comparison and arithmetic operators (`S + C`,
//!   `Cnt1 / 2`), none before `@`. `notin ` and `delete ` prefixes, aggregates as `count<X>`.
//! - Parentheses: those written in the source are kept (the tree keeps them as
//!   [`ast::Expr::Paren`]); none are added, except where a tree built by hand has a shape
//!   that plain infix text could not express (a `+` under a `*`, or an operation of equal
//!   precedence as the right operand).
//! - Strings are re-escaped (`\"`, `\\`, `\n`, `\t`); negative integers print as `-3`.
//! - Blank lines: where the source had one or more blank lines between two items (or
//!   comments), the output has exactly one; there are none at the start of the file, and the
//!   file ends with exactly one newline. An empty file formats to the empty string.
//! - Statements that did not parse ([`ast::Item::Error`]) are printed verbatim from the source.
//!
//! # Comments
//!
//! No comment is ever lost. Line comments lose their trailing whitespace; block comments are
//! printed verbatim.
//!
//! - A comment on its own line between items stays there, on its own line.
//! - A comment on the same line as the end of an item (`p(X) :- q(X); // note`) stays at the
//!   end of that item's last line, one space after the `;`.
//! - A comment inside a rule, a `never`, or a relation declaration forces the multi-line
//!   layout. A comment that followed a body item (or column) on the same line stays at the end
//!   of that item's line, after its `,`; a comment on the same line as `:-` stays after `:-`;
//!   any other comment goes on a line of its own before the body item it preceded (or was
//!   written inside of). Comments after the last body item stay after it, and then `;` goes on
//!   a line of its own when the last comment is a line comment.
//! - A comment inside any other item (a fact, `const`, `include`, ...) is moved to a line of
//!   its own just before the item.
//!
//! Every placement above is a fixed point: formatting formatted text changes nothing.

use std::fmt::Write as _;

use crate::ast::{
    self, BodyAtom, BodyItem, Comment, CommentKind, Comparison, Expr, Head, HeadArg, HeadTime,
    Item, RelationDecl, Rule,
};
use crate::span::Span;

/// The widest a one-line rule or declaration may be before it is broken over lines.
pub const MAX_WIDTH: usize = 100;

/// The indentation of body items and columns in the multi-line layout.
const INDENT: &str = "    ";

/// Prints `file` in the canonical layout described in the module documentation.
///
/// `text` is the source the file was parsed from: the printer reads it to find blank lines,
/// to tell comments at the end of a line from comments on a line of their own, and to copy
/// statements that did not parse. For a tree that has no source (one built by a rewrite),
/// pass `""`: the items are then printed without blank lines between them.
pub fn format_source(file: &ast::SourceFile, text: &str) -> String {
    Printer { text }.source_file(file)
}

/// Prints one item on its own, in the canonical layout, without comments.
///
/// An [`Item::Error`] is copied from `text` (pass the source the item was parsed from).
pub fn format_item(item: &Item, text: &str) -> String {
    Printer { text }.item(item, &[])
}

/// Prints a rule head: `delete` is not part of the head, so it is not printed.
pub fn format_head(head: &Head) -> String {
    let mut out = String::new();
    write_head(&mut out, head);
    out
}

/// Prints one body item: an atom (`notin votes(C, T, _)@1`) or a comparison (`X != Y`).
pub fn format_body_item(item: &BodyItem) -> String {
    let mut out = String::new();
    write_body_item(&mut out, item);
    out
}

/// Prints an expression, with its written parentheses.
pub fn format_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

/// The width of a line as the reader sees it (characters, not bytes).
fn width(line: &str) -> usize {
    line.chars().count()
}

/// A comment's text as printed: line comments lose trailing whitespace.
fn comment_text(comment: &Comment) -> &str {
    match comment.kind {
        CommentKind::Line => comment.text.trim_end(),
        CommentKind::Block => &comment.text,
    }
}

/// One top-level thing to print, in source order.
enum Element<'f> {
    Item(usize),
    Comment(&'f Comment),
}

/// A printed top-level element, with the source range used for blank-line detection.
struct Block {
    start: u32,
    end: u32,
    text: String,
}

/// What a list of elements (a rule body, a `never` body, a column list) looks like in print.
struct Listing<'a> {
    /// The text before the elements: `head :-`, `never`, `table votes(`.
    opener: String,
    /// Where the opener ends in the source (for telling same-line comments apart).
    opener_end: u32,
    /// Put between the opener and the first element in the one-line layout.
    opener_gap: &'static str,
    elements: Vec<String>,
    element_spans: Vec<Span>,
    /// What follows the elements.
    close: Close,
    /// The comments inside the item, in source order.
    comments: &'a [&'a Comment],
}

enum Close {
    /// `;` right after the last element (a rule or `never` body).
    Semicolon,
    /// The text after the column list, starting with `)`: on its own line when broken.
    Paren(String),
}

/// Where each comment inside a listed item goes in the multi-line layout.
struct Placement<'a> {
    /// Same line as the opener, after it.
    after_opener: Vec<&'a Comment>,
    /// On lines of their own before element `i`.
    before: Vec<Vec<&'a Comment>>,
    /// At the end of element `i`'s line.
    after: Vec<Vec<&'a Comment>>,
    /// On lines of their own after the last element.
    tail: Vec<&'a Comment>,
}

struct Printer<'t> {
    text: &'t str,
}

impl Printer<'_> {
    /// The source between two offsets, if the offsets are valid for the text.
    fn between(&self, start: u32, end: u32) -> Option<&str> {
        self.text.get(start as usize..end as usize)
    }

    /// Whether nothing but spaces (no line break) separates `start` and `end` in the source.
    fn same_line(&self, start: u32, end: u32) -> bool {
        start <= end
            && self
                .between(start, end)
                .is_some_and(|gap| !gap.contains('\n'))
    }

    /// Whether the source has a blank line between `start` and `end`.
    fn blank_line_between(&self, start: u32, end: u32) -> bool {
        start <= end
            && self
                .between(start, end)
                .is_some_and(|gap| gap.matches('\n').count() >= 2)
    }

    fn source_file(&self, file: &ast::SourceFile) -> String {
        let items = &file.items;
        let mut comments: Vec<&Comment> = file.comments.iter().collect();
        comments.sort_by_key(|comment| (comment.span.start, comment.span.end));

        // Comments inside an item belong to it; those inside a statement that did not parse
        // are printed with its verbatim text.
        let mut inside: Vec<Vec<&Comment>> = vec![Vec::new(); items.len()];
        let mut top_level: Vec<&Comment> = Vec::new();
        for comment in comments {
            // Items are in source order and do not overlap.
            let candidate = items.partition_point(|item| item.span().end <= comment.span.start);
            let container = items
                .get(candidate)
                .is_some_and(|item| item.span().start <= comment.span.start)
                .then_some(candidate);
            match container {
                Some(index) if matches!(items[index], Item::Error(_)) => {}
                Some(index) => inside[index].push(comment),
                None => top_level.push(comment),
            }
        }

        // Merge items and top-level comments in source order.
        let mut elements = Vec::with_capacity(items.len() + top_level.len());
        let mut pending = top_level.into_iter().peekable();
        for (index, item) in items.iter().enumerate() {
            while let Some(comment) = pending.next_if(|c| c.span.start < item.span().start) {
                elements.push(Element::Comment(comment));
            }
            elements.push(Element::Item(index));
        }
        elements.extend(pending.map(Element::Comment));

        // Comments on the same line as the end of an item trail it.
        let mut blocks: Vec<Block> = Vec::new();
        let mut trailing_open = false;
        for element in elements {
            match element {
                Element::Item(index) => {
                    let item = &items[index];
                    let span = item.span();
                    blocks.push(Block {
                        start: span.start,
                        end: span.end,
                        text: self.item(item, &inside[index]),
                    });
                    trailing_open = true;
                }
                Element::Comment(comment) => {
                    let text = comment_text(comment);
                    match blocks.last_mut() {
                        Some(block)
                            if trailing_open && self.same_line(block.end, comment.span.start) =>
                        {
                            block.text.push(' ');
                            block.text.push_str(text);
                            block.end = comment.span.end;
                        }
                        _ => {
                            trailing_open = false;
                            blocks.push(Block {
                                start: comment.span.start,
                                end: comment.span.end,
                                text: text.to_string(),
                            });
                        }
                    }
                }
            }
        }

        let mut out = String::new();
        let mut previous_end: Option<u32> = None;
        for block in blocks {
            if let Some(end) = previous_end {
                out.push('\n');
                if self.blank_line_between(end, block.start) {
                    out.push('\n');
                }
            }
            out.push_str(&block.text);
            previous_end = Some(block.end);
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }

    /// Prints one item (without the comments that trail it), placing `comments`, the comments
    /// inside its span.
    fn item(&self, item: &Item, comments: &[&Comment]) -> String {
        match item {
            Item::Rule(rule) if !rule.body.is_empty() => self.rule(rule, comments),
            Item::Never(never) if !never.body.is_empty() => {
                let keyword_end = never.span.start.saturating_add(5);
                let first_start = never.body[0].span().start;
                self.listing(Listing {
                    opener: "never".to_string(),
                    opener_end: keyword_end.min(first_start),
                    opener_gap: " ",
                    elements: never.body.iter().map(format_body_item).collect(),
                    element_spans: never.body.iter().map(BodyItem::span).collect(),
                    close: Close::Semicolon,
                    comments,
                })
            }
            Item::Relation(relation) if !relation.columns.is_empty() => {
                self.relation(relation, comments)
            }
            Item::Error(span) => self
                .between(span.start, span.end)
                .unwrap_or_default()
                .to_string(),
            _ => {
                let mut out = String::new();
                for comment in comments {
                    out.push_str(comment_text(comment));
                    out.push('\n');
                }
                write_simple_item(&mut out, item);
                out
            }
        }
    }

    fn rule(&self, rule: &Rule, comments: &[&Comment]) -> String {
        let mut opener = String::new();
        if rule.delete.is_some() {
            opener.push_str("delete ");
        }
        write_head(&mut opener, &rule.head);
        opener.push_str(" :-");
        self.listing(Listing {
            opener,
            opener_end: rule.head.span.end,
            opener_gap: " ",
            elements: rule.body.iter().map(format_body_item).collect(),
            element_spans: rule.body.iter().map(BodyItem::span).collect(),
            close: Close::Semicolon,
            comments,
        })
    }

    fn relation(&self, relation: &RelationDecl, comments: &[&Comment]) -> String {
        let mut opener = relation_keywords(relation);
        opener.push_str(&relation.name.name);
        opener.push('(');
        let mut close = String::from(")");
        write_key(&mut close, relation);
        close.push(';');
        self.listing(Listing {
            opener,
            opener_end: relation.name.span.end,
            opener_gap: "",
            elements: relation
                .columns
                .iter()
                .map(|column| format!("{}: {}", column.name.name, column.ty.name))
                .collect(),
            element_spans: relation.columns.iter().map(|column| column.span).collect(),
            close: Close::Paren(close),
            comments,
        })
    }

    /// Prints a list on one line if it fits and has no comments, otherwise one element a line.
    fn listing(&self, listing: Listing<'_>) -> String {
        if listing.comments.is_empty() {
            let mut line = listing.opener.clone();
            line.push_str(listing.opener_gap);
            line.push_str(&listing.elements.join(", "));
            match &listing.close {
                Close::Semicolon => line.push(';'),
                Close::Paren(close) => line.push_str(close),
            }
            if width(&line) <= MAX_WIDTH {
                return line;
            }
        }

        let placement = self.place(&listing);
        let mut out = listing.opener.clone();
        for comment in &placement.after_opener {
            out.push(' ');
            out.push_str(comment_text(comment));
        }
        let last = listing.elements.len().saturating_sub(1);
        for (index, element) in listing.elements.iter().enumerate() {
            for comment in &placement.before[index] {
                out.push('\n');
                out.push_str(INDENT);
                out.push_str(comment_text(comment));
            }
            out.push('\n');
            out.push_str(INDENT);
            out.push_str(element);
            if index != last {
                out.push(',');
            }
            for comment in &placement.after[index] {
                out.push(' ');
                out.push_str(comment_text(comment));
            }
        }
        for comment in &placement.tail {
            out.push('\n');
            out.push_str(INDENT);
            out.push_str(comment_text(comment));
        }
        match &listing.close {
            Close::Semicolon => {
                let last_comment = placement
                    .tail
                    .last()
                    .or_else(|| placement.after.last().and_then(|after| after.last()));
                if last_comment.is_some_and(|comment| comment.kind == CommentKind::Line) {
                    out.push('\n');
                }
                out.push(';');
            }
            Close::Paren(close) => {
                out.push('\n');
                out.push_str(close);
            }
        }
        out
    }

    /// Decides where each comment of a listed item goes (see the module documentation).
    fn place<'a>(&self, listing: &Listing<'a>) -> Placement<'a> {
        let count = listing.elements.len();
        let mut placement = Placement {
            after_opener: Vec::new(),
            before: vec![Vec::new(); count],
            after: vec![Vec::new(); count],
            tail: Vec::new(),
        };
        // The gap being walked (index of the element after it), where the previous thing on
        // its line ended, and whether comments in it still share a line with that thing.
        let mut gap: Option<usize> = None;
        let mut previous_end = listing.opener_end;
        let mut same_line_open = true;
        for &comment in listing.comments {
            let start = comment.span.start;
            if start < listing.opener_end || count == 0 {
                // Written before the list starts (inside a head, between keywords).
                match placement.before.first_mut() {
                    Some(first) => first.push(comment),
                    None => placement.tail.push(comment),
                }
                continue;
            }
            let next = listing
                .element_spans
                .iter()
                .position(|span| span.end > start);
            if let Some(index) = next
                && listing.element_spans[index].start <= start
            {
                // Written inside element `index`.
                placement.before[index].push(comment);
                continue;
            }
            let this_gap = next.unwrap_or(count);
            if gap != Some(this_gap) {
                gap = Some(this_gap);
                previous_end = match this_gap {
                    0 => listing.opener_end,
                    index => listing.element_spans[index - 1].end,
                };
                same_line_open = true;
            }
            if same_line_open && self.same_line(previous_end, start) {
                previous_end = comment.span.end;
                match this_gap {
                    0 => placement.after_opener.push(comment),
                    index => placement.after[index - 1].push(comment),
                }
            } else {
                same_line_open = false;
                match placement.before.get_mut(this_gap) {
                    Some(before) => before.push(comment),
                    None => placement.tail.push(comment),
                }
            }
        }
        placement
    }
}

/// `input`, `output` and the persistence keyword of a declaration, each followed by a space.
fn relation_keywords(relation: &RelationDecl) -> String {
    let mut out = String::new();
    if relation.input.is_some() {
        out.push_str("input ");
    }
    if relation.output.is_some() {
        out.push_str("output ");
    }
    if let Some((persistence, _)) = relation.persistence {
        out.push_str(match persistence {
            ast::Persistence::Table => "table ",
            ast::Persistence::Scratch => "scratch ",
            ast::Persistence::Channel => "channel ",
        });
    }
    out
}

fn write_key(out: &mut String, relation: &RelationDecl) {
    if let Some(key) = &relation.key {
        out.push_str(" key(");
        for (index, column) in key.columns.iter().enumerate() {
            if index > 0 {
                out.push_str(", ");
            }
            out.push_str(&column.name);
        }
        out.push(')');
    }
}

/// Prints an item that always takes one line (a listed item in its one-line form).
fn write_simple_item(out: &mut String, item: &Item) {
    match item {
        Item::Include(include) => {
            out.push_str("include ");
            write_string(out, &include.path);
            out.push(';');
        }
        Item::Rule(rule) => {
            if rule.delete.is_some() {
                out.push_str("delete ");
            }
            write_head(out, &rule.head);
            if !rule.body.is_empty() {
                out.push_str(" :- ");
                write_body(out, &rule.body);
            }
            out.push(';');
        }
        Item::Role(role) => {
            out.push_str("role ");
            out.push_str(&role.name.name);
            out.push(';');
        }
        Item::Relation(relation) => {
            out.push_str(&relation_keywords(relation));
            out.push_str(&relation.name.name);
            out.push('(');
            for (index, column) in relation.columns.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(&column.name.name);
                out.push_str(": ");
                out.push_str(&column.ty.name);
            }
            out.push(')');
            write_key(out, relation);
            out.push(';');
        }
        Item::Const(constant) => {
            out.push_str("const ");
            out.push_str(&constant.name.name);
            out.push_str(" = ");
            write_expr(out, &constant.value);
            out.push(';');
        }
        Item::Never(never) => {
            out.push_str("never");
            if !never.body.is_empty() {
                out.push(' ');
                write_body(out, &never.body);
            }
            out.push(';');
        }
        Item::Require(require) => {
            out.push_str("require ");
            write_comparison(out, &require.condition);
            out.push(';');
        }
        // Without the source there is nothing to copy.
        Item::Error(_) => {}
    }
}

fn write_body(out: &mut String, body: &[BodyItem]) {
    for (index, item) in body.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        write_body_item(out, item);
    }
}

fn write_head(out: &mut String, head: &Head) {
    out.push_str(&head.relation.name);
    out.push('(');
    for (index, arg) in head.args.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        match arg {
            HeadArg::Expr(expr) => write_expr(out, expr),
            HeadArg::Aggregate(aggregate) => {
                out.push_str(&aggregate.function.name);
                out.push('<');
                out.push_str(&aggregate.variable.name);
                out.push('>');
            }
        }
    }
    out.push(')');
    match head.time {
        HeadTime::Now => {}
        HeadTime::Next => out.push_str("@next"),
        HeadTime::Async => out.push_str("@async"),
        HeadTime::Tick(tick) => {
            let _ = write!(out, "@{tick}");
        }
    }
}

fn write_body_item(out: &mut String, item: &BodyItem) {
    match item {
        BodyItem::Atom(atom) => write_atom(out, atom),
        BodyItem::Compare(comparison) => write_comparison(out, comparison),
    }
}

fn write_atom(out: &mut String, atom: &BodyAtom) {
    if atom.negated.is_some() {
        out.push_str("notin ");
    }
    out.push_str(&atom.relation.name);
    out.push('(');
    for (index, arg) in atom.args.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        write_expr(out, arg);
    }
    out.push(')');
    if let Some((tick, _)) = atom.tick {
        let _ = write!(out, "@{tick}");
    }
}

fn write_comparison(out: &mut String, comparison: &Comparison) {
    write_expr(out, &comparison.lhs);
    out.push(' ');
    out.push_str(comparison.op.as_str());
    out.push(' ');
    write_expr(out, &comparison.rhs);
}

fn write_expr(out: &mut String, expr: &Expr) {
    match expr {
        Expr::Var(ident) | Expr::Symbol(ident) => out.push_str(&ident.name),
        Expr::Wildcard(_) => out.push('_'),
        Expr::Int(value, _) => {
            let _ = write!(out, "{value}");
        }
        Expr::Str(value, _) => write_string(out, value),
        Expr::Bool(value, _) => out.push_str(if *value { "true" } else { "false" }),
        Expr::Binary { op, lhs, rhs, .. } => {
            write_operand(out, lhs, op.precedence(), false);
            out.push(' ');
            out.push_str(op.as_str());
            out.push(' ');
            write_operand(out, rhs, op.precedence(), true);
        }
        Expr::Paren(inner, _) => {
            out.push('(');
            write_expr(out, inner);
            out.push(')');
        }
    }
}

/// Prints an operand of a binary operation whose precedence is `parent`, adding parentheses
/// only when the tree's shape could not be read back from plain infix text.
fn write_operand(out: &mut String, operand: &Expr, parent: u8, is_right: bool) {
    let needs_parens = match operand {
        Expr::Binary { op, .. } => {
            op.precedence() < parent || (is_right && op.precedence() == parent)
        }
        _ => false,
    };
    if needs_parens {
        out.push('(');
        write_expr(out, operand);
        out.push(')');
    } else {
        write_expr(out, operand);
    }
}

/// A double-quoted string with `"`, `\`, newline and tab escaped.
fn write_string(out: &mut String, value: &str) {
    out.push('"');
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{ArithOp, CompareOp, ConstDecl, Ident, Never, RoleDecl, SourceFile};
    use crate::span::FileId;

    fn name(text: &str) -> Ident {
        Ident {
            name: text.to_string(),
            span: Span::default(),
        }
    }

    fn var(text: &str) -> Expr {
        Expr::Var(name(text))
    }

    fn binary(op: ArithOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            span: Span::default(),
        }
    }

    fn atom(relation: &str, args: Vec<Expr>) -> BodyItem {
        BodyItem::Atom(BodyAtom {
            negated: None,
            relation: name(relation),
            args,
            tick: None,
            span: Span::default(),
        })
    }

    fn head(relation: &str, args: Vec<HeadArg>, time: HeadTime) -> Head {
        Head {
            relation: name(relation),
            args,
            time,
            time_span: None,
            span: Span::default(),
        }
    }

    fn file(items: Vec<Item>) -> SourceFile {
        SourceFile {
            file: FileId(0),
            items,
            comments: Vec::new(),
        }
    }

    #[test]
    fn binary_operands_get_parentheses_only_where_the_shape_needs_them() {
        let sum = binary(ArithOp::Add, var("A"), var("B"));
        assert_eq!(
            format_expr(&binary(ArithOp::Mul, sum.clone(), var("C"))),
            "(A + B) * C"
        );
        assert_eq!(
            format_expr(&binary(ArithOp::Sub, var("C"), sum.clone())),
            "C - (A + B)"
        );
        assert_eq!(
            format_expr(&binary(ArithOp::Add, sum.clone(), var("C"))),
            "A + B + C"
        );
        let product = binary(ArithOp::Div, var("A"), Expr::Int(2, Span::default()));
        assert_eq!(
            format_expr(&binary(ArithOp::Add, var("C"), product.clone())),
            "C + A / 2"
        );
        assert_eq!(
            format_expr(&binary(ArithOp::Div, var("C"), product)),
            "C / (A / 2)"
        );
        assert_eq!(
            format_expr(&Expr::Paren(Box::new(var("X")), Span::default())),
            "(X)"
        );
        assert_eq!(
            format_expr(&binary(
                ArithOp::Sub,
                var("X"),
                Expr::Int(-3, Span::default())
            )),
            "X - -3"
        );
    }

    #[test]
    fn strings_are_re_escaped() {
        let value = Expr::Str("a \"b\" \\ c\nd\te".to_string(), Span::default());
        assert_eq!(format_expr(&value), r#""a \"b\" \\ c\nd\te""#);
    }

    #[test]
    fn items_print_in_canonical_form() {
        let rule = Item::Rule(Rule {
            delete: Some(Span::default()),
            head: head(
                "cnt",
                vec![
                    HeadArg::Expr(var("C")),
                    HeadArg::Aggregate(ast::Aggregate {
                        function: name("count"),
                        variable: name("A"),
                        span: Span::default(),
                    }),
                ],
                HeadTime::Next,
            ),
            body: vec![
                BodyItem::Atom(BodyAtom {
                    negated: Some(Span::default()),
                    relation: name("member"),
                    args: vec![var("C"), Expr::Wildcard(Span::default())],
                    tick: Some((1, Span::default())),
                    span: Span::default(),
                }),
                BodyItem::Compare(Comparison {
                    lhs: var("C"),
                    op: CompareOp::Ne,
                    op_span: Span::default(),
                    rhs: Expr::Symbol(name("x")),
                    span: Span::default(),
                }),
            ],
            span: Span::default(),
        });
        assert_eq!(
            format_item(&rule, ""),
            "delete cnt(C, count<A>)@next :- notin member(C, _)@1, C != x;"
        );
        let fact = Item::Rule(Rule {
            delete: None,
            head: head(
                "node",
                vec![HeadArg::Expr(Expr::Str("a".to_string(), Span::default()))],
                HeadTime::Tick(1),
            ),
            body: Vec::new(),
            span: Span::default(),
        });
        assert_eq!(format_item(&fact, ""), "node(\"a\")@1;");
        let constant = Item::Const(ConstDecl {
            name: name("N"),
            value: Expr::Int(-3, Span::default()),
            span: Span::default(),
        });
        assert_eq!(format_item(&constant, ""), "const N = -3;");
        let role = Item::Role(RoleDecl {
            name: name("leader"),
            span: Span::default(),
        });
        assert_eq!(format_item(&role, ""), "role leader;");
    }

    #[test]
    fn long_declaration_puts_one_column_per_line() {
        let columns = (0..8)
            .map(|index| ast::ColumnDecl {
                name: name(&format!("column_number_{index}")),
                ty: name("int"),
                span: Span::default(),
            })
            .collect();
        let relation = Item::Relation(RelationDecl {
            input: None,
            output: Some(Span::default()),
            persistence: Some((ast::Persistence::Table, Span::default())),
            name: name("wide"),
            columns,
            key: Some(ast::KeyDecl {
                columns: vec![name("column_number_0")],
                span: Span::default(),
            }),
            span: Span::default(),
        });
        let printed = format_item(&relation, "");
        assert!(printed.starts_with("output table wide(\n    column_number_0: int,\n"));
        assert!(printed.ends_with("\n    column_number_7: int\n) key(column_number_0);"));
    }

    #[test]
    fn long_never_breaks_after_the_keyword() {
        let body = (0..6)
            .map(|index| atom(&format!("relation_number_{index}"), vec![var("Xxxxxxxx")]))
            .collect();
        let never = Item::Never(Never {
            body,
            span: Span::default(),
        });
        let printed = format_source(&file(vec![never]), "");
        assert!(printed.starts_with("never\n    relation_number_0(Xxxxxxxx),\n"));
        assert!(printed.ends_with("    relation_number_5(Xxxxxxxx);\n"));
    }

    #[test]
    fn tree_without_source_prints_one_item_per_line() {
        let items = vec![
            Item::Role(RoleDecl {
                name: name("a"),
                span: Span::default(),
            }),
            Item::Role(RoleDecl {
                name: name("b"),
                span: Span::default(),
            }),
        ];
        assert_eq!(format_source(&file(items), ""), "role a;\nrole b;\n");
        assert_eq!(format_source(&file(Vec::new()), ""), "");
    }
}
