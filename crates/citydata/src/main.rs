//! `citydata`: the command line. Each command is a thin shell over the library parts.

mod dashboard;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use citydata::publish::{publish, PublishOptions, Reporter};
use citydata_formats::{Format, Progress, ReadOptions};
use citydata_model::{DatasetMeta, Slug};
use citydata_store::Store;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// citydata: publish, find, query, map and watch a city's open data.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. On a new database it first loads the built-in Hong Kong demo datasets.
    Serve {
        /// The database file (created on first use).
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: PathBuf,
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8080, env = "CITYDATA_PORT")]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1", env = "CITYDATA_HOST")]
        host: String,
        /// Do not load the demo datasets into a new database.
        #[arg(long)]
        no_demo: bool,
        /// Take observations from an MQTT broker (mqtt://HOST:PORT): devices publish on
        /// v1.1/Datastreams({id})/Observations at QoS 1; every new observation is published there.
        #[arg(long, env = "CITYDATA_MQTT")]
        mqtt: Option<String>,
        /// Do not publish each new observation back to the MQTT broker (the SensorThings MQTT
        /// extension's announcements); the server then only takes readings from it.
        #[arg(long, requires = "mqtt")]
        no_mqtt_announce: bool,
        /// Do not run the lamppost simulator, which otherwise runs on the demo database (one
        /// holding the demo's smart-city dataset) so that the demo city is alive.
        #[arg(long)]
        no_simulate: bool,
    },
    /// Simulate the smart lampposts: PM2.5, NO2, AQHI, temperature, humidity, traffic flow and speed
    /// with diurnal cycles and rush hours, dropouts and late readings; posted to a server's
    /// SensorThings API or published to an MQTT broker. Creates its Things and Datastreams first.
    Simulate {
        /// Where readings go: http://HOST:PORT (a citydata server) or mqtt://HOST:PORT (a broker).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        target: String,
        /// The citydata server whose SensorThings API holds the Datastreams (for an MQTT target).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Readings per second over the whole fleet.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        duration: Option<f64>,
        /// How many lampposts: the first N sensing lampposts of the demo's lamppost layer (default:
        /// all of them, the ids and places of the demo's map).
        #[arg(long)]
        lampposts: Option<usize>,
        /// The seed of the readings (the lampposts are always the demo's).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Post the government's feed shapes instead (the Observatory's lamppost JSON every 10
        /// minutes, the Transport Department's detector XML every 30 s, the EPD's AQHI XML every
        /// hour) to the server's /api/v1/feeds/{kind}.
        #[arg(long)]
        feeds: bool,
    },
    /// Publish a file as a new version of a dataset: CSV, TSV, JSON, NDJSON, XLSX, XML, GeoJSON, or a
    /// Frictionless datapackage.json with all its resources. One transaction: on any error nothing
    /// changes. Identical bytes make no new version.
    Publish {
        /// The file to publish.
        file: PathBuf,
        /// The dataset's slug (lower-case letters, digits, '-' and '_').
        #[arg(long)]
        dataset: String,
        /// The database file (created on first use).
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: PathBuf,
        /// A JSON metadata file: title, description (strings or maps keyed en, zh-Hant, zh-Hans),
        /// organization, tags, license, frequency, theme, source, schema (override), resources.
        #[arg(long)]
        meta: Option<PathBuf>,
        /// The format, when not to be detected: csv, tsv, json, ndjson, geojson, xlsx, xml, datapackage.
        #[arg(long)]
        format: Option<String>,
        /// The resource name within the dataset (default: from the file name).
        #[arg(long)]
        resource: Option<String>,
        /// XLSX: the sheet to publish (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// XML: the path of the repeated record element, such as `facilities/facility`.
        #[arg(long)]
        record_path: Option<String>,
        /// Leave out malformed rows, reporting each, instead of failing.
        #[arg(long)]
        skip_bad_rows: bool,
        /// Who publishes (recorded with the version).
        #[arg(long, env = "CITYDATA_PUBLISHER")]
        publisher: Option<String>,
    },
    /// Write a synthetic layer of the Hong Kong demo as a GeoJSON FeatureCollection (WGS 84): the same
    /// generator and bytes as the demo, for benchmarks and tests. The same layer, count and seed always
    /// give the same bytes; `--count` is the number of synthetic features (lampposts add the 50 real ones).
    Generate {
        /// The layer: buildings (footprints, heights, names, addresses), parcels (land lots), hotspots
        /// (Wi-Fi.HK), lampposts (smart lampposts in four urban areas).
        #[arg(value_enum)]
        layer: citydata::demo::Layer,
        /// How many features (default: as many as the demo has).
        #[arg(long)]
        count: Option<usize>,
        /// The seed (default: the demo's).
        #[arg(long, default_value_t = citydata::demo::DEMO_SEED)]
        seed: u64,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Publish one Hong Kong day's sensor readings (00:00 to 24:00, UTC+8) as open data: for each
    /// sensor network (a Thing's `properties.network`, else "sensors") with readings that day, a CSV
    /// of every observation becomes a new version of dataset `{network}-readings`, resource
    /// `readings`. A day already published with the same readings makes no new version. `serve` does
    /// this by itself just after each midnight, and at start for the finished days of the last week
    /// after the newest day published.
    PublishReadings {
        /// The database file.
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: PathBuf,
        /// The day, YYYY-MM-DD, one that has ended (default: yesterday in Hong Kong).
        #[arg(long)]
        day: Option<String>,
    },
    /// Add, list and remove dashboards (JSON definitions served at /dashboards/{id}).
    Dashboard {
        #[command(subcommand)]
        command: dashboard::DashboardCommand,
    },
    /// Check a database: file integrity, and that every current version has its complete table.
    /// Exits non-zero when it finds a problem.
    Check {
        /// The database file.
        #[arg(long, default_value = "citydata.db", env = "CITYDATA_DB")]
        db: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,citydata=info,citydata_sensors=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Check { db } => {
            anyhow::ensure!(db.exists(), "{}: no such database", db.display());
            let store =
                Store::open(&db).with_context(|| format!("cannot open the database {}", db.display()))?;
            let problems = store.check()?;
            for p in &problems {
                eprintln!("problem: {p}");
            }
            anyhow::ensure!(problems.is_empty(), "{}: {} problems found", db.display(), problems.len());
            println!("{}: ok", db.display());
            Ok(())
        }
        Command::Generate { layer, count, seed, out } => {
            let city = citydata::demo::City::hong_kong()?;
            let text = citydata::demo::generate(&city, layer, count.unwrap_or(layer.demo_count()), seed)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
                }
                // A reader that stops early (`| head`) is not an error.
                None => match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        Err(e).context("cannot write to standard output")
                    }
                    _ => Ok(()),
                },
            }
        }
        Command::Dashboard { command } => dashboard::run(command),
        Command::PublishReadings { db, day } => publish_readings(&db, day.as_deref()),
        Command::Serve { db, port, host, no_demo, mqtt, no_mqtt_announce, no_simulate } => {
            serve(&db, &host, port, no_demo, mqtt.as_deref(), !no_mqtt_announce, !no_simulate)
        }
        Command::Simulate { target, api, rate, duration, lampposts, seed, feeds } => {
            simulate(&target, &api, rate, duration, lampposts, seed, feeds)
        }
        Command::Publish {
            file,
            dataset,
            db,
            meta,
            format,
            resource,
            sheet,
            record_path,
            skip_bad_rows,
            publisher,
        } => {
            let slug = Slug::parse(&dataset)?;
            let meta = meta
                .map(|p| -> Result<DatasetMeta> {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
                    serde_json::from_str(&text).with_context(|| format!("{}: invalid metadata", p.display()))
                })
                .transpose()?;
            let format = format.as_deref().map(Format::parse).transpose()?;
            let opts = PublishOptions {
                format,
                read: ReadOptions { skip_bad_rows, sheet, record_path, ..ReadOptions::default() },
                resource,
                publisher: publisher
                    .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "cli".to_owned())),
                meta,
            };
            let store =
                Store::open(&db).with_context(|| format!("cannot open the database {}", db.display()))?;
            let outcomes = publish(&store, &file, &slug, &opts, &Bar::default())?;
            for o in outcomes {
                // An unchanged version's skipped rows were listed when it was published.
                for s in o.skipped.iter().filter(|_| o.version.is_some()) {
                    eprintln!("skipped {}: {}", s.loc, s.reason);
                }
                let what = match o.version {
                    Some(v) => format!("version {v}"),
                    None => "unchanged (identical bytes to the current version)".to_owned(),
                };
                println!(
                    "{dataset}/{name}: {what}: {rows} rows, {cols} columns ({fmt}, {enc}), {bytes} bytes, sha256 {sha}{skipped}",
                    name = o.name,
                    rows = o.rows,
                    cols = o.schema.fields.len(),
                    fmt = o.format.name(),
                    enc = o.encoding,
                    bytes = o.bytes,
                    sha = o.sha256,
                    skipped = if o.skipped.is_empty() { String::new() } else { format!(", {} rows skipped", o.skipped.len()) },
                );
                if let Some(sp) = &o.spatial {
                    println!("  location: {sp}");
                }
                for n in &o.notes {
                    println!("  note: {n}");
                }
                // Inference never fails a load: a column with a stray value becomes text, and says why.
                for f in &o.schema.fields {
                    if let Some(note) = f.description.as_deref().filter(|d| d.starts_with("kept as text")) {
                        println!("  column {:?}: {note}", f.name);
                    }
                }
            }
            Ok(())
        }
    }
}

