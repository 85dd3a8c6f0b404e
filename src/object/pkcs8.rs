//! Private keys as PKCS#8 PrivateKeyInfo (RFC 5208), the form C_WrapKey encrypts and
//! C_UnwrapKey expects for private keys (base spec §5.18: "private keys are wrapped as
//! PKCS #8 PrivateKeyInfo"). RSA keys carry an RFC 8017 RSAPrivateKey; SM2 keys an
//! RFC 5915 ECPrivateKey with the SM2 curve OID, as OpenSSL writes them; NIST-curve,
//! Ed25519 and X25519 keys are `mechanism::ec::pkcs8`'s.

use crate::error::{Error, Result};
use crate::object::Attributes;
use cryptoki_sys::*;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use zeroize::Zeroizing;

fn not_wrappable(why: &'static str) -> Error {
    Error::with(CKR_KEY_NOT_WRAPPABLE, why)
}

fn wrapped_invalid(why: &'static str) -> Error {
    Error::with(CKR_WRAPPED_KEY_INVALID, why)
}

/// The PKCS#8 DER of an RSA or SM2 private key object (its secret values opened).
pub fn encode(attrs: &Attributes) -> Result<Zeroizing<Vec<u8>>> {
    let sm2 = attrs
        .get(CKA_EC_PARAMS)
        .is_none_or(|params| params == crate::vendor::SM2_OID_DER);
    match attrs.get_ulong(CKA_KEY_TYPE)? {
        Some(CKK_RSA) => encode_rsa(attrs),
        #[cfg(feature = "aws-lc")]
        Some(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY) if !sm2 => {
            crate::mechanism::ec::pkcs8::encode(attrs)
        }
        Some(CKK_EC) if sm2 => {
            let d = attrs
                .get(CKA_VALUE)
                .ok_or_else(|| not_wrappable("EC key without CKA_VALUE"))?;
            let key = sm2::SecretKey::from_slice(d)
                .map_err(|_| not_wrappable("EC key value is not an SM2 scalar"))?;
            let doc = key
                .to_pkcs8_der()
                .map_err(|_| Error::with(CKR_GENERAL_ERROR, "PKCS#8 encoding failed"))?;
            Ok(Zeroizing::new(doc.as_bytes().to_vec()))
        }
        _ => Err(not_wrappable("no PKCS#8 form for this key type")),
    }
}

fn encode_rsa(attrs: &Attributes) -> Result<Zeroizing<Vec<u8>>> {
    // PKCS#1 has no form without the CRT values: a key imported with only n and d cannot
    // be wrapped.
    let part = |ty| -> Result<pkcs1::UintRef<'_>> {
        let bytes = attrs
            .get(ty)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| not_wrappable("RSA key without its CRT values"))?;
        pkcs1::UintRef::new(bytes).map_err(|_| not_wrappable("malformed RSA component"))
    };
    let key = pkcs1::RsaPrivateKeyRef {
        modulus: part(CKA_MODULUS)?,
        public_exponent: part(CKA_PUBLIC_EXPONENT)?,
        private_exponent: part(CKA_PRIVATE_EXPONENT)?,
        prime1: part(CKA_PRIME_1)?,
        prime2: part(CKA_PRIME_2)?,
        exponent1: part(CKA_EXPONENT_1)?,
        exponent2: part(CKA_EXPONENT_2)?,
        coefficient: part(CKA_COEFFICIENT)?,
        other_prime_infos: None,
    };
    let encoding_failed = |_| Error::with(CKR_GENERAL_ERROR, "PKCS#8 encoding failed");
    let inner = Zeroizing::new(key.to_der().map_err(encoding_failed)?);
    let info = pkcs8::PrivateKeyInfoRef::new(
        pkcs1::ALGORITHM_ID,
        OctetStringRef::new(&inner).map_err(encoding_failed)?,
    );
    Ok(Zeroizing::new(info.to_der().map_err(encoding_failed)?))
}

/// The attributes of the private key a PKCS#8 DER describes: CKA_CLASS, CKA_KEY_TYPE and
/// its material. Anything else (another algorithm, another curve, bad DER) is
/// CKR_WRAPPED_KEY_INVALID.
pub fn decode(der: &[u8]) -> Result<Attributes> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|_| wrapped_invalid("unwrapped bytes are not a PKCS#8 PrivateKeyInfo"))?;
    let mut attrs = Attributes::new();
    attrs.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
    if info.algorithm.oid == pkcs1::ALGORITHM_OID {
        let c = crate::crypto::rsa::components_from_pkcs1_der(info.private_key.as_bytes())
            .map_err(|_| wrapped_invalid("malformed RSAPrivateKey"))?;
        attrs.set_ulong(CKA_KEY_TYPE, CKK_RSA);
        attrs.set(CKA_MODULUS, c.public.modulus);
        attrs.set(CKA_PUBLIC_EXPONENT, c.public.public_exponent);
        attrs.set(CKA_PRIVATE_EXPONENT, c.private_exponent.as_slice());
        let optional = [
            (CKA_PRIME_1, &c.prime_1),
            (CKA_PRIME_2, &c.prime_2),
            (CKA_EXPONENT_1, &c.exponent_1),
            (CKA_EXPONENT_2, &c.exponent_2),
            (CKA_COEFFICIENT, &c.coefficient),
        ];
        for (ty, value) in optional {
            if let Some(v) = value {
                attrs.set(ty, v.as_slice());
            }
        }
        return Ok(attrs);
    }
    #[cfg(feature = "aws-lc")]
    if let Some(attrs) = crate::mechanism::ec::pkcs8::decode(&info, der)? {
        return Ok(attrs);
    }
    let key = sm2::SecretKey::from_pkcs8_der(der)
        .map_err(|_| wrapped_invalid("PKCS#8 key of an algorithm this token lacks"))?;
    attrs.set_ulong(CKA_KEY_TYPE, CKK_EC);
    attrs.set(CKA_EC_PARAMS, crate::vendor::SM2_OID_DER.to_vec());
    attrs.set(CKA_VALUE, key.to_bytes().as_slice());
    Ok(attrs)
}
