//! The sensor simulator's fleet made from the demo's own smart-lamppost layer, so that the
//! SensorThings Things of the simulated lampposts have the ids and places of the lampposts on the
//! map (`smart-lampposts`), their urban area and district.
//!
//! A lamppost of the layer reports what its devices measure: a traffic detector gives traffic flow
//! and speed, a meteorological sensor temperature and humidity, an air-quality sensor PM2.5, NO2 and
//! the AQHI; lampposts with none of these have no Thing.
//!
//! **Invariant:** the layer is the demo's (the same generator, count and seed), so `fleet(city,
//! None)` is the fleet of every sensing lamppost on the demo map, in the layer's order, and
//! `fleet(city, Some(n))` its first `n` (more than the demo has: the same generator, run further,
//! whose first lampposts are the demo's).

use citydata_sensors::simulate::{Fleet, Lamppost as Device, Measure};

use crate::demo::{smart_lampposts, City, DemoError, Lamppost, Layer, DEMO_SEED, MAX_COUNT};

/// The measures of a lamppost's devices, in a fixed order.
fn measures(l: &Lamppost) -> Vec<Measure> {
    let mut m = Vec::new();
    if l.has("traffic") {
        m.extend([Measure::TrafficFlow, Measure::TrafficSpeed]);
    }
    if l.has("meteorological") {
        m.extend([Measure::Temperature, Measure::Humidity]);
    }
    if l.has("air_quality") {
        m.extend([Measure::Pm25, Measure::No2, Measure::Aqhi]);
    }
    m
}

fn sensing(list: Vec<Lamppost>) -> Vec<Device> {
    list.into_iter()
        .filter_map(|l| {
            let measures = measures(&l);
            (!measures.is_empty()).then(|| Device {
                area: l.area.0.to_owned(),
                district: Some(l.district.0.clone()),
                lon: l.lon,
                lat: l.lat,
                measures,
                id: l.id,
            })
        })
        .collect()
}

/// The sensing lampposts of the demo's lamppost layer (all of them, or the first `n`).
///
/// # Errors
/// When `n` asks for more lampposts than the generator may make.
pub fn fleet(city: &City, n: Option<usize>) -> Result<Fleet, DemoError> {
    let mut count = Layer::Lampposts.demo_count();
    loop {
        let mut lampposts = sensing(smart_lampposts(city, count, DEMO_SEED)?);
        match n {
            None => return Ok(Fleet { lampposts }),
            Some(n) if lampposts.len() >= n || count >= MAX_COUNT => {
                lampposts.truncate(n);
                return Ok(Fleet { lampposts });
            }
            Some(n) => {
                // Sensing lampposts are a minority: grow the layer until it holds n of them.
                let more = (n - lampposts.len()).saturating_mul(4).max(100);
                count = count.saturating_add(more).min(MAX_COUNT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_fleet_is_the_demo_layer_and_grows_past_it_with_the_same_first_lampposts() {
        let city = City::hong_kong().unwrap();
        let layer = smart_lampposts(&city, Layer::Lampposts.demo_count(), DEMO_SEED).unwrap();
        let all = fleet(&city, None).unwrap();
        assert!(all.lampposts.len() > 50, "{} sensing lampposts", all.lampposts.len());
        // Every one is a lamppost of the layer, at its place, with its area and district.
        for d in &all.lampposts {
            let l = layer.iter().find(|l| l.id == d.id).unwrap();
            assert_eq!((d.lon, d.lat, d.area.as_str()), (l.lon, l.lat, l.area.0));
            assert_eq!(d.district.as_deref(), Some(l.district.0.as_str()));
            assert_eq!(d.measures.contains(&Measure::Pm25), l.has("air_quality"));
            assert_eq!(d.measures.contains(&Measure::TrafficFlow), l.has("traffic"));
            assert_eq!(d.measures.contains(&Measure::Humidity), l.has("meteorological"));
        }
        // All four areas have air-quality lampposts.
        let mut areas: Vec<&str> = all
            .lampposts
            .iter()
            .filter(|d| d.measures.contains(&Measure::Pm25))
            .map(|d| d.area.as_str())
            .collect();
        areas.sort_unstable();
        areas.dedup();
        assert_eq!(areas.len(), 4, "{areas:?}");
        // The first few, and more than the demo holds: the demo's come first.
        let few = fleet(&city, Some(3)).unwrap();
        assert_eq!(few.lampposts, all.lampposts[..3]);
        let more = fleet(&city, Some(all.lampposts.len() + 20)).unwrap();
        assert_eq!(more.lampposts.len(), all.lampposts.len() + 20);
        assert_eq!(more.lampposts[..all.lampposts.len()], all.lampposts[..]);
    }
}
