//! Redis's error texts.
//!
//! Client libraries map errors to exceptions by their first word and sometimes by their whole
//! text (`WRONGTYPE`, `CROSSSLOT`, `MOVED`, `wrong number of arguments`), so fjord uses Redis's
//! wording to the letter. Every error a client can see is built here.

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
pub const INVALID_HLL: &str = "INVALIDOBJ Corrupted HLL object detected";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
pub const VALUE_NAN_OR_INF: &str = "ERR value is NaN or Infinity";
pub const OUT_OF_RANGE: &str = "ERR value is out of range";
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
pub const LPOS_RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub const DB_INDEX_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
pub const MISCONF: &str = "MISCONF Errors writing to the AOF file: the shard's store failed to write or fsync; it refuses writes until restarted";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const SLOT_OUT_OF_RANGE: &str = "ERR Invalid or out of range slot";
pub const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
pub const BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
pub const BIT_VALUE: &str = "ERR bit is not an integer or out of range";
pub const BIT_ARGUMENT: &str = "ERR The bit argument must be 1 or 0.";
pub const BITOP_NOT_ONE_KEY: &str = "ERR BITOP NOT must be called with a single source key.";
pub const BITFIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
pub const BITFIELD_OVERFLOW: &str = "ERR Invalid OVERFLOW type specified";
pub const BITFIELD_RO_GET_ONLY: &str = "ERR BITFIELD_RO only supports the GET subcommand";

/// How a replica's refusal of a read begins when its data may be older than the bound its
/// client set (the proxy then reads from the primary instead).
pub const REPLICA_STALE: &str = "TRYAGAIN fjord replica";

/// A replica refusing a read: its data may be `lag_ms` old (`None`: its link to the primary
/// is not streaming), more than the `max_ms` asked for.
pub fn replica_stale(lag_ms: Option<u64>, max_ms: u64) -> String {
    match lag_ms {
        Some(lag) => format!(
            "{REPLICA_STALE} is {lag} ms behind its primary (more than the {max_ms} ms allowed)"
        ),
        None => format!("{REPLICA_STALE} is not streaming from its primary"),
    }
}

/// A replica's read that waited too long for its primary to confirm the writes it would see.
pub const REPLICA_UNCONFIRMED: &str =
    "TRYAGAIN fjord replica: its primary has not confirmed the writes this read would see";

/// `ERR wrong number of arguments for 'get' command`; subcommands read `'client|setname'`.
pub fn wrong_arity(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

/// Redis's unknown-command text, quoting the arguments up to 128 characters like Redis does.
pub fn unknown_command(name: &[u8], args: &[impl AsRef<[u8]>]) -> String {
    let mut quoted = String::new();
    for arg in args {
        if quoted.len() >= 128 {
            break;
        }
        let arg = String::from_utf8_lossy(arg.as_ref());
        let room = 128 - quoted.len();
        let arg: String = arg.chars().take(room).collect();
        quoted.push('\'');
        quoted.push_str(&arg);
        quoted.push_str("' ");
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncate(&String::from_utf8_lossy(name), 128),
        quoted
    )
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub fn unknown_subcommand(command: &str, sub: &[u8]) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        truncate(&String::from_utf8_lossy(sub), 128),
        command.to_ascii_uppercase()
    )
}

/// `ERR invalid expire time in 'set' command`.
pub fn invalid_expire(command: &str) -> String {
    format!("ERR invalid expire time in '{command}' command")
}

/// The error for a command that fjord refuses on purpose (MULTI, blocking commands, …).
pub fn not_supported(command: &str, why: &str) -> String {
    format!("ERR '{command}' is not supported by fjord: {why}")
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
