//! CBOR substitution tables and JSON ↔ CBOR transcoding.
//!
//! Everything here works on caller-owned byte slices: no allocator, no recursion that depends on
//! the input (nesting is tracked on a fixed [`MAX_DEPTH`]-entry stack), and no panic on any input.
//! The exact bytes are specified in `docs/PROTOCOL.md`, section "CBOR bodies and substitution
//! tables".
//!
//! - [`json_to_cbor`] turns one JSON text into deterministically encoded CBOR (RFC 8949 §4.2.1:
//!   definite lengths, shortest integers and lengths, map entries sorted by the bytes of their
//!   encoded keys, floats in the shortest form that keeps the value exactly).
//! - [`cbor_to_json`] turns one CBOR data item back into compact JSON.
//! - [`Table`] chooses the substitution: [`Table::PLAIN`] (none, RFC 8949 §6.2 mapping),
//!   [`Table::MSC3079_V1`] (MSC3079 v1 integer map keys) or [`Table::TRICKLE_V1`] (Trickle's
//!   integer keys plus shared-item references for common string values).
//! - [`Writer`] and [`Reader`] let firmware build and read substituted CBOR directly, without
//!   JSON, on top of `minicbor`.
//!
//! ```
//! use trickle_core::cbor::{cbor_to_json, json_to_cbor, Limits, Table};
//! let mut cbor = [0u8; 16];
//! let n = json_to_cbor(br#"{"msgtype":"m.text","body":"Hello"}"#, &Table::TRICKLE_V1,
//!                      &Limits::DEFAULT, &mut cbor).unwrap();
//! assert_eq!(&cbor[..n], b"\xa2\x08\x65Hello\x09\xe1");
//! let mut json = [0u8; 64];
//! let m = cbor_to_json(&cbor[..n], &Table::TRICKLE_V1, &Limits::DEFAULT, &mut json).unwrap();
//! assert_eq!(&json[..m], br#"{"body":"Hello","msgtype":"m.text"}"#);
//! ```

mod decode;
mod device;
mod encode;
mod error;
mod float;
mod head;
mod table;

#[cfg(test)]
mod tests;

pub use decode::cbor_to_json;
pub use device::{Reader, Writer};
pub use encode::json_to_cbor;
pub use error::{Error, Limit, Malformed, Unsupported};
pub use table::{Keys, Table, Values};

/// Size of the fixed nesting stack: the largest [`Limits::max_depth`] that can be honoured.
pub const MAX_DEPTH: usize = 32;

/// Bounds applied while transcoding, so hostile input costs bounded time and stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// Maximum nesting of arrays and maps; the top-level item is at depth 0, so
    /// `[[1]]` needs a depth of 2. Values above [`MAX_DEPTH`] act as [`MAX_DEPTH`].
    pub max_depth: usize,
    /// Maximum number of data items in the document, counting every value, array, map and map
    /// key.
    pub max_items: usize,
    /// Maximum number of entries in a CBOR map that is not in deterministic order (keys
    /// strictly ascending in shortest form) or that has a text key the table would substitute.
    /// Such maps need a duplicate and twin check that costs entries × map size, so this bound
    /// keeps hostile input cheap. Only [`cbor_to_json`] uses it; [`json_to_cbor`] output never
    /// needs it.
    pub max_unsorted_entries: usize,
}

impl Limits {
    /// Depth 32, 65 536 items, 128 entries in maps that are not in deterministic order.
    pub const DEFAULT: Limits = Limits {
        max_depth: MAX_DEPTH,
        max_items: 65_536,
        max_unsorted_entries: 128,
    };

    pub(crate) fn depth(&self) -> usize {
        if self.max_depth < MAX_DEPTH {
            self.max_depth
        } else {
            MAX_DEPTH
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
