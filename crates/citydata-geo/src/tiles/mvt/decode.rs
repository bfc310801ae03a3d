//! A vector tile decoder for the tests, written from the specification independently of the
//! writer: protobuf fields read by wire type, geometry commands replayed into absolute points.

/// A decoded property value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    String(String),
    Float(f32),
    Double(f64),
    Int(i64),
    Uint(u64),
    Sint(i64),
    Bool(bool),
}

/// A decoded feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Feature {
    pub(crate) id: Option<u64>,
    pub(crate) tags: Vec<u32>,
    pub(crate) kind: u32,
    pub(crate) geometry: Vec<u32>,
}

/// A decoded layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) extent: u64,
    pub(crate) keys: Vec<String>,
    pub(crate) values: Vec<Value>,
    pub(crate) features: Vec<Feature>,
}

/// One path of a decoded geometry: its points and whether a ClosePath ended it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub(crate) points: Vec<[i32; 2]>,
    pub(crate) closed: bool,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.buf[self.at];
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
        }
        panic!("varint too long at {}", self.at);
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = self.varint() as usize;
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        s
    }

    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let s: [u8; N] = self.buf[self.at..self.at + N].try_into().unwrap();
        self.at += N;
        s
    }

    fn key(&mut self) -> (u64, u64) {
        let k = self.varint();
        (k >> 3, k & 7)
    }

    fn skip(&mut self, wire: u64) {
        match wire {
            0 => {
                self.varint();
            }
            1 => self.at += 8,
            2 => {
                self.bytes();
            }
            5 => self.at += 4,
            w => panic!("wire type {w}"),
        }
    }

    fn packed(&mut self) -> Vec<u32> {
        let mut r = Reader::new(self.bytes());
        let mut out = Vec::new();
        while !r.done() {
            out.push(u32::try_from(r.varint()).unwrap());
        }
        out
    }
}

/// Decodes a whole tile into its layers.
pub(crate) fn tile(bytes: &[u8]) -> Vec<Layer> {
    let mut r = Reader::new(bytes);
    let mut layers = Vec::new();
    while !r.done() {
        match r.key() {
            (3, 2) => layers.push(layer(r.bytes())),
            (_, w) => r.skip(w),
        }
    }
    layers
}

fn layer(bytes: &[u8]) -> Layer {
    let mut r = Reader::new(bytes);
    let mut l = Layer {
        version: 1,
        name: String::new(),
        extent: 4096,
        keys: vec![],
        values: vec![],
        features: vec![],
    };
    while !r.done() {
        match r.key() {
            (15, 0) => l.version = r.varint(),
            (1, 2) => l.name = String::from_utf8(r.bytes().to_vec()).unwrap(),
            (2, 2) => l.features.push(feature(r.bytes())),
            (3, 2) => l.keys.push(String::from_utf8(r.bytes().to_vec()).unwrap()),
            (4, 2) => l.values.push(value(r.bytes())),
            (5, 0) => l.extent = r.varint(),
            (_, w) => r.skip(w),
        }
    }
    l
}

fn feature(bytes: &[u8]) -> Feature {
    let mut r = Reader::new(bytes);
    let mut f = Feature { id: None, tags: vec![], kind: 0, geometry: vec![] };
    while !r.done() {
        match r.key() {
            (1, 0) => f.id = Some(r.varint()),
            (2, 2) => f.tags.extend(r.packed()),
            (3, 0) => f.kind = u32::try_from(r.varint()).unwrap(),
            (4, 2) => f.geometry.extend(r.packed()),
            (_, w) => r.skip(w),
        }
    }
    f
}

fn value(bytes: &[u8]) -> Value {
    let mut r = Reader::new(bytes);
    let mut v = None;
    while !r.done() {
        v = Some(match r.key() {
            (1, 2) => Value::String(String::from_utf8(r.bytes().to_vec()).unwrap()),
            (2, 5) => Value::Float(f32::from_le_bytes(r.fixed())),
            (3, 1) => Value::Double(f64::from_le_bytes(r.fixed())),
            (4, 0) => Value::Int(r.varint() as i64),
            (5, 0) => Value::Uint(r.varint()),
            (6, 0) => {
                let n = r.varint();
                Value::Sint((n >> 1) as i64 ^ -((n & 1) as i64))
            }
            (7, 0) => Value::Bool(r.varint() != 0),
            k => panic!("unexpected value field {k:?}"),
        });
    }
    v.expect("a value message holds one value")
}

/// Replays a command stream into paths (each MoveTo starts one; a point feature's MoveTo with count
/// n gives n one-point paths). Panics on anything the specification forbids.
pub(crate) fn geometry(commands: &[u32]) -> Vec<Path> {
    let mut paths: Vec<Path> = Vec::new();
    let (mut x, mut y) = (0i32, 0i32);
    let mut i = 0;
    let unzig = |n: u32| ((n >> 1) as i32) ^ -((n & 1) as i32);
    while i < commands.len() {
        let (id, count) = (commands[i] & 7, (commands[i] >> 3) as usize);
        i += 1;
        match id {
            1 | 2 => {
                assert!(count > 0, "command {id} with count 0");
                for _ in 0..count {
                    x += unzig(commands[i]);
                    y += unzig(commands[i + 1]);
                    i += 2;
                    if id == 1 {
                        paths.push(Path { points: vec![[x, y]], closed: false });
                    } else {
                        paths.last_mut().expect("LineTo before MoveTo").points.push([x, y]);
                    }
                }
            }
            7 => {
                assert_eq!(count, 1, "ClosePath count");
                paths.last_mut().expect("ClosePath before MoveTo").closed = true;
            }
            other => panic!("unknown command {other}"),
        }
    }
    paths
}

/// A feature's properties, with keys and values looked up.
pub(crate) fn properties(layer: &Layer, f: &Feature) -> Vec<(String, Value)> {
    assert_eq!(f.tags.len() % 2, 0, "odd tag count");
    f.tags
        .chunks(2)
        .map(|kv| (layer.keys[kv[0] as usize].clone(), layer.values[kv[1] as usize].clone()))
        .collect()
}
