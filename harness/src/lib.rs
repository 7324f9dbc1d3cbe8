//! authspec: the scenario model, the runner and the reports behind the `authspec` CLI.
#![forbid(unsafe_code)]

pub mod cli;
pub mod conn;
pub mod probe;
