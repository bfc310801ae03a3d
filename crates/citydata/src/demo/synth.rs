//! The demo's synthetic layers: buildings, land parcels, Wi-Fi.HK hotspots and smart lampposts,
//! generated from a seed as GeoJSON FeatureCollections.
//!
//! Placement follows the real city: a feature is drawn near a random real facility (the facilities
//! stand where people are, so this clusters the layer where the city is dense), and kept only when
//! every vertex lies inside one of the real district polygons (not in the sea). Heights, names, lot
//! numbers and addresses follow the place: towers where facilities are dense, village houses in the
//! quiet parts of the New Territories, addresses on real streets of the same district.
//!
//! **Invariants:** the same layer, count and seed give the same bytes (the PRNG is ours, the inputs are
//! embedded, iteration orders are fixed); polygons are closed, counter-clockwise exterior rings (RFC
//! 7946); coordinates are written with 6 decimals and tested for containment after rounding.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::city::{round6, City, Rng, Street, M_PER_DEG_LAT, M_PER_DEG_LON};
use super::DemoError;

/// A synthetic layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layer {
    /// Building footprints with names, heights, floors, year built and addresses.
    Buildings,
    /// Land parcels with lot numbers, areas and land use.
    Parcels,
    /// Wi-Fi.HK hotspots with venues, SSIDs and providers.
    Hotspots,
    /// Smart lampposts in four urban areas with their devices; the real ones are added to `count`.
    Lampposts,
}

/// The largest count a layer may be asked for (the output is built in memory).
pub const MAX_COUNT: usize = 1_000_000;

impl Layer {
    /// How many features the demo holds.
    #[must_use]
    pub fn demo_count(self) -> usize {
        match self {
            Layer::Buildings => 40_000,
            Layer::Parcels => 3_000,
            Layer::Hotspots => 45_000,
            Layer::Lampposts => 400,
        }
    }

    /// The layer's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Layer::Buildings => "buildings",
            Layer::Parcels => "parcels",
            Layer::Hotspots => "hotspots",
            Layer::Lampposts => "lampposts",
        }
    }

    /// Mixed into the seed, so that one seed gives each layer its own stream.
    fn salt(self) -> u64 {
        match self {
            Layer::Buildings => 0x6275_696c,
            Layer::Parcels => 0x7061_7263,
            Layer::Hotspots => 0x7769_6669,
            Layer::Lampposts => 0x6c61_6d70,
        }
    }
}

/// The seed of the demo's layers (and the default of `citydata generate`).
pub const DEMO_SEED: u64 = 2026;

/// Generates `count` features of `layer` from `seed` as a GeoJSON FeatureCollection.
///
/// # Errors
/// When `count` exceeds [`MAX_COUNT`], or (not expected) when no place can be found for a feature.
pub fn generate(city: &City, layer: Layer, count: usize, seed: u64) -> Result<String, DemoError> {
    if count > MAX_COUNT {
        return Err(DemoError::TooMany { layer: layer.name(), count, max: MAX_COUNT });
    }
    let mut g = Gen { city, rng: Rng::new(seed ^ layer.salt()), out: Out::new(count) };
    match layer {
        Layer::Buildings => g.buildings(count)?,
        Layer::Parcels => g.parcels(count)?,
        Layer::Hotspots => g.hotspots(count)?,
        Layer::Lampposts => g.lampposts(count)?,
    }
    Ok(g.out.finish())
}

/// The FeatureCollection being written.
struct Out {
    text: String,
    first: bool,
}

impl Out {
    fn new(count: usize) -> Self {
        let mut text = String::with_capacity(count * 600 + 64);
        text.push_str("{\"type\":\"FeatureCollection\",\"features\":[\n");
        Self { text, first: true }
    }

    fn begin(&mut self) {
        if !self.first {
            self.text.push_str(",\n");
        }
        self.first = false;
        self.text.push_str("{\"type\":\"Feature\",\"properties\":{");
    }

    fn key(&mut self, k: &str) {
        if !self.text.ends_with('{') {
            self.text.push(',');
        }
        self.text.push('"');
        self.text.push_str(k);
        self.text.push_str("\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        // Our keys and values hold no control characters; quotes and backslashes are escaped.
        self.text.push('"');
        for c in v.chars() {
            match c {
                '"' => self.text.push_str("\\\""),
                '\\' => self.text.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(self.text, "\\u{:04x}", u32::from(c));
                }
                c => self.text.push(c),
            }
        }
        self.text.push('"');
    }

    fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        let _ = write!(self.text, "{v}");
    }

    fn num(&mut self, k: &str, v: f64) {
        self.key(k);
        let _ = write!(self.text, "{v:.1}");
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.text.push_str(if v { "true" } else { "false" });
    }

    fn point(&mut self, (lon, lat): (f64, f64)) {
        let _ =
            write!(self.text, "}},\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{lon:.6},{lat:.6}]}}}}");
    }

    fn polygon(&mut self, ring: &[(f64, f64)]) {
        self.text.push_str("},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[");
        for (i, (lon, lat)) in ring.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "[{lon:.6},{lat:.6}]");
        }
        self.text.push_str("]]}}");
    }

    fn finish(mut self) -> String {
        self.text.push_str("\n]}\n");
        self.text
    }
}

struct Gen<'a> {
    city: &'a City,
    rng: Rng,
    out: Out,
}

/// How many draws a feature may take before the generator gives up (not reached with the real
/// districts: every anchor stands on land, so draws near it often do too).
const MAX_TRIES: usize = 10_000;

/// A place found for a feature.
struct Place {
    lon: f64,
    lat: f64,
    district: usize,
    density: u32,
    street: Option<usize>,
}

impl Gen<'_> {
    /// A point near a random real facility, `sigma` metres of spread, on land.
    fn place(&mut self, sigma: f64, layer: &'static str) -> Result<Place, DemoError> {
        for _ in 0..MAX_TRIES {
            let a = *self.rng.pick(&self.city.anchors);
            let lon = round6(a.lon + self.rng.normal() * sigma / M_PER_DEG_LON);
            let lat = round6(a.lat + self.rng.normal() * sigma / M_PER_DEG_LAT);
            if let Some(district) = self.city.land.district_at(lon, lat) {
                let street = if district == a.district { a.street } else { None };
                return Ok(Place { lon, lat, district, density: self.city.density(lon, lat), street });
            }
        }
        Err(DemoError::NoPlace { layer })
    }

    /// A closed counter-clockwise ring from a shape in local metres (counter-clockwise), rotated by
    /// `angle` and centred on the place; `None` when a vertex falls outside every district.
    fn ring(&self, p: &Place, shape: &[(f64, f64)], angle: f64) -> Option<Vec<(f64, f64)>> {
        let (s, c) = angle.sin_cos();
        let mut ring = Vec::with_capacity(shape.len() + 1);
        for &(x, y) in shape {
            let (rx, ry) = (x * c - y * s, x * s + y * c);
            let lon = round6(p.lon + rx / M_PER_DEG_LON);
            let lat = round6(p.lat + ry / M_PER_DEG_LAT);
            self.city.land.district_at(lon, lat)?;
            ring.push((lon, lat));
        }
        ring.push(ring[0]);
        Some(ring)
    }

    /// The street grid's direction around a place: fixed per 500 m cell, so neighbours line up.
    fn grid_angle(p: &Place) -> f64 {
        Self::grid_angle_at(p.lon, p.lat)
    }

    fn grid_angle_at(lon: f64, lat: f64) -> f64 {
        #[allow(clippy::cast_possible_truncation)]
        let (cx, cy) = ((lon / 0.005).floor() as i64, (lat / 0.005).floor() as i64);
        #[allow(clippy::cast_sign_loss)]
        let mut r = Rng::new((cx as u64).wrapping_mul(0x1_0000_0001) ^ (cy as u64).wrapping_mul(0x9E37_79B9));
        r.range(0.0, std::f64::consts::FRAC_PI_2)
    }

    fn district(&self, p: &Place) -> (&str, &str) {
        let d = &self.city.land.districts[p.district];
        (d.name_en.as_str(), d.name_zh.as_str())
    }

    fn street(&self, p: &Place) -> Option<&Street> {
        p.street.map(|i| &self.city.streets[i])
    }

    fn buildings(&mut self, count: usize) -> Result<(), DemoError> {
        let mut taken: HashSet<(i64, i64)> = HashSet::with_capacity(count * 16);
        for i in 0..count {
            let mut tries = 0;
            let b = loop {
                tries += 1;
                if tries > MAX_TRIES {
                    return Err(DemoError::NoPlace { layer: "buildings" });
                }
                let p = self.place(250.0, "buildings")?;
                let kind = self.building_kind(&p);
                let (w, d) = kind.size(&mut self.rng);
                let shape = if w >= 20.0 && d >= 20.0 && self.rng.chance(0.25) {
                    // An L: a w x d rectangle with one corner cut away.
                    let (cw, cd) = (w * self.rng.range(0.35, 0.6), d * self.rng.range(0.35, 0.6));
                    vec![
                        (-w / 2.0, -d / 2.0),
                        (w / 2.0, -d / 2.0),
                        (w / 2.0, d / 2.0 - cd),
                        (w / 2.0 - cw, d / 2.0 - cd),
                        (w / 2.0 - cw, d / 2.0),
                        (-w / 2.0, d / 2.0),
                    ]
                } else {
                    vec![(-w / 2.0, -d / 2.0), (w / 2.0, -d / 2.0), (w / 2.0, d / 2.0), (-w / 2.0, d / 2.0)]
                };
                let angle = Self::grid_angle(&p) + self.rng.normal() * 0.05;
                let Some(ring) = self.ring(&p, &shape, angle) else { continue };
                // Keep buildings apart: no two bounding boxes (with a few metres of margin) share a
                // cell of the occupancy grid, unless the place is so crowded that it keeps failing.
                let cells = occupancy_cells(&ring);
                if tries < 60 && cells.clone().any(|c| taken.contains(&c)) {
                    continue;
                }
                taken.extend(cells);
                break (p, kind, ring, shape_area(&shape));
            };
            let (p, kind, ring, area) = b;
            self.building(i, &p, kind, &ring, area);
        }
        Ok(())
    }

    fn building_kind(&mut self, p: &Place) -> Kind {
        let rural = self.city.land.districts[p.district].rural();
        let dens = f64::from(p.density);
        if rural && dens < 12.0 && self.rng.chance(0.8) {
            return Kind::Village;
        }
        let tower = (dens / 120.0).clamp(0.08, 0.7);
        let r = self.rng.unit();
        if r < tower {
            Kind::Tower
        } else if r < tower + 0.12 {
            Kind::Low
        } else {
            Kind::Mid
        }
    }

    fn building(&mut self, i: usize, p: &Place, kind: Kind, ring: &[(f64, f64)], area: f64) {
        let rng = &mut self.rng;
        let (floors, floor_h, base, year, use_) = match kind {
            Kind::Tower => {
                let floors = (22.0 + rng.normal().abs() * 16.0).min(80.0);
                let use_ = *rng.pick(&[USE_RES, USE_RES, USE_RES, USE_COM, USE_COMPOSITE]);
                let fh = if use_ == USE_COM { rng.range(3.8, 4.4) } else { rng.range(2.8, 3.2) };
                (floors, fh, rng.range(0.0, 18.0), rng.int(1972, 2024), use_)
            }
            Kind::Mid => {
                let use_ = *rng.pick(&[USE_RES, USE_COMPOSITE, USE_COMPOSITE, USE_IND, USE_GIC]);
                (rng.range(4.0, 15.0), rng.range(2.9, 3.4), rng.range(0.0, 4.0), rng.int(1950, 1995), use_)
            }
            Kind::Low => {
                let use_ = *rng.pick(&[USE_GIC, USE_IND, USE_COM, USE_GIC]);
                (rng.range(1.0, 6.0), rng.range(3.5, 5.0), 0.0, rng.int(1960, 2022), use_)
            }
            Kind::Village => (
                if rng.chance(0.85) { 3.0 } else { 2.0 },
                rng.range(2.6, 2.8),
                0.0,
                rng.int(1975, 2023),
                USE_VILLAGE,
            ),
        };
        #[allow(clippy::cast_possible_truncation)]
        let floors = floors.floor() as i64;
        #[allow(clippy::cast_precision_loss)]
        let height = floors as f64 * floor_h + base;
        let (d_en, d_zh) = self.district(p);
        let (d_en, d_zh) = (d_en.to_owned(), d_zh.to_owned());
        let street = self.street(p).cloned().filter(|_| kind != Kind::Village);
        let (name_en, name_zh, addr_en, addr_zh) = if let Some(s) = street {
            let (name_en, name_zh) = self.building_name(kind, use_);
            let number = self.rng.int(1, 388);
            let addr_en = format!("{name_en}, {number} {}, {d_en}", s.en);
            let addr_zh = format!("{d_zh}{}{number}號{name_zh}", s.zh);
            (name_en, name_zh, addr_en, addr_zh)
        } else {
            // A village house, or a building where no real street is known: named by its village.
            let (v_en, v_zh) = village(&mut self.rng);
            let n = self.rng.int(1, 160);
            let (name_en, name_zh) = if kind == Kind::Village {
                (format!("House {n}, {v_en}"), format!("{v_zh}{n}號屋"))
            } else {
                self.building_name(kind, use_)
            };
            (name_en, name_zh, format!("{n} {v_en}, {d_en}"), format!("{d_zh}{v_zh}{n}號"))
        };
        let o = &mut self.out;
        o.begin();
        o.str("id", &format!("BLDG-{:06}", i + 1));
        o.str("name_en", &name_en);
        o.str("name_zh", &name_zh);
        o.str("address_en", &addr_en);
        o.str("address_zh", &addr_zh);
        o.str("district_en", &d_en);
        o.str("district_zh", &d_zh);
        o.str("use_en", use_.0);
        o.str("use_zh", use_.1);
        o.num("height_m", height);
        o.int("floors", floors);
        o.int("year_built", year);
        o.num("footprint_m2", area);
        o.polygon(ring);
    }

    fn building_name(&mut self, kind: Kind, use_: (&str, &str)) -> (String, String) {
        let rng = &mut self.rng;
        let (p_en, p_zh) =
            if rng.chance(0.5) { *rng.pick(NAME_PREFIXES) } else { *rng.pick(CANTONESE_PREFIXES) };
        match kind {
            _ if use_ == USE_IND => (format!("{p_en} Industrial Building"), format!("{p_zh}工業大廈")),
            _ if use_ == USE_COM => (format!("{p_en} Commercial Centre"), format!("{p_zh}商業中心")),
            _ if use_ == USE_GIC => {
                let (t_en, t_zh) = *rng.pick(GIC_NAMES);
                (format!("{p_en} {t_en}"), format!("{p_zh}{t_zh}"))
            }
            Kind::Tower if rng.chance(0.2) => {
                // Housing estates bear Cantonese names.
                let (p_en, p_zh) = *rng.pick(CANTONESE_PREFIXES);
                let block = rng.int(1, 12);
                (format!("{p_en} Estate, Block {block}"), format!("{p_zh}邨第{block}座"))
            }
            _ => {
                let (s_en, s_zh) = *rng.pick(NAME_SUFFIXES);
                (format!("{p_en} {s_en}"), format!("{p_zh}{s_zh}"))
            }
        }
    }

    fn parcels(&mut self, count: usize) -> Result<(), DemoError> {
        let mut lots: HashSet<String> = HashSet::with_capacity(count);
        for i in 0..count {
            let (p, ring, area) = loop {
                let p = self.place(350.0, "parcels")?;
                let (w, d) = (self.rng.range(25.0, 140.0), self.rng.range(25.0, 110.0));
                let shape =
                    [(-w / 2.0, -d / 2.0), (w / 2.0, -d / 2.0), (w / 2.0, d / 2.0), (-w / 2.0, d / 2.0)];
                let angle = Self::grid_angle(&p) + self.rng.normal() * 0.03;
                if let Some(ring) = self.ring(&p, &shape, angle) {
                    break (p, ring, w * d);
                }
            };
            let district = &self.city.land.districts[p.district];
            let rural = district.rural() && p.density < 15;
            let (lot_type, lot) = loop {
                let (t, s) = if rural {
                    let dd = self.rng.int(1, 390);
                    ("Demarcation District Lot", format!("DD {dd} Lot {}", self.rng.int(1, 2500)))
                } else {
                    let prefix = lot_prefix(&district.code);
                    (prefix.1, format!("{} {}", prefix.0, self.rng.int(1, 9999)))
                };
                if lots.insert(s.clone()) {
                    break (t, s);
                }
            };
            let use_ = if rural {
                *self.rng.pick(&[LU_VILLAGE, LU_VILLAGE, LU_AGRI, LU_AGRI, LU_GREEN, LU_OU, LU_RES_C])
            } else {
                *self
                    .rng
                    .pick(&[LU_RES_A, LU_RES_A, LU_RES_A, LU_RES_B, LU_COM, LU_GIC, LU_OPEN, LU_IND, LU_OU])
            };
            let (d_en, d_zh) = (district.name_en.clone(), district.name_zh.clone());
            let o = &mut self.out;
            o.begin();
            o.str("id", &format!("LOT-{:06}", i + 1));
            o.str("lot_number", &lot);
            o.str("lot_type", lot_type);
            o.str("land_use_en", use_.0);
            o.str("land_use_zh", use_.1);
            o.num("area_m2", area);
            o.str("district_en", &d_en);
            o.str("district_zh", &d_zh);
            o.polygon(&ring);
        }
        Ok(())
    }

    fn hotspots(&mut self, count: usize) -> Result<(), DemoError> {
        for i in 0..count {
            let p = self.place(200.0, "hotspots")?;
            let (t_en, t_zh) = *self.rng.pick(VENUES);
            let (prov_en, prov_zh, ssid) = *self.rng.pick(PROVIDERS);
            let number = self.rng.int(1, 388);
            let (d_en, d_zh) = self.district(&p);
            let (d_en, d_zh) = (d_en.to_owned(), d_zh.to_owned());
            let street = self.street(&p).cloned();
            let (venue_en, venue_zh, addr_en, addr_zh) = match street {
                Some(s) => (
                    format!("{} {t_en}", s.en),
                    format!("{}{t_zh}", s.zh),
                    format!("{number} {}, {d_en}", s.en),
                    format!("{d_zh}{}{number}號", s.zh),
                ),
                None => {
                    let (v_en, v_zh) = village(&mut self.rng);
                    (
                        format!("{v_en} {t_en}"),
                        format!("{v_zh}{t_zh}"),
                        format!("{v_en}, {d_en}"),
                        format!("{d_zh}{v_zh}"),
                    )
                }
            };
            let o = &mut self.out;
            o.begin();
            o.str("id", &format!("WIFI-{:06}", i + 1));
            o.str("venue_en", &venue_en);
            o.str("venue_zh", &venue_zh);
            o.str("venue_type_en", t_en);
            o.str("venue_type_zh", t_zh);
            o.str("ssid", ssid);
            o.str("provider_en", prov_en);
            o.str("provider_zh", prov_zh);
            o.str("address_en", &addr_en);
            o.str("address_zh", &addr_zh);
            o.str("district_en", &d_en);
            o.str("district_zh", &d_zh);
            o.point((p.lon, p.lat));
        }
        Ok(())
    }

    /// The real lampposts, then `count` synthetic ones along streets of the four areas.
    fn lampposts(&mut self, count: usize) -> Result<(), DemoError> {
        for l in self.lamppost_list(count)? {
            self.lamppost(&l);
        }
        Ok(())
    }

    fn lamppost_list(&mut self, count: usize) -> Result<Vec<Lamppost>, DemoError> {
        let mut all = real_lampposts(&self.city.land)?;
        let mut ids: HashSet<String> = all.iter().map(|l| l.id.clone()).collect();
        let mut made = 0;
        let mut area_i = 0;
        let mut tries = 0;
        while made < count {
            tries += 1;
            if tries > MAX_TRIES + count {
                return Err(DemoError::NoPlace { layer: "lampposts" });
            }
            // One street at a time, the areas in turn.
            let area = &LAMPPOST_AREAS[area_i % LAMPPOST_AREAS.len()];
            area_i += 1;
            let lon0 = area.lon + self.rng.normal() * 350.0 / M_PER_DEG_LON;
            let lat0 = area.lat + self.rng.normal() * 350.0 / M_PER_DEG_LAT;
            // Along the local street grid (the buildings' orientation), one way or the other.
            let turn = if self.rng.chance(0.5) { 0.0 } else { std::f64::consts::FRAC_PI_2 };
            let angle = Self::grid_angle_at(lon0, lat0) + turn + self.rng.normal() * 0.03;
            let spacing = self.rng.range(22.0, 32.0);
            let posts = self.rng.int(6, 16);
            let street = self.city.nearest_street(lon0, lat0, 1200.0).map(|s| (s.en.clone(), s.zh.clone()));
            for k in 0..posts {
                if made >= count {
                    break;
                }
                #[allow(clippy::cast_precision_loss)]
                let along = k as f64 * spacing;
                let lon = round6(lon0 + along * angle.cos() / M_PER_DEG_LON);
                let lat = round6(lat0 + along * angle.sin() / M_PER_DEG_LAT);
                let Some(district) = self.city.land.district_at(lon, lat) else { continue };
                let id = loop {
                    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
                    let a = char::from(letters[self.rng.below(letters.len())]);
                    let b = char::from(letters[self.rng.below(letters.len())]);
                    let id = format!("{a}{b}{:04}", self.rng.int(1000, 9999));
                    if ids.insert(id.clone()) {
                        break id;
                    }
                };
                let d = &self.city.land.districts[district];
                let (street_en, street_zh) =
                    street.clone().unwrap_or_else(|| (area.en.to_owned(), area.zh.to_owned()));
                let rng = &mut self.rng;
                let l = Lamppost {
                    id,
                    street_en,
                    street_zh,
                    area: (area.en, area.zh),
                    district: (d.name_en.clone(), d.name_zh.clone()),
                    devices: [
                        rng.chance(0.2),
                        rng.chance(0.15),
                        rng.chance(0.1),
                        rng.chance(0.3),
                        rng.chance(0.8),
                        rng.chance(0.8),
                        rng.chance(0.2),
                        rng.chance(0.1),
                    ],
                    lon,
                    lat,
                    real: false,
                };
                all.push(l);
                made += 1;
            }
        }
        Ok(all)
    }

    fn lamppost(&mut self, l: &Lamppost) {
        let o = &mut self.out;
        o.begin();
        o.str("id", &l.id);
        o.str("street_en", &l.street_en);
        o.str("street_zh", &l.street_zh);
        o.str("area_en", l.area.0);
        o.str("area_zh", l.area.1);
        o.str("district_en", &l.district.0);
        o.str("district_zh", &l.district.1);
        for (k, v) in DEVICE_KEYS.iter().zip(l.devices) {
            o.bool(k, v);
        }
        o.bool("real", l.real);
        o.point((l.lon, l.lat));
    }
}

