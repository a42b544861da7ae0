//! Trickle core: the Matrix client-server API over ~100 bps links.
//!
//! `no_std`, no allocator, no `unsafe`, no panics on any input. Every buffer is owned by the
//! caller. The byte layout of everything this crate puts on the air is specified normatively in
//! `docs/PROTOCOL.md` at the repository root.
//!
//! - [`wire`]: compact CoAP (RFC 7252, Observe RFC 7641, Block RFC 7959) and endpoint codes
//!   (MSC3079 v1 path enums and Trickle's own).
//! - [`cbor`]: CBOR substitution tables (MSC3079 v1, `trickle-v1`) and JSON ↔ CBOR transcoding.
//! - [`noise`]: the Noise pipe (XX, IK, XXfallback) that secures the link.
//! - [`client`]: the sans-I/O device client (login, join, send, receive) over the pipe.
//! - [`link`]: airtime of frames on the physical links (LoRa time on air, serial bitrates).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod cbor;
pub mod client;
pub mod link;
pub mod noise;
pub mod wire;
