//! Test harness helpers: a real Synapse ([`synapse::Synapse`]), a plain HTTP+JSON Matrix client
//! ([`matrix::MatrixUser`]) and a byte-counting TCP relay ([`tap::ByteTap`]).

pub mod matrix;
pub mod synapse;
pub mod tap;
