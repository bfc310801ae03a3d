//! Where the rows of a table are, decided before it loads and applied to each row as it loads.
//!
//! A table is spatial when it has a GeoJSON geometry column (GeoJSON files; a legacy `crs` member
//! names its CRS), when the metadata names its coordinate columns (`"geometry": {"x": ..., "y": ...,
//! "crs": ...}`), or when the detector finds a pair of coordinate columns by their names and value
//! ranges (latitude/longitude, or Hong Kong 1980 Grid eastings/northings). Every geometry is stored
//! in WGS 84, longitude first, as compact GeoJSON (7 decimals, about 1 cm), with its bounding box in
//! the spatial index.
//!
//! A geometry column's invalid geometry fails the publish, naming the record and the fault: it is
//! the file's one location. A row whose coordinate columns cannot make a point (a blank, a value
//! outside the grid) keeps its values and gets no location; the publish reports how many.

use citydata_formats::FormatError;
use citydata_geo::detect::{detect_point_columns, ColumnStats, Detection, NumericStats, PointColumns};
use citydata_geo::geometry::{
    bbox, check_wgs84, legacy_crs, parse_geojson, transform, write_geojson, write_number,
};
use citydata_geo::{Crs, Geometry};
use citydata_model::{FieldType, GeometrySpec, Schema, Value};
use citydata_store::{NewSpatial, GEOMETRY_COLUMN};

/// Decimals of stored degrees: 1e-7 degrees is about 1 cm.
const DECIMALS: u32 = 7;

/// How a table's rows get their geometry.
#[derive(Debug, Clone, PartialEq)]
enum Locate {
    /// The GeoJSON geometry in field `index`, written in `crs`.
    Column { index: usize, crs: Crs },
    /// A point from fields `x` and `y`, in `columns.crs`.
    Points { x: usize, y: usize, columns: PointColumns },
}

/// The spatial plan of one table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    locate: Locate,
    /// What the store is told before the rows load.
    pub(crate) new: NewSpatial,
}

/// What a row's geometry came to.
pub(crate) enum Located {
    /// A geometry: its box; its GeoJSON text is in the output buffer.
    At([f64; 4]),
    /// The row has no location.
    Nowhere,
}

fn crs_named(name: &str, what: &str) -> Result<Crs, String> {
    Crs::from_uri(name).map_err(|e| format!("{what}: {e}"))
}

/// Decides how the rows of `schema` are located. `ranges` are the scan's number ranges per field;
/// `spec` the metadata's say; `geojson_crs` gives the CRS a GeoJSON file names in its legacy `crs`
/// member (asked only when the schema has a geometry column). `Ok(None)`: not spatial. The note
/// says what detection saw when it could not decide.
pub(crate) fn plan(
    geojson_crs: &dyn Fn() -> Result<Option<String>, FormatError>,
    schema: &Schema,
    ranges: &[Option<(f64, f64)>],
    rows: u64,
    spec: Option<&GeometrySpec>,
) -> Result<(Option<Plan>, Option<String>), String> {
    if spec.is_some_and(|s| s.none) {
        return Ok((None, None));
    }
    let index = |name: &str| {
        schema.fields.iter().position(|f| f.name == name).ok_or_else(|| {
            format!("the metadata's geometry names the column {name:?}, which the file does not have")
        })
    };
    if let Some(spec) = spec {
        let (Some(x), Some(y)) = (spec.x.as_deref(), spec.y.as_deref()) else {
            return Err("the metadata's geometry needs both \"x\" and \"y\" (or \"none\": true)".into());
        };
        let (xi, yi) = (index(x)?, index(y)?);
        for i in [xi, yi] {
            let f = &schema.fields[i];
            if !matches!(f.field_type, FieldType::Integer | FieldType::Number) {
                return Err(format!(
                    "the coordinate column {:?} holds {:?} values, not numbers",
                    f.name, f.field_type
                ));
            }
        }
        let crs = match spec.crs.as_deref() {
            Some(c) => crs_named(c, "the metadata's geometry crs")?,
            None => Crs::Crs84,
        };
        // Coordinates in columns are x = east, y = north whatever the CRS's official axis order.
        let crs = if crs == Crs::Epsg4326 { Crs::Crs84 } else { crs };
        let columns = PointColumns { x: x.to_owned(), y: y.to_owned(), crs };
        return Ok((Some(points(xi, yi, columns)), None));
    }
    if let Some(i) = schema.fields.iter().position(|f| f.field_type == FieldType::Geometry) {
        let crs = match geojson_crs().map_err(|e| e.to_string())? {
            // GeoJSON positions are always x, y: a legacy EPSG:4326 means longitude first.
            Some(name) => match crs_named(&name, "the file's crs member")? {
                Crs::Epsg4326 => Crs::Crs84,
                other => other,
            },
            None => Crs::Crs84,
        };
        let source_text = if crs == Crs::Crs84 {
            "GeoJSON geometries".to_owned()
        } else {
            format!("GeoJSON geometries in EPSG:{}, transformed to WGS 84", crs.epsg())
        };
        let name = schema.fields[i].name.clone();
        return Ok((
            Some(Plan {
                locate: Locate::Column { index: i, crs },
                new: NewSpatial { column: name, source: source_text },
            }),
            None,
        ));
    }
    let stats: Vec<ColumnStats> = schema
        .fields
        .iter()
        .zip(ranges.iter().chain(std::iter::repeat(&None)))
        .map(|(f, r)| ColumnStats {
            name: f.name.clone(),
            numeric: match (f.field_type, r) {
                (FieldType::Integer | FieldType::Number, Some((min, max))) => {
                    Some(NumericStats { min: *min, max: *max, count: rows })
                }
                _ => None,
            },
        })
        .collect();
    match detect_point_columns(&stats) {
        Detection::Found(columns) => {
            let (xi, yi) = (index(&columns.x)?, index(&columns.y)?);
            Ok((Some(points(xi, yi, columns)), None))
        }
        Detection::Absent => Ok((None, None)),
        Detection::Undecided { reason } => Ok((
            None,
            Some(format!(
                "no location: {reason}; name the columns in the metadata (\"geometry\": {{\"x\": ..., \"y\": ..., \"crs\": ...}})"
            )),
        )),
    }
}

