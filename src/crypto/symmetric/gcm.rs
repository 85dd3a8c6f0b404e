//! AES-GCM (NIST SP 800-38D), one shot: the mechanism collects the whole message first,
//! so a decryption releases nothing before its tag has been checked.
//!
//! Backends, chosen by measurement (README "Benchmarks"): with the `aws-lc` feature the
//! common case, a 96-bit IV with a 128-bit tag, runs through aws-lc (AES-NI + CLMUL/VAES
//! assembly, OpenSSL's speed); every other IV and tag length, and the pure-Rust build, runs
//! through RustCrypto's `aes-gcm`.

use crate::error::{Error, Result};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::{U12, U13, U14, U15, U16};
use aes_gcm::aead::generic_array::{ArrayLength, GenericArray};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::cipher::{BlockCipher, BlockEncrypt};
use aes_gcm::AesGcm;
use cryptoki_sys::*;
use zeroize::{Zeroize, Zeroizing};

/// IV lengths (bytes) accepted: 96 bits, the recommended and by far the most common, and
/// 128 bits, which some clients generate.
pub const IV_LENGTHS: [usize; 2] = [12, 16];
/// Tag lengths (bytes) accepted: 96 to 128 bits (SP 800-38D §5.2.1.2; shorter tags need
/// usage limits PKCS#11 cannot express).
pub const TAG_LENGTHS: std::ops::RangeInclusive<usize> = 12..=16;

fn param_invalid(why: &'static str) -> Error {
    Error::with(CKR_MECHANISM_PARAM_INVALID, why)
}

/// Checks the key, IV and tag lengths before any data arrives.
pub fn check(key: &[u8], iv: &[u8], tag_len: usize) -> Result<()> {
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(Error::with(
            CKR_KEY_SIZE_RANGE,
            "AES keys are 16, 24 or 32 bytes",
        ));
    }
    if !IV_LENGTHS.contains(&iv.len()) {
        return Err(param_invalid("GCM IV must be 12 or 16 bytes"));
    }
    if !TAG_LENGTHS.contains(&tag_len) {
        return Err(param_invalid("GCM tag must be 96 to 128 bits"));
    }
    Ok(())
}

/// Ciphertext followed by the tag (`tag_len` bytes), as PKCS#11 returns it.
pub fn seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>> {
    let mut out = crate::memory::buffer(plaintext.len() + tag_len)?;
    out.resize(plaintext.len() + tag_len, 0);
    seal_into(key, iv, aad, plaintext, tag_len, &mut out)?;
    Ok(out)
}

/// As `seal`, into `out` (at least `plaintext.len() + tag_len` bytes), which the backends
/// write directly: a bulk encryption through C_Encrypt needs no buffer of its own.
/// Returns the length written.
pub fn seal_into(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
    out: &mut [u8],
) -> Result<usize> {
    check(key, iv, tag_len)?;
    let n = plaintext.len();
    let out = out
        .get_mut(..n + tag_len)
        .ok_or(Error::new(CKR_BUFFER_TOO_SMALL))?;
    let (ciphertext, tag_out) = out.split_at_mut(n);
    #[cfg(feature = "aws-lc")]
    if iv.len() == 12 && tag_len == 16 {
        awslc::seal_into(key, iv, aad, plaintext, ciphertext, tag_out)?;
        return Ok(n + tag_len);
    }
    ciphertext.copy_from_slice(plaintext);
    // A tag truncated to t bytes is the full tag's first t bytes (SP 800-38D §7.1 step 6).
    let tag = match key.len() {
        16 => seal_with::<Aes128>(key, iv, aad, ciphertext)?,
        24 => seal_with::<Aes192>(key, iv, aad, ciphertext)?,
        _ => seal_with::<Aes256>(key, iv, aad, ciphertext)?,
    };
    tag_out.copy_from_slice(&tag[..tag_len]);
    Ok(n + tag_len)
}

/// The plaintext length of a `sealed` message (ciphertext || tag); a message shorter than
/// its tag is CKR_ENCRYPTED_DATA_LEN_RANGE.
pub fn opened_len(sealed_len: usize, tag_len: usize) -> Result<usize> {
    sealed_len.checked_sub(tag_len).ok_or_else(|| {
        Error::with(
            CKR_ENCRYPTED_DATA_LEN_RANGE,
            "GCM ciphertext shorter than its tag",
        )
    })
}

