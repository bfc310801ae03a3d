//! `citydata dashboard add|list|remove`: the dashboards a publisher adds, kept in the store.
//!
//! A definition is checked twice before it is stored: its shape (the server's format, see
//! `citydata_server::dashboards`) and against the database (its datasets, resources and columns
//! exist, its filters run). Every problem is reported, each saying where, and nothing is stored.

use std::path::Path;

use anyhow::{Context, Result};
use citydata_server::dashboards;
use citydata_store::Store;
use clap::Subcommand;

/// What `citydata dashboard` does.
#[derive(Subcommand)]
pub enum DashboardCommand {
    /// Add a dashboard from a JSON definition file (replacing one of the same id). The file holds
    /// `id`, `title` and `description` (a string or a map keyed en, zh-Hant, zh-Hans) and `panels`,
    /// each of kind `live` (observed_properties, network, group_by, per_group, window_minutes) or
    /// `figures`, `chart`, `stat` (dataset, resource, value, label, unit, filter, limit). See the
    /// README's "Dashboards" section.
    Add {
        /// The definition file (JSON).
        file: std::path::PathBuf,
        /// The database file.
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: std::path::PathBuf,
    },
    /// List the dashboards: id, number of panels and title; the built-in `city` one when the
    /// database has no `city` of its own.
    List {
        /// The database file.
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: std::path::PathBuf,
    },
    /// Remove a dashboard that was added (the built-in `city` dashboard comes back when a `city`
    /// added in its place is removed).
    Remove {
        /// The dashboard's id.
        id: String,
        /// The database file.
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: std::path::PathBuf,
    },
}

fn open(db: &Path) -> Result<Store> {
    Store::open(db).with_context(|| format!("cannot open the database {}", db.display()))
}

/// Runs one `citydata dashboard` command.
pub fn run(cmd: DashboardCommand) -> Result<()> {
    match cmd {
        DashboardCommand::Add { file, db } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let invalid = |e: dashboards::DashboardError| {
                for p in &e.problems {
                    eprintln!("{}: {p}", file.display());
                }
                anyhow::anyhow!("{}: not added ({} problems)", file.display(), e.problems.len())
            };
            let d = dashboards::parse(&text).map_err(invalid)?;
            let store = open(&db)?;
            let warnings = dashboards::check(&store, &d).map_err(invalid)?;
            for w in &warnings {
                eprintln!("{}: warning: {w}", file.display());
            }
            let replaced = store.put_dashboard(&d.id, &text)?;
            println!(
                "dashboard {}: {} ({} panels); at /dashboards/{}",
                d.id,
                if replaced { "replaced" } else { "added" },
                d.panels.len(),
                d.id
            );
            Ok(())
        }
        DashboardCommand::List { db } => {
            anyhow::ensure!(db.exists(), "{}: no such database", db.display());
            let store = open(&db)?;
            let stored = store.dashboards()?;
            if !stored.iter().any(|d| d.id == "city") {
                if let Some(city) = dashboards::builtin("city") {
                    println!(
                        "city\t{} panels\t{}\t(built in)",
                        city.panels.len(),
                        city.title.best().unwrap_or("")
                    );
                }
            }
            for s in &stored {
                match dashboards::parse(&s.definition) {
                    Ok(d) => println!(
                        "{}\t{} panels\t{}\t(added {})",
                        d.id,
                        d.panels.len(),
                        d.title.best().unwrap_or(""),
                        s.modified
                    ),
                    Err(e) => println!("{}\tunreadable: {e}", s.id),
                }
            }
            Ok(())
        }
        DashboardCommand::Remove { id, db } => {
            anyhow::ensure!(db.exists(), "{}: no such database", db.display());
            let store = open(&db)?;
            anyhow::ensure!(
                store.remove_dashboard(&id)?,
                "no dashboard {id:?} was added to {}{}",
                db.display(),
                if id == "city" { " (the built-in city dashboard cannot be removed)" } else { "" }
            );
            println!("dashboard {id}: removed");
            Ok(())
        }
    }
}
