//! Geometry in tile space: clipping to the buffered tile square, Douglas-Peucker simplification,
//! and rounding to the integer grid with the clean-up the vector tile specification asks for.
//!
//! **Invariant:** every function here takes and returns plain coordinate lists in tile units and
//! never panics; outputs of the clipping functions lie inside the clip square.

/// A point in tile units (x right, y down).
pub(crate) type Pt = [f64; 2];

/// A point on the tile's integer grid.
pub(crate) type IPt = [i32; 2];

/// The clip square: `min..=max` on both axes (the tile grown by the buffer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClipBox {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl ClipBox {
    #[inline]
    pub(crate) fn contains(&self, p: Pt) -> bool {
        p[0] >= self.min && p[0] <= self.max && p[1] >= self.min && p[1] <= self.max
    }
}

/// Where a list of points lies relative to the clip square.
enum Placement {
    Inside,
    Outside,
    Across,
}

fn placement(points: &[Pt], b: ClipBox) -> Placement {
    let (mut x0, mut y0, mut x1, mut y1) =
        (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for p in points {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    if x0 >= b.min && y0 >= b.min && x1 <= b.max && y1 <= b.max {
        Placement::Inside
    } else if x1 < b.min || y1 < b.min || x0 > b.max || y0 > b.max {
        Placement::Outside
    } else {
        Placement::Across
    }
}

/// Liang-Barsky: the part of segment `a`-`c` inside the square, and whether each end was cut.
fn clip_segment(a: Pt, c: Pt, b: ClipBox) -> Option<(Pt, Pt, bool, bool)> {
    let d = [c[0] - a[0], c[1] - a[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-d[0], a[0] - b.min), (d[0], b.max - a[0]), (-d[1], a[1] - b.min), (d[1], b.max - a[1])] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                if r > t1 {
                    return None;
                }
                t0 = t0.max(r);
            } else {
                if r < t0 {
                    return None;
                }
                t1 = t1.min(r);
            }
        }
    }
    let at = |t: f64| [a[0] + t * d[0], a[1] + t * d[1]];
    let start = if t0 > 0.0 { at(t0) } else { a };
    let end = if t1 < 1.0 { at(t1) } else { c };
    Some((start, end, t0 > 0.0, t1 < 1.0))
}

/// Cuts a line to the square; each run of it inside becomes one part in `out`.
pub(crate) fn clip_line(points: &[Pt], b: ClipBox, out: &mut Vec<Vec<Pt>>) {
    match placement(points, b) {
        Placement::Outside => return,
        Placement::Inside => {
            out.push(points.to_vec());
            return;
        }
        Placement::Across => {}
    }
    let mut part: Vec<Pt> = Vec::new();
    let flush = |part: &mut Vec<Pt>, out: &mut Vec<Vec<Pt>>| {
        if part.len() >= 2 {
            out.push(std::mem::take(part));
        } else {
            part.clear();
        }
    };
    for w in points.windows(2) {
        match clip_segment(w[0], w[1], b) {
            None => flush(&mut part, out),
            Some((start, end, cut_start, cut_end)) => {
                if part.is_empty() || cut_start {
                    flush(&mut part, out);
                    part.push(start);
                }
                part.push(end);
                if cut_end {
                    flush(&mut part, out);
                }
            }
        }
    }
    flush(&mut part, out);
}

/// Sutherland-Hodgman: the ring (open: no repeated closing point) clipped to the square, into
/// `out` (cleared first; empty when nothing is left).
pub(crate) fn clip_ring(ring: &[Pt], b: ClipBox, out: &mut Vec<Pt>) {
    out.clear();
    match placement(ring, b) {
        Placement::Outside => return,
        Placement::Inside => {
            out.extend_from_slice(ring);
            return;
        }
        Placement::Across => {}
    }
    let mut input: Vec<Pt> = ring.to_vec();
    // (axis, bound, keep points whose coordinate is >= bound)
    for (axis, bound, keep_above) in
        [(0, b.min, true), (0, b.max, false), (1, b.min, true), (1, b.max, false)]
    {
        out.clear();
        let Some(&last) = input.last() else { return };
        let inside = |p: Pt| if keep_above { p[axis] >= bound } else { p[axis] <= bound };
        let cross = |p: Pt, q: Pt| {
            let t = (bound - p[axis]) / (q[axis] - p[axis]);
            let other = 1 - axis;
            let mut r = [0.0; 2];
            r[axis] = bound;
            r[other] = p[other] + t * (q[other] - p[other]);
            r
        };
        let (mut prev, mut prev_in) = (last, inside(last));
        for &cur in &input {
            let cur_in = inside(cur);
            if cur_in {
                if !prev_in {
                    out.push(cross(prev, cur));
                }
                out.push(cur);
            } else if prev_in {
                out.push(cross(prev, cur));
            }
            prev = cur;
            prev_in = cur_in;
        }
        std::mem::swap(&mut input, out);
    }
    std::mem::swap(&mut input, out);
}

