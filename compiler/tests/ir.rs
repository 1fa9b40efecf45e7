//! The IR's shape: stable ids, constants that remember their names, facts, invariants,
//! requirements evaluated under other constant assignments, and inferred types.

mod common;

use common::*;
use graft_compiler::ir::{
    AggFunc, ConstId, Literal, Persistence, RelationOrigin, RuleKind, Term, Type, Value, VarId,
};

#[test]
fn relation_ids_follow_first_mention_across_files() {
    let checked = check_files(&[
        ("a.graft", "b(L) :- a(L);\na(\"n\");\n"),
        (
            "b.graft",
            "input z(at: node);\nc(L)@next :- b(L), z(L), crash(L, _, _);\n",
        ),
    ]);
    assert!(checked.diagnostics.is_empty(), "{}", describe(&checked));
    let names: Vec<&str> = checked
        .program
        .relations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["b", "a", "z", "c", "crash"]);
    for (index, relation) in checked.program.relations.iter().enumerate() {
        assert_eq!(relation.id.index(), index);
    }
    let crash = checked.program.relation_by_name("crash").expect("crash");
    let crash = checked.program.relation(crash);
    assert_eq!(crash.origin, RelationOrigin::Builtin);
    assert_eq!(
        crash.columns.iter().map(|c| c.ty).collect::<Vec<_>>(),
        [Type::Node, Type::Node, Type::Int]
    );
    let kinds: Vec<RuleKind> = checked.program.rules.iter().map(|rule| rule.kind).collect();
    assert_eq!(kinds, [RuleKind::Deductive, RuleKind::Next]);
    assert_eq!(checked.program.rules[1].id.index(), 1);
}

#[test]
fn rules_number_variables_and_keep_const_names() {
    let checked = assert_clean(
        "const QUORUM = 2;\n\
         input vote(at: node, voter: node);\n\
         table votes(at: node, n: int);\n\
         votes(L, count<V>) :- vote(L, V);\n\
         ok(L, N)@next :- votes(L, N), N >= QUORUM;\n",
    );
    let program = &checked.program;
    let count_rule = &program.rules[0];
    assert_eq!(count_rule.var_names, ["L", "V"]);
    assert_eq!(count_rule.location, Some(VarId(0)));
    let aggregate = count_rule.head.aggregate.as_ref().expect("aggregate");
    assert_eq!(
        (aggregate.column, aggregate.func, aggregate.var),
        (1, AggFunc::Count, VarId(1))
    );
    let Literal::Compare(comparison) = &program.rules[1].body[1] else {
        panic!("expected a comparison");
    };
    assert_eq!(comparison.rhs, Term::NamedConst(ConstId(0), Value::Int(2)));
    assert_eq!(program.const_by_name("QUORUM"), Some(ConstId(0)));
    let ok = program.relation_by_name("ok").expect("ok");
    assert_eq!(program.relation(ok).columns[1].ty, Type::Int);
    assert_eq!(program.relation(ok).persistence, Persistence::Scratch);
}

#[test]
fn facts_invariants_and_requirements() {
    let checked = assert_clean(
        "const Q1 = 2; const Q2 = 2; const N = 3;\n\
         require Q1 + Q2 > N;\n\
         member(\"a\", \"b\")@2;\n\
         member(\"a\", c);\n\
         never member(A, X), member(B, X), A != B;\n",
    );
    let program = &checked.program;
    assert_eq!(program.facts.len(), 2);
    assert_eq!(program.facts[0].tick, 2);
    assert_eq!(program.facts[1].values, [Value::str("a"), Value::str("c")]);
    assert_eq!(program.nevers.len(), 1);
    assert_eq!(program.nevers[0].var_names, ["A", "X", "B"]);
    assert_eq!(program.eval_requires(&|_| None), [Ok(true)]);
    let smaller = |id: ConstId| (id == ConstId(0)).then_some(Value::Int(1));
    assert_eq!(program.requires[0].eval(program, &smaller), Ok(false));
}

#[test]
fn molly_types_are_inferred() {
    let checked = assert_clean(
        "node(\"a\", \"b\")@1;\n\
         bcast(\"a\", \"hello\")@1;\n\
         log(N, P) :- bcast(N, P);\n\
         log(N, P)@next :- log(N, P);\n\
         ack(S, N, T)@async :- log(N, _), node(N, S), clock(N, T);\n\
         clock(N, T) :- node(N, _), crash(N, _, T);\n",
    );
    let program = &checked.program;
    let types = |name: &str| -> Vec<Type> {
        let rel = program.relation_by_name(name).expect(name);
        program
            .relation(rel)
            .columns
            .iter()
            .map(|column| column.ty)
            .collect()
    };
    assert_eq!(types("node"), [Type::Node, Type::Node]);
    assert_eq!(types("bcast"), [Type::Node, Type::String]);
    assert_eq!(types("ack"), [Type::Node, Type::Node, Type::Int]);
}

#[test]
fn unknown_relations_leave_marked_holes() {
    let checked = check_source("p(L) :- q(L);\nr(L) :- p(L);\n");
    assert_eq!(codes(&checked), [graft_compiler::codes::UNKNOWN_RELATION]);
    let q = checked.program.relation_by_name("q").expect("q");
    assert_eq!(checked.program.relation(q).origin, RelationOrigin::Unknown);
    assert_eq!(checked.program.rules.len(), 2);
    let summary = graft_compiler::summary(&checked);
    assert!(
        summary
            .relations
            .iter()
            .all(|relation| relation.name != "q")
    );
    assert_eq!(summary.errors, 1);
}
