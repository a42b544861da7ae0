//! `cargo xtask`: the project's task runner.
//!
//! - `cargo xtask test`: everything CI runs (installs what it needs first, idempotently).
//! - `cargo xtask demo [--fast] [flags]`: the main job (a device talking to a real homeserver
//!   over 100 bps; installs the venv with Synapse, then runs `trickle-tests`' `trickle-demo`).
//! - `cargo xtask bytes`: the standard scenario's bytes report, written to `target/bytes-report/`.
//! - `cargo xtask size [--stack-file FILE]`: flash and RAM of the emulated firmware against its
//!   budget, per crate, written to `target/size-report/size.md` (see `size.rs`).
//! - `cargo xtask setup`: only the installation step of `test`.
//!
//! Every external thing the tests need (rustup targets and toolchains, Debian packages, the
//! Python venv with the CoAP peer, cargo-fuzz) is installed here, so a fresh clone works with
//! one command.

mod size;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Minimum supported Rust version, as stated in the workspace `Cargo.toml`; checked by `test`.
const MSRV: &str = "1.87";

/// The MCU targets the core must build for without std or an allocator.
const MCU_TARGETS: &[&str] = &["thumbv6m-none-eabi", "thumbv7em-none-eabihf"];

/// The core's feature sets built for every MCU target (the feature × target matrix).
const CORE_FEATURE_SETS: &[&str] = &["", "defmt"];

/// Board crates (workspace members under `boards/`, no_std libraries): each is linted and built
/// for every MCU target, with and without `defmt`, beside the core. Their host tests run with
/// the workspace's.
const BOARD_CRATES: &[&str] = &["trickle-gprs", "trickle-lora", "trickle-serial"];

/// Debian packages the tests need, with one program each that proves it is installed.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("libcoap3-bin", "coap-client-notls"),
    // The QEMU end-to-end test runs the firmware on an emulated LM3S6965 (Cortex-M3).
    ("qemu-system-arm", "qemu-system-arm"),
];

/// How long each fuzz target runs in the smoke run of `cargo xtask test`, in seconds.
const FUZZ_SMOKE_SECONDS: u32 = 10;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root()?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("setup") => setup(&root),
        Some("size") => {
            setup(&root)?;
            size::size(&root, &args[1..])
        }
        Some("demo") => demo(&root, &args[1..]),
        Some("bytes") => {
            let mut a = vec!["bytes".to_owned(), "--out".to_owned()];
            a.push(root.join("target/bytes-report").display().to_string());
            a.extend(args[1..].iter().cloned());
            demo(&root, &a)
        }
        Some("-h") | Some("--help") | None => {
            print_help();
            Ok(())
        }
        Some(other) => {
            print_help();
            bail!("unknown xtask command `{other}`")
        }
    }
}

fn print_help() {
    eprintln!(
        "cargo xtask <command>\n\n\
         commands:\n  \
         test [--no-fuzz]   everything CI runs; installs what it needs first (idempotent)\n  \
         setup              only install what the tests need\n  \
         size [--stack-file FILE]\n                    \
         firmware flash/RAM (static + painted stack) per crate vs the budget;\n                    \
         target/size-report/size.md\n  \
         demo [--fast] [--bitrate BPS] [--loss P] [--lora SF/BW] [--seed N]\n                    \
         the main job: a device talking to a real homeserver at 100 bps\n  \
         bytes              the standard scenario's bytes report (Markdown, JSON, SVG in\n                    \
         target/bytes-report/)"
    );
}

fn repo_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has no parent dir")?
        .to_path_buf())
}

/// Runs one step, printing its name and how long it took; fails with the step's name.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("\n==> {name}");
    let start = Instant::now();
    f().with_context(|| format!("step failed: {name}"))?;
    eprintln!("<== {name} ({:.1} s)", start.elapsed().as_secs_f64());
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", display(cmd)))?;
    if !status.success() {
        bail!("{} exited with {status}", display(cmd));
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

fn cargo_on(root: &Path, toolchain: &str) -> Command {
    // `rustup run` selects the toolchain even when CARGO points at another one.
    let mut c = Command::new("rustup");
    c.args(["run", toolchain, "cargo"]).current_dir(root);
    // The outer cargo's variables would pin rustc to the outer toolchain.
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "CARGO_MANIFEST_DIR",
    ] {
        c.env_remove(var);
    }
    c
}

/// Path of the Python interpreter in the project's venv (the CoAP peer lives there).
fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

