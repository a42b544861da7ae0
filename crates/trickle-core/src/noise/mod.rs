//! The Noise pipe: `Noise_XX`, `Noise_IK` and `Noise_XXfallback` over 25519, ChaChaPoly, BLAKE2s.

pub mod frame;
pub mod replay;
pub mod storage;
