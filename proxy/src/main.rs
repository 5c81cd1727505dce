//! `fjord-proxy`: not built yet (issue 3). It exits with an error so that nothing mistakes it
//! for a working proxy.

fn main() {
    eprintln!("fjord-proxy is not implemented yet; run the shards directly (see README)");
    std::process::exit(2);
}