fn setup(root: &Path) -> Result<()> {
    step("rustup: MCU targets, MSRV and nightly toolchains", || {
        for toolchain in ["stable", MSRV, "nightly"] {
            if !succeeds(Command::new("rustup").args(["run", toolchain, "rustc", "--version"])) {
                run(Command::new("rustup").args([
                    "toolchain",
                    "install",
                    toolchain,
                    "--profile",
                    "minimal",
                ]))?;
            }
        }
        run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
        for toolchain in ["stable", MSRV] {
            let installed = Command::new("rustup")
                .args(["target", "list", "--installed", "--toolchain", toolchain])
                .output()?;
            let installed = String::from_utf8_lossy(&installed.stdout);
            for target in MCU_TARGETS.iter().chain(&[size::FIRMWARE_TARGET]) {
                if !installed.lines().any(|l| l.trim() == *target) {
                    run(Command::new("rustup").args([
                        "target",
                        "add",
                        "--toolchain",
                        toolchain,
                        target,
                    ]))?;
                }
            }
        }
        Ok(())
    })?;
    step("Debian packages", || {
        let missing: Vec<&str> = DEBIAN_PACKAGES
            .iter()
            .filter(|(_, program)| {
                !succeeds(Command::new("sh").args(["-c", &format!("command -v {program}")]))
            })
            .map(|(pkg, _)| *pkg)
            .collect();
        if missing.is_empty() {
            eprintln!("all present");
            return Ok(());
        }
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        let apt = |args: &[&str]| {
            let mut c = Command::new(sudo.first().copied().unwrap_or("apt-get"));
            if !sudo.is_empty() {
                c.arg("apt-get");
            }
            c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        run(&mut apt(&["update", "-qq"]))?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&missing);
        run(&mut install)
    })?;
    setup_venv(root)?;
    step("cargo-fuzz", || {
        if succeeds(cargo(root).args(["fuzz", "--version"])) {
            eprintln!("present");
            return Ok(());
        }
        run(cargo(root).args(["install", "cargo-fuzz", "--locked"]))
    })
}

