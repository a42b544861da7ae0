//! `cargo xtask size`: flash and RAM of the emulated firmware (`boards/trickle-firmware`) against
//! the budget of issue #6, and of the same firmware built for `thumbv6m-none-eabi`.
//!
//! - **Flash** = every allocated section placed in flash (vector table, `.text`, `.rodata`) plus
//!   the initial values of `.data` (copied to RAM at reset).
//! - **Static RAM** = `.data` + `.bss` + `.uninit`.
//! - **Stack** = the high-water mark measured on the emulated firmware by stack painting:
//!   `cortex-m-rt` (feature `paint-stack`) fills the stack with a pattern at reset; at exit the
//!   firmware finds the lowest overwritten word and prints the depth via semihosting. The run is
//!   the QEMU end-to-end test (`tests/tests/qemu_e2e.rs`: login, join, subscribe, send, receive
//!   against a real Synapse), so the mark covers the whole client scenario.
//! - **Per crate**: every sized symbol of the ELF, demangled, is charged to the first path
//!   segment of its name (for `<A as B>::f`, A's crate). Generic code counts for the crate that
//!   defines it, whoever instantiates it; code that LTO inlined counts for the function it was
//!   inlined into (so the firmware's `main` absorbs the client's inlined call paths). Unmangled
//!   symbols (compiler intrinsics such as `__aeabi_memcpy`, the reset handler, exception
//!   handlers, `main`) form one group; section bytes outside any sized symbol (alignment,
//!   literal pools) another.
//!
//! Budget (issue #6): flash ≤ 48 KiB and RAM (static + stack) ≤ 12 KiB for the `thumbv7m` image.
//! The report is written to `target/size-report/size.md`; the command fails if over budget.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind};

/// Flash budget of the emulated firmware, bytes.
pub const FLASH_BUDGET: u64 = 48 * 1024;
/// RAM budget (static + stack high-water mark), bytes.
pub const RAM_BUDGET: u64 = 12 * 1024;
/// The emulated MCU's target (QEMU `lm3s6965evb`, Cortex-M3).
pub const FIRMWARE_TARGET: &str = "thumbv7m-none-eabi";
/// The smallest Cortex-M profile: the same firmware must build for it.
pub const V6M_TARGET: &str = "thumbv6m-none-eabi";
/// RAM starts here on every Cortex-M (the SRAM region of the architecture's memory map).
const RAM_BASE: u64 = 0x2000_0000;

/// The firmware crate's directory.
pub fn firmware_dir(root: &Path) -> PathBuf {
    root.join("boards/trickle-firmware")
}

/// Where firmware builds go (shared with the QEMU test, which builds the same way).
pub fn firmware_target_dir(root: &Path) -> PathBuf {
    root.join("target/firmware")
}