/// Squared distance from `p` to the segment `a`-`b` (to `a` when the segment is a point).
#[inline]
fn segment_distance_sq(p: Pt, a: Pt, b: Pt) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len_sq = dx * dx + dy * dy;
    let (mut x, mut y) = (a[0], a[1]);
    if len_sq > 0.0 {
        let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len_sq).clamp(0.0, 1.0);
        x += t * dx;
        y += t * dy;
    }
    (p[0] - x) * (p[0] - x) + (p[1] - y) * (p[1] - y)
}

/// Douglas-Peucker: marks in `keep` the points of `points` that stay at tolerance `tolerance`
/// (the first and last always stay). Iterative, so long lines cannot exhaust the stack.
fn douglas_peucker(points: &[Pt], tolerance: f64, keep: &mut Vec<bool>) {
    let n = points.len();
    keep.clear();
    keep.resize(n, tolerance <= 0.0 || n <= 2);
    if n == 0 || tolerance <= 0.0 || n <= 2 {
        return;
    }
    keep[0] = true;
    keep[n - 1] = true;
    let tol_sq = tolerance * tolerance;
    let mut stack = vec![(0usize, n - 1)];
    while let Some((first, last)) = stack.pop() {
        let (mut max, mut at) = (0.0f64, 0usize);
        for (i, &p) in points.iter().enumerate().take(last).skip(first + 1) {
            let d = segment_distance_sq(p, points[first], points[last]);
            if d > max {
                max = d;
                at = i;
            }
        }
        if max > tol_sq {
            keep[at] = true;
            if at - first > 1 {
                stack.push((first, at));
            }
            if last - at > 1 {
                stack.push((at, last));
            }
        }
    }
}

/// Reusable buffers for simplification and rounding.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    keep: Vec<bool>,
    closed: Vec<Pt>,
    pub(crate) clipped: Vec<Pt>,
    pub(crate) projected: Vec<Pt>,
    pub(crate) parts: Vec<Vec<Pt>>,
}

#[inline]
fn round(p: Pt) -> IPt {
    // Clipped coordinates lie well inside i32; `as` saturates anyway.
    [p[0].round() as i32, p[1].round() as i32]
}

