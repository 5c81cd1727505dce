//! Which slots this shard serves: a state and an epoch per slot ([`SlotState`]), persisted in
//! `meta` under `slotstates` and changed only by the writer (`FJORD SETSLOTS`), in a batch
//! with its oplog record, so that replicas hold the same table and a promoted one knows it.
//!
//! The table is small and changes rarely (once per batch of moved slots), so it is stored and
//! logged whole, as runs of equal slots: `format (u8, 1) ++ runs (u16 BE)`, then per run
//! `start (u16 BE) ++ end (u16 BE) ++ state (u8) ++ epoch (u64 BE) ++ owner len (u16 BE) ++
//! owner`. Absent: every slot owned at epoch 0 (a store from before slots could move).

use bytes::{BufMut, Bytes};
use fjord_common::ownership::{Refusal, SlotState};
use fjord_common::slotset::{SlotRange, SlotSet};
use fjord_common::SLOT_COUNT;
use std::sync::Arc;

/// The `meta` key of the table.
pub const SLOT_STATES_KEY: &[u8] = b"slotstates";
const FORMAT: u8 = 1;

/// One slot's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotRecord {
    pub state: SlotState,
    pub epoch: u64,
    /// Where a `gone` slot went, if known.
    pub owner: Option<Arc<str>>,
}

/// Every slot's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotTable {
    slots: Vec<SlotRecord>,
    /// Whether any slot is not simply owned: most shards never move a slot, and then no
    /// command pays for a lookup.
    restricted: bool,
}

impl Default for SlotTable {
    fn default() -> Self {
        Self {
            slots: vec![SlotRecord::default(); usize::from(SLOT_COUNT)],
            restricted: false,
        }
    }
}

/// Why a change of the table was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlotChangeError {
    #[error("ERR slot {slot} is at epoch {current}, newer than {given}")]
    StaleEpoch { slot: u16, current: u64, given: u64 },
    #[error("ERR only a gone slot has an owner")]
    Owner,
}

impl SlotTable {
    pub fn get(&self, slot: u16) -> &SlotRecord {
        &self.slots[usize::from(slot)]
    }

    /// Whether every slot is owned (then nothing is ever refused).
    pub fn is_unrestricted(&self) -> bool {
        !self.restricted
    }

    /// The refusal of a command (a write if `write`) on these slots, for the first slot it
    /// may not touch.
    pub fn refusal(&self, slots: impl IntoIterator<Item = u16>, write: bool) -> Option<Refusal> {
        if !self.restricted {
            return None;
        }
        slots.into_iter().find_map(|slot| {
            let r = self.get(slot);
            (!r.state.serves(write)).then(|| Refusal {
                slot,
                epoch: r.epoch,
                state: r.state,
                owner: r.owner.as_deref().map(str::to_string),
            })
        })
    }

    /// The table with `slots` set to `state` at `epoch`. Refused if any of them is at a
    /// newer epoch; setting a slot to what it already is at the same epoch changes nothing,
    /// so a mover that retries a step after a crash gets the same answer.
    pub fn with(
        &self,
        slots: &SlotSet,
        state: SlotState,
        epoch: u64,
        owner: Option<&str>,
    ) -> Result<SlotTable, SlotChangeError> {
        if owner.is_some() && state != SlotState::Gone {
            return Err(SlotChangeError::Owner);
        }
        let mut next = self.clone();
        let owner: Option<Arc<str>> = owner.map(Arc::from);
        for range in slots.ranges() {
            for slot in range.start..=range.end {
                let current = &mut next.slots[usize::from(slot)];
                if current.epoch > epoch {
                    return Err(SlotChangeError::StaleEpoch {
                        slot,
                        current: current.epoch,
                        given: epoch,
                    });
                }
                *current = SlotRecord {
                    state,
                    epoch,
                    owner: owner.clone(),
                };
            }
        }
        next.restricted = next.slots.iter().any(|r| r.state != SlotState::Owned);
        Ok(next)
    }

    /// Runs of equal records, in slot order.
    pub fn runs(&self) -> Vec<(SlotRange, &SlotRecord)> {
        let mut out: Vec<(SlotRange, &SlotRecord)> = Vec::new();
        for (slot, record) in self.slots.iter().enumerate() {
            let slot = slot as u16;
            match out.last_mut() {
                Some((range, r)) if *r == record => range.end = slot,
                _ => out.push((
                    SlotRange {
                        start: slot,
                        end: slot,
                    },
                    record,
                )),
            }
        }
        out
    }

