//! Geospatial indexes as Redis keeps them in a sorted set: a point's score is its 52-bit
//! geohash (longitude and latitude interleaved, 26 bits each), and a search walks the score
//! ranges of the nine geohash boxes around its centre, then keeps the points inside its
//! circle or rectangle.
//!
//! Every step follows Redis 7.0's `geohash.c`, `geohash_helper.c` and `geo.c` in the same
//! floating-point operations and order, because the replies are compared with Redis's byte
//! for byte: which boxes are searched decides which points are found and in what order, and
//! the printed distances and coordinates come from the same doubles.

use crate::number::format_f64_exact;

/// Bits per coordinate in a stored score (26 × 2 = 52: a double holds it exactly).
const STEP_MAX: u8 = 26;
/// Latitudes beyond these cannot be geocoded (the limits of EPSG:3785).
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

/// Earth's quadratic mean radius for WGS-84, in metres, as Redis uses it.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// The alphabet of standard geohash strings (GEOHASH).
const GEOALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash of `step` bits per coordinate, latitude bits in the even positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hash {
    bits: u64,
    step: u8,
}

#[derive(Clone, Copy, Debug)]
struct Range {
    min: f64,
    max: f64,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The rectangle a hash stands for.
#[derive(Clone, Copy, Debug)]
struct Area {
    longitude: Range,
    latitude: Range,
}

/// Interleaves two 32-bit numbers: `lat` in the even bits, `lon` in the odd ones.
fn interleave(lat: u32, lon: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(lat), u64::from(lon));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// The inverse of [`interleave`]: latitude in the low 32 bits, longitude in the high ones.
fn deinterleave(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Hash> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(Hash {
        bits: interleave(lat_offset as u32, long_offset as u32),
        step,
    })
}

fn decode(hash: Hash) -> Area {
    let separated = deinterleave(hash.bits);
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let long_scale = LONG_RANGE.max - LONG_RANGE.min;
    let ilato = separated as u32;
    let ilono = (separated >> 32) as u32;
    let cells = (1u64 << hash.step) as f64;
    let edge = |range: Range, scale: f64, i: u32| range.min + (f64::from(i) / cells) * scale;
    Area {
        latitude: Range {
            min: edge(LAT_RANGE, lat_scale, ilato),
            max: edge(LAT_RANGE, lat_scale, ilato.wrapping_add(1)),
        },
        longitude: Range {
            min: edge(LONG_RANGE, long_scale, ilono),
            max: edge(LONG_RANGE, long_scale, ilono.wrapping_add(1)),
        },
    }
}

/// An area's centre, held within the coordinates a point may have.
fn centre(area: &Area) -> [f64; 2] {
    let lon = (area.longitude.min + area.longitude.max) / 2.0;
    let lat = (area.latitude.min + area.latitude.max) / 2.0;
    [lon.clamp(LONG_MIN, LONG_MAX), lat.clamp(LAT_MIN, LAT_MAX)]
}

/// A double converted to an unsigned 64-bit integer as x86-64 code compiled from C's
/// `(uint64_t)d` converts it (Redis reads a score's bits so), for the scores of sorted sets
/// that were not written by GEOADD: negative values wrap, out-of-range ones give 0.
fn c_double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9223372036854775808.0;
    if d.is_nan() {
        return 1 << 63;
    }
    if d < TWO_63 {
        if d < -TWO_63 {
            1 << 63 // the "integer indefinite" of cvttsd2si
        } else {
            d as i64 as u64
        }
    } else if d < 2.0 * TWO_63 {
        ((d - TWO_63) as i64 as u64) ^ (1 << 63)
    } else {
        0 // indefinite, then the sign flip
    }
}

/// The score GEOADD stores for a point (the caller checked the coordinates).
pub fn score_of(longitude: f64, latitude: f64) -> f64 {
    let hash = encode(LONG_RANGE, LAT_RANGE, longitude, latitude, STEP_MAX).unwrap_or(Hash {
        bits: 0,
        step: STEP_MAX,
    });
    align52(hash) as f64
}

/// The point (longitude, latitude) a score stands for.
pub fn point_of(score: f64) -> [f64; 2] {
    let hash = Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    centre(&decode(hash))
}

/// Whether a point can be stored (GEOADD) or searched from.
pub fn valid_point(longitude: f64, latitude: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&longitude) && (LAT_MIN..=LAT_MAX).contains(&latitude)
}

