//! Builds the web UI (`web/`, TypeScript with Vite) and embeds its files in the server.
//!
//! The UI is built with the machine's Node.js into `OUT_DIR/web` (never into the source tree), and
//! a table of the built files, each through `include_bytes!`, is written to `OUT_DIR/web_assets.rs`.
//! `npm ci` runs first when `web/node_modules` is missing or older than `web/package-lock.json`.
//!
//! `CITYDATA_WEB_DIST=DIR` embeds an already built directory instead (a packager's build without
//! Node.js). Without Node.js and without that variable, the server is built with a one-page notice
//! in place of the UI, and cargo prints a warning; a failing UI build (a type error, say) fails the
//! build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = manifest.join("../../web");
    for part in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(part).display());
    }
    println!("cargo:rerun-if-env-changed=CITYDATA_WEB_DIST");

    let dist = match std::env::var_os("CITYDATA_WEB_DIST") {
        Some(dir) => PathBuf::from(dir),
        None => build_ui(&web, &out.join("web")),
    };
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for (rel, abs) in &files {
        writeln!(table, "    ({rel:?}, include_bytes!({abs:?})),").expect("writing to a String");
    }
    table.push(']');
    std::fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

/// Builds the UI into `out`; the notice page when Node.js is missing.
fn build_ui(web: &Path, out: &Path) -> PathBuf {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if Command::new(npm).arg("--version").output().is_err() {
        println!(
            "cargo:warning=npm not found: the web UI is not built (install Node.js 20+ and build again, \
             or set CITYDATA_WEB_DIST)"
        );
        let notice = out.join("notice");
        std::fs::create_dir_all(&notice).expect("OUT_DIR is writable");
        std::fs::write(
            notice.join("index.html"),
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>citydata</title>\
             <!--citydata:head--></head><body><main id=\"main\"><h1>citydata</h1><p>This server was built \
             without its web UI (Node.js was missing). The APIs work: <a href=\"/api/v1/datasets\">\
             /api/v1/datasets</a>, <a href=\"/api/openapi.json\">OpenAPI</a>.</p><!--citydata:body-->\
             </main></body></html>\n",
        )
        .expect("OUT_DIR is writable");
        return notice;
    }
    let modules = web.join("node_modules/.package-lock.json");
    let stale = match (modified(&modules), modified(&web.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        run(Command::new(npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(web), "npm ci");
    }
    let dist = out.join("dist");
    run(
        Command::new(npm).args(["run", "build"]).env("CITYDATA_WEB_OUT", &dist).current_dir(web),
        "npm run build (the web UI)",
    );
    dist
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn run(cmd: &mut Command, what: &str) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every file under `dir`, as (path from `root` with a leading `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
            let abs = path.canonicalize().expect("an existing file").to_string_lossy().into_owned();
            files.push((format!("/{rel}"), abs));
        }
    }
}
