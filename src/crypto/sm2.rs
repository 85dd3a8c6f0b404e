//! SM2 (placeholder until the SM2 family lands).

pub struct Sm2PublicKey;
pub struct Sm2PrivateKey;
