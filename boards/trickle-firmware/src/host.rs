//! What the firmware asks of the host through semihosting: its configuration file, a console,
//! the exit code. On a board without a debugger these would be flash, a log UART and a reset.

use semihosting::io::{Read, Write};

/// The configuration file, opened relative to QEMU's working directory.
pub const CONFIG_FILE: &core::ffi::CStr = c"trickle-firmware.cfg";

/// Reads the configuration file into `buf`; returns its length (`None`: missing or too large).
#[inline(never)]
pub fn read_config(buf: &mut [u8]) -> Option<usize> {
    let mut file = semihosting::fs::File::open(CONFIG_FILE).ok()?;
    let mut len = 0;
    loop {
        let rest = buf.get_mut(len..)?;
        if rest.is_empty() {
            // Full: the file is larger than the buffer unless this read finds its end.
            let mut probe = [0u8; 1];
            return match file.read(&mut probe) {
                Ok(0) => Some(len),
                _ => None,
            };
        }
        match file.read(rest) {
            Ok(0) => return Some(len),
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
}

/// Prints the parts on one line of the host's standard output (standard error with the `defmt`
/// feature, whose binary log frames own standard output).
pub fn say(parts: &[&[u8]]) {
    #[cfg(not(feature = "defmt"))]
    let out = semihosting::io::stdout();
    #[cfg(feature = "defmt")]
    let out = semihosting::io::stderr();
    if let Ok(mut out) = out {
        for p in parts {
            let _ = out.write_all(p);
        }
        let _ = out.write_all(b"\n");
    }
}

/// `n` in decimal, into `buf`.
pub fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            return &buf[i..];
        }
    }
}

/// Ends the emulation with `code` (QEMU exits with it).
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Bytes of stack ever used: `cortex-m-rt` painted the stack with `STACK_PAINT_VALUE` at reset
/// (feature `paint-stack`); the lowest word no longer painted is the high-water mark.
pub fn stack_high_water() -> u32 {
    unsafe extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    let top = &raw const _stack_start as usize;
    let mut addr = &raw const _stack_end as usize;
    while addr < top {
        // SAFETY: `_stack_end.._stack_start` is the stack region of RAM given by the linker
        // script: mapped, 4-byte aligned (asserted by cortex-m-rt's link.x) and initialised by
        // the paint at reset. A volatile read of a word there cannot fault, and words below the
        // stack pointer are not referenced by any live Rust value.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        addr += 4;
    }
    (top - addr) as u32
}
