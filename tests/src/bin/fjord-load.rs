//! `fjord-load`: split-and-merge MGET/MSET load with every reply checked. See `--help` and
//! `fjord_tests::load`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "fjord-load",
    about = "MGET/MSET load against fjord's proxy or a Redis Cluster, checking every reply"
)]
struct Cli {
    #[command(flatten)]
    options: fjord_tests::load::Options,
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the runtime");
    let report = match runtime.block_on(fjord_tests::load::run(cli.options.clone())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord-load: {e:#}");
            std::process::exit(2);
        }
    };
    print!("{}", report.text());
    if let Some(path) = &cli.options.json {
        let json = serde_json::to_string_pretty(&report).expect("the report serializes");
        let written = match path.as_str() {
            "-" => {
                println!("{json}");
                Ok(())
            }
            file => std::fs::write(file, json + "\n"),
        };
        if let Err(e) = written {
            eprintln!("fjord-load: writing {path}: {e}");
            std::process::exit(2);
        }
    }
    if !report.passed() {
        std::process::exit(1);
    }
}
