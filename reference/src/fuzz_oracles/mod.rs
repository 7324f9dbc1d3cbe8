//! Entry points for the fuzz targets in `fuzz/` and for the property tests. Each takes
//! raw bytes, exercises one parser or state machine, and asserts the invariants that
//! must hold for every input (round trips, no authentication without credentials).
//! Not a stable API: built only with the `fuzzing` feature, so the oracles never ship
//! in a default build.

pub mod codec;
pub mod mech;
pub mod mech_digest_scram;
pub mod policy;
/// Whole dialogs, decoded with `arbitrary`.
pub mod session;

/// The SMTP command parser: never panics, and whatever it accepts formats back to a
/// line that parses to the same command.
pub use codec::command;
pub use codec::{line_framer, reply, sasl_base64, xtext};
