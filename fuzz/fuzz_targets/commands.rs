//! Arbitrary command sequences, decoded from the fuzz input, executed against a real store:
//! parsing and execution must never panic whatever the arguments.
#![no_main]
use bytes::Bytes;
use fjord_shard::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    let h = HARNESS.get_or_init(Harness::new);
    // Commands are separated by 0xff, arguments by 0xfe; names are drawn from the table so
    // the fuzzer reaches real commands quickly.
    for cmd in data.split(|&b| b == 0xff).take(16) {
        let mut args: Vec<Bytes> = cmd.split(|&b| b == 0xfe).map(Bytes::copy_from_slice).collect();
        if let Some(first) = args.first_mut() {
            let all = fjord_common::command::all();
            if let Some(&i) = first.first() {
                let spec = &all[usize::from(i) % all.len()];
                *first = Bytes::from_static(spec.name.as_bytes());
            }
        }
        h.run(&args);
    }
});