/// The plaintext of `sealed` (ciphertext || tag); any mismatch is
/// CKR_ENCRYPTED_DATA_INVALID, a ciphertext shorter than the tag
/// CKR_ENCRYPTED_DATA_LEN_RANGE.
pub fn open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    sealed: &[u8],
    tag_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check(key, iv, tag_len)?;
    let len = opened_len(sealed.len(), tag_len)?;
    let mut out = Zeroizing::new(crate::memory::buffer(len)?);
    out.resize(len, 0);
    open_into(key, iv, aad, sealed, tag_len, &mut out)?;
    Ok(out)
}

/// As `open`, into `out` (at least the plaintext's length). The backends decrypt into it
/// before the tag is known to match; a mismatch wipes what was written, so a caller's
/// buffer never holds unauthenticated plaintext once the call returns.
pub fn open_into(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    sealed: &[u8],
    tag_len: usize,
    out: &mut [u8],
) -> Result<usize> {
    check(key, iv, tag_len)?;
    let n = opened_len(sealed.len(), tag_len)?;
    let out = out.get_mut(..n).ok_or(Error::new(CKR_BUFFER_TOO_SMALL))?;
    let (ciphertext, tag) = sealed.split_at(n);
    let opened = open_with_backend(key, iv, aad, ciphertext, tag, out);
    if opened.is_err() {
        out.zeroize();
    }
    opened.map(|()| n)
}

fn open_with_backend(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
    out: &mut [u8],
) -> Result<()> {
    #[cfg(feature = "aws-lc")]
    if iv.len() == 12 && tag.len() == 16 {
        return awslc::open_into(key, iv, aad, ciphertext, tag, out);
    }
    out.copy_from_slice(ciphertext);
    macro_rules! by_tag {
        ($aes:ty) => {
            match tag.len() {
                12 => open_with::<$aes, U12>(key, iv, aad, out, tag),
                13 => open_with::<$aes, U13>(key, iv, aad, out, tag),
                14 => open_with::<$aes, U14>(key, iv, aad, out, tag),
                15 => open_with::<$aes, U15>(key, iv, aad, out, tag),
                _ => open_with::<$aes, U16>(key, iv, aad, out, tag),
            }
        };
    }
    match key.len() {
        16 => by_tag!(Aes128),
        24 => by_tag!(Aes192),
        _ => by_tag!(Aes256),
    }
}

fn tampered() -> Error {
    Error::with(CKR_ENCRYPTED_DATA_INVALID, "GCM tag mismatch")
}

