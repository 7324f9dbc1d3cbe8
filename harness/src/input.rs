//! Limits on every file authspec reads: a bounded read of regular files only, and a
//! bounded pre-scan of YAML before serde_yaml sees it.
//!
//! serde_yaml has a recursion limit and a repetition limit relative to the number of
//! events, but no budget in bytes: an anchored 500 KB scalar aliased 100,000 times
//! from a 1 MB file asks for 50 GB, and deep flow nesting costs quadratic time before
//! the recursion limit is reached. The pre-scan walks the events once (yaml-rust2's
//! parser, linear) and stops at the first budget it breaks, so a hostile file ends
//! with a clear error in milliseconds and a few MB.

use std::fmt;
use std::io::Read;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

/// The deepest nesting of sequences and mappings a YAML file may have. Scenarios
/// nest about 6 levels; serde_yaml itself stops at 128.
pub const MAX_YAML_DEPTH: usize = 64;
/// The most nodes a YAML file may describe once every alias is expanded.
pub const MAX_YAML_NODES: u64 = 200_000;
/// The most scalar octets a YAML file may describe once every alias is expanded.
pub const MAX_YAML_SCALAR_BYTES: u64 = 4 * 1024 * 1024;

/// A YAML file that breaks a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlLimitError {
    /// Nesting deeper than [`MAX_YAML_DEPTH`].
    TooDeep { line: usize, column: usize },
    /// More than [`MAX_YAML_NODES`] nodes after alias expansion.
    TooManyNodes { line: usize, column: usize },
    /// More than [`MAX_YAML_SCALAR_BYTES`] of scalars after alias expansion.
    TooLarge { line: usize, column: usize },
    /// The top level of the document is not a mapping, so this is no scenario (or
    /// expectations) file; its content is not repeated.
    NotAMapping,
    /// The pre-scan parser refused the syntax.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

impl YamlLimitError {
    /// 1-based line and column, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            YamlLimitError::TooDeep { line, column }
            | YamlLimitError::TooManyNodes { line, column }
            | YamlLimitError::TooLarge { line, column }
            | YamlLimitError::Syntax { line, column, .. } => Some((*line, *column)),
            YamlLimitError::NotAMapping => None,
        }
    }
}

impl fmt::Display for YamlLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            YamlLimitError::TooDeep { .. } => write!(
                f,
                "YAML nested deeper than {MAX_YAML_DEPTH} levels (a nesting bomb?)"
            ),
            YamlLimitError::TooManyNodes { .. } => write!(
                f,
                "YAML describes more than {MAX_YAML_NODES} nodes once aliases are expanded (an alias bomb?)"
            ),
            YamlLimitError::TooLarge { .. } => write!(
                f,
                "YAML describes more than {MAX_YAML_SCALAR_BYTES} octets of text once aliases are expanded (an alias bomb?)"
            ),
            YamlLimitError::NotAMapping => {
                f.write_str("not a scenario file: the top level is not a mapping")
            }
            YamlLimitError::Syntax { message, .. } => write!(f, "YAML syntax: {message}"),
        }
    }
}

impl std::error::Error for YamlLimitError {}