/// Creates `.venv` with the packages of `tests/peers/requirements.txt` (aiocoap, Synapse), unless
/// it is already there with exactly those requirements.
fn setup_venv(root: &Path) -> Result<()> {
    step("Python venv with the test peers (aiocoap, Synapse)", || {
        let requirements = root.join("tests/peers/requirements.txt");
        let wanted = std::fs::read_to_string(&requirements)
            .with_context(|| format!("reading {}", requirements.display()))?;
        let stamp = root.join(".venv/.trickle-requirements");
        if venv_python(root).exists()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted)
        {
            eprintln!("up to date");
            return Ok(());
        }
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(root.join(".venv")))?;
        run(Command::new(venv_python(root))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements))?;
        std::fs::write(&stamp, wanted)?;
        Ok(())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn test(root: &Path, args: &[String]) -> Result<()> {
    let fuzz = !args.iter().any(|a| a == "--no-fuzz");
    let mut totals = TestCounts::default();
    let start = Instant::now();
    setup(root)?;
    step("cargo fmt --check", || {
        run(cargo(root).args(["fmt", "--all", "--check"]))
    })?;
    step("clippy -D warnings (host, all targets)", || {
        run(cargo(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    for target in MCU_TARGETS {
        step(
            &format!("clippy -D warnings (core and boards, {target})"),
            || {
                let mut cmd = cargo(root);
                cmd.args(["clippy", "-p", "trickle-core"]);
                for krate in BOARD_CRATES {
                    cmd.args(["-p", krate]);
                }
                run(cmd.args([
                    "--target",
                    target,
                    "--features",
                    "defmt",
                    "--",
                    "-D",
                    "warnings",
                ]))
            },
        )?;
    }
    step(
        "no_std builds of the core and board crates (feature × target matrix)",
        || {
            for target in MCU_TARGETS {
                for krate in std::iter::once(&"trickle-core").chain(BOARD_CRATES) {
                    for features in CORE_FEATURE_SETS {
                        run(cargo(root).args([
                            "build",
                            "-p",
                            krate,
                            "--release",
                            "--target",
                            target,
                            "--features",
                            features,
                        ]))?;
                    }
                }
            }
            Ok(())
        },
    )?;
    step(
        "no_main link check (core linked into an MCU binary without std)",
        || {
            let dir = root.join("boards/trickle-linkcheck");
            for target in MCU_TARGETS {
                run(cargo(&dir).args(["build", "--release", "--target", target]))?;
            }
            Ok(())
        },
    )?;
    let mut firmware_elf = PathBuf::new();
    step(
        "firmware (boards/trickle-firmware): fmt, clippy and release builds, thumbv7m and thumbv6m, with and without defmt",
        || {
            for target in [size::V6M_TARGET, size::FIRMWARE_TARGET] {
                for features in ["", "defmt"] {
                    run(cargo(&size::firmware_dir(root))
                        .args(["clippy", "--release", "--target", target, "--features"])
                        .arg(features)
                        .arg("--target-dir")
                        .arg(size::firmware_target_dir(root))
                        .args(["--", "-D", "warnings"]))?;
                }
                run(cargo(&size::firmware_dir(root)).args(["fmt", "--check"]))?;
                size::build(root, target, "defmt")?;
            }
            size::build(root, size::V6M_TARGET, "")?;
            // Last, so the QEMU test runs exactly the image that is measured.
            firmware_elf = size::build(root, size::FIRMWARE_TARGET, "")?;
            Ok(())
        },
    )?;
    let stack_file = root.join("target/size-report/stack.txt");
    std::fs::create_dir_all(root.join("target/size-report"))?;
    let _ = std::fs::remove_file(&stack_file);
    step(
        &format!("MSRV {MSRV}: workspace on the host, core on MCU targets"),
        || {
            run(cargo_on(root, MSRV).args(["check", "--workspace"]))?;
            for target in MCU_TARGETS {
                let mut cmd = cargo_on(root, MSRV);
                cmd.args(["check", "-p", "trickle-core"]);
                for krate in BOARD_CRATES {
                    cmd.args(["-p", krate]);
                }
                run(cmd.args(["--target", target]))?;
            }
            Ok(())
        },
    )?;
    step(
        "tests (host, whole workspace, with the real peers: aiocoap, libcoap, Synapse)",
        || {
            // The binaries the tests run as processes (the `trickle` gateway), built once with
            // the same feature set as the tests so nothing is compiled twice.
            run(cargo(root).args(["build", "--workspace", "--all-features", "--bins"]))?;
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            let counts = run_counting_tests(
                cargo(root)
                    .args(["test", "--workspace", "--all-features"])
                    .env("TRICKLE_PYTHON", venv_python(root))
                    .env("TRICKLE_BIN", target_dir.join("debug/trickle"))
                    // The QEMU end-to-end test runs this image and reports its stack use.
                    .env("TRICKLE_FIRMWARE_ELF", &firmware_elf)
                    .env("TRICKLE_STACK_REPORT", &stack_file),
            )?;
            totals = counts;
            Ok(())
        },
    )?;
    step(
        "firmware size vs budget (stack from the QEMU end-to-end test)",
        || {
            size::size(
                root,
                &["--stack-file".to_owned(), stack_file.display().to_string()],
            )
        },
    )?;
    if fuzz {
        step("fuzz smoke", || fuzz_smoke(root))?;
    }
    // The closing line CI reads: every test of the workspace, summed over all test binaries.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    eprintln!(
        "\nall checks passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Test counts summed over the `test result:` lines of `cargo test`.
#[derive(Debug, Default, Clone, Copy)]
struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs `cargo test`, passing its output through, and sums its `test result:` lines.
fn run_counting_tests(cmd: &mut Command) -> Result<TestCounts> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("$ {}", display(cmd));
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", display(cmd)))?;
    let mut counts = TestCounts::default();
    let stdout = child.stdout.take().context("no stdout")?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            let number_before = |word: &str| -> u64 {
                rest.split(';')
                    .filter_map(|part| part.trim().strip_suffix(word))
                    .filter_map(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .next()
                    .unwrap_or(0)
            };
            counts.passed += number_before("passed");
            counts.failed += number_before("failed");
            counts.ignored += number_before("ignored");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{} exited with {status}", display(cmd));
    }
    Ok(counts)
}

/// Runs every cargo-fuzz target for a few seconds on its seed corpus.
fn fuzz_smoke(root: &Path) -> Result<()> {
    let fuzz_dir = root.join("fuzz");
    let out = cargo_on(root, "nightly")
        .args(["fuzz", "list", "--fuzz-dir"])
        .arg(&fuzz_dir)
        .output()
        .context("cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if targets.is_empty() {
        bail!("no fuzz targets found");
    }
    for target in &targets {
        // A scratch corpus dir so the committed seeds stay as they are.
        let scratch = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&scratch)?;
        let seeds = root.join("fuzz/seeds").join(target);
        run(cargo_on(root, "nightly")
            .args(["fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(target)
            .arg(&scratch)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={FUZZ_SMOKE_SECONDS}")))?;
    }
    Ok(())
}

/// `cargo xtask demo [flags]`: installs the venv with Synapse if needed, then runs the
/// `trickle-demo` binary of `trickle-tests` (see `tests/src/demo.rs`), passing the flags on.
fn demo(root: &Path, args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "cargo xtask demo [--fast] [--bitrate BPS] [--loss P] [--lora SF/BW] [--seed N]\n\n\
             A device (the core's client) logs in, joins a room, sends \"Hello?\", receives a\n\
             reply and sends again after a reboot, over a simulated 100 bit/s link to the\n\
             gateway and a real Synapse started on 127.0.0.1; every frame is shown as it\n\
             crosses the link, then a table of bytes on air against HTTP+JSON."
        );
        return Ok(());
    }
    setup_venv(root)?;
    // Ctrl-C reaches the whole process group: the demo stops Synapse and cleans up by itself;
    // xtask only waits for it to finish.
    ctrlc::set_handler(|| {}).context("installing the ctrl-c handler")?;
    step("build the demo", || {
        run(cargo(root).args([
            "build",
            "--quiet",
            "-p",
            "trickle-tests",
            "--bin",
            "trickle-demo",
        ]))
    })?;
    eprintln!();
    let status = cargo(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "trickle-tests",
            "--bin",
            "trickle-demo",
            "--",
        ])
        .args(args)
        .env("TRICKLE_PYTHON", venv_python(root))
        .status()
        .context("running the demo")?;
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}