/// The devices a lamppost may carry, in the order of [`Lamppost::devices`].
pub const DEVICE_KEYS: [&str; 8] = [
    "traffic",
    "meteorological",
    "air_quality",
    "bluetooth_beacon",
    "rfid_tag",
    "geo_qr_code",
    "geo_marker",
    "wifi",
];

/// A smart lamppost of the demo, real or synthetic.
#[derive(Debug, Clone, PartialEq)]
pub struct Lamppost {
    /// Its id, such as "AA6337".
    pub id: String,
    /// The street, in English.
    pub street_en: String,
    /// The street, in Chinese.
    pub street_zh: String,
    /// The urban area (English, Chinese).
    pub area: (&'static str, &'static str),
    /// The district (English, Chinese).
    pub district: (String, String),
    /// The devices it carries, in the order of [`DEVICE_KEYS`].
    pub devices: [bool; 8],
    /// Longitude (WGS 84).
    pub lon: f64,
    /// Latitude (WGS 84).
    pub lat: f64,
    /// True for the real lampposts of the government's list.
    pub real: bool,
}

impl Lamppost {
    /// True when it carries the device named (one of [`DEVICE_KEYS`]).
    #[must_use]
    pub fn has(&self, device: &str) -> bool {
        DEVICE_KEYS.iter().zip(self.devices).any(|(k, v)| *k == device && v)
    }
}

