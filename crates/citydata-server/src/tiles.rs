//! Vector tiles of every spatial collection: `/tiles/{collection}/{z}/{x}/{y}.mvt` (Mapbox Vector
//! Tile 2.1, one layer named after the collection, every property of the feature) and the
//! collection's TileJSON 3.0 at `/tiles/{collection}.json`.
//!
//! A tile's rows come from the spatial index (the box of the tile grown by its buffer); the tile
//! writer projects, clips, simplifies for the zoom level and encodes them. The ETag names the
//! collection's current version and the tile, so a browser revalidates with no query at all and
//! gets a 304 until the data is published again. A tile with no feature is a 204.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use citydata_geo::tiles::{PropValue, TileBuilder, TileId, DEFAULT_BUFFER, DEFAULT_EXTENT};
use citydata_model::{FieldType, Value};
use citydata_store::{Head, RowSink, StoreError};
use serde_json::json;

use crate::extract::Path;
use crate::ogc::{base_url, blocking, find_collection, strict_params};
use crate::{ApiError, AppState};

/// The most features one tile takes; beyond it the tile is cut (and says so in a header).
const MAX_FEATURES: usize = 50_000;

/// Builds the tile from the rows the store sends.
struct TileSink {
    builder: TileBuilder,
    layer: String,
    names: Vec<String>,
    types: Vec<FieldType>,
    features: usize,
}

impl RowSink for TileSink {
    fn head(&mut self, head: &Head) -> Result<(), StoreError> {
        self.names = head.columns.iter().map(|c| c.name.clone()).collect();
        self.types = head.columns.iter().map(|c| c.field_type).collect();
        Ok(())
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        let Some(Value::Text(text)) = values.get(1) else { return Ok(()) };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else { return Ok(()) };
        let Ok(geometry) = citydata_geo::parse_geojson(&json) else { return Ok(()) };
        let id = match values.first() {
            Some(Value::Int(i)) => u64::try_from(*i).ok(),
            _ => None,
        };
        let props = values.iter().enumerate().skip(2).filter_map(|(i, v)| {
            let p = match (v, self.types[i]) {
                (Value::Null, _) => return None,
                (Value::Int(n), FieldType::Boolean) => PropValue::Bool(*n != 0),
                (Value::Int(n), _) => PropValue::Int(*n),
                (Value::Real(r), _) => PropValue::Double(*r),
                (Value::Text(t), _) => PropValue::String(t.to_string()),
            };
            Some((self.names[i].as_str(), p))
        });
        if self.builder.layer(&self.layer).add(&geometry, id, props) {
            self.features += 1;
        }
        Ok(())
    }
}

/// `GET /tiles/{collection}/{z}/{x}/{y}.mvt`
pub(crate) async fn tile(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((collection, z, x, y)): Path<(String, String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    strict_params(raw.as_deref(), &[])?;
    let Some(y) = y.strip_suffix(".mvt").or_else(|| y.strip_suffix(".pbf")) else {
        return Err(ApiError::NotFound(format!(
            "tile {z}/{x}/{y}: tiles end in .mvt, as in /tiles/{collection}/{z}/{x}/{y}.mvt"
        )));
    };
    let tile = TileId::parse(&z, &x, y).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let inm = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    blocking(move || {
        let c = find_collection(&s, &collection)?;
        let etag = format!("\"{}-{}-{}\"", c.res.id, c.res.version, tile);
        let cache = |mut resp: Response| {
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60, must-revalidate"));
            resp
        };
        if inm.as_deref().is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
            return Ok(cache(StatusCode::NOT_MODIFIED.into_response()));
        }
        let builder = TileBuilder::new(tile, DEFAULT_EXTENT, DEFAULT_BUFFER)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let query_box = builder.query_bounds_wgs84();
        let mut sink =
            TileSink { builder, layer: c.id.clone(), names: Vec::new(), types: Vec::new(), features: 0 };
        let cut = s.store.rows_in_box(&c.res.id, query_box, MAX_FEATURES, &mut sink)?;
        if sink.builder.is_empty() {
            return Ok(cache(StatusCode::NO_CONTENT.into_response()));
        }
        let bytes = sink.builder.finish();
        let mut resp = (StatusCode::OK, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.mapbox-vector-tile"));
        if cut {
            h.insert("x-tile-truncated", HeaderValue::from_static("true"));
        }
        Ok(cache(resp))
    })
    .await
}

/// `GET /tiles/{collection}.json`: the collection's TileJSON.
pub(crate) async fn tilejson(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    strict_params(raw.as_deref(), &[])?;
    let Some(id) = name.strip_suffix(".json").map(str::to_owned) else {
        return Err(ApiError::NotFound(format!(
            "/tiles/{name}: a collection's TileJSON is /tiles/{{collection}}.json; its tiles /tiles/{{collection}}/{{z}}/{{x}}/{{y}}.mvt"
        )));
    };
    let base = base_url(&headers);
    let c = blocking(move || find_collection(&s, &id)).await?;
    let fields: serde_json::Map<String, serde_json::Value> = c
        .properties()
        .map(|f| {
            let t = match f.field_type {
                FieldType::Integer | FieldType::Number => "Number",
                FieldType::Boolean => "Boolean",
                _ => "String",
            };
            (f.name.clone(), json!(t))
        })
        .collect();
    let bounds = c.res.spatial.extent.unwrap_or([-180.0, -85.051_128_78, 180.0, 85.051_128_78]);
    let center = [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, 12.0];
    let body = json!({
        "tilejson": "3.0.0",
        "name": c.title(),
        "description": c.description(),
        "attribution": c.res.meta.source,
        "version": c.res.version.to_string(),
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", c.id)],
        "minzoom": 0,
        "maxzoom": citydata_geo::tiles::MAX_ZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": [{ "id": c.id, "description": c.description(), "minzoom": 0, "maxzoom": citydata_geo::tiles::MAX_ZOOM, "fields": fields }],
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
