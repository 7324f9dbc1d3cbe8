//! authspec: the scenario model, the runner and the reports behind the `authspec` CLI.
#![forbid(unsafe_code)]

pub mod report;
pub mod scenario;

#[doc(hidden)]
pub mod fuzzing;