/// The demo's smart lampposts as values: the real ones, then `count` synthetic ones, exactly those
/// that `generate(city, Layer::Lampposts, count, seed)` writes (for the sensor simulator).
///
/// # Errors
/// When `count` exceeds [`MAX_COUNT`], or (not expected) no place is found for one.
pub fn smart_lampposts(city: &City, count: usize, seed: u64) -> Result<Vec<Lamppost>, DemoError> {
    if count > MAX_COUNT {
        return Err(DemoError::TooMany { layer: "lampposts", count, max: MAX_COUNT });
    }
    let mut g = Gen { city, rng: Rng::new(seed ^ Layer::Lampposts.salt()), out: Out::new(0) };
    g.lamppost_list(count)
}

/// The real lampposts of the embedded OGCIO file, with their real ids and devices.
fn real_lampposts(land: &super::city::Land) -> Result<Vec<Lamppost>, DemoError> {
    let file = "Summary_of_Functions_on_Smart_Lampposts.geojson";
    let bad = |what: String| DemoError::Data { file: file.to_owned(), what };
    let r =
        super::real::FACILITIES.iter().find(|r| r.file == file).ok_or_else(|| bad("missing".to_owned()))?;
    let doc: serde_json::Value = serde_json::from_slice(r.bytes).map_err(|e| bad(e.to_string()))?;
    let columns = [
        "Devices for collection of traffic data",
        "Meteorological Sensors for collection of experimental data at district level",
        "Devices for collection of air quality data at district level",
        "Positioning services - Bluetooth Beacon",
        "Positioning services - RFID tag",
        "Positioning services - Geo-QR Code Tag",
        "Positioning services - Geo-marker",
        "Free Wi-Fi service",
    ];
    let mut out = Vec::new();
    for (i, f) in doc["features"].as_array().into_iter().flatten().enumerate() {
        let p = &f["properties"];
        let s = |k: &str| p[k].as_str().map(str::to_owned).ok_or_else(|| bad(format!("feature {i}: no {k}")));
        let c = &f["geometry"]["coordinates"];
        let (lon, lat) =
            c[0].as_f64().zip(c[1].as_f64()).ok_or_else(|| bad(format!("feature {i}: no point")))?;
        let district = land.district_at(lon, lat).map_or_else(
            || ("Kwun Tong".to_owned(), "觀塘區".to_owned()),
            |d| (land.districts[d].name_en.clone(), land.districts[d].name_zh.clone()),
        );
        let mut devices = [false; 8];
        for (d, col) in devices.iter_mut().zip(columns) {
            *d = p[col].as_str() == Some("Y");
        }
        out.push(Lamppost {
            id: s("Facility Name")?,
            street_en: s("Address")?,
            street_zh: s("地址")?,
            area: (LAMPPOST_AREAS[0].en, LAMPPOST_AREAS[0].zh),
            district,
            devices,
            lon,
            lat,
            real: true,
        });
    }
    Ok(out)
}

