//! SM2 key-pair generation: `CKM_SM2_KEY_PAIR_GEN` (curve implied) and `CKM_EC_KEY_PAIR_GEN`
//! (curve named by `CKA_EC_PARAMS` in the public template; only the SM2 curve exists here).

use super::keys::{check_ec_params, ec_point_der, is_sm2_key_type};
use super::{info, KEYGEN_FLAGS};
use crate::crypto::sm2::Sm2PrivateKey;
use crate::error::{Error, Result};
use crate::mechanism::{GeneratedKeyPair, Mechanism, MechanismInfo, MechanismParam};
use crate::object::Attributes;
use crate::vendor::SM2_OID_DER;
use cryptoki_sys::*;

pub struct Sm2KeyPairGen {
    /// `CKM_EC_KEY_PAIR_GEN` needs the curve named in the public template.
    pub require_ec_params: bool,
}

impl Mechanism for Sm2KeyPairGen {
    fn info(&self) -> MechanismInfo {
        info(KEYGEN_FLAGS)
    }

    fn generated_key_type(&self) -> Option<CK_KEY_TYPE> {
        Some(CKK_EC)
    }

    fn generate_key_pair(
        &self,
        param: &MechanismParam,
        public: &Attributes,
        private: &Attributes,
    ) -> Result<GeneratedKeyPair> {
        param.expect_none()?;
        check_templates(public, private, self.require_ec_params)?;
        let key = Sm2PrivateKey::generate()?;
        Ok(key_pair_attributes(&key))
    }
}

/// The curve and key type the caller's templates ask for must be SM2.
fn check_templates(
    public: &Attributes,
    private: &Attributes,
    require_ec_params: bool,
) -> Result<()> {
    match public.get(CKA_EC_PARAMS) {
        Some(params) => check_ec_params(params)?,
        None if require_ec_params => {
            return Err(Error::with(
                CKR_TEMPLATE_INCOMPLETE,
                "CKM_EC_KEY_PAIR_GEN needs CKA_EC_PARAMS in the public template",
            ))
        }
        None => {}
    }
    // The private template may repeat the curve; it must be the same one.
    if let Some(params) = private.get(CKA_EC_PARAMS) {
        if params != SM2_OID_DER {
            return Err(Error::with(
                CKR_TEMPLATE_INCONSISTENT,
                "CKA_EC_PARAMS of the private template names another curve",
            ));
        }
    }
    for template in [public, private] {
        let key_type = template
            .get_ulong(CKA_KEY_TYPE)
            .map_err(|_| Error::new(CKR_TEMPLATE_INCONSISTENT))?;
        if let Some(key_type) = key_type {
            if !is_sm2_key_type(key_type) {
                return Err(Error::with(
                    CKR_TEMPLATE_INCONSISTENT,
                    "an SM2 key pair is CKK_EC (or CKK_SM2)",
                ));
            }
        }
    }
    Ok(())
}

/// The attributes that describe a new SM2 key pair (the object layer adds the templates'
/// attributes and the policy's defaults). `CKA_EC_POINT` is not a private-key attribute.
fn key_pair_attributes(key: &Sm2PrivateKey) -> GeneratedKeyPair {
    let mut public = Attributes::new();
    public.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    public.set_ulong(CKA_KEY_TYPE, CKK_EC);
    public.set(CKA_EC_PARAMS, SM2_OID_DER.to_vec());
    public.set(CKA_EC_POINT, ec_point_der(key.public_key().point()));

    let mut private = Attributes::new();
    private.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    private.set_ulong(CKA_KEY_TYPE, CKK_EC);
    private.set(CKA_EC_PARAMS, SM2_OID_DER.to_vec());
    private.set(CKA_VALUE, key.value().to_vec());
    GeneratedKeyPair { public, private }
}
