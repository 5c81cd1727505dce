//! Geo commands: GEOADD, GEODIST, GEOHASH, GEOPOS and the searches GEORADIUS,
//! GEORADIUSBYMEMBER (with their `_RO` forms), GEOSEARCH and GEOSEARCHSTORE. Points are
//! members of a sorted set whose scores are geohashes; the geometry is
//! [`fjord_common::geo`]'s, the sorted set [`crate::types::zset`]'s.

use super::zsets::ZAdd;
use super::{Parse, Read};
use crate::store::members::{Members, View};
use crate::store::writer::{Txn, WriteOp};
use crate::store::Store;
use crate::types::zset::{self, ScoreBound, ScoreRange};
use crate::types::{check_member_name, Collection};
use bytes::Bytes;
use fjord_common::geo::{self, Extent, Shape};
use fjord_common::number::{parse_f64, parse_i64};
use fjord_common::{error, Reply};

const UNKNOWN_MEMBER: &str = "ERR could not decode requested zset member";

fn float_arg(arg: &[u8], error: &'static str) -> Result<f64, Reply> {
    parse_f64(arg).ok_or(Reply::error(error))
}

/// `longitude latitude` as two arguments, checked against the coordinates a point may have.
fn point_arg(args: &[Bytes]) -> Result<[f64; 2], Reply> {
    let lon = float_arg(&args[0], error::NOT_FLOAT)?;
    let lat = float_arg(&args[1], error::NOT_FLOAT)?;
    if !geo::valid_point(lon, lat) {
        return Err(Reply::error(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

fn unit_arg(arg: &[u8]) -> Result<f64, Reply> {
    geo::unit(arg).ok_or(Reply::error(
        "ERR unsupported unit provided. please use M, KM, FT, MI",
    ))
}

/// `radius unit`: a circle, and the unit's length in metres.
fn radius_arg(args: &[Bytes]) -> Result<(Extent, f64), Reply> {
    let radius = float_arg(&args[0], "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err(Reply::error("ERR radius cannot be negative"));
    }
    Ok((Extent::Radius(radius), unit_arg(&args[1])?))
}

/// `width height unit`.
fn box_arg(args: &[Bytes]) -> Result<(Extent, f64), Reply> {
    let width = float_arg(&args[0], "ERR need numeric width")?;
    let height = float_arg(&args[1], "ERR need numeric height")?;
    if height < 0.0 || width < 0.0 {
        return Err(Reply::error("ERR height or width cannot be negative"));
    }
    Ok((Extent::Box { width, height }, unit_arg(&args[2])?))
}

/// The point a member of the set stands for.
fn member_point(m: &mut impl Members, z: &Collection, member: &[u8]) -> Result<[f64; 2], Reply> {
    match zset::score(m, z, member)? {
        Some(score) => Ok(geo::point_of(score)),
        None => Err(Reply::error(UNKNOWN_MEMBER)),
    }
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [… …]`: ZADD of the points' scores.
pub fn geoadd(args: &[Bytes]) -> Result<ZAdd, Reply> {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut first = 2;
    while let Some(option) = args.get(first) {
        match option.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"ch" => ch = true,
            _ => break,
        }
        first += 1;
    }
    let points = &args[first..];
    if points.is_empty() || !points.len().is_multiple_of(3) || (nx && xx) {
        return Err(Reply::error(error::SYNTAX));
    }
    let mut pairs = Vec::with_capacity(points.len() / 3);
    for point in points.chunks_exact(3) {
        let [lon, lat] = point_arg(&point[..2])?;
        check_member_name(&point[2])?;
        pairs.push((geo::score_of(lon, lat), point[2].clone()));
    }
    Ok(ZAdd::points(args[1].clone(), pairs, nx, xx, ch))
}

/// GEODIST, GEOHASH, GEOPOS: what a set says of some of its members.
pub struct GeoLookup {
    key: Bytes,
    what: Lookup,
}

enum Lookup {
    /// Two members and the unit's length in metres.
    Dist(Bytes, Bytes, f64),
    Hash(Vec<Bytes>),
    Pos(Vec<Bytes>),
}

impl Parse for GeoLookup {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let what = match args[0].to_ascii_lowercase().as_slice() {
            b"geodist" => {
                let to_meter = match args.len() {
                    4 => 1.0,
                    5 => unit_arg(&args[4])?,
                    _ => return Err(Reply::error(error::SYNTAX)),
                };
                Lookup::Dist(args[2].clone(), args[3].clone(), to_meter)
            }
            b"geohash" => Lookup::Hash(args[2..].to_vec()),
            _ => Lookup::Pos(args[2..].to_vec()),
        };
        Ok(Self {
            key: args[1].clone(),
            what,
        })
    }
}

impl Read for GeoLookup {
    fn execute(self, store: &Store) -> Reply {
        let mut view = View::new(store);
        self.run(&mut view).unwrap_or_else(|e| e)
    }
}

impl GeoLookup {
    fn run(&self, m: &mut impl Members) -> Result<Reply, Reply> {
        let z = zset::find(m, &self.key)?;
        let mut score = |member: &[u8]| match &z {
            Some(z) => zset::score(m, z, member),
            None => Ok(None),
        };
        Ok(match &self.what {
            Lookup::Dist(a, b, to_meter) => match (score(a)?, score(b)?) {
                (Some(a), Some(b)) => {
                    let [lon1, lat1] = geo::point_of(a);
                    let [lon2, lat2] = geo::point_of(b);
                    let d = geo::distance(lon1, lat1, lon2, lat2) / to_meter;
                    Reply::text(geo::format_distance(d))
                }
                _ => Reply::Nil,
            },
            Lookup::Hash(members) => {
                let mut out = Vec::with_capacity(members.len());
                for member in members {
                    out.push(match score(member)? {
                        Some(s) => Reply::Bulk(Bytes::copy_from_slice(&geo::geohash_string(s))),
                        None => Reply::Nil,
                    });
                }
                Reply::Array(out)
            }
            Lookup::Pos(members) => {
                let mut out = Vec::with_capacity(members.len());
                for member in members {
                    out.push(match score(member)? {
                        Some(s) => coordinates(geo::point_of(s)),
                        None => Reply::NilArray,
                    });
                }
                Reply::Array(out)
            }
        })
    }
}

fn coordinates([lon, lat]: [f64; 2]) -> Reply {
    let text = |c: f64| Reply::DoubleText(Bytes::from(geo::format_coordinate(c)));
    Reply::Array(vec![text(lon), text(lat)])
}

/// Which of the search commands, which decides where its arguments are and what it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS key longitude latitude radius unit [option …] (`read_only`: `_RO`, no STORE).
    Radius { read_only: bool },
    /// GEORADIUSBYMEMBER key member radius unit [option …].
    ByMember { read_only: bool },
    /// GEOSEARCH key FROMMEMBER m | FROMLONLAT lon lat, BYRADIUS r unit | BYBOX w h unit ….
    Search,
    /// GEOSEARCHSTORE destination key … [STOREDIST].
    SearchStore,
}

/// A geo search: GEORADIUS, GEORADIUSBYMEMBER, their `_RO` forms, GEOSEARCH and
/// GEOSEARCHSTORE. With a destination it writes, through the writer; otherwise it reads.
///
/// The options are read where the search runs, with the set at hand, because Redis reads them
/// so: a member named as the centre is looked up as soon as it is met, so which error a bad
/// request gets (WRONGTYPE, an unknown member, a bad option after it) depends on the set.
pub struct GeoSearch {
    args: Vec<Bytes>,
    form: Form,
}

impl Parse for GeoSearch {
    fn parse(args: &[Bytes]) -> Result<Self, Reply> {
        let form = match args[0].to_ascii_lowercase().as_slice() {
            b"georadius" => Form::Radius { read_only: false },
            b"georadius_ro" => Form::Radius { read_only: true },
            b"georadiusbymember" => Form::ByMember { read_only: false },
            b"georadiusbymember_ro" => Form::ByMember { read_only: true },
            b"geosearch" => Form::Search,
            _ => Form::SearchStore,
        };
        Ok(Self {
            args: args.to_vec(),
            form,
        })
    }
}

/// A parsed search, ready to run on its set.
struct Request {
    /// The area; `None` only when the set is missing and the centre was one of its members.
    shape: Option<Shape>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    /// Ascending (`Some(true)`), descending, or in the order found.
    order: Option<bool>,
    /// At most this many results (COUNT); with ANY, the search stops once it has them.
    count: Option<usize>,
    any: bool,
    /// The destination, and whether it gets distances (STOREDIST) rather than geohashes.
    store: Option<(Bytes, bool)>,
}

/// A point found, as Redis's `geoPoint`.
struct Found {
    member: Bytes,
    xy: [f64; 2],
    distance: f64,
    score: f64,
}

impl GeoSearch {
    /// Whether it writes a destination, and so goes to the writer; `args` as given. This is
    /// where the command table finds the destination key, which is always at least where the
    /// search itself takes it.
    pub fn stores(args: &[Bytes], table: &fjord_common::command::CommandSpec) -> bool {
        table.key_indexes(args).nth(1).is_some()
    }

    /// Reads the arguments in Redis's order, with the set `z` (`key`'s) at hand.
    fn request(&self, m: &mut impl Members, z: Option<&Collection>) -> Result<Request, Reply> {
        let args = &self.args;
        let mut req = Request {
            shape: None,
            with_dist: false,
            with_hash: false,
            with_coord: false,
            order: None,
            count: None,
            any: false,
            store: None,
        };
        let mut centre = None;
        let mut extent = None;
        let (base, may_store, search) = match self.form {
            Form::Radius { read_only } => {
                centre = Some(point_arg(&args[2..4])?);
                extent = Some(radius_arg(&args[4..6])?);
                (6, !read_only, false)
            }
            Form::ByMember { read_only } => {
                // With no set Redis reads the options only, to know the reply's kind.
                if let Some(z) = z {
                    centre = Some(member_point(m, z, &args[2])?);
                    extent = Some(radius_arg(&args[3..5])?);
                }
                (5, !read_only, false)
            }
            Form::Search => (2, false, true),
            Form::SearchStore => {
                req.store = Some((args[1].clone(), false));
                (3, false, true)
            }
        };
        let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
            (false, false, false, false);
        let mut i = base;
        while i < args.len() {
            let left = args.len() - i - 1; // arguments after this one
            match args[i].to_ascii_lowercase().as_slice() {
                b"withdist" => req.with_dist = true,
                b"withhash" => req.with_hash = true,
                b"withcoord" => req.with_coord = true,
                b"any" => req.any = true,
                b"asc" => req.order = Some(true),
                b"desc" => req.order = Some(false),
                b"count" if left >= 1 => {
                    let n = parse_i64(&args[i + 1]).ok_or(Reply::error(error::NOT_INTEGER))?;
                    if n <= 0 {
                        return Err(Reply::error("ERR COUNT must be > 0"));
                    }
                    req.count = Some(usize::try_from(n).unwrap_or(usize::MAX));
                    i += 1;
                }
                word @ (b"store" | b"storedist") if left >= 1 && may_store => {
                    req.store = Some((args[i + 1].clone(), word == b"storedist"));
                    i += 1;
                }
                b"storedist" if self.form == Form::SearchStore => {
                    if let Some((_, dist)) = &mut req.store {
                        *dist = true;
                    }
                }
                b"frommember" if left >= 1 && search && !from_lonlat => {
                    if let Some(z) = z {
                        centre = Some(member_point(m, z, &args[i + 1])?);
                    }
                    from_member = true;
                    i += 1;
                }
                b"fromlonlat" if left >= 2 && search && !from_member => {
                    centre = Some(point_arg(&args[i + 1..i + 3])?);
                    from_lonlat = true;
                    i += 2;
                }
                b"byradius" if left >= 2 && search && !by_box => {
                    extent = Some(radius_arg(&args[i + 1..i + 3])?);
                    by_radius = true;
                    i += 2;
                }
                b"bybox" if left >= 3 && search && !by_radius => {
                    extent = Some(box_arg(&args[i + 1..i + 4])?);
                    by_box = true;
                    i += 3;
                }
                _ => return Err(Reply::error(error::SYNTAX)),
            }
            i += 1;
        }
        if req.store.is_some() && (req.with_dist || req.with_hash || req.with_coord) {
            let what = match self.form {
                Form::SearchStore => "GEOSEARCHSTORE",
                _ => "STORE option in GEORADIUS",
            };
            return Err(Reply::error(format!(
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            )));
        }
        // The command's name as the client spelled it, as Redis prints it.
        let name = || String::from_utf8_lossy(&args[0]).into_owned();
        if search && !(from_member || from_lonlat) {
            return Err(Reply::error(format!(
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
                name()
            )));
        }
        if search && !(by_radius || by_box) {
            return Err(Reply::error(format!(
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
                name()
            )));
        }
        if req.any && req.count.is_none() {
            return Err(Reply::error("ERR the ANY argument requires COUNT argument"));
        }
        // COUNT wants the nearest ones, unless ANY asked for whichever come first.
        if req.count.is_some() && req.order.is_none() && !req.any {
            req.order = Some(true);
        }
        if let (Some(centre), Some((extent, conversion))) = (centre, extent) {
            req.shape = Some(Shape {
                centre,
                extent,
                conversion,
            });
        }
        Ok(req)
    }

    /// The points the search finds, ordered and cut to COUNT, and the request.
    fn run(&self, m: &mut impl Members) -> Result<(Request, Vec<Found>), Reply> {
        let key = match self.form {
            Form::SearchStore => &self.args[2],
            _ => &self.args[1],
        };
        let z = zset::find(m, key)?;
        let req = self.request(m, z.as_ref())?;
        let (Some(z), Some(shape)) = (z, req.shape) else {
            return Ok((req, Vec::new()));
        };
        let limit = if req.any { req.count } else { None };
        let full = |found: &Vec<Found>| limit.is_some_and(|l| found.len() >= l);
        let mut found = Vec::new();
        for (min, max) in shape.score_ranges() {
            if full(&found) {
                break;
            }
            let range = ScoreRange {
                min: ScoreBound {
                    value: min,
                    exclusive: false,
                },
                max: ScoreBound {
                    value: max,
                    exclusive: true,
                },
            };
            zset::walk_scores(m, &z, &range, false, |member, score| {
                if let Some((xy, distance)) = shape.contains(score) {
                    found.push(Found {
                        member: Bytes::copy_from_slice(member),
                        xy,
                        distance,
                        score,
                    });
                }
                !full(&found)
            })?;
        }
        if let Some(ascending) = req.order {
            // A stable sort, as glibc's qsort (a merge sort) is for Redis.
            found.sort_by(|a, b| {
                let order = a.distance.total_cmp(&b.distance);
                if ascending {
                    order
                } else {
                    order.reverse()
                }
            });
        }
        if let Some(count) = req.count {
            found.truncate(count);
        }
        for f in &mut found {
            f.distance /= shape.conversion;
        }
        Ok((req, found))
    }

    fn reply(req: &Request, found: Vec<Found>) -> Reply {
        let options = [req.with_dist, req.with_hash, req.with_coord];
        if !options.contains(&true) {
            return Reply::Array(found.into_iter().map(|f| Reply::Bulk(f.member)).collect());
        }
        let items = found.into_iter().map(|f| {
            let mut item = vec![Reply::Bulk(f.member)];
            if req.with_dist {
                item.push(Reply::text(geo::format_distance(f.distance)));
            }
            if req.with_hash {
                item.push(Reply::Int(f.score as i64));
            }
            if req.with_coord {
                item.push(coordinates(f.xy));
            }
            Reply::Array(item)
        });
        Reply::Array(items.collect())
    }
}

impl Read for GeoSearch {
    fn execute(self, store: &Store) -> Reply {
        match self.run(&mut View::new(store)) {
            // The command table finds every destination the options can name, and those
            // go to the writer; this would be one it missed.
            Ok((req, _)) if req.store.is_some() => {
                Reply::error("ERR fjord could not tell where this command's destination key is")
            }
            Ok((req, found)) => Self::reply(&req, found),
            Err(e) => e,
        }
    }
}

impl WriteOp for GeoSearch {
    fn apply(self: Box<Self>, txn: &mut Txn<'_>) -> Reply {
        let (req, found) = match self.run(txn) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let Some((dest, dist)) = &req.store else {
            return Self::reply(&req, found);
        };
        let items: Vec<(Bytes, f64)> = found
            .into_iter()
            .map(|f| {
                let score = if *dist { f.distance } else { f.score };
                (f.member, score)
            })
            .collect();
        Reply::Int(zset::store(txn, dest, &items))
    }
}