/// An urban area with smart lampposts.
struct Area {
    en: &'static str,
    zh: &'static str,
    lon: f64,
    lat: f64,
}

/// The four areas: Kowloon East (where the real ones stand), Central, Tsim Sha Tsui, Causeway Bay.
const LAMPPOST_AREAS: [Area; 4] = [
    Area { en: "Kowloon East", zh: "九龍東", lon: 114.2135, lat: 22.3215 },
    Area { en: "Central", zh: "中環", lon: 114.1585, lat: 22.2815 },
    Area { en: "Tsim Sha Tsui", zh: "尖沙咀", lon: 114.1720, lat: 22.2985 },
    Area { en: "Causeway Bay", zh: "銅鑼灣", lon: 114.1840, lat: 22.2795 },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tower,
    Mid,
    Low,
    Village,
}

impl Kind {
    /// Footprint sides in metres.
    fn size(self, rng: &mut Rng) -> (f64, f64) {
        match self {
            Kind::Tower => (rng.range(20.0, 45.0), rng.range(18.0, 40.0)),
            Kind::Mid => (rng.range(10.0, 25.0), rng.range(12.0, 30.0)),
            Kind::Low => (rng.range(20.0, 60.0), rng.range(15.0, 50.0)),
            Kind::Village => (rng.range(10.0, 12.0), rng.range(10.0, 12.0)),
        }
    }
}

