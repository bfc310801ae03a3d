//! Spatial filters that several APIs share: inside a box (OGC `bbox`, native `_bbox`, DataStore
//! `bbox`), within a distance of a point (native `_near`, DataStore `near`), and inside one of the
//! city's districts (native `_district`, DataStore `district`), the polygons of the District
//! framework theme (the dataset [`DISTRICTS`]).
//!
//! Each becomes a [`Cond`] on the resource's geometry, which the store answers with its spatial
//! index and an exact test. Messages say what is wrong without naming the parameter; callers add it.

use citydata_geo::Crs;
use citydata_model::Value;
use citydata_store::{Cond, RowBuffer, RowQuery, SpatialOp, Store, GEOMETRY_PROPERTY};

use crate::ApiError;

/// The dataset whose features are the city's districts.
pub(crate) const DISTRICTS: &str = "districts";

/// `text` (`min x,min y,max x,max y`, or six numbers with heights) in `crs`'s own axis order, as a
/// WGS 84 box `[min lon, min lat, max lon, max lat]`.
pub(crate) fn parse_bbox(text: &str, crs: Crs) -> Result<[f64; 4], String> {
    let nums: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{text:?} is not a list of numbers"))?;
    let (a, b, c, d) = match nums.as_slice() {
        [a, b, c, d] => (*a, *b, *c, *d),
        [a, b, _, c, d, _] => (*a, *b, *c, *d),
        _ => return Err(format!("needs 4 numbers (or 6 with heights), not {}", nums.len())),
    };
    // In the CRS's own axis order; made x = east, y = north.
    let (x1, y1, x2, y2) = if crs.swaps_axes() { (b, a, d, c) } else { (a, b, c, d) };
    if x1 > x2 || y1 > y2 {
        return Err(format!(
            "the lower corner ({x1}, {y1}) must be below and left of the upper corner ({x2}, {y2})"
        ));
    }
    if crs.is_geographic() && (x1 < -180.0 || x2 > 180.0 || y1 < -90.0 || y2 > 90.0) {
        return Err("longitudes must be within -180..180 and latitudes within -90..90".into());
    }
    if crs == Crs::Crs84 || crs == Crs::Epsg4326 {
        return Ok([x1, y1, x2, y2]);
    }
    // Another CRS: the box of the four transformed corners.
    let corners = [(x1, y1), (x1, y2), (x2, y1), (x2, y2)].map(|(x, y)| citydata_geo::to_wgs84(crs, x, y));
    let mut out = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for (lon, lat) in corners {
        out = [out[0].min(lon), out[1].min(lat), out[2].max(lon), out[3].max(lat)];
    }
    if !out.iter().all(|v| v.is_finite()) {
        return Err("the box cannot be transformed to WGS 84".into());
    }
    Ok(out)
}

/// The GeoJSON polygon of a WGS 84 box.
fn box_geometry(b: [f64; 4]) -> String {
    format!(
        "{{\"type\":\"Polygon\",\"coordinates\":[[[{0},{1}],[{2},{1}],[{2},{3}],[{0},{3}],[{0},{1}]]]}}",
        b[0], b[1], b[2], b[3]
    )
}

/// Rows whose geometry meets the box `text` in `crs`.
pub(crate) fn bbox_cond(text: &str, crs: Crs) -> Result<Cond, String> {
    let bbox = parse_bbox(text, crs)?;
    Ok(Cond::Spatial {
        op: SpatialOp::Intersects,
        property: GEOMETRY_PROPERTY.to_owned(),
        geometry: box_geometry(bbox),
        bbox,
    })
}

/// Rows within a distance of a point: `text` is `lon,lat,metres` (WGS 84).
pub(crate) fn near_cond(text: &str) -> Result<Cond, String> {
    let nums: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{text:?} is not a list of numbers"))?;
    let [lon, lat, metres] = nums.as_slice() else {
        return Err(format!("needs longitude, latitude and metres (e.g. 114.17,22.3,500), not {text:?}"));
    };
    if !(-180.0..=180.0).contains(lon) || !(-90.0..=90.0).contains(lat) {
        return Err(format!("({lon}, {lat}) is not a WGS 84 longitude and latitude"));
    }
    if !(0.0..=100_000.0).contains(metres) {
        return Err(format!("the distance must be 0 to 100000 metres, not {metres}"));
    }
    Ok(Cond::DWithin { lon: *lon, lat: *lat, metres: *metres })
}

