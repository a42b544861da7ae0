//! Wire formats: compact CoAP and endpoint codes.