/// Side of an occupancy cell, in metres.
const OCCUPANCY: f64 = 12.0;

/// The occupancy cells that a ring's bounding box, grown by 2 m a side, touches.
fn occupancy_cells(ring: &[(f64, f64)]) -> impl Iterator<Item = (i64, i64)> + Clone {
    let xs = ring.iter().map(|p| p.0 * M_PER_DEG_LON);
    let ys = ring.iter().map(|p| p.1 * M_PER_DEG_LAT);
    #[allow(clippy::cast_possible_truncation)]
    let cell = |v: f64| (v / OCCUPANCY).floor() as i64;
    let (x0, x1) = (cell(xs.clone().fold(f64::MAX, f64::min) - 2.0), cell(xs.fold(f64::MIN, f64::max) + 2.0));
    let (y0, y1) = (cell(ys.clone().fold(f64::MAX, f64::min) - 2.0), cell(ys.fold(f64::MIN, f64::max) + 2.0));
    (x0..=x1).flat_map(move |x| (y0..=y1).map(move |y| (x, y)))
}

/// The area of a simple polygon given counter-clockwise (shoelace), in m².
fn shape_area(shape: &[(f64, f64)]) -> f64 {
    let n = shape.len();
    (0..n).map(|i| shape[i].0 * shape[(i + 1) % n].1 - shape[(i + 1) % n].0 * shape[i].1).sum::<f64>() / 2.0
}

