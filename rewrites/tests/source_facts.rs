//! The one rule for which facts feed which version: a rewritten version's facts, mapped back
//! through its justification (`compare::source_facts`), are the source's facts again.

use std::collections::BTreeSet;

use graft_compiler::ir::Value;
use graft_rewrites::compare::{OutputFact, source_facts};
use graft_rewrites::{DFact, FactsFile, SourceRef, check_text, parse_pass, rewrite};

const PROGRAM: &str = "role client;\nrole server;\ninput table server_of(at: client, s: server);\ninput req(at: client, id: int);\ninput table weight(at: server, id: int, w: int);\nchannel ask(at: server, from: client, id: int);\noutput table got(at: server, id: int, w: int);\nask(S, C, Id)@async :- req(C, Id), server_of(C, S);\ngot(S, Id, W) :- ask(S, _, Id), weight(S, Id, W);\ninput table load(at: server, n: int);\noutput table busy(at: server, n: int);\nbusy(S, N) :- load(S, N);\n";

fn fact(rel: &str, values: &[Value], tick: u64) -> DFact {
    DFact {
        rel: rel.to_owned(),
        values: values.to_vec(),
        tick,
    }
}

fn as_set(files: &[FactsFile], generated: bool) -> BTreeSet<OutputFact> {
    files
        .iter()
        .flat_map(|file| {
            file.facts
                .iter()
                .chain(if generated { &file.generated[..] } else { &[] })
        })
        .map(|f| (f.rel.clone(), f.values.clone(), f.tick))
        .collect()
}

#[test]
fn the_versions_facts_map_back_to_the_sources() {
    let (checked, _) = check_text("p.graft", PROGRAM);
    assert!(!checked.has_errors());
    let source = SourceRef {
        files: vec!["p.graft".to_owned()],
        hash: graft_rewrites::content_hash(PROGRAM.as_bytes()),
    };
    let (c, s) = (Value::str("c"), Value::str("s"));
    let files = vec![
        FactsFile {
            name: "topology.facts".to_owned(),
            facts: vec![
                fact("server_of", &[c.clone(), s.clone()], 1),
                fact("weight", &[s.clone(), Value::Int(1), Value::Int(5)], 1),
                fact("weight", &[s.clone(), Value::Int(2), Value::Int(7)], 1),
                fact("load", &[s.clone(), Value::Int(3)], 1),
            ],
            generated: Vec::new(),
        },
        FactsFile {
            name: "workload.facts".to_owned(),
            facts: vec![
                fact("req", &[c.clone(), Value::Int(1)], 1),
                fact("req", &[c.clone(), Value::Int(2)], 2),
            ],
            generated: Vec::new(),
        },
    ];
    let original = as_set(&files, false);
    for passes in [
        vec!["partition(server, by=id, n=2)"],
        vec!["decouple(server, rels=[got], to=sink)"],
        vec![
            "decouple(server, rels=[got], to=sink)",
            "partition(sink, by=id, n=2)",
        ],
    ] {
        let specs: Vec<_> = passes
            .iter()
            .map(|p| parse_pass(p).expect("pass"))
            .collect();
        let rewritten = rewrite(&checked, &source, files.clone(), &specs).expect("applies");
        let given: Vec<OutputFact> = as_set(&rewritten.facts, true).into_iter().collect();
        assert_ne!(
            given.iter().cloned().collect::<BTreeSet<_>>(),
            original,
            "{passes:?} rewrites the facts"
        );
        let mapped: BTreeSet<OutputFact> = source_facts(&rewritten.justification, &given)
            .into_iter()
            .collect();
        assert_eq!(mapped, original, "{passes:?}");
    }
}