fn serve(
    db: &std::path::Path,
    host: &str,
    port: u16,
    no_demo: bool,
    mqtt: Option<&str>,
    announce: bool,
    simulate: bool,
) -> Result<()> {
    let broker = mqtt.map(citydata_sensors::mqtt::BrokerUrl::parse).transpose()?;
    let store = Store::open(db).with_context(|| format!("cannot open the database {}", db.display()))?;
    if !no_demo && store.is_empty()? {
        let t = Instant::now();
        let loaded = citydata::demo::load(&store)?;
        tracing::info!("loaded {} demo datasets in {:.1?}", loaded.len(), t.elapsed());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        let addr = listener.local_addr()?;
        let shown =
            if addr.ip().is_unspecified() { format!("localhost:{}", addr.port()) } else { addr.to_string() };
        println!("citydata serving {} at http://{shown}/", db.display());
        let ingest =
            citydata_sensors::GroupCommit::start(&store).context("cannot start the sensor ingest")?;
        let ingest: Arc<dyn citydata_sensors::Ingest> = Arc::new(ingest);
        let store = Arc::new(store);
        let bridge = broker.map(|b| {
            println!("citydata taking observations from the MQTT broker at {}:{}", b.host, b.port);
            citydata_sensors::mqtt::start(
                &b,
                ingest.clone(),
                citydata_sensors::mqtt::BridgeOptions { announce, ..Default::default() },
            )
        });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The demo database is the one holding the demo's smart-city dataset.
        let demo = store.dataset_slugs()?.iter().any(|s| s.as_str() == "smart-city");
        let sim = (simulate && demo).then(|| {
            let fleet: citydata_sensors::simulate::MakeFleet = Box::new(|| {
                let city = citydata::demo::City::hong_kong().map_err(|e| e.to_string())?;
                citydata::lampposts::fleet(&city, None).map_err(|e| e.to_string())
            });
            citydata_sensors::simulate::start_in_process(store.clone(), ingest.clone(), fleet, stop.clone())
        });
        // Each day's readings become open data just after the day ends (and at start, the days missed).
        let daily = citydata::readings::spawn_daily(store.clone(), stop.clone())
            .map_err(|e| tracing::warn!("cannot start the daily publishing of readings: {e}"))
            .ok();
        let state = citydata_server::AppState { store, ingest };
        citydata_server::serve(listener, state, shutdown_signal()).await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = bridge {
            b.stop();
        }
        if let Some(sim) = sim {
            let _ = tokio::task::spawn_blocking(move || sim.join()).await;
        }
        if let Some(daily) = daily {
            let _ = tokio::task::spawn_blocking(move || daily.join()).await;
        }
        println!("citydata stopped");
        Ok(())
    })
}

