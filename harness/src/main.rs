//! The `authspec` command line.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    authspec::cli::main()
}
