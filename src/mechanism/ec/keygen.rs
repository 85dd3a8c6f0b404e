//! Key-pair generation: `CKM_EC_KEY_PAIR_GEN` (NIST curves, and SM2 through the SM2
//! family), `CKM_EC_EDWARDS_KEY_PAIR_GEN` (Ed25519), `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`
//! (X25519). The curve is the public template's `CKA_EC_PARAMS`, kept as the caller wrote
//! it on both new objects.

use super::curves::{self, curve_of, CurveId};
use crate::crypto::ec::{EcPrivateKey, Ed25519PrivateKey, X25519PrivateKey};
use crate::error::{Error, Result};
use crate::mechanism::ec_point as point;
use crate::mechanism::{GeneratedKeyPair, Mechanism, MechanismInfo, MechanismParam};
use crate::object::Attributes;
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub struct KeyPairGen {
    /// The key type this mechanism makes: `CKK_EC`, `CKK_EC_EDWARDS`, `CKK_EC_MONTGOMERY`.
    pub key_type: CK_KEY_TYPE,
    pub info: MechanismInfo,
}

impl Mechanism for KeyPairGen {
    fn info(&self) -> MechanismInfo {
        self.info
    }

    fn generated_key_type(&self) -> Option<CK_KEY_TYPE> {
        Some(self.key_type)
    }

    fn generate_key_pair(
        &self,
        param: &MechanismParam,
        public: &Attributes,
        private: &Attributes,
    ) -> Result<GeneratedKeyPair> {
        param.expect_none()?;
        let ec_params = public.get(CKA_EC_PARAMS).ok_or_else(|| {
            Error::with(
                CKR_TEMPLATE_INCOMPLETE,
                "the public template needs CKA_EC_PARAMS",
            )
        })?;
        let curve = curve_of(ec_params)?;
        if curves::key_type(curve) != self.key_type {
            return Err(Error::with(
                CKR_TEMPLATE_INCONSISTENT,
                "CKA_EC_PARAMS names a curve of another key-pair mechanism",
            ));
        }
        // The private template may repeat the curve; it must be the same one.
        if let Some(repeated) = private.get(CKA_EC_PARAMS) {
            if curve_of(repeated).ok() != Some(curve) {
                return Err(Error::with(
                    CKR_TEMPLATE_INCONSISTENT,
                    "CKA_EC_PARAMS of the private template names another curve",
                ));
            }
        }
        if curve == CurveId::Sm2 {
            return crate::mechanism::sm2::generate_key_pair(param, public, private);
        }
        let (raw_public, value) = generate(curve)?;
        Ok(key_pair_attributes(
            self.key_type,
            ec_params,
            &raw_public,
            &value,
        ))
    }
}

/// A new key on `curve`: its raw public key and its `CKA_VALUE`.
fn generate(curve: CurveId) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    match curve {
        CurveId::Weierstrass(c) => {
            let key = EcPrivateKey::generate(c)?;
            Ok((key.public_key().point().to_vec(), key.scalar()?))
        }
        CurveId::Ed25519 => {
            let key = Ed25519PrivateKey::generate()?;
            Ok((key.public_key().bytes().to_vec(), key.seed()?))
        }
        CurveId::X25519 => {
            let key = X25519PrivateKey::generate()?;
            Ok((key.public_key().bytes().to_vec(), key.scalar()?))
        }
        CurveId::Sm2 => unreachable!("SM2 keys are made by the SM2 family"),
    }
}

/// The attributes that describe the new pair (the object layer adds the templates'
/// attributes and the policy's defaults). `CKA_EC_POINT` is not a private-key attribute.
fn key_pair_attributes(
    key_type: CK_KEY_TYPE,
    ec_params: &[u8],
    raw_public: &[u8],
    value: &[u8],
) -> GeneratedKeyPair {
    let mut public = Attributes::new();
    public.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    public.set_ulong(CKA_KEY_TYPE, key_type);
    public.set(CKA_EC_PARAMS, ec_params.to_vec());
    public.set(CKA_EC_POINT, point::to_der(raw_public));

    let mut private = Attributes::new();
    private.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    private.set_ulong(CKA_KEY_TYPE, key_type);
    private.set(CKA_EC_PARAMS, ec_params.to_vec());
    private.set(CKA_VALUE, value.to_vec());
    GeneratedKeyPair { public, private }
}
