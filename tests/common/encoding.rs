//! Independent checks of the RSA encodings (RFC 8017) a module produces, built from the
//! hash crates only. A round trip through one module cannot tell whether it honours the
//! MGF1 hash, the OAEP label or the PSS salt length (a module that ignored them on both
//! sides would still round-trip); decoding the raw RSA output here can.
#![allow(dead_code)]

use cryptoki_sys::*;
use sha2::Digest;

/// The digest of `data` with the hash a CKM_ / CKG_MGF1_ value names.
pub fn hash(mechanism: CK_MECHANISM_TYPE, data: &[u8]) -> Vec<u8> {
    match mechanism {
        CKM_SHA_1 => sha1::Sha1::digest(data).to_vec(),
        CKM_SHA224 => sha2::Sha224::digest(data).to_vec(),
        CKM_SHA256 => sha2::Sha256::digest(data).to_vec(),
        CKM_SHA384 => sha2::Sha384::digest(data).to_vec(),
        CKM_SHA512 => sha2::Sha512::digest(data).to_vec(),
        other => panic!("no hash for mechanism {other:#x}"),
    }
}

/// The hash mechanism behind a CKG_MGF1_* value.
pub fn mgf_hash(mgf: CK_RSA_PKCS_MGF_TYPE) -> CK_MECHANISM_TYPE {
    match mgf {
        CKG_MGF1_SHA1 => CKM_SHA_1,
        CKG_MGF1_SHA224 => CKM_SHA224,
        CKG_MGF1_SHA256 => CKM_SHA256,
        CKG_MGF1_SHA384 => CKM_SHA384,
        CKG_MGF1_SHA512 => CKM_SHA512,
        other => panic!("unknown MGF {other:#x}"),
    }
}

/// MGF1 (RFC 8017 B.2.1).
pub fn mgf1(hash_mechanism: CK_MECHANISM_TYPE, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend(hash(
            hash_mechanism,
            &[seed, &counter.to_be_bytes()].concat(),
        ));
        counter += 1;
    }
    out.truncate(len);
    out
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// EME-OAEP decoding (RFC 8017 7.1.2 step 3) of the raw k-byte block `em`; panics with
/// the reason when the block is not a valid encoding under these parameters.
pub fn oaep_decode(
    em: &[u8],
    hash_mechanism: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
    label: &[u8],
) -> Vec<u8> {
    let h_len = hash(hash_mechanism, b"").len();
    assert_eq!(em[0], 0, "OAEP: first byte");
    let (masked_seed, masked_db) = em[1..].split_at(h_len);
    let seed = xor(masked_seed, &mgf1(mgf_hash(mgf), masked_db, h_len));
    let db = xor(masked_db, &mgf1(mgf_hash(mgf), &seed, masked_db.len()));
    assert_eq!(
        &db[..h_len],
        &hash(hash_mechanism, label)[..],
        "OAEP: lHash (label hashed with the OAEP hash, block unmasked with the MGF1 hash)"
    );
    let rest = &db[h_len..];
    let one = rest
        .iter()
        .position(|b| *b != 0)
        .expect("OAEP: no 0x01 separator");
    assert_eq!(rest[one], 0x01, "OAEP: separator");
    rest[one + 1..].to_vec()
}

/// EMSA-PSS verification (RFC 8017 9.1.2) of the raw k-byte block `em` for a modulus of
/// `mod_bits` bits; returns the salt length found.
pub fn pss_check(
    em: &[u8],
    mod_bits: usize,
    message_hash: &[u8],
    hash_mechanism: CK_MECHANISM_TYPE,
    mgf: CK_RSA_PKCS_MGF_TYPE,
) -> usize {
    let h_len = message_hash.len();
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let em = &em[em.len() - em_len..];
    assert_eq!(em[em_len - 1], 0xbc, "PSS: trailer");
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let h = &rest[..h_len];
    let mut db = xor(masked_db, &mgf1(mgf_hash(mgf), h, masked_db.len()));
    let unused_bits = 8 * em_len - em_bits;
    db[0] &= 0xff >> unused_bits;
    let one = db
        .iter()
        .position(|b| *b != 0)
        .expect("PSS: no 0x01 separator (wrong MGF1 hash?)");
    assert_eq!(db[one], 0x01, "PSS: separator (wrong MGF1 hash?)");
    let salt = &db[one + 1..];
    let m_prime = [&[0u8; 8][..], message_hash, salt].concat();
    assert_eq!(hash(hash_mechanism, &m_prime), h, "PSS: H = Hash(M')");
    salt.len()
}
