//! authspec: the scenario model, the runner and the reports behind the `authspec` CLI.
//!
//! The data path: scenario YAML → [`scenario`] (typed, validated) → [`runner`] (drives
//! a connection to the embedded reference server or a target) → a verdict per step →
//! [`report`] (human, JSON, JUnit).
#![forbid(unsafe_code)]

pub mod cli;
pub mod conn;
pub mod coverage;
pub mod input;
pub mod loadgen;
pub mod netfuzz;
pub mod probe;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod support;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_oracles;