/// Builds the firmware (release) for `target`; returns the ELF path.
pub fn build(root: &Path, target: &str, features: &str) -> Result<PathBuf> {
    let target_dir = firmware_target_dir(root);
    crate::run(
        crate::cargo(&firmware_dir(root))
            .args([
                "build",
                "--release",
                "--target",
                target,
                "--features",
                features,
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )?;
    Ok(target_dir.join(target).join("release/trickle-firmware"))
}

/// Sizes of one firmware image.
#[derive(Debug, Default)]
pub struct Image {
    /// Rust target.
    pub target: String,
    /// Allocated sections: (name, bytes, in flash?, in RAM?).
    pub sections: Vec<(String, u64, bool, bool)>,
    /// Flash bytes.
    pub flash: u64,
    /// Static RAM bytes.
    pub ram: u64,
    /// Per crate: (flash, RAM).
    pub crates: BTreeMap<String, (u64, u64)>,
    /// The largest symbols: (demangled name, bytes, in flash?).
    pub largest: Vec<(String, u64, bool)>,
}

const UNMANGLED: &str = "[unmangled: intrinsics, reset, handlers, main]";
const UNATTRIBUTED: &str = "[no symbol: padding, literal pools]";

/// The crate a demangled symbol belongs to (see the module docs).
fn crate_of(mangled: &str, demangled: &str) -> String {
    if mangled == demangled {
        return UNMANGLED.to_owned();
    }
    let s = demangled.trim_start_matches(['<', '&', '*', '(', '[']);
    let s = s
        .strip_prefix("mut ")
        .or_else(|| s.strip_prefix("const "))
        .or_else(|| s.strip_prefix("dyn "))
        .unwrap_or(s)
        .trim_start_matches(['<', '&', '*', '(', '[']);
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || !s[name.len()..].starts_with("::") {
        // `<T as Trait>::f` for a generic parameter or primitive type T (a blanket impl such
        // as `<D as digest::Digest>::finalize`, or `<u32 as core::fmt::Display>`): the crate of
        // the trait.
        if let Some(i) = s.find(" as ") {
            return crate_of("", &s[i + 4..]);
        }
        return UNMANGLED.to_owned();
    }
    name
}

/// Reads the ELF at `path`.
pub fn analyse(path: &Path, target: &str) -> Result<Image> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = object::File::parse(&*data).context("parsing the firmware ELF")?;
    let mut image = Image {
        target: target.to_owned(),
        ..Image::default()
    };
    let mut section_class = BTreeMap::new();
    for section in file.sections() {
        let alloc = match section.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
            _ => false,
        };
        if !alloc || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or("?").to_owned();
        let in_ram = section.address() >= RAM_BASE;
        // Initialised data lives in both: its initial values in flash, the variables in RAM.
        let in_flash = !in_ram || section.kind() == SectionKind::Data;
        if in_flash {
            image.flash += section.size();
        }
        if in_ram {
            image.ram += section.size();
        }
        section_class.insert(section.index().0, (in_flash, in_ram));
        image
            .sections
            .push((name, section.size(), in_flash, in_ram));
    }
    let mut seen = HashSet::new();
    let (mut flash_attr, mut ram_attr) = (0u64, 0u64);
    let mut all = Vec::new();
    for sym in file.symbols() {
        if sym.size() == 0 || !seen.insert((sym.address(), sym.size())) {
            continue;
        }
        let Some(&(in_flash, in_ram)) = sym.section_index().and_then(|i| section_class.get(&i.0))
        else {
            continue;
        };
        let mangled = sym.name().unwrap_or("?");
        let demangled = format!("{:#}", rustc_demangle::demangle(mangled));
        let krate = crate_of(mangled, &demangled);
        let entry = image.crates.entry(krate).or_default();
        if in_flash {
            entry.0 += sym.size();
            flash_attr += sym.size();
        }
        if in_ram {
            entry.1 += sym.size();
            ram_attr += sym.size();
        }
        all.push((demangled, sym.size(), in_flash));
    }
    let rest = image.crates.entry(UNATTRIBUTED.to_owned()).or_default();
    rest.0 = image.flash.saturating_sub(flash_attr);
    rest.1 = image.ram.saturating_sub(ram_attr);
    all.sort_by_key(|s| std::cmp::Reverse(s.1));
    all.truncate(25);
    image.largest = all;
    Ok(image)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// The Markdown report; `stack` is the measured high-water mark of the `thumbv7m` image.
pub fn report(v7m: &Image, v6m: &Image, stack: u64) -> String {
    let mut md = String::new();
    let ram_total = v7m.ram + stack;
    let verdict = |used: u64, budget: u64| {
        if used <= budget {
            format!("within budget ({} left)", kib(budget - used))
        } else {
            format!("**OVER BUDGET by {} B**", used - budget)
        }
    };
    let _ = writeln!(md, "# Firmware size (`boards/trickle-firmware`, release)\n");
    let _ = writeln!(
        md,
        "Client + Noise + CoAP + CBOR, no compression; generated by `cargo xtask size`.\n"
    );
    let _ = writeln!(
        md,
        "| | {} (QEMU lm3s6965evb) | {} | budget |",
        v7m.target, v6m.target
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| flash | {} B ({}) | {} B ({}) | {} B |",
        v7m.flash,
        kib(v7m.flash),
        v6m.flash,
        kib(v6m.flash),
        FLASH_BUDGET
    );
    let _ = writeln!(
        md,
        "| static RAM (.data + .bss) | {} B | {} B | |",
        v7m.ram, v6m.ram
    );
    let _ = writeln!(
        md,
        "| stack high-water mark (painted, QEMU end-to-end run) | {stack} B | not run (no M0 board emulated) | |"
    );
    let _ = writeln!(
        md,
        "| RAM incl. stack | {} B ({}) | | {} B |\n",
        ram_total,
        kib(ram_total),
        RAM_BUDGET
    );
    let _ = writeln!(
        md,
        "{}: flash {}, RAM {}.\n",
        v7m.target,
        verdict(v7m.flash, FLASH_BUDGET),
        verdict(ram_total, RAM_BUDGET)
    );
    for image in [v7m, v6m] {
        let _ = writeln!(md, "## {}: sections\n", image.target);
        let _ = writeln!(md, "| section | bytes | counts for |");
        let _ = writeln!(md, "|---|---:|---|");
        for (name, size, f, r) in &image.sections {
            let place = match (f, r) {
                (true, true) => "flash + RAM",
                (true, false) => "flash",
                _ => "RAM",
            };
            let _ = writeln!(md, "| `{name}` | {size} | {place} |");
        }
        let _ = writeln!(md, "\n## {}: per crate\n", image.target);
        let _ = writeln!(
            md,
            "Symbols charged to the crate that names them (see `xtask/src/size.rs`).\n"
        );
        let _ = writeln!(md, "| crate | flash B | RAM B |");
        let _ = writeln!(md, "|---|---:|---:|");
        let mut crates: Vec<_> = image.crates.iter().collect();
        crates.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.1.1.cmp(&a.1.1)));
        for (name, (f, r)) in crates {
            let _ = writeln!(md, "| {name} | {f} | {r} |");
        }
        let _ = writeln!(md, "\n## {}: largest symbols\n", image.target);
        let _ = writeln!(md, "| bytes | where | symbol |");
        let _ = writeln!(md, "|---:|---|---|");
        for (name, size, in_flash) in &image.largest {
            let name: String = name.chars().take(110).collect();
            let place = if *in_flash { "flash" } else { "RAM" };
            let _ = writeln!(md, "| {size} | {place} | `{name}` |");
        }
        let _ = writeln!(md);
    }
    md
}

