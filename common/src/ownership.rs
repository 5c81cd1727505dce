//! Slot ownership as a shard keeps it, and the refusal a shard answers for a key of a slot it
//! does not own (issue 15: slots move between shards with their data).
//!
//! A shard refuses a command on a slot it does not own with a `NOTOWNER` error, which always
//! means "certainly not applied here": it is checked when the command is parsed and again
//! when the writer applies it, and slot states change only through that writer. So the proxy
//! may re-send such a command to the owner the error names (the one case in which a write is
//! re-sent), and a proxy on an old topology costs a hop, never correctness.
//!
//! The error reads `NOTOWNER <slot> <epoch> <state> <owner or -> <explanation>`:
//!
//! - `gone` with an owner: the slot moved there; with `-`: this shard does not own it and
//!   does not know who does (the proxy re-reads its topology);
//! - `frozen`: the slot is being handed over; reads are served, writes are refused until it
//!   is gone (then they go to the new owner);
//! - `importing`: the slot is being moved here and is not served yet.

use std::fmt;

/// What a shard holds of a slot. A slot no record names is `Owned` at epoch 0, so a store
/// written before slots could move owns every slot, as it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SlotState {
    #[default]
    Owned = 0,
    /// Being moved here: its entries arrive, clients are not served.
    Importing = 1,
    /// Being handed over: reads are served, writes refused.
    Frozen = 2,
    /// Not this shard's (the owner, if known, is recorded with it).
    Gone = 3,
}

impl SlotState {
    pub fn name(self) -> &'static str {
        match self {
            SlotState::Owned => "owned",
            SlotState::Importing => "importing",
            SlotState::Frozen => "frozen",
            SlotState::Gone => "gone",
        }
    }

    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => SlotState::Owned,
            1 => SlotState::Importing,
            2 => SlotState::Frozen,
            3 => SlotState::Gone,
            _ => return None,
        })
    }

    /// Whether a command of this kind is served in this state.
    pub fn serves(self, write: bool) -> bool {
        match self {
            SlotState::Owned => true,
            SlotState::Frozen => !write,
            SlotState::Importing | SlotState::Gone => false,
        }
    }
}

impl std::str::FromStr for SlotState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            SlotState::Owned,
            SlotState::Importing,
            SlotState::Frozen,
            SlotState::Gone,
        ]
        .into_iter()
        .find(|st| st.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("{s:?} is not a slot state (owned, importing, frozen, gone)"))
    }
}

/// A shard's refusal of a command on a slot it does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub slot: u16,
    pub epoch: u64,
    pub state: SlotState,
    /// Where the slot went (`gone`), if the shard knows.
    pub owner: Option<String>,
}

/// The error prefix of a [`Refusal`].
pub const PREFIX: &str = "NOTOWNER";

impl Refusal {
    /// Reads a refusal from an error text (without the leading `-`); `None` for any other
    /// error.
    pub fn parse(error: &str) -> Option<Self> {
        let mut words = error.strip_prefix(PREFIX)?.strip_prefix(' ')?.split(' ');
        let slot = words.next()?.parse().ok()?;
        let epoch = words.next()?.parse().ok()?;
        let state = words.next()?.parse().ok()?;
        let owner = match words.next()? {
            "-" => None,
            addr => Some(addr.to_string()),
        };
        Some(Self {
            slot,
            epoch,
            state,
            owner,
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (slot, epoch, state) = (self.slot, self.epoch, self.state.name());
        let owner = self.owner.as_deref().unwrap_or("-");
        write!(f, "{PREFIX} {slot} {epoch} {state} {owner} ")?;
        match (self.state, &self.owner) {
            (SlotState::Gone, Some(o)) => write!(f, "not applied here: slot {slot} belongs to {o}"),
            (SlotState::Frozen, _) => write!(
                f,
                "not applied: slot {slot} is being handed over to another shard; retry shortly"
            ),
            (SlotState::Importing, _) => write!(
                f,
                "not applied: slot {slot} is being moved to this shard and is not served yet"
            ),
            _ => write!(f, "not applied here: this shard does not own slot {slot}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_back_from_its_error_text() {
        for r in [
            Refusal {
                slot: 1234,
                epoch: 7,
                state: SlotState::Gone,
                owner: Some("127.0.0.1:7102".into()),
            },
            Refusal {
                slot: 0,
                epoch: 0,
                state: SlotState::Gone,
                owner: None,
            },
            Refusal {
                slot: 16383,
                epoch: u64::MAX,
                state: SlotState::Frozen,
                owner: None,
            },
            Refusal {
                slot: 9,
                epoch: 3,
                state: SlotState::Importing,
                owner: None,
            },
        ] {
            let text = r.to_string();
            assert_eq!(Refusal::parse(&text), Some(r), "{text}");
        }
        assert_eq!(
            Refusal {
                slot: 5,
                epoch: 2,
                state: SlotState::Gone,
                owner: Some("10.0.0.1:7101".into())
            }
            .to_string(),
            "NOTOWNER 5 2 gone 10.0.0.1:7101 not applied here: slot 5 belongs to 10.0.0.1:7101"
        );
        for other in [
            "NOTOWNER",
            "NOTOWNER x 1 gone -",
            "ERR NOTOWNER 1 1 gone -",
            "NOTOWNER 1 1 lost -",
        ] {
            assert_eq!(Refusal::parse(other), None, "{other}");
        }
    }
}
