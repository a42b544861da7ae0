//! CPU cost of full Noise handshakes (filled in below).
fn main() {}
