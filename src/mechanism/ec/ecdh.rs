//! `CKM_ECDH1_DERIVE` and `CKM_ECDH1_COFACTOR_DERIVE` (mechanisms spec §2.3.10) on NIST
//! curves and X25519: Z from the base key and the peer's public key (`pPublicData`, raw or
//! as a DER OCTET STRING), then the KDF: `CKD_NULL` (Z itself; no shared data allowed) or
//! the ANSI X9.63 KDF over SHA-1/SHA-2 with the shared data. Every supported curve has
//! cofactor 1 (X25519 clears it by construction), so both mechanisms compute the same Z.

use super::DERIVE_FLAGS;
use crate::crypto::ec::X25519_KEY_LEN;
use crate::error::{Error, Result};
use crate::mechanism::ec_point as point;
use crate::mechanism::{LoadedKey, Mechanism, MechanismInfo, MechanismParam};
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub struct Ecdh;

fn param_invalid(why: &'static str) -> Error {
    Error::with(CKR_MECHANISM_PARAM_INVALID, why)
}

impl Mechanism for Ecdh {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: super::edwards_info(0).min_key_size,
            ..super::weierstrass_info(DERIVE_FLAGS)
        }
    }

    fn derive(
        &self,
        param: &MechanismParam,
        base: &LoadedKey,
        value_len: Option<usize>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let MechanismParam::Ecdh1 {
            kdf,
            shared_data,
            public_data,
        } = param
        else {
            return Err(param_invalid("needs CK_ECDH1_DERIVE_PARAMS"));
        };
        let z = match base {
            LoadedKey::EcPrivate(key) => {
                let peer =
                    point::raw_of(public_data, key.curve().point_len()).ok_or_else(|| {
                        param_invalid("the public data is no point of the key's curve")
                    })?;
                key.agree(peer)?
            }
            LoadedKey::X25519Private(key) => {
                let peer = point::raw_of(public_data, X25519_KEY_LEN)
                    .ok_or_else(|| param_invalid("the public data is no X25519 key"))?;
                key.agree(peer)?
            }
            _ => {
                return Err(Error::with(
                    CKR_KEY_TYPE_INCONSISTENT,
                    "ECDH needs an EC or X25519 private key",
                ))
            }
        };
        kdf_output(*kdf, &z, shared_data, value_len)
    }
}

fn kdf_output(
    kdf: CK_EC_KDF_TYPE,
    z: &[u8],
    shared_data: &[u8],
    value_len: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    if kdf == CKD_NULL {
        if !shared_data.is_empty() {
            return Err(param_invalid("CKD_NULL takes no shared data"));
        }
        return Ok(Zeroizing::new(z.to_vec()));
    }
    let len = value_len.ok_or_else(|| {
        Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            "a KDF needs the key length (CKA_VALUE_LEN)",
        )
    })?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let derived = match kdf {
        CKD_SHA1_KDF => ansi_x963_kdf::derive_key_into::<sha1::Sha1>(z, shared_data, &mut out),
        CKD_SHA224_KDF => ansi_x963_kdf::derive_key_into::<sha2::Sha224>(z, shared_data, &mut out),
        CKD_SHA256_KDF => ansi_x963_kdf::derive_key_into::<sha2::Sha256>(z, shared_data, &mut out),
        CKD_SHA384_KDF => ansi_x963_kdf::derive_key_into::<sha2::Sha384>(z, shared_data, &mut out),
        CKD_SHA512_KDF => ansi_x963_kdf::derive_key_into::<sha2::Sha512>(z, shared_data, &mut out),
        _ => return Err(param_invalid("KDF not supported")),
    };
    derived.map_err(|_| param_invalid("KDF input or output out of range"))?;
    Ok(out)
}
