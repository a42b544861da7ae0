//! Endpoint codes (work in progress).