    pub fn encode(&self) -> Bytes {
        let runs = self.runs();
        let mut out = Vec::with_capacity(3 + runs.len() * 16);
        out.put_u8(FORMAT);
        out.put_u16(runs.len() as u16);
        for (range, r) in runs {
            out.put_u16(range.start);
            out.put_u16(range.end);
            out.put_u8(r.state as u8);
            out.put_u64(r.epoch);
            let owner = r.owner.as_deref().unwrap_or("").as_bytes();
            out.put_u16(owner.len() as u16);
            out.extend_from_slice(owner);
        }
        Bytes::from(out)
    }

    /// Reads an encoded table; `None` if it is malformed or does not cover every slot once.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = raw.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        if take(1)? != [FORMAT] {
            return None;
        }
        let runs = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let mut slots = Vec::with_capacity(usize::from(SLOT_COUNT));
        for _ in 0..runs {
            let start = u16::from_be_bytes(take(2)?.try_into().ok()?);
            let end = u16::from_be_bytes(take(2)?.try_into().ok()?);
            let state = SlotState::from_u8(take(1)?[0])?;
            let epoch = u64::from_be_bytes(take(8)?.try_into().ok()?);
            let len = u16::from_be_bytes(take(2)?.try_into().ok()?);
            let owner = std::str::from_utf8(take(usize::from(len))?).ok()?;
            if usize::from(start) != slots.len() || end < start || end >= SLOT_COUNT {
                return None;
            }
            let record = SlotRecord {
                state,
                epoch,
                owner: (!owner.is_empty()).then(|| Arc::from(owner)),
            };
            slots.extend(std::iter::repeat_n(record, usize::from(end - start) + 1));
        }
        if slots.len() != usize::from(SLOT_COUNT) || at != raw.len() {
            return None;
        }
        let restricted = slots.iter().any(|r| r.state != SlotState::Owned);
        Some(Self { slots, restricted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> SlotSet {
        SlotSet::parse(text).unwrap()
    }

    #[test]
    fn a_table_round_trips_and_refuses_what_it_does_not_serve() {
        let t = SlotTable::default();
        assert!(t.is_unrestricted());
        assert_eq!(SlotTable::decode(&t.encode()), Some(t.clone()));
        let t = t
            .with(&set("0-99"), SlotState::Gone, 3, Some("127.0.0.1:7102"))
            .unwrap()
            .with(&set("100"), SlotState::Frozen, 4, None)
            .unwrap()
            .with(&set("200-300"), SlotState::Importing, 4, None)
            .unwrap();
        assert_eq!(SlotTable::decode(&t.encode()), Some(t.clone()));
        assert_eq!(t.runs().len(), 5);
        let gone = t.refusal([5000, 42], false).unwrap();
        assert_eq!(gone.slot, 42);
        assert_eq!(gone.owner.as_deref(), Some("127.0.0.1:7102"));
        assert_eq!(t.refusal([100], false), None, "frozen slots serve reads");
        assert_eq!(t.refusal([100], true).unwrap().state, SlotState::Frozen);
        assert_eq!(t.refusal([250], false).unwrap().state, SlotState::Importing);
        assert_eq!(t.refusal([5000, 16383], true), None);
    }

    #[test]
    fn epochs_only_go_up_and_a_repeated_step_is_the_same_table() {
        let t = SlotTable::default()
            .with(&set("10-20"), SlotState::Frozen, 5, None)
            .unwrap();
        assert_eq!(
            t.with(&set("15-30"), SlotState::Owned, 4, None),
            Err(SlotChangeError::StaleEpoch {
                slot: 15,
                current: 5,
                given: 4
            })
        );
        let again = t.with(&set("10-20"), SlotState::Frozen, 5, None).unwrap();
        assert_eq!(again, t);
        let back = t.with(&set("10-20"), SlotState::Owned, 6, None).unwrap();
        assert!(back.is_unrestricted());
        assert_eq!(
            t.with(&set("1"), SlotState::Frozen, 9, Some("x:1")),
            Err(SlotChangeError::Owner)
        );
    }

    #[test]
    fn malformed_tables_are_refused() {
        let good = SlotTable::default()
            .with(&set("7"), SlotState::Gone, 1, None)
            .unwrap()
            .encode();
        for cut in 0..good.len() {
            assert_eq!(SlotTable::decode(&good[..cut]), None, "cut at {cut}");
        }
        let mut extra = good.to_vec();
        extra.push(0);
        assert_eq!(SlotTable::decode(&extra), None);
        let mut bad_state = good.to_vec();
        bad_state[7] = 9;
        assert_eq!(SlotTable::decode(&bad_state), None);
    }
}
