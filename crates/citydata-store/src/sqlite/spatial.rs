//! Spatial SQL on SQLite: the functions that spatial conditions call for their exact test after the
//! R*Tree prefilter, and the rows of a map tile.
//!
//! - `cd_relate(geometry, other, op)`: 1 when the row's WGS 84 GeoJSON geometry stands in the
//!   relation `op` (`intersects`, `disjoint`, `within`, `contains`, `touches`, `crosses`,
//!   `overlaps`, `equals`) to `other`, else 0; NULL when the row has no geometry. `other` is parsed
//!   once per statement (SQLite's auxiliary data), not once per row.
//! - `cd_distance_m(geometry, lon, lat)`: metres from the point to the geometry; NULL without one.
//!
//! Both are deterministic and innocuous (they read only their arguments), so the user-SQL sandbox
//! may allow them too.

use std::sync::Arc;

use citydata_geo::geometry::{distance_m, parse_geojson, relate, Geometry, SpatialOp};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};

use super::query::current_table;
use crate::query::{Column, Head, RowSink};
use crate::{quote_ident, Result, StoreError};

fn parse(text: &str) -> std::result::Result<Geometry, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not GeoJSON: {e}"))?;
    parse_geojson(&v).map_err(|e| e.to_string())
}

fn user_error(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

/// The row's geometry, or `None` when it has none.
fn row_geometry(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<Geometry>> {
    match ctx.get_raw(i) {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => {
            let t = std::str::from_utf8(t).map_err(|e| user_error(e.to_string()))?;
            parse(t).map(Some).map_err(|e| user_error(format!("a stored geometry is invalid: {e}")))
        }
        _ => Err(user_error("a geometry is GeoJSON text".into())),
    }
}

/// Adds the spatial functions to `conn`.
pub(super) fn register(conn: &Connection) -> Result<()> {
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("cd_relate", 3, flags, |ctx| {
        let Some(row) = row_geometry(ctx, 0)? else { return Ok(None) };
        let other: Arc<Geometry> =
            ctx.get_or_create_aux(1, |v| -> std::result::Result<Geometry, String> {
                match v {
                    ValueRef::Text(t) => parse(std::str::from_utf8(t).map_err(|e| e.to_string())?),
                    _ => Err("the other geometry is GeoJSON text".into()),
                }
            })?;
        let op_name: String = ctx.get(2)?;
        let op = SpatialOp::from_name(&op_name)
            .ok_or_else(|| user_error(format!("unknown relation {op_name:?}")))?;
        Ok(Some(i64::from(relate(&row, &other, op))))
    })?;
    conn.create_scalar_function("cd_distance_m", 3, flags, |ctx| {
        let Some(row) = row_geometry(ctx, 0)? else { return Ok(None) };
        let lon: f64 = ctx.get(1)?;
        let lat: f64 = ctx.get(2)?;
        Ok(Some(distance_m(lon, lat, &row)))
    })?;
    Ok(())
}

/// Sends to `sink` the rows of resource `id` whose bounding box meets `bbox` (`[min lon, min lat,
/// max lon, max lat]`): `_id`, the geometry, then the schema's other fields; at most `limit` rows,
/// in `_id` order. Returns whether rows were left out by the limit. The index decides, no exact
/// test: a tile clips what it gets.
pub(super) fn rows_in_box(
    c: &Connection,
    id: &str,
    bbox: [f64; 4],
    limit: usize,
    sink: &mut dyn RowSink,
) -> Result<bool> {
    let table = current_table(c, id)?.ok_or_else(|| StoreError::NotFound(format!("resource {id}")))?;
    let Some(spatial) = table.spatial else {
        return Err(StoreError::Invalid(format!("resource {id} has no geometry")));
    };
    let mut columns: Vec<Column> = Vec::with_capacity(table.columns.len());
    let geometry = table
        .columns
        .iter()
        .find(|c| c.name == spatial.column)
        .ok_or_else(|| StoreError::Database(format!("resource {id} lacks its geometry column")))?;
    columns.push(table.columns[0].clone());
    columns.push(geometry.clone());
    columns.extend(table.columns.iter().skip(1).filter(|c| c.name != spatial.column).cloned());
    let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE \"_id\" IN (SELECT id FROM {} WHERE minx <= ?3 AND maxx >= ?1 AND miny <= ?4 AND maxy >= ?2)
         ORDER BY \"_id\" LIMIT ?5",
        names.join(", "),
        quote_ident(id),
        quote_ident(&super::geo_table(id)),
    );
    sink.head(&Head { columns, total: None, facets: Vec::new() })?;
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![
        bbox[0],
        bbox[1],
        bbox[2],
        bbox[3],
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
    ])?;
    let width = names.len();
    let mut n = 0usize;
    while let Some(r) = rows.next()? {
        if n == limit {
            return Ok(true);
        }
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(super::query::cell(r.get_ref(i)?));
        }
        sink.row(&values)?;
        n += 1;
    }
    Ok(false)
}
