//! graft's surface language: lexer, lalrpop grammar, AST with spans, diagnostics as data, and
//! the pretty-printer behind `graft fmt`.
//!
//! Architecture invariant: parsing never fails. [`parse`] returns a tree and every syntax error
//! it found; statements that do not parse become [`ast::Item::Error`]. No lalrpop type appears
//! in this crate's public API, and this crate does no I/O: the include loader takes a function
//! that reads files.

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod lexer;
pub mod loader;
pub mod parser;
pub mod span;
mod strip;

pub use loader::{LoadedProgram, load_program};
pub use parser::{Parsed, parse};