/// A line simplified and rounded, without repeated points; `None` when fewer than 2 points remain.
pub(crate) fn finish_line(points: &[Pt], tolerance: f64, s: &mut Scratch) -> Option<Vec<IPt>> {
    douglas_peucker(points, tolerance, &mut s.keep);
    let mut out: Vec<IPt> = Vec::with_capacity(points.len());
    for (p, _) in points.iter().zip(&s.keep).filter(|(_, k)| **k) {
        let q = round(*p);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    (out.len() >= 2).then_some(out)
}

/// Twice the signed area by the surveyor's formula (positive: clockwise on a y-down screen).
pub(crate) fn area2(ring: &[IPt]) -> i64 {
    let Some(&last) = ring.last() else { return 0 };
    let mut prev = last;
    let mut sum = 0i64;
    for &p in ring {
        sum += i64::from(prev[0]) * i64::from(p[1]) - i64::from(p[0]) * i64::from(prev[1]);
        prev = p;
    }
    sum
}

/// The ring's points kept by `keep` (all when `keep` is `None`), rounded, without repeated points
/// (the closing one included).
fn round_ring(ring: &[Pt], keep: Option<&[bool]>, out: &mut Vec<IPt>) {
    out.clear();
    for (i, p) in ring.iter().enumerate() {
        if keep.is_some_and(|k| !k[i]) {
            continue;
        }
        let q = round(*p);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
}

/// A ring (open) simplified, rounded, cleaned and wound: positive area when `exterior`, negative
/// otherwise. A ring whose area is below the square of the tolerance is dropped; one that
/// simplification would flatten is kept unsimplified. `None` when fewer than 3 distinct points or
/// no area remain.
pub(crate) fn finish_ring(ring: &[Pt], exterior: bool, tolerance: f64, s: &mut Scratch) -> Option<Vec<IPt>> {
    let &first = ring.first()?;
    let mut out: Vec<IPt> = Vec::with_capacity(ring.len());
    let mut area = 0;
    if tolerance > 0.0 {
        let mut twice = 0.0;
        let mut prev = ring[ring.len() - 1];
        for &p in ring {
            twice += prev[0] * p[1] - p[0] * prev[1];
            prev = p;
        }
        if twice.abs() / 2.0 < tolerance * tolerance {
            return None;
        }
        s.closed.clear();
        s.closed.extend_from_slice(ring);
        s.closed.push(first);
        douglas_peucker(&s.closed, tolerance, &mut s.keep);
        round_ring(ring, Some(&s.keep), &mut out);
        area = if out.len() >= 3 { area2(&out) } else { 0 };
    }
    if area == 0 {
        round_ring(ring, None, &mut out);
        if out.len() < 3 {
            return None;
        }
        area = area2(&out);
        if area == 0 {
            return None;
        }
    }
    if (area > 0) != exterior {
        out.reverse();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: ClipBox = ClipBox { min: -64.0, max: 4160.0 };

    #[test]
    fn segments_are_cut_at_the_edges() {
        let (a, c, cut_a, cut_c) = clip_segment([-100.0, 100.0], [100.0, 100.0], B).unwrap();
        assert_eq!((a, c, cut_a, cut_c), ([-64.0, 100.0], [100.0, 100.0], true, false));
        assert!(clip_segment([-100.0, -100.0], [-100.0, 5000.0], B).is_none());
        assert!(clip_segment([-200.0, 0.0], [0.0, -200.0], B).is_none(), "misses the corner");
        let (a, c, cut_a, cut_c) = clip_segment([10.0, 10.0], [20.0, 20.0], B).unwrap();
        assert_eq!((a, c, cut_a, cut_c), ([10.0, 10.0], [20.0, 20.0], false, false));
    }

    #[test]
    fn a_line_leaving_and_coming_back_is_two_parts() {
        let line = [[0.0, 0.0], [5000.0, 0.0], [5000.0, 100.0], [0.0, 100.0]];
        let mut out = Vec::new();
        clip_line(&line, B, &mut out);
        assert_eq!(out, vec![vec![[0.0, 0.0], [4160.0, 0.0]], vec![[4160.0, 100.0], [0.0, 100.0]]]);
        out.clear();
        clip_line(&[[5000.0, 0.0], [6000.0, 0.0]], B, &mut out);
        assert!(out.is_empty());
        // A line through the tile from outside to outside keeps its middle.
        clip_line(&[[-1000.0, 50.0], [2000.0, 50.0], [9000.0, 50.0]], B, &mut out);
        assert_eq!(out, vec![vec![[-64.0, 50.0], [2000.0, 50.0], [4160.0, 50.0]]]);
    }

    #[test]
    fn a_ring_across_the_corner_is_cut() {
        let ring = [[-1000.0, -1000.0], [1000.0, -1000.0], [1000.0, 1000.0], [-1000.0, 1000.0]];
        let mut out = Vec::new();
        clip_ring(&ring, B, &mut out);
        let mut got = out.clone();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, vec![[-64.0, -64.0], [-64.0, 1000.0], [1000.0, -64.0], [1000.0, 1000.0]]);
        // A ring around the whole tile becomes the clip square.
        let big = [[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6]];
        clip_ring(&big, B, &mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|p| (p[0] == -64.0 || p[0] == 4160.0) && (p[1] == -64.0 || p[1] == 4160.0)));
        clip_ring(&[[5000.0, 0.0], [6000.0, 0.0], [6000.0, 10.0]], B, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn simplification_drops_near_points_only() {
        let line: Vec<Pt> =
            (0..=100).map(|i| [f64::from(i) * 10.0, if i % 2 == 0 { 0.0 } else { 0.5 }]).collect();
        let mut s = Scratch::default();
        assert_eq!(finish_line(&line, 1.0, &mut s).unwrap(), vec![[0, 0], [1000, 0]]);
        let zig: Vec<Pt> =
            (0..=10).map(|i| [f64::from(i) * 10.0, if i % 2 == 0 { 0.0 } else { 30.0 }]).collect();
        assert_eq!(finish_line(&zig, 1.0, &mut s).unwrap().len(), 11);
        // With no tolerance only the rounding removes points.
        let dup = [[0.1, 0.1], [0.2, 0.2], [3.0, 3.0]];
        assert_eq!(finish_line(&dup, 0.0, &mut s).unwrap(), vec![[0, 0], [3, 3]]);
        assert!(finish_line(&[[0.1, 0.1], [0.3, 0.2]], 0.0, &mut s).is_none());
    }

    #[test]
    fn rings_are_wound_and_degenerate_ones_dropped() {
        let mut s = Scratch::default();
        // Counter-clockwise on screen (negative area in y-down coordinates).
        let ccw = [[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]];
        assert!(area2(&ccw.map(round)) < 0);
        let outer = finish_ring(&ccw, true, 1.0, &mut s).unwrap();
        assert!(area2(&outer) > 0 && outer.len() == 4, "{outer:?}");
        let hole = finish_ring(&ccw, false, 1.0, &mut s).unwrap();
        assert!(area2(&hole) < 0);
        // Collapses to a line or a point after rounding.
        assert!(finish_ring(&[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]], true, 0.0, &mut s).is_none());
        assert!(finish_ring(&[[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]], true, 0.0, &mut s).is_none());
        assert!(finish_ring(&[], true, 0.0, &mut s).is_none());
        // A ring smaller than the tolerance squared is dropped.
        assert!(finish_ring(&[[0.0, 0.0], [3.0, 0.0], [3.0, 3.0], [0.0, 3.0]], true, 4.0, &mut s).is_none());
        // A small pentagon that simplification would flatten to a line stays whole.
        let pentagon: Vec<Pt> = (0..5)
            .map(|k| {
                let a = f64::from(k) / 5.0 * std::f64::consts::TAU;
                [100.0 + 6.0 * a.cos(), 100.0 + 6.0 * a.sin()]
            })
            .collect();
        assert_eq!(finish_ring(&pentagon, true, 4.0, &mut s).unwrap().len(), 5);
    }
}
