//! Support code shared by the integration tests: builders and in-memory drivers.
#![forbid(unsafe_code)]