fn seal_with<A>(key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>>
where
    A: BlockCipher<BlockSize = U16> + BlockEncrypt + KeyInit,
{
    fn run<A, N>(key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>>
    where
        A: BlockCipher<BlockSize = U16> + BlockEncrypt + KeyInit,
        N: ArrayLength<u8>,
    {
        let gcm =
            AesGcm::<A, N, U16>::new_from_slice(key).map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?;
        let tag = gcm
            .encrypt_in_place_detached(GenericArray::from_slice(iv), aad, buf)
            .map_err(|_| Error::with(CKR_DATA_LEN_RANGE, "GCM message too long"))?;
        Ok(tag.to_vec())
    }
    match iv.len() {
        12 => run::<A, U12>(key, iv, aad, buf),
        _ => run::<A, U16>(key, iv, aad, buf),
    }
}

fn open_with<A, T>(key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()>
where
    A: BlockCipher<BlockSize = U16> + BlockEncrypt + KeyInit,
    T: aes_gcm::TagSize,
{
    fn run<A, N, T>(key: &[u8], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()>
    where
        A: BlockCipher<BlockSize = U16> + BlockEncrypt + KeyInit,
        N: ArrayLength<u8>,
        T: aes_gcm::TagSize,
    {
        let gcm =
            AesGcm::<A, N, T>::new_from_slice(key).map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))?;
        gcm.decrypt_in_place_detached(
            GenericArray::from_slice(iv),
            aad,
            buf,
            GenericArray::from_slice(tag),
        )
        .map_err(|_| tampered())
    }
    match iv.len() {
        12 => run::<A, U12, T>(key, iv, aad, buf, tag),
        _ => run::<A, U16, T>(key, iv, aad, buf, tag),
    }
}

#[cfg(feature = "aws-lc")]
mod awslc {
    use super::tampered;
    use crate::error::{Error, Result};
    use aws_lc_rs::aead::{
        Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM,
    };
    use cryptoki_sys::*;

    fn key_of(key: &[u8]) -> Result<LessSafeKey> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            24 => &AES_192_GCM,
            _ => &AES_256_GCM,
        };
        UnboundKey::new(alg, key)
            .map(LessSafeKey::new)
            .map_err(|_| Error::new(CKR_KEY_SIZE_RANGE))
    }

    fn nonce(iv: &[u8]) -> Result<Nonce> {
        Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::new(CKR_MECHANISM_PARAM_INVALID))
    }

    pub fn seal_into(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8],
    ) -> Result<()> {
        key_of(key)?
            .seal_out_of_place_scatter(nonce(iv)?, Aad::from(aad), plaintext, ciphertext, &[], tag)
            .map_err(|_| Error::with(CKR_DATA_LEN_RANGE, "GCM message too long"))
    }

    pub fn open_into(
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        plaintext: &mut [u8],
    ) -> Result<()> {
        key_of(key)?
            .open_separate_gather(nonce(iv)?, Aad::from(aad), ciphertext, tag, plaintext)
            .map_err(|_| tampered())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The GCM spec's test case 4 (AES-128, 96-bit IV, AAD), McGrew & Viega.
    const KEY: &str = "feffe9928665731c6d6a8f9467308308";
    const IV: &str = "cafebabefacedbaddecaf888";
    const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    const CT: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
    const TAG: &str = "5bc94fbc3221a5db94fae95ae7121a47";

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn known_answer_both_backends_and_truncated_tags() {
        let sealed = seal(&h(KEY), &h(IV), &h(AAD), &h(PT), 16).unwrap();
        assert_eq!(hex::encode(&sealed), format!("{CT}{TAG}"));
        assert_eq!(
            open(&h(KEY), &h(IV), &h(AAD), &sealed, 16)
                .unwrap()
                .as_slice(),
            h(PT)
        );
        // 12-byte tag: the RustCrypto path, the same tag's prefix.
        let short = seal(&h(KEY), &h(IV), &h(AAD), &h(PT), 12).unwrap();
        assert_eq!(hex::encode(&short), format!("{CT}{}", &TAG[..24]));
        assert_eq!(
            open(&h(KEY), &h(IV), &h(AAD), &short, 12)
                .unwrap()
                .as_slice(),
            h(PT)
        );
    }

    #[test]
    fn tampering_is_encrypted_data_invalid() {
        let mut sealed = seal(&h(KEY), &h(IV), &h(AAD), &h(PT), 16).unwrap();
        sealed[3] ^= 1;
        let e = open(&h(KEY), &h(IV), &h(AAD), &sealed, 16).unwrap_err();
        assert_eq!(e.rv, CKR_ENCRYPTED_DATA_INVALID);
        let e = open(
            &h(KEY),
            &h(IV),
            b"other",
            &seal(&h(KEY), &h(IV), &[], b"x", 16).unwrap(),
            16,
        );
        assert_eq!(e.unwrap_err().rv, CKR_ENCRYPTED_DATA_INVALID);
        let e = open(&h(KEY), &h(IV), &[], &[0; 5], 16).unwrap_err();
        assert_eq!(e.rv, CKR_ENCRYPTED_DATA_LEN_RANGE);
    }

    #[test]
    fn sixteen_byte_iv_round_trips_and_bad_lengths_are_param_invalid() {
        let iv = [7u8; 16];
        let sealed = seal(&h(KEY), &iv, &[], b"hello", 16).unwrap();
        assert_eq!(
            open(&h(KEY), &iv, &[], &sealed, 16).unwrap().as_slice(),
            b"hello"
        );
        assert_eq!(
            seal(&h(KEY), &[0; 8], &[], b"", 16).unwrap_err().rv,
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            seal(&h(KEY), &h(IV), &[], b"", 8).unwrap_err().rv,
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}
