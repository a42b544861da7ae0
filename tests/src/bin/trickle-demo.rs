//! `trickle-demo`: the program behind `cargo xtask demo` (see [`trickle_tests::demo`]) and,
//! as `trickle-demo bytes [--out DIR]`, behind `cargo xtask bytes`
//! (see [`trickle_tests::bytes_report`]).
//!
//! Needs the Python venv with Synapse (`cargo xtask demo` installs it; or set `TRICKLE_PYTHON`).
//! Ctrl-C stops the demo cleanly: Synapse is stopped by PID and the temporary directories are
//! removed.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;

use trickle_tests::demo::{self, Options};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let bytes = args.first().is_some_and(|a| a == "bytes");
    let mut out_dir = std::path::PathBuf::from("bytes-report");
    if bytes {
        args.remove(0);
        if let Some(i) = args.iter().position(|a| a == "--out") {
            let Some(dir) = args.get(i + 1).cloned() else {
                eprintln!("trickle-demo: --out needs a directory");
                std::process::exit(2);
            };
            out_dir = dir.into();
            args.drain(i..=i + 1);
        }
    }
    let mut options = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("trickle-demo: {e:#}");
            std::process::exit(2);
        }
    };
    options.live = std::io::stdout().is_terminal();
    let flag = options.interrupted.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("trickle-demo: cannot install the ctrl-c handler: {e}");
    }
    let mut out = std::io::stdout();
    let result = if bytes {
        trickle_tests::bytes_report::run(&out_dir, &options, &mut out).map(drop)
    } else {
        demo::run(&options, &mut out).map(drop)
    };
    if let Err(e) = result {
        eprintln!("\ntrickle-demo: {e:#}");
        std::process::exit(1);
    }
}