/// `cargo xtask size [--stack-file FILE]`: builds both images, takes the stack high-water mark
/// from FILE (written by a QEMU end-to-end run) or runs the QEMU test to get it, writes the
/// report and fails if over budget.
pub fn size(root: &Path, args: &[String]) -> Result<()> {
    let mut stack_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stack-file" => {
                stack_file = Some(PathBuf::from(it.next().context("--stack-file FILE")?))
            }
            other => bail!("size: unknown argument `{other}`"),
        }
    }
    let out_dir = root.join("target/size-report");
    std::fs::create_dir_all(&out_dir)?;
    let v7m_elf = build(root, FIRMWARE_TARGET, "")?;
    let v6m_elf = build(root, V6M_TARGET, "")?;
    let stack_file = match stack_file {
        Some(f) => f,
        None => {
            let f = out_dir.join("stack.txt");
            let _ = std::fs::remove_file(&f);
            crate::step("QEMU end-to-end run (stack high-water mark)", || {
                crate::run(
                    crate::cargo(root)
                        .args(["test", "-p", "trickle-tests", "--test", "qemu_e2e"])
                        .env("TRICKLE_FIRMWARE_ELF", &v7m_elf)
                        .env("TRICKLE_STACK_REPORT", &f)
                        .env("TRICKLE_PYTHON", crate::venv_python(root)),
                )
            })?;
            f
        }
    };
    let stack: u64 = std::fs::read_to_string(&stack_file)
        .with_context(|| format!("reading the stack measurement {}", stack_file.display()))?
        .trim()
        .parse()
        .context("stack measurement is not a number")?;
    let v7m = analyse(&v7m_elf, FIRMWARE_TARGET)?;
    let v6m = analyse(&v6m_elf, V6M_TARGET)?;
    let md = report(&v7m, &v6m, stack);
    let path = out_dir.join("size.md");
    std::fs::write(&path, &md)?;
    println!("{md}");
    eprintln!("size report written to {}", path.display());
    let ram = v7m.ram + stack;
    if v7m.flash > FLASH_BUDGET || ram > RAM_BUDGET {
        bail!(
            "firmware over budget: flash {} B (budget {FLASH_BUDGET}), RAM {} B incl. {stack} B stack (budget {RAM_BUDGET})",
            v7m.flash,
            ram
        );
    }
    Ok(())
}
