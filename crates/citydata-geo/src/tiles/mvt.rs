//! The Mapbox Vector Tile 2.1 writer: layers of features with deduplicated keys and values, each
//! feature's geometry put through the tile pipeline (see the parent module) and written as
//! MoveTo/LineTo/ClosePath commands with zigzag deltas, the whole tile as protobuf written by hand.
//!
//! **Invariant:** a layer's `keys` and `values` hold each entry once, and every tag of a feature
//! indexes into them; a feature is written only with a non-empty geometry.

use std::collections::HashMap;

use geo_types::{Coord, Geometry, LineString, Polygon};

use super::grid::{Projector, TileId};
use super::shape::{self, ClipBox, IPt, Scratch};
use super::TileError;

/// The usual tile extent: 4096 units along each side.
pub const DEFAULT_EXTENT: u32 = 4096;

/// The usual buffer around the tile, in tile units (64 of 4096: 4 pixels of a 256-pixel tile), so
/// that lines and polygon edges do not show seams and symbols at the edge are not cut.
pub const DEFAULT_BUFFER: u32 = 64;

/// The usual simplification tolerance, in pixels of a 256-pixel tile (a quarter pixel: 4 units of
/// a 4096 extent): below what a map shows, even at 512 pixels a tile on a high-density screen.
pub const DEFAULT_TOLERANCE: f64 = 0.25;

/// Collections nested deeper than this are not followed (their parts are left out).
const MAX_NESTING: u32 = 16;

/// The most points one MoveTo/LineTo command may carry (its count has 29 bits).
const MAX_COMMAND_COUNT: usize = (1 << 29) - 1;

/// A property value of a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// Text.
    String(String),
    /// A signed integer (written as the protobuf `sint_value`).
    Int(i64),
    /// An unsigned integer (`uint_value`).
    Uint(u64),
    /// A floating-point number (`double_value`).
    Double(f64),
    /// A boolean (`bool_value`).
    Bool(bool),
}

impl From<&str> for PropValue {
    fn from(v: &str) -> Self {
        PropValue::String(v.to_owned())
    }
}
impl From<String> for PropValue {
    fn from(v: String) -> Self {
        PropValue::String(v)
    }
}
impl From<i64> for PropValue {
    fn from(v: i64) -> Self {
        PropValue::Int(v)
    }
}
impl From<i32> for PropValue {
    fn from(v: i32) -> Self {
        PropValue::Int(i64::from(v))
    }
}
impl From<u64> for PropValue {
    fn from(v: u64) -> Self {
        PropValue::Uint(v)
    }
}
impl From<u32> for PropValue {
    fn from(v: u32) -> Self {
        PropValue::Uint(u64::from(v))
    }
}
impl From<f64> for PropValue {
    fn from(v: f64) -> Self {
        PropValue::Double(v)
    }
}
impl From<bool> for PropValue {
    fn from(v: bool) -> Self {
        PropValue::Bool(v)
    }
}

/// A value as the dedupe table knows it (doubles by their bits, so NaN finds itself).
#[derive(Debug, PartialEq, Eq, Hash)]
enum ValueKey {
    String(String),
    Int(i64),
    Uint(u64),
    Double(u64),
    Bool(bool),
}

impl From<PropValue> for ValueKey {
    fn from(v: PropValue) -> Self {
        match v {
            PropValue::String(s) => ValueKey::String(s),
            PropValue::Int(i) => ValueKey::Int(i),
            PropValue::Uint(u) => ValueKey::Uint(u),
            PropValue::Double(d) => ValueKey::Double(d.to_bits()),
            PropValue::Bool(b) => ValueKey::Bool(b),
        }
    }
}

// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from((field << 3) | wire));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_packed(buf: &mut Vec<u8>, field: u32, values: &[u32]) {
    put_key(buf, field, LEN);
    put_varint(buf, values.iter().map(|&v| varint_len(u64::from(v)) as u64).sum());
    for &v in values {
        put_varint(buf, u64::from(v));
    }
}

/// The encoded protobuf `Value` message of a value.
fn encode_value(v: &ValueKey, buf: &mut Vec<u8>) {
    match v {
        ValueKey::String(s) => put_bytes(buf, 1, s.as_bytes()),
        ValueKey::Double(bits) => {
            put_key(buf, 3, FIXED64);
            buf.extend_from_slice(&bits.to_le_bytes());
        }
        ValueKey::Int(i) => {
            put_key(buf, 6, VARINT);
            put_varint(buf, ((i << 1) ^ (i >> 63)) as u64);
        }
        ValueKey::Uint(u) => {
            put_key(buf, 5, VARINT);
            put_varint(buf, *u);
        }
        ValueKey::Bool(b) => {
            put_key(buf, 7, VARINT);
            put_varint(buf, u64::from(*b));
        }
    }
}

