//! Every relative link in the repository's Markdown files leads somewhere: a file or
//! directory that exists (anchors are not checked). Documentation that points at a moved or
//! deleted file fails here, in `cargo test`, not in a reader's browser.

#![allow(clippy::expect_used, clippy::panic)] // a test

use std::path::{Path, PathBuf};

/// Directories never scanned: build output and third-party or generated trees.
const SKIP: &[&str] = &["target", ".git", "node_modules", "corpus", "artifacts"];

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !SKIP.contains(&name.as_ref()) {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of inline links and images, `[text](target)` / `![alt](target "title")`,
/// outside code spans and fenced blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans: a `](` inside backticks is code, not a link.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

fn is_relative(target: &str) -> bool {
    !(target.is_empty()
        || target.starts_with('#')
        || target.contains("://")
        || target.starts_with("mailto:"))
}

#[test]
fn every_relative_markdown_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a Markdown file");
        let dir = file.parent().expect("a file's directory");
        for target in link_targets(&text).into_iter().filter(|t| is_relative(t)) {
            let path = target.split('#').next().unwrap_or("");
            checked += 1;
            if !dir.join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(checked > 0, "no relative link found: the scan is broken");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_scan_sees_links_and_skips_code() {
    let text = "see [a](docs/a.md#x) and ![b](img.png \"t\")\n`[c](not/a/link)`\n```\n[d](code)\n```\n[e](https://x.org)";
    assert_eq!(
        link_targets(text),
        ["docs/a.md#x", "img.png", "https://x.org"]
    );
}

/// The "Which crate do I add?" table is in every published crate's README (each crate's
/// docs.rs front page): the copies must not drift apart.
#[test]
fn every_crate_readme_has_the_same_crate_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let section = |crate_name: &str| {
        let text = std::fs::read_to_string(root.join(crate_name).join("README.md"))
            .unwrap_or_else(|e| panic!("{crate_name}/README.md: {e}"));
        let start = text
            .find("## Which crate do I add?")
            .unwrap_or_else(|| panic!("{crate_name}/README.md has no crate table"));
        let rest = &text[start..];
        let end = rest.find("\nLicensed under").unwrap_or(rest.len());
        rest[..end].to_owned()
    };
    let crates = [
        "fcgi-core",
        "fcgi-driver",
        "fcgi-tokio",
        "fcgi-smol",
        "fcgi-http",
        "fcgi-echo",
        "fcgi-cli",
    ];
    let first = section(crates[0]);
    for name in &crates[1..] {
        assert_eq!(
            section(name),
            first,
            "{name}'s table differs from fcgi-core's"
        );
    }
}
