//! Sets of slots, written as Redis writes them: `0-5460,5462,6000-6100`.
//!
//! The proxy tells a shard which slots a node-scoped command (DBSIZE, SCAN, KEYS, FLUSHALL …)
//! covers; the topology file lists a shard's slots the same way.

use crate::slot::SLOT_COUNT;
use std::fmt;

/// An inclusive range of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

/// A sorted set of disjoint slot ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotSet {
    ranges: Vec<SlotRange>,
}

/// Why a slot set could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlotSetError {
    #[error("invalid slot '{0}': slots are integers from 0 to 16383")]
    InvalidSlot(String),
    #[error("invalid slot range '{0}': the start is after the end")]
    Reversed(String),
}

impl SlotSet {
    /// Every slot, 0-16383.
    pub fn all() -> Self {
        Self::from_ranges([SlotRange {
            start: 0,
            end: SLOT_COUNT - 1,
        }])
    }

    /// Builds a set from ranges that may overlap or come in any order.
    pub fn from_ranges(ranges: impl IntoIterator<Item = SlotRange>) -> Self {
        let mut ranges: Vec<SlotRange> = ranges.into_iter().collect();
        ranges.sort();
        let mut merged: Vec<SlotRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(r.start) <= u32::from(last.end) + 1 => {
                    last.end = last.end.max(r.end)
                }
                _ => merged.push(r),
            }
        }
        Self { ranges: merged }
    }

    /// Parses `a-b,c,...`; an empty string is the empty set.
    pub fn parse(text: &str) -> Result<Self, SlotSetError> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            ranges.push(parse_range(part)?);
        }
        Ok(Self::from_ranges(ranges))
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[SlotRange] {
        &self.ranges
    }

    /// Whether `slot` is in the set.
    pub fn contains(&self, slot: u16) -> bool {
        let idx = self.ranges.partition_point(|r| r.end < slot);
        self.ranges.get(idx).is_some_and(|r| r.start <= slot)
    }

    /// Number of slots in the set.
    pub fn len(&self) -> usize {
        self.ranges
            .iter()
            .map(|r| usize::from(r.end - r.start) + 1)
            .sum()
    }

    /// Whether the set holds no slot.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every slot in ascending order.
    pub fn slots(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|r| r.start..=r.end)
    }

    /// The slots in both sets.
    pub fn intersect(&self, other: &SlotSet) -> SlotSet {
        let mut out = Vec::new();
        for a in &self.ranges {
            for b in &other.ranges {
                let (start, end) = (a.start.max(b.start), a.end.min(b.end));
                if start <= end {
                    out.push(SlotRange { start, end });
                }
            }
        }
        Self::from_ranges(out)
    }

    /// Every slot not in the set.
    pub fn complement(&self) -> SlotSet {
        let mut out = Vec::new();
        let mut next: u32 = 0;
        for r in &self.ranges {
            if u32::from(r.start) > next {
                out.push(SlotRange {
                    start: next as u16,
                    end: r.start - 1,
                });
            }
            next = u32::from(r.end) + 1;
        }
        if next < u32::from(SLOT_COUNT) {
            out.push(SlotRange {
                start: next as u16,
                end: SLOT_COUNT - 1,
            });
        }
        Self { ranges: out }
    }

    /// The smallest slot in the set that is >= `slot`.
    pub fn next_at_or_after(&self, slot: u16) -> Option<u16> {
        let idx = self.ranges.partition_point(|r| r.end < slot);
        self.ranges.get(idx).map(|r| r.start.max(slot))
    }
}

fn parse_range(part: &str) -> Result<SlotRange, SlotSetError> {
    let slot = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|&n| n < SLOT_COUNT)
            .ok_or_else(|| SlotSetError::InvalidSlot(part.to_string()))
    };
    let (start, end) = match part.split_once('-') {
        Some((a, b)) => (slot(a)?, slot(b)?),
        None => {
            let s = slot(part)?;
            (s, s)
        }
    };
    if start > end {
        return Err(SlotSetError::Reversed(part.to_string()));
    }
    Ok(SlotRange { start, end })
}

impl fmt::Display for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start == r.end {
                write!(f, "{}", r.start)?;
            } else {
                write!(f, "{}-{}", r.start, r.end)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_complement_holds_every_other_slot() {
        let set = |t: &str| SlotSet::parse(t).unwrap();
        assert_eq!(set("0-99,200,16383").complement(), set("100-199,201-16382"));
        assert_eq!(set("").complement(), SlotSet::all());
        assert_eq!(SlotSet::all().complement(), set(""));
        assert_eq!(set("5-10").complement().complement(), set("5-10"));
    }

    use super::*;

    #[test]
    fn intersects() {
        let a = SlotSet::parse("0-100,200-300").unwrap();
        let b = SlotSet::parse("50-250").unwrap();
        assert_eq!(a.intersect(&b).to_string(), "50-100,200-250");
        assert!(a.intersect(&SlotSet::parse("101-199").unwrap()).is_empty());
    }

    #[test]
    fn parses_merges_and_prints_ranges() {
        let set = SlotSet::parse("10-20, 5,21-30,0-4").unwrap();
        assert_eq!(set.to_string(), "0-5,10-30");
        assert_eq!(set.len(), 27);
        assert!(set.contains(5) && set.contains(30) && !set.contains(6));
        assert_eq!(set.next_at_or_after(6), Some(10));
        assert_eq!(set.next_at_or_after(31), None);
    }

    #[test]
    fn rejects_bad_slots() {
        assert!(SlotSet::parse("16384").is_err());
        assert!(SlotSet::parse("5-1").is_err());
        assert!(SlotSet::parse("a").is_err());
        assert_eq!(SlotSet::parse("").unwrap().len(), 0);
    }
}
