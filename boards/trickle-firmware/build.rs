//! Puts `memory.x` (and an empty `device.x`) where the cortex-m-rt linker script finds them.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    // cortex-m-rt's `device` feature includes `device.x` (weak interrupt handler names, which
    // a PAC would supply): this firmware names none.
    fs::write(out.join("device.x"), "/* no device interrupt handlers */\n")
        .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // defmt's linker script (its interned strings) only with the `defmt` feature.
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
