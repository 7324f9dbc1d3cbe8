//! Lists every scenario YAML under `scenarios/` into `OUT_DIR/bundled.rs`, so the
//! binary carries the library (`authspec::scenario::BUNDLED`). `harness/scenarios` is a
//! symlink to the repository's `scenarios/`, so that `cargo package` puts the library
//! inside the crate and a crate built from crates.io carries it too.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>, top: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out, false);
        } else if top && path.file_name().is_some_and(|n| n == "coverage.yaml") {
            // The coverage catalog (`authspec::coverage`), not a scenario.
            continue;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("scenarios");
    println!("cargo:rerun-if-changed=scenarios");
    let mut files = Vec::new();
    collect(&root, &mut files, true);
    files.sort();
    // An empty library would build a binary that runs nothing and says all passed.
    if files.is_empty() {
        panic!("no scenario files under {}", root.display());
    }
    let mut code = String::from(
        "/// Every bundled scenario file: (path relative to the repository, text).\n\
         pub static BUNDLED: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let name: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let name = format!("scenarios/{}", name.join("/"));
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("bundled.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
