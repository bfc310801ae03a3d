//! Rules of the code base, enforced: layering by Cargo dependencies, and a module doc on every file.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deps(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                out.push(name.trim().trim_end_matches(".workspace").to_owned());
            }
        }
    }
    out
}

/// The layers of ARCHITECTURE.md: model does no I/O, only the store speaks SQL, formats know no
/// database and no HTTP, the server knows the store's interface but not the database.
#[test]
fn crates_depend_only_on_their_layers() {
    let forbidden: &[(&str, &[&str])] = &[
        (
            "citydata-model",
            &[
                "rusqlite",
                "tokio",
                "axum",
                "csv",
                "citydata-geo",
                "citydata-formats",
                "citydata-store",
                "citydata-server",
            ],
        ),
        ("citydata-formats", &["rusqlite", "tokio", "axum", "citydata-store", "citydata-server"]),
        ("citydata-store", &["tokio", "axum", "citydata-formats", "citydata-server"]),
        (
            "citydata-geo",
            &[
                "rusqlite",
                "tokio",
                "axum",
                "citydata-model",
                "citydata-formats",
                "citydata-store",
                "citydata-server",
            ],
        ),
        ("citydata-server", &["rusqlite", "citydata-formats"]),
        ("citydata", &["rusqlite"]),
    ];
    for (krate, banned) in forbidden {
        let d = deps(krate);
        for b in *banned {
            assert!(!d.iter().any(|x| x == b), "{krate} must not depend on {b}");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file says what it is for in a `//!` doc at its top.
#[test]
fn every_file_has_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//!"), "{} has no //! module doc at its top", f.display());
    }
}

/// `unsafe` is denied in the whole workspace (Cargo.toml); one module may allow it, the store's bulk
/// insert, which binds texts to SQLite without copies and says beside it why that is sound.
#[test]
fn unsafe_is_allowed_in_one_module_only() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let allowed: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains(&["allow(", "unsafe_code)"].concat())
        })
        .map(|f| f.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/"))
        .collect();
    assert_eq!(allowed, ["crates/citydata-store/src/sqlite/bulk.rs"]);
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("unsafe_code = \"deny\""), "the workspace denies unsafe code");
}
