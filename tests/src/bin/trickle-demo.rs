//! `trickle-demo`: the program behind `cargo xtask demo` (see [`trickle_tests::demo`]).
//!
//! Needs the Python venv with Synapse (`cargo xtask demo` installs it; or set `TRICKLE_PYTHON`).
//! Ctrl-C stops the demo cleanly: Synapse is stopped by PID and the temporary directories are
//! removed.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;

use trickle_tests::demo::{self, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    if let Err(e) = demo::run(&options, &mut out) {
        eprintln!("\ntrickle-demo: {e:#}");
        std::process::exit(1);
    }
}