#[inline]
fn zigzag(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

#[inline]
fn command(id: u32, count: usize) -> u32 {
    (id & 0x7) | ((count as u32) << 3)
}

const MOVE_TO: u32 = 1;
const LINE_TO: u32 = 2;
const CLOSE_PATH: u32 = 7;

// Geometry types of the specification.
const POINT: u32 = 1;
const LINESTRING: u32 = 2;
const POLYGON: u32 = 3;

/// The geometry command stream of one feature, with its cursor.
struct Commands<'a> {
    out: &'a mut Vec<u32>,
    cursor: IPt,
}

impl Commands<'_> {
    fn params(&mut self, p: IPt) {
        self.out.push(zigzag(p[0].wrapping_sub(self.cursor[0])));
        self.out.push(zigzag(p[1].wrapping_sub(self.cursor[1])));
        self.cursor = p;
    }

    fn path(&mut self, points: &[IPt], close: bool) {
        let Some((&first, rest)) = points.split_first() else { return };
        self.out.push(command(MOVE_TO, 1));
        self.params(first);
        self.out.push(command(LINE_TO, rest.len()));
        for &p in rest {
            self.params(p);
        }
        if close {
            self.out.push(command(CLOSE_PATH, 1));
        }
    }
}

/// What is left of one input feature, per geometry type, on the tile grid.
#[derive(Debug, Default)]
struct Parts {
    points: Vec<IPt>,
    lines: Vec<Vec<IPt>>,
    /// Polygons in order: each exterior ring followed by its holes.
    rings: Vec<Vec<IPt>>,
}

/// How a layer turns WGS 84 geometry into tile geometry.
#[derive(Debug, Clone, Copy)]
struct Frame {
    projector: Projector,
    clip: ClipBox,
    /// Douglas-Peucker tolerance in tile units.
    tolerance: f64,
}

/// One layer of a tile being built; get it from [`TileBuilder::layer`].
#[derive(Debug)]
pub struct LayerBuilder {
    name: String,
    extent: u32,
    frame: Frame,
    /// The encoded `Feature` fields of the layer (field 2 of `Layer`, each with its key and length).
    features: Vec<u8>,
    feature_count: usize,
    keys: Vec<String>,
    key_index: HashMap<String, u32>,
    values: Vec<u8>,
    value_index: HashMap<ValueKey, u32>,
    scratch: Scratch,
    commands: Vec<u32>,
    tags: Vec<u32>,
    /// Per key, the mark of the last feature that used it (to leave out repeated keys).
    key_marks: Vec<u32>,
    feature_mark: u32,
    parts: Parts,
    feature: Vec<u8>,
}

