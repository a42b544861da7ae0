//! Shortest exact float forms (RFC 8949 §4.2.2 preferred serialization) and half floats.

/// A float in the shortest CBOR width that holds it exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Float {
    F16(u16),
    F32(f32),
    F64(f64),
}

/// The shortest of f16/f32/f64 that represents the finite value `v` exactly.
pub(crate) fn shortest(v: f64) -> Float {
    let f = v as f32;
    if f64::from(f) == v {
        match f32_to_f16_exact(f) {
            Some(h) => Float::F16(h),
            None => Float::F32(f),
        }
    } else {
        Float::F64(v)
    }
}

/// `f` as IEEE 754 binary16 bits if that is exact (finite values only).
pub(crate) fn f32_to_f16_exact(f: f32) -> Option<u16> {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0 {
        // Zero stays zero; f32 subnormals are far below the smallest f16.
        return if mant == 0 { Some(sign) } else { None };
    }
    if exp == 0xff {
        return None;
    }
    let e = exp - 127;
    if (-14..=15).contains(&e) {
        if mant & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((e + 15) as u16) << 10) | (mant >> 13) as u16);
    }
    if (-24..=-15).contains(&e) {
        let full = mant | 0x80_0000;
        let shift = (-(e + 1)) as u32; // 14..=23
        if full & ((1u32 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (full >> shift) as u16);
    }
    None
}

/// 2^k for k in the normal f64 exponent range.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Value of IEEE 754 binary16 bits (may be infinite or NaN).
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let neg = h & 0x8000 != 0;
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * pow2(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + mant) * pow2(exp - 25),
    };
    if neg { -v } else { v }
}