fn points(x: usize, y: usize, columns: PointColumns) -> Plan {
    let source = format!(
        "points from the columns {} and {} ({})",
        columns.x,
        columns.y,
        if columns.crs == Crs::Hk1980 {
            "Hong Kong 1980 Grid, EPSG:2326".to_owned()
        } else {
            format!("EPSG:{}", columns.crs.epsg())
        }
    );
    Plan {
        locate: Locate::Points { x, y, columns },
        new: NewSpatial { column: GEOMETRY_COLUMN.to_owned(), source },
    }
}

fn number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) =>
        {
            #[allow(clippy::cast_precision_loss)]
            Some(*i as f64)
        }
        Value::Real(r) => Some(*r),
        _ => None,
    }
}

/// The GeoJSON type name of a geometry.
pub(crate) fn type_name(g: &Geometry) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::LineString(_) | Geometry::Line(_) => "LineString",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "Polygon",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
    }
}

impl Plan {
    /// Whether the store adds a geometry column after the schema's fields.
    pub(crate) fn derived(&self) -> bool {
        matches!(self.locate, Locate::Points { .. })
    }

    /// The field whose value the geometry replaces (a GeoJSON geometry column).
    pub(crate) fn replaces(&self) -> Option<usize> {
        match self.locate {
            Locate::Column { index, .. } => Some(index),
            Locate::Points { .. } => None,
        }
    }

    /// Locates one row: writes its WGS 84 GeoJSON into `out` (cleared first) and returns its box, or
    /// says it has none. `kind` gets the geometry's type name. Errors say what is wrong with a
    /// geometry column's value.
    pub(crate) fn locate(
        &self,
        row: &[Value<'_>],
        out: &mut String,
        kind: &mut &'static str,
    ) -> Result<Located, String> {
        out.clear();
        match &self.locate {
            Locate::Column { index, crs } => {
                let Some(Value::Text(text)) = row.get(*index) else { return Ok(Located::Nowhere) };
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("the geometry is not JSON: {e}"))?;
                let own = legacy_crs(&json).map_err(|e| e.to_string())?;
                let mut g = parse_geojson(&json).map_err(|e| e.to_string())?;
                let crs = match own {
                    Some(Crs::Epsg4326) | None => *crs,
                    Some(c) => c,
                };
                if crs != Crs::Crs84 {
                    transform(&mut g, crs, Crs::Crs84);
                }
                check_wgs84(&g).map_err(|e| e.to_string())?;
                let Some(b) = bbox(&g) else { return Ok(Located::Nowhere) };
                write_geojson(&g, DECIMALS, false, out);
                *kind = type_name(&g);
                Ok(Located::At(b))
            }
            Locate::Points { x, y, columns } => {
                let (Some(xv), Some(yv)) = (row.get(*x).and_then(number), row.get(*y).and_then(number))
                else {
                    return Ok(Located::Nowhere);
                };
                let Ok(Geometry::Point(p)) = columns.point(xv, yv) else { return Ok(Located::Nowhere) };
                out.push_str("{\"type\":\"Point\",\"coordinates\":[");
                write_number(p.x(), DECIMALS as usize, out);
                out.push(',');
                write_number(p.y(), DECIMALS as usize, out);
                out.push_str("]}");
                *kind = "Point";
                Ok(Located::At([p.x(), p.y(), p.x(), p.y()]))
            }
        }
    }
}