impl LayerBuilder {
    fn new(name: &str, extent: u32, frame: Frame) -> LayerBuilder {
        LayerBuilder {
            name: name.to_owned(),
            extent,
            frame,
            features: Vec::new(),
            feature_count: 0,
            keys: Vec::new(),
            key_index: HashMap::new(),
            values: Vec::new(),
            value_index: HashMap::new(),
            scratch: Scratch::default(),
            commands: Vec::new(),
            tags: Vec::new(),
            key_marks: Vec::new(),
            feature_mark: 0,
            parts: Parts::default(),
            feature: Vec::new(),
        }
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many features have been written to the layer (a geometry collection may write up to three).
    pub fn len(&self) -> usize {
        self.feature_count
    }

    /// Whether no feature has been written to the layer.
    pub fn is_empty(&self) -> bool {
        self.feature_count == 0
    }

    /// Adds one feature: `geometry` in WGS 84 (x longitude, y latitude), an optional `id`, and its
    /// properties (a key given again is left out). Returns whether
    /// anything of it reached the tile; nothing is written when the whole geometry falls outside
    /// the buffered tile or vanishes at this zoom level.
    pub fn add<'k>(
        &mut self,
        geometry: &Geometry<f64>,
        id: Option<u64>,
        properties: impl IntoIterator<Item = (&'k str, PropValue)>,
    ) -> bool {
        let mut parts = std::mem::take(&mut self.parts);
        parts.points.clear();
        parts.lines.clear();
        parts.rings.clear();
        self.collect(geometry, &mut parts, 0);
        let written = !(parts.points.is_empty() && parts.lines.is_empty() && parts.rings.is_empty());
        if written {
            self.tags(properties);
            self.write_parts(&parts, id);
        }
        self.parts = parts;
        written
    }

    /// The feature's tags from its properties; a key given again is left out (the specification
    /// allows each key once per feature).
    fn tags<'k>(&mut self, properties: impl IntoIterator<Item = (&'k str, PropValue)>) {
        self.tags.clear();
        self.feature_mark = self.feature_mark.wrapping_add(1);
        if self.feature_mark == 0 {
            self.key_marks.fill(0);
            self.feature_mark = 1;
        }
        for (key, value) in properties {
            let k = self.key(key);
            let mark = &mut self.key_marks[k as usize];
            if *mark == self.feature_mark {
                continue;
            }
            *mark = self.feature_mark;
            let v = self.value(value);
            self.tags.push(k);
            self.tags.push(v);
        }
    }

    fn write_parts(&mut self, parts: &Parts, id: Option<u64>) {
        if !parts.points.is_empty() {
            self.commands.clear();
            self.commands.push(command(MOVE_TO, parts.points.len()));
            let mut c = Commands { out: &mut self.commands, cursor: [0, 0] };
            for &p in &parts.points {
                c.params(p);
            }
            self.write_feature(id, POINT);
        }
        if !parts.lines.is_empty() {
            self.commands.clear();
            let mut c = Commands { out: &mut self.commands, cursor: [0, 0] };
            for line in &parts.lines {
                c.path(line, false);
            }
            self.write_feature(id, LINESTRING);
        }
        if !parts.rings.is_empty() {
            self.commands.clear();
            let mut c = Commands { out: &mut self.commands, cursor: [0, 0] };
            for ring in &parts.rings {
                c.path(ring, true);
            }
            self.write_feature(id, POLYGON);
        }
    }

    fn key(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.key_index.get(key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(key.to_owned());
        self.key_marks.push(0);
        self.key_index.insert(key.to_owned(), i);
        i
    }

    fn value(&mut self, value: PropValue) -> u32 {
        let key = ValueKey::from(value);
        if let Some(&i) = self.value_index.get(&key) {
            return i;
        }
        let i = self.value_index.len() as u32;
        let mut message = Vec::new();
        encode_value(&key, &mut message);
        put_bytes(&mut self.values, 4, &message);
        self.value_index.insert(key, i);
        i
    }

    fn write_feature(&mut self, id: Option<u64>, kind: u32) {
        let f = &mut self.feature;
        f.clear();
        if let Some(id) = id {
            put_key(f, 1, VARINT);
            put_varint(f, id);
        }
        if !self.tags.is_empty() {
            put_packed(f, 2, &self.tags);
        }
        put_key(f, 3, VARINT);
        put_varint(f, u64::from(kind));
        put_packed(f, 4, &self.commands);
        put_bytes(&mut self.features, 2, f);
        self.feature_count += 1;
    }

    /// Projects a WGS 84 path into tile units in `scratch.projected`; false if a coordinate is not
    /// finite. A repeated closing point is left out when `ring`.
    fn project(&mut self, coords: &[Coord<f64>], ring: bool) -> bool {
        let coords = match coords {
            [first, .., last] if ring && first == last => &coords[..coords.len() - 1],
            _ => coords,
        };
        let out = &mut self.scratch.projected;
        out.clear();
        for c in coords {
            match self.frame.projector.project(c.x, c.y) {
                Some(p) => out.push(p),
                None => return false,
            }
        }
        true
    }

    fn collect(&mut self, geometry: &Geometry<f64>, parts: &mut Parts, depth: u32) {
        match geometry {
            Geometry::Point(p) => self.point(p.0, parts),
            Geometry::MultiPoint(mp) => mp.0.iter().for_each(|p| self.point(p.0, parts)),
            Geometry::Line(l) => self.line(&[l.start, l.end], parts),
            Geometry::LineString(ls) => self.line(&ls.0, parts),
            Geometry::MultiLineString(mls) => mls.0.iter().for_each(|ls| self.line(&ls.0, parts)),
            Geometry::Polygon(p) => self.polygon(p, parts),
            Geometry::MultiPolygon(mp) => mp.0.iter().for_each(|p| self.polygon(p, parts)),
            Geometry::Rect(r) => self.polygon(&r.to_polygon(), parts),
            Geometry::Triangle(t) => self.polygon(&t.to_polygon(), parts),
            Geometry::GeometryCollection(gc) => {
                if depth < MAX_NESTING {
                    gc.0.iter().for_each(|g| self.collect(g, parts, depth + 1));
                }
            }
        }
    }

    fn point(&mut self, c: Coord<f64>, parts: &mut Parts) {
        if let Some(p) = self.frame.projector.project(c.x, c.y) {
            if self.frame.clip.contains(p) && parts.points.len() < MAX_COMMAND_COUNT {
                parts.points.push([p[0].round() as i32, p[1].round() as i32]);
            }
        }
    }

    fn line(&mut self, coords: &[Coord<f64>], parts: &mut Parts) {
        if coords.len() < 2 || !self.project(coords, false) {
            return;
        }
        let mut clipped = std::mem::take(&mut self.scratch.parts);
        clipped.clear();
        shape::clip_line(&self.scratch.projected, self.frame.clip, &mut clipped);
        for part in &clipped {
            if let Some(line) = shape::finish_line(part, self.frame.tolerance, &mut self.scratch) {
                if line.len() <= MAX_COMMAND_COUNT {
                    parts.lines.push(line);
                }
            }
        }
        self.scratch.parts = clipped;
    }

    /// One ring clipped, simplified and wound; `None` when nothing of it is left.
    fn ring(&mut self, ring: &LineString<f64>, exterior: bool) -> Option<Vec<IPt>> {
        if ring.0.len() < 3 || !self.project(&ring.0, true) {
            return None;
        }
        let mut clipped = std::mem::take(&mut self.scratch.clipped);
        shape::clip_ring(&self.scratch.projected, self.frame.clip, &mut clipped);
        let done = shape::finish_ring(&clipped, exterior, self.frame.tolerance, &mut self.scratch);
        self.scratch.clipped = clipped;
        done.filter(|r| r.len() <= MAX_COMMAND_COUNT)
    }

    fn polygon(&mut self, polygon: &Polygon<f64>, parts: &mut Parts) {
        let Some(exterior) = self.ring(polygon.exterior(), true) else { return };
        parts.rings.push(exterior);
        for hole in polygon.interiors() {
            if let Some(hole) = self.ring(hole, false) {
                parts.rings.push(hole);
            }
        }
    }

    /// The encoded `Layer` message.
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, 1, self.name.as_bytes());
        out.extend_from_slice(&self.features);
        for key in &self.keys {
            put_bytes(out, 3, key.as_bytes());
        }
        out.extend_from_slice(&self.values);
        put_key(out, 5, VARINT);
        put_varint(out, u64::from(self.extent));
        put_key(out, 15, VARINT);
        put_varint(out, 2);
    }
}

