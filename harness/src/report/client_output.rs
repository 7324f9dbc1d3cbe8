//! What a client under test said about itself: the command that ran, how it ended,
//! and the tail of its standard output and error. Server-role results carry it, so a
//! failure shows the client's own words next to the transcript.

use std::fmt;

/// How the client command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientExit {
    /// It exited by itself with this status.
    Status(i32),
    /// It was ended by a signal it did not get from the harness.
    Signal(i32),
    /// It was still running when the scenario ended and the harness stopped it.
    StoppedByHarness,
    /// It could not be started.
    NotStarted(String),
}

impl ClientExit {
    /// Exited by itself with status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, ClientExit::Status(0))
    }

    /// Exited by itself (any status).
    pub fn exited(&self) -> bool {
        matches!(self, ClientExit::Status(_) | ClientExit::Signal(_))
    }

    /// The stable name used in JSON: `status`, `signal`, `stopped`, `not_started`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientExit::Status(_) => "status",
            ClientExit::Signal(_) => "signal",
            ClientExit::StoppedByHarness => "stopped",
            ClientExit::NotStarted(_) => "not_started",
        }
    }

    /// The status or signal number, where there is one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientExit::Status(c) | ClientExit::Signal(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ClientExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientExit::Status(127) => f.write_str("exit status 127 (command not found)"),
            ClientExit::Status(126) => f.write_str("exit status 126 (not executable)"),
            ClientExit::Status(c) => write!(f, "exit status {c}"),
            ClientExit::Signal(s) => write!(f, "killed by signal {s}"),
            ClientExit::StoppedByHarness => {
                f.write_str("still running when the scenario ended; stopped by authspec")
            }
            ClientExit::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// One captured stream, bounded: at most [`Captured::LIMIT`] bytes are kept, the
/// last ones (where a client prints its error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub text: String,
    /// Bytes dropped from the front to stay within the limit.
    pub dropped: usize,
}

impl Captured {
    /// The most kept of each stream.
    pub const LIMIT: usize = 8 * 1024;

    /// From raw bytes already bounded by the reader, and the count it dropped.
    pub fn from_bytes(bytes: &[u8], dropped: usize) -> Captured {
        Captured {
            text: String::from_utf8_lossy(bytes).into_owned(),
            dropped,
        }
    }

    /// The text as reports print it, with a note when the front was dropped.
    pub fn shown(&self) -> String {
        if self.dropped == 0 {
            self.text.clone()
        } else {
            format!("[… {} earlier bytes not kept]\n{}", self.dropped, self.text)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.dropped == 0
    }
}

/// The client command's side of a server-role scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOutput {
    /// The command as run (`{host}`, `{port}` filled in).
    pub command: String,
    pub exit: ClientExit,
    pub stdout: Captured,
    pub stderr: Captured,
}