fn publish_readings(db: &std::path::Path, day: Option<&str>) -> Result<()> {
    use citydata::readings;
    let day = match day {
        Some(d) => time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
            .with_context(|| format!("--day {d:?} is not a date (YYYY-MM-DD)"))?,
        None => readings::hong_kong_day(time::OffsetDateTime::now_utc())
            .previous_day()
            .context("there is no day before today")?,
    };
    // A day still going on would publish part of its readings as if it were the whole day.
    let today = readings::hong_kong_day(time::OffsetDateTime::now_utc());
    anyhow::ensure!(day < today, "{day} has not ended yet in Hong Kong (today is {today})");
    anyhow::ensure!(db.exists(), "{}: no such database", db.display());
    let store = Store::open(db).with_context(|| format!("cannot open the database {}", db.display()))?;
    let outcomes = readings::publish_day(&store, day)?;
    if outcomes.is_empty() {
        println!("no readings on {day} (Hong Kong time): nothing published");
    }
    for o in outcomes {
        let what = if o.new {
            format!("version {}", o.version)
        } else {
            format!("unchanged (version {} already holds these readings)", o.version)
        };
        println!("{}/{}: {what}: {} readings of {day}", o.dataset, readings::RESOURCE, o.rows);
    }
    Ok(())
}