/// Builds one vector tile: named layers of features, encoded by [`TileBuilder::finish`].
#[derive(Debug)]
pub struct TileBuilder {
    tile: TileId,
    extent: u32,
    buffer: u32,
    tolerance: f64,
    layers: Vec<LayerBuilder>,
}

impl TileBuilder {
    /// A builder for `tile`, with `extent` units along each side of the tile (1..=65536; usually
    /// [`DEFAULT_EXTENT`]) and geometry kept up to `buffer` units outside it (at most the extent;
    /// usually [`DEFAULT_BUFFER`]), simplified at [`DEFAULT_TOLERANCE`].
    pub fn new(tile: TileId, extent: u32, buffer: u32) -> Result<TileBuilder, TileError> {
        if extent == 0 || extent > 65_536 || buffer > extent {
            return Err(TileError::Extent { extent, buffer });
        }
        Ok(TileBuilder { tile, extent, buffer, tolerance: DEFAULT_TOLERANCE, layers: Vec::new() })
    }

    /// The same builder simplifying at `pixels` (of a 256-pixel tile) instead; 0 turns
    /// simplification off (negative or non-finite values count as 0). Applies to layers made after.
    pub fn with_tolerance(mut self, pixels: f64) -> TileBuilder {
        self.tolerance = if pixels.is_finite() && pixels > 0.0 { pixels } else { 0.0 };
        self
    }

    /// The tile being built.
    pub fn tile(&self) -> TileId {
        self.tile
    }

    /// The WGS 84 box (`[min lon, min lat, max lon, max lat]`) whose features can reach this tile,
    /// buffer included: the box to query the spatial index with.
    pub fn query_bounds_wgs84(&self) -> [f64; 4] {
        self.tile.query_bounds_wgs84(self.buffer, self.extent)
    }

    /// The layer called `name`, made empty on first use. Layers are written in the order first used.
    pub fn layer(&mut self, name: &str) -> &mut LayerBuilder {
        let at = match self.layers.iter().position(|l| l.name == name) {
            Some(at) => at,
            None => {
                let extent = f64::from(self.extent);
                let frame = Frame {
                    projector: Projector::new(self.tile, self.extent),
                    clip: ClipBox { min: -f64::from(self.buffer), max: extent + f64::from(self.buffer) },
                    tolerance: self.tolerance * extent / 256.0,
                };
                self.layers.push(LayerBuilder::new(name, self.extent, frame));
                self.layers.len() - 1
            }
        };
        &mut self.layers[at]
    }

    /// Whether no layer has a feature (the encoded tile would be empty).
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(LayerBuilder::is_empty)
    }

    /// The tile as MVT protobuf bytes (specification 2.1). Layers without features are left out,
    /// so an empty tile is zero bytes.
    pub fn finish(self) -> Vec<u8> {
        let mut tile = Vec::new();
        let mut layer = Vec::new();
        for l in self.layers.iter().filter(|l| !l.is_empty()) {
            layer.clear();
            l.encode(&mut layer);
            put_bytes(&mut tile, 3, &layer);
        }
        tile
    }
}

#[cfg(test)]
pub(crate) mod decode;

#[cfg(test)]
mod tests;
