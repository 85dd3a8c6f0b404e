//! Mechanism parameters of the RSA family, checked and turned into backend schemes.

use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::{check_pss_salt, RsaEncryption, RsaSignature};
use crate::error::{fail, Error, Result};
use crate::mechanism::digest::{hash_for_mechanism, hash_for_mgf};
use crate::mechanism::MechanismParam;
use cryptoki_sys::*;

/// `CK_RSA_PKCS_OAEP_PARAMS`: any SHA-1/SHA-2 hash with any MGF1 hash; the label comes
/// from `pSourceData` with `CKZ_DATA_SPECIFIED` (a source of 0 is tolerated without label,
/// as some clients send it).
pub fn oaep(param: &MechanismParam) -> Result<RsaEncryption> {
    let MechanismParam::Oaep {
        hash_alg,
        mgf,
        source,
        source_data,
    } = param
    else {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "OAEP needs CK_RSA_PKCS_OAEP_PARAMS",
        ));
    };
    let hash = hash_for_mechanism(*hash_alg).ok_or(Error::with(
        CKR_MECHANISM_PARAM_INVALID,
        "unsupported OAEP hashAlg",
    ))?;
    let mgf1 = hash_for_mgf(*mgf).ok_or(Error::with(
        CKR_MECHANISM_PARAM_INVALID,
        "unsupported OAEP mgf",
    ))?;
    match *source {
        CKZ_DATA_SPECIFIED => {}
        0 if source_data.is_empty() => {}
        _ => return fail(CKR_MECHANISM_PARAM_INVALID),
    }
    Ok(RsaEncryption::Oaep {
        hash,
        mgf1,
        label: source_data.clone(),
    })
}

/// `CK_RSA_PKCS_PSS_PARAMS` for a key of `k` octets. `mechanism_hash` is the hash of a
/// CKM_SHA*_RSA_PKCS_PSS mechanism, which `hashAlg` must repeat. MGF1 must use the same
/// hash as the message (the backends' EMSA-PSS has one hash), and the salt must fit.
pub fn pss(
    param: &MechanismParam,
    mechanism_hash: Option<HashAlg>,
    k: usize,
) -> Result<RsaSignature> {
    let MechanismParam::Pss {
        hash_alg,
        mgf,
        salt_len,
    } = param
    else {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "PSS needs CK_RSA_PKCS_PSS_PARAMS",
        ));
    };
    let hash = hash_for_mechanism(*hash_alg).ok_or(Error::with(
        CKR_MECHANISM_PARAM_INVALID,
        "unsupported PSS hashAlg",
    ))?;
    let mgf1 = hash_for_mgf(*mgf).ok_or(Error::with(
        CKR_MECHANISM_PARAM_INVALID,
        "unsupported PSS mgf",
    ))?;
    if mechanism_hash.is_some_and(|h| h != hash) {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "PSS hashAlg differs from the mechanism's",
        ));
    }
    if mgf1 != hash {
        return Err(Error::with(
            CKR_MECHANISM_PARAM_INVALID,
            "PSS MGF1 hash must equal hashAlg",
        ));
    }
    let salt_len =
        usize::try_from(*salt_len).map_err(|_| Error::new(CKR_MECHANISM_PARAM_INVALID))?;
    // Only k is known here, so the bound is that of an 8k-bit modulus (emLen = k); the
    // backend checks the exact one (emLen is k - 1 when modBits - 1 is a multiple of 8).
    // This catches the plain cases at init, as the spec wants.
    check_pss_salt(k.saturating_mul(8), hash, salt_len)?;
    Ok(RsaSignature::Pss {
        hash,
        mgf1,
        salt_len,
    })
}
