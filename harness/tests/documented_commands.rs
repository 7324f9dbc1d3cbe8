//! Every `authspec …` command line in README.md, scenarios/README.md and docs/ is
//! parsed by the real command line: a documented flag that does not exist fails here.

use clap::Parser as _;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn markdown_files() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md"), root().join("scenarios/README.md")];
    let mut stack = vec![root().join("docs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out
}

/// Command lines: from code blocks (with `\` continuations joined) and from inline
/// code spans (`true`: may leave out required arguments, as prose does), each starting
/// at the word `authspec` followed by a subcommand.
fn command_lines(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            pending.clear();
            continue;
        }
        if in_block {
            let l = line.trim();
            if let Some(cont) = l.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            pending.push_str(l);
            let full = std::mem::take(&mut pending);
            if let Some(i) = find_command(&full) {
                out.push((full[i..].to_string(), false));
            }
        } else {
            for (n, span) in line.split('`').enumerate() {
                if n % 2 == 1 && span.starts_with("authspec ") {
                    out.push((span.to_string(), true));
                }
            }
        }
    }
    out
}

/// Where `authspec` starts a command (after `$`, env assignments or `cargo run -- `).
fn find_command(line: &str) -> Option<usize> {
    if let Some(rest) = line.find("cargo run --release -- ") {
        let _ = rest;
        return None;
    }
    let words: Vec<(usize, &str)> = line
        .split(' ')
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .collect();
    for (start, w) in words {
        if w == "authspec" {
            return Some(start);
        }
        let env_assignment = w.contains('=') && !w.starts_with('-');
        if !(w.is_empty() || w == "$" || env_assignment) {
            return None;
        }
    }
    None
}

/// Shell words: quotes removed, a `#` comment and what follows a pipe or `&&` dropped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                has = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(c),
                    }
                }
            }
            '#' if !has => break,
            '|' | ';' | '&' | '>' | '<' if !has => break,
            ' ' | '\t' => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            _ => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        words.push(cur);
    }
    words
}

#[test]
fn every_documented_command_line_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, inline) in command_lines(&text) {
            let words = shell_words(&line);
            let subcommands: Vec<String> = authspec::cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            // Output shown in a code block (`authspec   command::parse ...`) is not a
            // command line.
            if !words
                .get(1)
                .is_some_and(|w| w.starts_with('-') || subcommands.contains(w))
            {
                continue;
            }
            // Prose like `authspec run` with a placeholder such as `SHELL` parses too;
            // a trailing ellipsis marks an abbreviation.
            if words.iter().any(|w| w.contains('…') || w == "...") {
                continue;
            }
            checked += 1;
            if let Err(e) = authspec::cli::Cli::try_parse_from(&words) {
                if inline && e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                    continue;
                }
                failures.push(format!(
                    "{}: `{line}`:\n{}",
                    file.strip_prefix(root()).unwrap_or(&file).display(),
                    e.render()
                ));
            }
        }
    }
    assert!(checked >= 10, "only {checked} command lines found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The cheap ones also run: they need no network and no target.
#[test]
fn cheap_documented_commands_run() {
    let bin = env!("CARGO_BIN_EXE_authspec");
    for args in [
        &["completions", "bash"][..],
        &["man"][..],
        &["schema"][..],
        &["coverage"][..],
        &["serve", "--print-config"][..],
    ] {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "authspec {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
