//! The public key object that belongs to a private key's material: what an importer of a
//! bare private key (a PKCS#8 file) stores beside it, computed from the private values.

use crate::error::{Error, Result};
use crate::object::Attributes;
use cryptoki_sys::*;

/// Class, key type and public material (`CKA_MODULUS` + `CKA_PUBLIC_EXPONENT`, or
/// `CKA_EC_PARAMS` + `CKA_EC_POINT` in DER) of the public half of `private`, a private
/// key's attributes as `object::pkcs8::decode` gives them.
pub fn public_key_of(private: &Attributes) -> Result<Attributes> {
    let key_type = private
        .get_ulong(CKA_KEY_TYPE)?
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "private key without a key type"))?;
    let mut public = Attributes::new();
    public.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
    public.set_ulong(CKA_KEY_TYPE, key_type);
    let copy = |public: &mut Attributes, ty| -> Result<()> {
        let value = private.get(ty).ok_or_else(|| {
            Error::with(
                CKR_TEMPLATE_INCOMPLETE,
                "private key lacks its public values",
            )
        })?;
        public.set(ty, value.to_vec());
        Ok(())
    };
    if key_type == CKK_RSA {
        copy(&mut public, CKA_MODULUS)?;
        copy(&mut public, CKA_PUBLIC_EXPONENT)?;
        return Ok(public);
    }
    copy(&mut public, CKA_EC_PARAMS)?;
    let raw_point = public_point(private)?;
    public.set(CKA_EC_POINT, crate::mechanism::ec_point_der(&raw_point));
    Ok(public)
}

/// The raw public key (uncompressed point, or the 32 bytes of an Ed25519/X25519 key) of an
/// EC-family private key.
fn public_point(private: &Attributes) -> Result<Vec<u8>> {
    let sm2 = private.get(CKA_EC_PARAMS) == Some(&crate::vendor::SM2_OID_DER[..]);
    if sm2 {
        let value = private
            .get(CKA_VALUE)
            .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "SM2 key without CKA_VALUE"))?;
        let key = crate::crypto::sm2::Sm2PrivateKey::from_value(value)?;
        return Ok(key.public_key().point().to_vec());
    }
    #[cfg(feature = "aws-lc")]
    {
        let key = crate::mechanism::ec::load_key(private)?;
        crate::mechanism::ec::public_bytes(&key)
    }
    #[cfg(not(feature = "aws-lc"))]
    Err(Error::new(CKR_KEY_TYPE_INCONSISTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sm2_private_key_gives_its_public_point() {
        let key = crate::crypto::sm2::Sm2PrivateKey::generate().unwrap();
        let mut private = Attributes::new();
        private.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
        private.set_ulong(CKA_KEY_TYPE, CKK_EC);
        private.set(CKA_EC_PARAMS, crate::vendor::SM2_OID_DER.to_vec());
        private.set(CKA_VALUE, key.value().to_vec());
        let public = public_key_of(&private).unwrap();
        assert_eq!(public.get_ulong(CKA_CLASS).unwrap(), Some(CKO_PUBLIC_KEY));
        assert_eq!(
            public.get(CKA_EC_POINT).unwrap(),
            crate::mechanism::ec_point_der(key.public_key().point()).as_slice()
        );
    }

    #[test]
    fn an_rsa_key_without_its_modulus_is_incomplete() {
        let mut private = Attributes::new();
        private.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        private.set(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]);
        assert_eq!(
            public_key_of(&private).unwrap_err().rv,
            CKR_TEMPLATE_INCOMPLETE
        );
    }
}
