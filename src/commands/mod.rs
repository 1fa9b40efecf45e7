//! One module per `graft` subcommand: argument definitions and the command's body.

pub mod bench;
pub mod check;
pub mod explain;
pub mod fmt;
pub mod graph;
pub mod optimize;
pub mod report;
pub mod rewrite;
pub mod run;
pub mod test;
pub mod verify;