/// A village name: two syllables and "Tsuen".
fn village(rng: &mut Rng) -> (String, String) {
    let (a_en, a_zh) = *rng.pick(VILLAGE_FIRST);
    let (b_en, b_zh) = *rng.pick(VILLAGE_SECOND);
    (format!("{a_en} {b_en} Tsuen"), format!("{a_zh}{b_zh}村"))
}

/// The lot prefix of a district's town lots: abbreviation and type.
fn lot_prefix(code: &str) -> (&'static str, &'static str) {
    match code {
        "A" | "B" | "C" | "D" => ("IL", "Inland Lot"),
        "E" | "F" | "G" => ("KIL", "Kowloon Inland Lot"),
        "H" | "J" => ("NKIL", "New Kowloon Inland Lot"),
        "K" => ("TWTL", "Tsuen Wan Town Lot"),
        "S" => ("KCTL", "Kwai Chung Town Lot"),
        "R" => ("STTL", "Sha Tin Town Lot"),
        "L" => ("TMTL", "Tuen Mun Town Lot"),
        "M" => ("YLTL", "Yuen Long Town Lot"),
        "P" => ("TPTL", "Tai Po Town Lot"),
        "N" => ("FSSTL", "Fanling Sheung Shui Town Lot"),
        "Q" => ("TKOTL", "Tseung Kwan O Town Lot"),
        _ => ("TCTL", "Tung Chung Town Lot"),
    }
}

type Pair = (&'static str, &'static str);

const USE_RES: Pair = ("Residential", "住宅");
const USE_COM: Pair = ("Commercial", "商業");
const USE_COMPOSITE: Pair = ("Composite (shops below, flats above)", "綜合用途（地舖、樓上住宅）");
const USE_IND: Pair = ("Industrial", "工業");
const USE_GIC: Pair = ("Government, institution or community", "政府、機構或社區");
const USE_VILLAGE: Pair = ("Village house", "村屋");

const LU_RES_A: Pair = ("Residential (Group A)", "住宅（甲類）");
const LU_RES_B: Pair = ("Residential (Group B)", "住宅（乙類）");
const LU_RES_C: Pair = ("Residential (Group C)", "住宅（丙類）");
const LU_COM: Pair = ("Commercial", "商業");
const LU_IND: Pair = ("Industrial", "工業");
const LU_GIC: Pair = ("Government, Institution or Community", "政府、機構或社區");
const LU_OPEN: Pair = ("Open Space", "休憩用地");
const LU_OU: Pair = ("Other Specified Uses", "其他指定用途");
const LU_VILLAGE: Pair = ("Village Type Development", "鄉村式發展");
const LU_AGRI: Pair = ("Agriculture", "農業");
const LU_GREEN: Pair = ("Green Belt", "綠化地帶");

const NAME_PREFIXES: &[Pair] = &[
    ("Harbour View", "海景"),
    ("Sea Crest", "海峰"),
    ("Golden", "金都"),
    ("Royal", "御景"),
    ("Grand", "宏圖"),
    ("Park", "柏景"),
    ("Lucky", "幸運"),
    ("Prosperity", "興盛"),
    ("Fortune", "富利"),
    ("Ocean", "海洋"),
    ("Hillside", "山邊"),
    ("Bayview", "灣景"),
    ("Silver", "銀輝"),
    ("Jade", "翠華"),
    ("Pearl", "明珠"),
    ("Lotus", "蓮花"),
    ("Phoenix", "鳳凰"),
    ("Peony", "牡丹"),
    ("Orchid", "蘭苑"),
    ("Cheerful", "歡樂"),
    ("Peaceful", "安寧"),
    ("Evergreen", "長青"),
];

