//! Secret-key primitives over the RustCrypto crates: the AES and SM4 block ciphers in ECB,
//! CBC and CTR mode (streaming), AES-GCM, AES key wrap (RFC 3394 / 5649), HMAC and CMAC.
//! Only byte strings cross this boundary; the PKCS#11 rules (buffering of partial blocks,
//! padding, parameters, return codes) live in `mechanism/`.

pub mod block;
pub mod gcm;
pub mod keywrap;
pub mod mac;

/// The block size of AES and SM4.
pub const BLOCK_LEN: usize = 16;

/// The block ciphers the module offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockCipher {
    /// AES-128, -192 or -256, by key length.
    Aes,
    /// SM4 (GB/T 32907), 128-bit keys.
    Sm4,
}
