//! The built-in Hong Kong demo: what `citydata serve` loads into a new database, through the normal
//! publishing pipeline, in seconds and with no download.
//!
//! - [`figures`]: the innovation and technology figures (CSV).
//! - [`real`]: the 18 districts and 22 real government facility datasets (GeoJSON, embedded byte for
//!   byte, with the attribution the data require).
//! - [`city`] and [`synth`]: synthetic buildings, land parcels, Wi-Fi.HK hotspots and smart lampposts,
//!   generated from a fixed seed inside the real districts, near the real facilities. Their metadata
//!   say they are synthetic (title, description, the tag `synthetic`).
//!
//! `citydata generate` writes the same generators' GeoJSON, so the demo's layers can be reproduced
//! byte for byte (`citydata generate buildings --count 40000` is the demo's `buildings` file).

pub mod city;
mod figures;
pub mod real;
pub mod synth;

use std::path::Path;

use citydata_model::{DatasetMeta, Slug};
use citydata_store::Store;

pub use city::{City, Rng};
pub use synth::{generate, smart_lampposts, Lamppost, Layer, DEMO_SEED, DEVICE_KEYS, MAX_COUNT};

use crate::publish::{publish, PublishError, PublishOptions, Quiet};

/// Why the demo could not be generated or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An embedded file is not what the demo expects (a bug: the files ship with the binary).
    #[error("demo file {file}: {what}")]
    Data {
        /// The file.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// More features asked for than a layer makes.
    #[error("{layer}: {count} features asked for, at most {max}")]
    TooMany {
        /// The layer.
        layer: &'static str,
        /// The count asked for.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// No place on land was found for a feature (not expected with the real districts).
    #[error("{layer}: found no place on land for a feature")]
    NoPlace {
        /// The layer.
        layer: &'static str,
    },
    /// A temporary file could not be written.
    #[error("cannot write the demo file {file}: {error}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        error: std::io::Error,
    },
    /// A dataset failed to publish.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The organisation of the synthetic layers.
const SYNTHETIC_ORG: &str = "citydata-demo";

/// A synthetic dataset of the demo.
struct Synthetic {
    layer: Layer,
    slug: &'static str,
    title: [&'static str; 2],
    what: [&'static str; 2],
    theme: &'static str,
    tags: &'static [&'static str],
}

const SYNTHETIC: &[Synthetic] = &[
    Synthetic {
        layer: Layer::Buildings,
        slug: "buildings",
        title: ["Buildings (synthetic)", "建築物（合成數據）"],
        what: [
            "Building footprints (polygons) with names, addresses on real streets and district in English and \
             Chinese, use, height in metres, floors, year built and footprint area: towers where the city is \
             dense, tenement blocks, low-rise buildings, and three-storey village houses in the New Territories.",
            "建築物輪廓（多邊形），附中英文名稱、真實街道上的地址及所屬地區、用途、高度（米）、樓層數、落成年份及佔地面積：\
             市區密集處為高樓，另有唐樓、低層建築及新界三層村屋。",
        ],
        theme: "Framework: Building",
        tags: &["synthetic", "building", "framework", "height", "address"],
    },
    Synthetic {
        layer: Layer::Parcels,
        slug: "land-parcels",
        title: ["Land parcels (synthetic)", "地段（合成數據）"],
        what: [
            "Land parcels (polygons) with lot numbers in Hong Kong's styles (IL, KIL, NKIL, town lots, and \
             Demarcation District lots such as \"DD 123 Lot 456\" in the countryside), area in square metres, \
             land use and district in English and Chinese.",
            "地段（多邊形），附香港式地段編號（內地段、九龍內地段、新九龍內地段、市地段，以及鄉郊的丈量約份地段，如「DD 123 Lot 456」）、\
             面積（平方米）、土地用途及所屬地區（中英文）。",
        ],
        theme: "Framework: Land Parcel",
        tags: &["synthetic", "land parcel", "lot", "framework", "land use"],
    },
    Synthetic {
        layer: Layer::Hotspots,
        slug: "wifi-hk-hotspots",
        title: ["Wi-Fi.HK hotspots (synthetic)", "Wi-Fi.HK 熱點（合成數據）"],
        what: [
            "Free public Wi-Fi.HK hotspots (points) with venue name and type, SSID (\"Wi-Fi.HK via ...\"), \
             provider, address and district in English and Chinese.",
            "免費公共 Wi-Fi.HK 熱點（點），附場地名稱及類別、SSID（「Wi-Fi.HK via ...」）、服務供應商、地址及所屬地區（中英文）。",
        ],
        theme: "Smart City",
        tags: &["synthetic", "Wi-Fi.HK", "wifi", "smart city", "hotspot"],
    },
    Synthetic {
        layer: Layer::Lampposts,
        slug: "smart-lampposts",
        title: ["Smart lampposts (synthetic, with the real ones)", "智慧燈柱（合成數據，含真實燈柱）"],
        what: [
            "Multi-functional smart lampposts (points) in four urban areas (Kowloon East, Central, Tsim Sha Tsui, \
             Causeway Bay) with the devices each carries (traffic, meteorological and air quality sensors, \
             positioning aids, Wi-Fi). The real lampposts of the government's \"Summary of Functions on Smart \
             Lampposts\" are included with their real ids and devices and `real` true; the others, placed along \
             streets, are synthetic.",
            "四個市區（九龍東、中環、尖沙咀、銅鑼灣）的多功能智慧燈柱（點），附各燈柱的裝置（交通、氣象及空氣質素感應器、定位服務、Wi-Fi）。\
             政府「多功能智慧燈柱的功能總覽」中的真實燈柱以其真實編號及裝置收錄（real 為 true），其餘沿街道放置者為合成數據。",
        ],
        theme: "Smart City",
        tags: &["synthetic", "smart lamppost", "smart city", "sensors", "air quality", "traffic"],
    },
];

fn synthetic_meta(s: &Synthetic, count: usize) -> DatasetMeta {
    let en = format!(
        "SYNTHETIC DATA, not real: {count} features generated by citydata from a fixed seed ({DEMO_SEED}) for \
         the demo. {} Placed inside the real district boundaries ({}) and near the real government facilities \
         of DATA.GOV.HK, so that they cluster where the city is dense.",
        s.what[0],
        real::DISTRICTS_ATTRIBUTION
    );
    let zh = format!(
        "合成數據，並非真實資料：citydata 以固定種子（{DEMO_SEED}）為示範生成的 {count} 項。{}位置位於真實的地區界線內\
         （資料來源：香港特別行政區政府統計處），並靠近資料一線通（DATA.GOV.HK）的真實政府設施，因此集中於市區密集之處。",
        s.what[1]
    );
    let mut meta = real::meta(
        real::trilingual(s.title[0], s.title[1]),
        real::trilingual(&en, &zh),
        SYNTHETIC_ORG,
        s.theme,
        s.tags,
        "Synthetic: generated by citydata; placed with the real districts (Census and Statistics Department) \
         and facilities (the Government of the Hong Kong SAR, via DATA.GOV.HK)",
    );
    meta.organization_title = real::trilingual("citydata demo (synthetic data)", "citydata 示範（合成數據）");
    meta.license = Some("CC0-1.0".to_owned());
    meta.frequency = Some("never".to_owned());
    meta
}

fn publish_bytes(
    store: &Store,
    dir: &Path,
    slug: &str,
    file: &str,
    bytes: &[u8],
    meta: DatasetMeta,
) -> Result<(), DemoError> {
    let path = dir.join(file);
    std::fs::write(&path, bytes).map_err(|error| DemoError::Io { file: file.to_owned(), error })?;
    let slug = Slug::parse(slug).map_err(|e| PublishError::Invalid(e.to_string()))?;
    let resource = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("data");
    let opts = PublishOptions {
        resource: Some(Slug::from_text(resource, "data").to_string()),
        publisher: "citydata demo".to_owned(),
        meta: Some(meta),
        ..PublishOptions::default()
    };
    publish(store, &path, &slug, &opts, &Quiet)?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Publishes every demo dataset into `store`; returns their slugs.
///
/// # Errors
/// When a demo dataset fails to generate or publish (a bug: the demo data ship with the binary), or a
/// temporary file cannot be written.
pub fn load(store: &Store) -> Result<Vec<String>, DemoError> {
    let dir = tempfile::tempdir()
        .map_err(|error| DemoError::Io { file: "a temporary folder".to_owned(), error })?;
    std::thread::scope(|scope| {
        // The synthetic layers are generated on another thread while the real files publish.
        let generated = scope.spawn(|| -> Result<Vec<String>, DemoError> {
            let city = City::hong_kong()?;
            SYNTHETIC.iter().map(|s| generate(&city, s.layer, s.layer.demo_count(), DEMO_SEED)).collect()
        });
        let mut published = figures::load(store)?;
        let districts = real::DISTRICTS.as_bytes();
        publish_bytes(
            store,
            dir.path(),
            "districts",
            "districts.geojson",
            districts,
            real::districts_meta(),
        )?;
        published.push("districts".to_owned());
        for r in real::FACILITIES {
            publish_bytes(store, dir.path(), r.slug, r.file, r.bytes, real::facility_meta(r))?;
            published.push(r.slug.to_owned());
        }
        let texts = generated.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        for (s, text) in SYNTHETIC.iter().zip(texts) {
            let real = if s.layer == Layer::Lampposts { real_lamppost_count() } else { 0 };
            let file = format!("{}.geojson", s.layer.name());
            let meta = synthetic_meta(s, s.layer.demo_count() + real);
            publish_bytes(store, dir.path(), s.slug, &file, text.as_bytes(), meta)?;
            published.push(s.slug.to_owned());
        }
        Ok(published)
    })
}

fn real_lamppost_count() -> usize {
    real::FACILITIES.iter().find(|r| r.slug == "smart-lamppost-functions").map_or(0, |r| r.features)
}
