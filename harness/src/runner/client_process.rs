//! A client command under test (`--client-command`): started through `sh -c`, its
//! standard output and error read into bounded buffers, its exit status kept, so a
//! report shows what the client said and a scenario may judge how it ended.

use crate::report::{Captured, ClientExit, ClientOutput};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The last [`Captured::LIMIT`] bytes of a stream and how many were dropped before them.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > Captured::LIMIT {
            let extra = self.bytes.len() - Captured::LIMIT;
            self.bytes.drain(..extra);
            self.dropped = self.dropped.saturating_add(extra);
        }
    }
}

fn reader<R>(mut stream: R, tail: Arc<Mutex<Tail>>) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut t) = tail.lock() {
                        t.push(&buf[..n]);
                    }
                }
            }
        }
    })
}

/// A running client command.
#[derive(Debug)]
pub struct ClientProcess {
    command: String,
    child: Child,
    exit: Option<ClientExit>,
    stdout: Arc<Mutex<Tail>>,
    stderr: Arc<Mutex<Tail>>,
    readers: Vec<JoinHandle<()>>,
}

fn exit_of(status: ExitStatus) -> ClientExit {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return ClientExit::Signal(sig);
        }
    }
    ClientExit::Status(status.code().unwrap_or(-1))
}

impl ClientProcess {
    /// Starts `command` through `sh -c` with `env` set, stdin from /dev/null.
    pub fn spawn(command: &str, env: &[(&str, &str)]) -> Result<ClientProcess, ClientOutput> {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().map_err(|e| ClientOutput {
            command: command.to_owned(),
            exit: ClientExit::NotStarted(format!("sh -c: {e}")),
            stdout: Captured::default(),
            stderr: Captured::default(),
        })?;
        let stdout = Arc::new(Mutex::new(Tail::default()));
        let stderr = Arc::new(Mutex::new(Tail::default()));
        let mut readers = Vec::new();
        if let Some(s) = child.stdout.take() {
            readers.push(reader(s, Arc::clone(&stdout)));
        }
        if let Some(s) = child.stderr.take() {
            readers.push(reader(s, Arc::clone(&stderr)));
        }
        Ok(ClientProcess {
            command: command.to_owned(),
            child,
            exit: None,
            stdout,
            stderr,
            readers,
        })
    }

    /// Waits for the command to end by itself; the exit, once known, is kept.
    pub async fn wait(&mut self) -> ClientExit {
        if let Some(e) = &self.exit {
            return e.clone();
        }
        let e = match self.child.wait().await {
            Ok(s) => exit_of(s),
            Err(e) => ClientExit::NotStarted(format!("waiting for it: {e}")),
        };
        self.exit = Some(e.clone());
        e
    }

    /// Waits at most `limit` for the command to end by itself.
    pub async fn wait_for(&mut self, limit: Duration) -> Option<ClientExit> {
        if let Some(e) = &self.exit {
            return Some(e.clone());
        }
        tokio::time::timeout(limit, self.wait()).await.ok()
    }

    /// Gives the command `grace` to end by itself, then stops it; returns what it said.
    pub async fn finish(mut self, grace: Duration) -> ClientOutput {
        let exit = match self.wait_for(grace).await {
            Some(e) => e,
            None => {
                let _ = self.child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                ClientExit::StoppedByHarness
            }
        };
        // A grandchild may still hold the pipes open: read what is there, briefly.
        for r in self.readers.drain(..) {
            let abort = r.abort_handle();
            if tokio::time::timeout(Duration::from_millis(500), r)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let take = |t: &Arc<Mutex<Tail>>| match t.lock() {
            Ok(t) => Captured::from_bytes(&t.bytes, t.dropped),
            Err(_) => Captured::default(),
        };
        ClientOutput {
            command: self.command.clone(),
            exit,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        for _ in 0..10 {
            t.push(&[b'x'; 1000]);
        }
        t.push(b"the end");
        assert_eq!(t.bytes.len(), Captured::LIMIT);
        assert!(t.bytes.ends_with(b"the end"));
        assert_eq!(t.dropped, 10_007 - Captured::LIMIT);
    }
}