/// Names in Cantonese romanisation, as most of Hong Kong's buildings and all its housing estates bear.
const CANTONESE_PREFIXES: &[Pair] = &[
    ("Kwong Wah", "光華"),
    ("Wing On", "永安"),
    ("Tai Hing", "大興"),
    ("Wah Fung", "華豐"),
    ("Man Shing", "萬成"),
    ("Yue Fai", "裕暉"),
    ("Fu Shing", "富盛"),
    ("Kam Lung", "金龍"),
    ("Tak Wing", "德榮"),
    ("On Lee", "安利"),
    ("Hoi Tak", "海德"),
    ("Shun Fat", "順發"),
    ("Yee On", "怡安"),
    ("Sun Hing", "新興"),
    ("Chung Hing", "中興"),
    ("Wai Lun", "偉倫"),
    ("Lok Sin", "樂善"),
    ("Tin Ma", "天馬"),
];

const NAME_SUFFIXES: &[Pair] = &[
    ("Court", "閣"),
    ("Mansion", "大廈"),
    ("Building", "大廈"),
    ("Garden", "花園"),
    ("Tower", "大樓"),
    ("House", "樓"),
    ("Centre", "中心"),
    ("Plaza", "廣場"),
    ("Terrace", "台"),
    ("Heights", "豪庭"),
    ("Villa", "別墅"),
];

const GIC_NAMES: &[Pair] = &[
    ("Primary School", "小學"),
    ("Secondary School", "中學"),
    ("Community Hall", "社區會堂"),
    ("Clinic", "診所"),
    ("Municipal Services Building", "市政大廈"),
    ("Sports Centre", "體育館"),
    ("Fire Station", "消防局"),
    ("Police Station", "警署"),
];

const VILLAGE_FIRST: &[Pair] = &[
    ("Sheung", "上"),
    ("Ha", "下"),
    ("Tai", "大"),
    ("Sai", "西"),
    ("Tung", "東"),
    ("Nam", "南"),
    ("Pak", "北"),
    ("San", "新"),
    ("Lo", "老"),
    ("Shek", "石"),
    ("Lung", "龍"),
    ("Wo", "和"),
];

const VILLAGE_SECOND: &[Pair] = &[
    ("Wo", "和"),
    ("Fung", "豐"),
    ("Shek", "石"),
    ("Tin", "田"),
    ("Lung", "龍"),
    ("Hang", "坑"),
    ("Wai", "圍"),
    ("Uk", "屋"),
    ("Kok", "角"),
    ("Yuen", "園"),
    ("Pui", "貝"),
    ("Tong", "塘"),
];

const VENUES: &[Pair] = &[
    ("Public Library", "公共圖書館"),
    ("Sitting-out Area", "休憩處"),
    ("Playground", "遊樂場"),
    ("Sports Centre", "體育館"),
    ("Community Centre", "社區中心"),
    ("Cooked Food Centre", "熟食中心"),
    ("Market", "街市"),
    ("Government Offices", "政府合署"),
    ("Bus Terminus", "巴士總站"),
    ("Public Transport Interchange", "公共運輸交匯處"),
    ("Shopping Centre", "商場"),
    ("Convenience Store", "便利店"),
    ("Coffee Shop", "咖啡店"),
    ("Fast Food Restaurant", "快餐店"),
    ("Cha Chaan Teng", "茶餐廳"),
    ("Public Toilet", "公廁"),
    ("Ferry Pier", "渡輪碼頭"),
    ("Hospital", "醫院"),
    ("Post Office", "郵政局"),
    ("Telephone Kiosk", "電話亭"),
];

const PROVIDERS: &[(&str, &str, &str)] = &[
    ("Government (GovWiFi)", "政府（GovWiFi）", "Wi-Fi.HK via GovWiFi"),
    ("Government (GovWiFi)", "政府（GovWiFi）", "Wi-Fi.HK via GovWiFi"),
    ("PCCW", "電訊盈科", "Wi-Fi.HK via PCCW"),
    ("HKBN", "香港寬頻", "Wi-Fi.HK via HKBN"),
    ("CSL", "香港移動通訊（CSL）", "Wi-Fi.HK via CSL"),
    ("SmarTone", "數碼通", "Wi-Fi.HK via SmarTone"),
    ("3 Hong Kong", "3香港", "Wi-Fi.HK via 3"),
    ("China Mobile Hong Kong", "中國移動香港", "Wi-Fi.HK via CMHK"),
];