/// Folds a district name for matching: case, `&` and `and`, a trailing "district" or 區.
fn fold(name: &str) -> String {
    let lower = name.trim().to_lowercase().replace('&', " and ");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let mut s = words.join(" ");
    for suffix in [" district", "區", "区"] {
        if let Some(t) = s.strip_suffix(suffix) {
            s = t.trim_end().to_owned();
        }
    }
    s
}

/// Rows inside the district `name` (its English or Chinese name, or its code, as the District
/// dataset gives them; case, `&`/`and` and a trailing "District" or 區 do not matter).
pub(crate) fn district_cond(store: &Store, name: &str) -> Result<Cond, ApiError> {
    let res = store.spatial_resources(Some(DISTRICTS))?.into_iter().next().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "there are no districts to filter by: the dataset {DISTRICTS:?} is not published"
        ))
    })?;
    let mut buf = RowBuffer::default();
    store.query_rows(&res.id, &RowQuery { limit: 1000, facet_limit: 0, ..RowQuery::default() }, &mut buf)?;
    let head = buf.head.ok_or_else(|| ApiError::Internal("no head".into()))?;
    let geometry = head.columns.iter().position(|c| c.name == res.spatial.column);
    let wanted = fold(name);
    let mut names = Vec::new();
    for row in &buf.rows {
        let texts: Vec<&str> = row
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != geometry)
            .filter_map(|(_, v)| match v {
                Value::Text(t) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        if let Some(first) = texts.iter().find(|t| t.chars().count() > 2) {
            names.push((*first).to_owned());
        }
        if texts.iter().any(|t| fold(t) == wanted) {
            let Some(Value::Text(g)) = geometry.and_then(|i| row.get(i)) else { continue };
            let parsed =
                serde_json::from_str(g).ok().and_then(|j| citydata_geo::parse_geojson(&j).ok()).ok_or_else(
                    || ApiError::Internal(format!("the geometry of district {name:?} cannot be read")),
                )?;
            let bbox = citydata_geo::bbox(&parsed)
                .ok_or_else(|| ApiError::Internal(format!("district {name:?} has an empty geometry")))?;
            return Ok(Cond::Spatial {
                op: SpatialOp::Intersects,
                property: GEOMETRY_PROPERTY.to_owned(),
                geometry: g.to_string(),
                bbox,
            });
        }
    }
    Err(ApiError::BadRequest(format!(
        "no district is called {name:?}; the districts are {}",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_in_every_crs() {
        assert_eq!(parse_bbox("114,22,115,23", Crs::Crs84).unwrap(), [114.0, 22.0, 115.0, 23.0]);
        assert_eq!(parse_bbox("22,114,23,115", Crs::Epsg4326).unwrap(), [114.0, 22.0, 115.0, 23.0]);
        assert_eq!(parse_bbox("114,22,0,115,23,9", Crs::Crs84).unwrap(), [114.0, 22.0, 115.0, 23.0]);
        // EPSG:2326 is northing, easting: a box around the grid's origin.
        let b = parse_bbox("819000,836000,820000,837000", Crs::Hk1980).unwrap();
        assert!(b[0] > 114.17 && b[2] < 114.19 && b[1] > 22.30 && b[3] < 22.32, "{b:?}");
        for (text, says) in [
            ("1,2,3", "needs 4 numbers"),
            ("a,2,3,4", "not a list of numbers"),
            ("115,22,114,23", "lower corner"),
            ("114,-95,115,23", "latitudes within"),
        ] {
            assert!(parse_bbox(text, Crs::Crs84).unwrap_err().contains(says), "{text}");
        }
    }

    #[test]
    fn points_and_distances() {
        assert_eq!(
            near_cond("114.17, 22.3, 500").unwrap(),
            Cond::DWithin { lon: 114.17, lat: 22.3, metres: 500.0 }
        );
        assert!(near_cond("114.17,22.3").unwrap_err().contains("needs longitude, latitude and metres"));
        assert!(near_cond("22.3,200,5").unwrap_err().contains("not a WGS 84"));
        assert!(near_cond("114,22,-1").unwrap_err().contains("0 to 100000"));
    }

    #[test]
    fn district_names_fold() {
        assert_eq!(fold("Central & Western"), fold("central and western district"));
        assert_eq!(fold("中西區"), "中西");
        assert_eq!(fold(" Kwun  Tong "), "kwun tong");
    }
}
