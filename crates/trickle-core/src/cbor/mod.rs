//! CBOR substitution tables and JSON ↔ CBOR transcoding.