/// The standard 11-character geohash of the point a score stands for (GEOHASH), which is
/// computed over latitudes -90..90, not the -85..85 of the stored scores.
pub fn geohash_string(score: f64) -> [u8; 11] {
    let [lon, lat] = point_of(score);
    let standard = (
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
    );
    let bits = encode(standard.0, standard.1, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    let mut out = [0u8; 11];
    for (i, c) in out.iter_mut().enumerate() {
        // 52 bits make ten characters; the eleventh is Redis's zero, kept for compatibility.
        let index = if i == 10 {
            0
        } else {
            (bits >> (52 - (i + 1) * 5)) & 0x1f
        };
        *c = GEOALPHABET[index as usize];
    }
    out
}

fn align52(hash: Hash) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

/// Moves `hash` one box along one coordinate (`d` 1 or -1): `mask` selects that coordinate's
/// bits (the odd ones for longitude, the even ones for latitude); the other's stay.
fn move_along(hash: &mut Hash, mask: u64, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut moved = hash.bits & mask;
    let kept = hash.bits & !mask;
    let zz = !mask >> shift;
    if d > 0 {
        moved = moved.wrapping_add(zz.wrapping_add(1));
    } else {
        moved |= zz;
        moved = moved.wrapping_sub(zz.wrapping_add(1));
    }
    moved &= mask >> shift;
    hash.bits = moved | kept;
}

/// The neighbour of `hash` one box east (`dx` 1) or west (-1) and north (`dy` 1) or south.
fn neighbour(hash: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = hash;
    move_along(&mut n, 0xaaaaaaaaaaaaaaaa, dx);
    move_along(&mut n, 0x5555555555555555, dy);
    n
}

/// What a search covers around its centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Extent {
    /// BYRADIUS (GEORADIUS): a circle of this radius.
    Radius(f64),
    /// BYBOX: a rectangle this wide and high, aligned with the meridians.
    Box { width: f64, height: f64 },
}

/// A search area: a centre, an extent in the request's unit, and that unit in metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub centre: [f64; 2],
    pub extent: Extent,
    pub conversion: f64,
}

impl Shape {
    /// [min longitude, min latitude, max longitude, max latitude] of the area.
    fn bounding_box(&self) -> [f64; 4] {
        let [longitude, latitude] = self.centre;
        let (half_height, half_width) = match self.extent {
            Extent::Radius(r) => (r, r),
            Extent::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let height = self.conversion * half_height;
        let width = self.conversion * half_width;
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        // The hemispheres widen in opposite directions.
        let long_delta = if latitude < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            longitude - long_delta,
            latitude - lat_delta,
            longitude + long_delta,
            latitude + lat_delta,
        ]
    }

