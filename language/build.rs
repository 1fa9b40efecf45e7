//! Generates the parser from `src/grammar.lalrpop` into `OUT_DIR` at build time.

fn main() {
    lalrpop::Configuration::new()
        .use_cargo_dir_conventions()
        .emit_rerun_directives(true)
        .process()
        .expect("src/grammar.lalrpop is a valid lalrpop grammar");
}