fn simulate(
    target: &str,
    api: &str,
    rate: f64,
    duration: Option<f64>,
    lampposts: Option<usize>,
    seed: u64,
    feeds: bool,
) -> Result<()> {
    let opts = citydata_sensors::simulate::RunOptions {
        rate,
        duration: duration.map(std::time::Duration::from_secs_f64),
        seed,
        ..Default::default()
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(shutdown_signal());
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let city = citydata::demo::City::hong_kong()?;
    let fleet = citydata::lampposts::fleet(&city, lampposts)?;
    let said = citydata_sensors::simulate::run_cli(target, api, &fleet, feeds, &opts, &stop)?;
    println!("{said}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// The terminal progress bar: appears when a pass takes more than half a second, shows bytes and
/// rows per second, and draws nothing when standard error is not a terminal.
#[derive(Default)]
struct Bar {
    current: Mutex<Option<(Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)>>,
}

impl Reporter for Bar {
    fn pass(&self, label: &str, progress: Arc<Progress>, total: u64) {
        self.end();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let label = label.to_owned();
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label);
            let mut shown = false;
            while !stop2.load(Ordering::Relaxed) {
                // Parked, not asleep, so that `end` wakes it at once: a sleep made every publish
                // wait out the tick, up to 100 ms a pass, however small the file.
                std::thread::park_timeout(Duration::from_millis(100));
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let elapsed = start.elapsed();
                if !shown && elapsed > Duration::from_millis(500) {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    shown = true;
                }
                let rows = progress.records.load(Ordering::Relaxed);
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                if rows > 0 {
                    #[allow(clippy::cast_precision_loss)]
                    let rate = rows as f64 / elapsed.as_secs_f64().max(0.001);
                    bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
                }
            }
            bar.finish_and_clear();
        });
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some((stop, handle));
        }
    }

    fn end(&self) {
        let taken = self.current.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, handle)) = taken {
            stop.store(true, Ordering::Relaxed);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}
