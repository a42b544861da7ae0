//! Test harness helpers: a real Synapse ([`synapse::Synapse`]), a plain HTTP+JSON Matrix client
//! ([`matrix::MatrixUser`]), a simulated AT modem for `trickle-gprs` ([`modem_sim`]), a
//! byte-counting TCP relay ([`tap::ByteTap`]), and the demo of `cargo xtask demo` ([`demo`],
//! binary `trickle-demo`) and the bytes report of `cargo xtask bytes` ([`bytes_report`]).

pub mod bytes_report;
pub mod demo;
pub mod matrix;
pub mod modem_sim;
pub mod synapse;
pub mod tap;