    /// The score ranges `[min, max)` to read, in Redis's order: the centre's box, then its
    /// neighbours north, south, east, west, north-east, north-west, south-east, south-west,
    /// leaving out those the area cannot reach and a box equal to the one read before it.
    pub fn score_ranges(&self) -> Vec<(f64, f64)> {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let [longitude, latitude] = self.centre;
        let radius_meters = self.conversion
            * match self.extent {
                Extent::Radius(r) => r,
                Extent::Box { width, height } => {
                    ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
                }
            };
        let mut steps = estimate_steps(radius_meters, latitude);
        let at = |steps: u8| {
            encode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps).unwrap_or(Hash {
                bits: 0,
                step: steps,
            })
        };
        let mut hash = at(steps);
        // Near a box's edge the estimated step can be too fine for the neighbours to cover
        // the whole area: one step coarser then.
        let reaches = |hash: Hash| {
            decode(neighbour(hash, 0, 1)).latitude.max >= max_lat
                && decode(neighbour(hash, 0, -1)).latitude.min <= min_lat
                && decode(neighbour(hash, 1, 0)).longitude.max >= max_lon
                && decode(neighbour(hash, -1, 0)).longitude.min <= min_lon
        };
        if steps > 1 && !reaches(hash) {
            steps -= 1;
            hash = at(steps);
        }
        let area = decode(hash);
        // (dx, dy) of the centre and its neighbours in Redis's order.
        const ORDER: [(i8, i8); 9] = [
            (0, 0),
            (0, 1),
            (0, -1),
            (1, 0),
            (-1, 0),
            (1, 1),
            (-1, 1),
            (1, -1),
            (-1, -1),
        ];
        let useless = |dx: i8, dy: i8| {
            steps >= 2
                && ((dy < 0 && area.latitude.min < min_lat)
                    || (dy > 0 && area.latitude.max > max_lat)
                    || (dx < 0 && area.longitude.min < min_lon)
                    || (dx > 0 && area.longitude.max > max_lon))
        };
        let mut ranges = Vec::with_capacity(9);
        let mut last: Option<Hash> = None;
        for (i, &(dx, dy)) in ORDER.iter().enumerate() {
            if useless(dx, dy) {
                continue;
            }
            let boxed = neighbour(hash, dx, dy);
            // Huge areas make neighbours coincide; Redis skips a box equal to the last one
            // read, except when that was the centre's.
            if i > 0 && last == Some(boxed) {
                continue;
            }
            let mut next = boxed;
            next.bits += 1;
            ranges.push((align52(boxed) as f64, align52(next) as f64));
            last = (i > 0).then_some(boxed);
        }
        ranges
    }

    /// The point a score stands for and its distance from the centre (in metres), if it
    /// lies inside the area.
    pub fn contains(&self, score: f64) -> Option<([f64; 2], f64)> {
        let xy = point_of(score);
        let [x1, y1] = self.centre;
        let [x2, y2] = xy;
        let distance = match self.extent {
            Extent::Radius(r) => {
                let d = distance(x1, y1, x2, y2);
                (d <= r * self.conversion).then_some(d)?
            }
            Extent::Box { width, height } => {
                // The latitude is cheaper to check, so it goes first.
                if lat_distance(y2, y1) > height * self.conversion / 2.0 {
                    return None;
                }
                if distance(x2, y2, x1, y2) > width * self.conversion / 2.0 {
                    return None;
                }
                distance(x1, y1, x2, y2)
            }
        };
        Some((xy, distance))
    }
}

/// How many bits per coordinate the boxes of a search of this radius have.
fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range_meters = range_meters;
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2; // so that the range is inside in most cases
               // Meridians converge towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// The great-circle distance in metres (haversine) between two points.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Points on one meridian: no need for the expensive part.
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// A unit's length in metres (`m`, `km`, `ft`, `mi`, any case).
pub fn unit(name: &[u8]) -> Option<f64> {
    match name.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// A distance as Redis replies with one: rounded to four decimals, as a string.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = (d * 10000.0).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let value = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", value / 10000, value % 10000)
}

/// A coordinate as Redis replies with one.
pub fn format_coordinate(c: f64) -> String {
    format_f64_exact(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_round_trips() {
        for (lat, lon) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (u32::MAX, 7),
            (0x1234_5678, 0x9abc_def0),
        ] {
            let both = deinterleave(interleave(lat, lon));
            assert_eq!((both as u32, (both >> 32) as u32), (lat, lon));
        }
    }

    #[test]
    fn points_and_scores_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 Palermo; ZSCORE and GEOPOS on redis-server.
        let score = score_of(13.361389, 38.115556);
        assert_eq!(score, 3479099956230698.0);
        let [lon, lat] = point_of(score);
        assert_eq!(format_coordinate(lon), "13.36138933897018433");
        assert_eq!(format_coordinate(lat), "38.11555639549629859");
        assert_eq!(&geohash_string(score), b"sqc8b49rny0");
        let catania = score_of(15.087269, 37.502669);
        let [lon2, lat2] = point_of(catania);
        assert_eq!(
            format_distance(distance(lon, lat, lon2, lat2)),
            "166274.1516"
        );
    }

    #[test]
    fn distances_print_as_redis_prints_them() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.775), "0.7750");
        assert_eq!(format_distance(3.0), "3.0000");
    }

    #[test]
    fn foreign_scores_decode_as_on_x86_64() {
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(1e300), 0);
        assert_eq!(c_double_to_u64(-1e300), 1 << 63);
        assert_eq!(c_double_to_u64(12.7), 12);
        // ZADD k -1 m; GEOPOS k m on redis-server.
        let [lon, lat] = point_of(-1.0);
        assert_eq!(format_coordinate(lon), "180");
        assert_eq!(format_coordinate(lat), "85.0511287799999991");
        assert_eq!(&geohash_string(-1.0), b"bp05b5048p0");
    }
}
