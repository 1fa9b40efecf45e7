//! One module per `graft` subcommand: argument definitions and the command's body.

pub mod check;
pub mod fmt;
pub mod graph;
