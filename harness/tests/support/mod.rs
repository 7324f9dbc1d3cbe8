//! What several CLI test files share: `authspec serve` as a child process on an
//! ephemeral loopback port.

#![allow(
    dead_code,
    reason = "each test file compiles this module and uses its own part of it"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `authspec serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The address it listens on (`listening on …`, its first line of output).
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `authspec serve` with alice's PLAIN secret (SCRAM keys are derived from it, so
/// SCRAM is offered), nonces from seed 1 and the `extra` arguments; logs off.
pub fn serve(dir: &Path, extra: &[&str]) -> Server {
    serve_with(dir, "alice:{PLAIN}wonderland\n", None, extra)
}

/// `authspec serve` with `users` as its passwd-file, nonces from seed 1 and the
/// `extra` arguments. Its log (stderr) goes to `log` when given, else nowhere; the
/// environment's log and colour settings are removed, so the log is what the
/// arguments ask for.
pub fn serve_with(dir: &Path, users: &str, log: Option<&Path>, extra: &[&str]) -> Server {
    let users_file = dir.join("users");
    std::fs::write(&users_file, users).unwrap();
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authspec"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--seed", "1"])
        .arg("--users")
        .arg(&users_file)
        .args(extra)
        .env_remove("AUTHSPEC_LOG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stderr(stderr);
    spawn_listening(cmd)
}

/// Starts `cmd`, a server that prints `listening on ADDR` as its first line of
/// output (stdout is taken for it; stderr is the caller's to set, else inherited).
pub fn spawn_listening(mut cmd: Command) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    Server { child, addr }
}