/// Cost of a subtree once expanded: nodes and scalar octets.
#[derive(Clone, Copy, Default)]
struct Cost {
    nodes: u64,
    bytes: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Checks `text` against the depth and expansion budgets, and that each document's
/// top level is a mapping (or empty). Linear in the size of `text`.
pub fn check_yaml(text: &str) -> Result<(), YamlLimitError> {
    let mut parser = Parser::new_from_str(text);
    // Open collections: their anchor and the expanded cost of their subtree so far.
    let mut stack: Vec<(usize, Cost)> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Cost> = std::collections::HashMap::new();
    let mut total = Cost::default();
    let mut at_document_top = false;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let (line, column) = (e.marker().line(), e.marker().col() + 1);
            // The scanner reads ahead and has a nesting limit of its own.
            if e.info().contains("recursion limit") {
                YamlLimitError::TooDeep { line, column }
            } else {
                YamlLimitError::Syntax {
                    line,
                    column,
                    message: e.info().to_owned(),
                }
            }
        })?;
        let (line, column) = (mark.line(), mark.col() + 1);
        let node = match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                at_document_top = true;
                continue;
            }
            Event::Scalar(value, _, anchor, _) => {
                if at_document_top && !value.is_empty() {
                    return Err(YamlLimitError::NotAMapping);
                }
                let cost = Cost {
                    nodes: 1,
                    bytes: value.len() as u64,
                };
                if anchor > 0 {
                    anchors.insert(anchor, cost);
                }
                Some(cost)
            }
            Event::Alias(anchor) => {
                if at_document_top {
                    return Err(YamlLimitError::NotAMapping);
                }
                Some(
                    anchors
                        .get(&anchor)
                        .copied()
                        .unwrap_or(Cost { nodes: 1, bytes: 0 }),
                )
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if at_document_top && matches!(event, Event::SequenceStart(..)) {
                    return Err(YamlLimitError::NotAMapping);
                }
                if stack.len() >= MAX_YAML_DEPTH {
                    return Err(YamlLimitError::TooDeep { line, column });
                }
                stack.push((anchor, Cost { nodes: 1, bytes: 0 }));
                total.add(Cost { nodes: 1, bytes: 0 });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, cost)) = stack.pop() {
                    if anchor > 0 {
                        anchors.insert(anchor, cost);
                    }
                    if let Some((_, parent)) = stack.last_mut() {
                        parent.add(cost);
                    }
                }
                None
            }
            _ => None,
        };
        at_document_top = false;
        if let Some(cost) = node {
            total.add(cost);
            if let Some((_, parent)) = stack.last_mut() {
                parent.add(cost);
            }
        }
        if total.nodes > MAX_YAML_NODES {
            return Err(YamlLimitError::TooManyNodes { line, column });
        }
        if total.bytes > MAX_YAML_SCALAR_BYTES {
            return Err(YamlLimitError::TooLarge { line, column });
        }
    }
}

/// The largest configuration, expectations, variables or user file the CLI reads.
pub const MAX_INPUT_FILE: usize = 16 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not a regular file (a FIFO, a device, a socket, a directory): never opened,
    /// since opening a FIFO blocks and a device may never end.
    NotRegular {
        kind: &'static str,
    },
    /// Larger than the bound; nothing beyond the bound was read.
    TooLarge {
        limit: usize,
    },
    /// Not UTF-8. The content is not shown.
    NotUtf8,
    Io(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotRegular { kind } => write!(f, "not a regular file ({kind})"),
            ReadError::TooLarge { limit } => write!(f, "larger than {limit} bytes"),
            ReadError::NotUtf8 => f.write_str("not UTF-8 text"),
            ReadError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReadError {}

/// What kind of file `meta` describes, for messages.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a regular file"
    }
}

/// A file the user named that could not be read, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: std::path::PathBuf,
    pub error: ReadError,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot read: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for Unreadable {}

/// [`read_text`] with [`MAX_INPUT_FILE`], its error naming the path.
pub fn read_named(path: &Path) -> Result<String, Unreadable> {
    read_text(path, MAX_INPUT_FILE).map_err(|error| Unreadable {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads a regular file of at most `limit` bytes as UTF-8. Follows a symbolic link
/// given by the user (an explicit path is the user's choice), but never opens what is
/// not a regular file, and never reads more than `limit + 1` bytes.
pub fn read_text(path: &Path, limit: usize) -> Result<String, ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::Io(e.to_string()))?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            kind: file_kind(&meta),
        });
    }
    if meta.len() > limit as u64 {
        return Err(ReadError::TooLarge { limit });
    }
    let file = std::fs::File::open(path).map_err(|e| ReadError::Io(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(e.to_string()))?;
    if bytes.len() > limit {
        // It grew between the check and the read (or lies about its size: /proc).
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_yaml_passes() {
        check_yaml("id: a\nsteps:\n  - send: NOOP\n  - expect: {code: 250}\n").unwrap();
        check_yaml("").unwrap();
        check_yaml("# only a comment\n").unwrap();
        check_yaml("a: &x [1, 2]\nb: *x\n").unwrap();
    }

    #[test]
    fn top_level_scalar_or_sequence_is_not_a_scenario() {
        assert_eq!(
            check_yaml("root:x:0:0:root:/root:/bin/bash\n"),
            Err(YamlLimitError::NotAMapping)
        );
        assert_eq!(
            check_yaml("just some secret text\n"),
            Err(YamlLimitError::NotAMapping)
        );
        assert_eq!(check_yaml("- a\n- b\n"), Err(YamlLimitError::NotAMapping));
    }
}
