//! Keys and certificates from files onto the token: what `softhsm2-util --import` does
//! (and `ferrohsm-util --import`, its drop-in). A PKCS#8 private key becomes a private key
//! object and, unless left out, the public key object beside it; a raw AES key a secret
//! key; an X.509 certificate a certificate object. Every object goes through the creation
//! rules of C_CreateObject, on the token and with the label and id given.

use super::session::KmsSession;
use super::usage::SECRET_FLAGS;
use crate::api;
use crate::error::{Error, Result};
use crate::object::Attributes;
use cryptoki_sys::*;
use der::{Decode, Encode};
use zeroize::Zeroizing;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// A PKCS#8 private key (PEM `PRIVATE KEY` or DER): RSA, SM2, a NIST curve, Ed25519
    /// or X25519.
    KeyPair { with_public: bool },
    /// The raw bytes of an AES key (16, 24 or 32 of them).
    Aes,
    /// An X.509 certificate, PEM or DER.
    Certificate,
}

/// The usage flags an imported key gets, by key type: those softhsm2-util sets (a key
/// pair for every operation of its type, unwrapping included for RSA, never extractable).
/// (key type, private or secret key's flags, public key's flags).
const USAGE_FLAGS: &[(CK_KEY_TYPE, &[CK_ATTRIBUTE_TYPE], &[CK_ATTRIBUTE_TYPE])] = &[
    (
        CKK_RSA,
        &[CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP],
        &[CKA_VERIFY, CKA_ENCRYPT, CKA_WRAP],
    ),
    (CKK_EC, &[CKA_SIGN], &[CKA_VERIFY]),
    (CKK_EC_EDWARDS, &[CKA_SIGN], &[CKA_VERIFY]),
    (CKK_EC_MONTGOMERY, &[CKA_DERIVE], &[]),
    (
        CKK_AES,
        &[CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP],
        &[],
    ),
];

/// SM2 keys (CKK_EC on the SM2 curve) also decrypt: SM2 is the cipher as well.
const SM2_EXTRA_FLAGS: (&[CK_ATTRIBUTE_TYPE], &[CK_ATTRIBUTE_TYPE]) =
    (&[CKA_DECRYPT], &[CKA_ENCRYPT]);

fn bad_file(why: impl Into<String>) -> Error {
    Error::with(CKR_ARGUMENTS_BAD, why.into())
}

/// The DER inside a PEM block labelled `label`, or `bytes` as they are when they are not
/// PEM text.
fn der_of(bytes: &[u8], label: &str) -> Result<Zeroizing<Vec<u8>>> {
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(Zeroizing::new(bytes.to_vec()));
    }
    let (found, der) = der::pem::decode_vec(bytes)
        .map_err(|e| bad_file(format!("the file is not valid PEM: {e}")))?;
    let der = Zeroizing::new(der);
    if found != label {
        return Err(bad_file(format!(
            "the file holds a PEM \"{found}\" block, not \"{label}\"{}",
            if found.ends_with("PRIVATE KEY") {
                " (convert it with `openssl pkcs8 -topk8 -nocrypt`)"
            } else {
                ""
            }
        )));
    }
    Ok(der)
}

/// The usage flags of each class: every one is set, true for the key's usages and false
/// for the rest (the token's defaults are not what softhsm2-util's imports have).
const PRIVATE_FLAGS: &[CK_ATTRIBUTE_TYPE] = &[CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE];
const PUBLIC_FLAGS: &[CK_ATTRIBUTE_TYPE] = &[CKA_VERIFY, CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE];

fn set_flags(
    template: &mut Attributes,
    class_flags: &[CK_ATTRIBUTE_TYPE],
    on: &[&[CK_ATTRIBUTE_TYPE]],
) {
    for flag in class_flags {
        template.set_bool(*flag, on.iter().any(|set| set.contains(flag)));
    }
}

/// The templates of the objects a file becomes (label and id not yet set).
pub fn templates(kind: ImportKind, file: &[u8]) -> Result<Vec<Attributes>> {
    match kind {
        ImportKind::KeyPair { with_public } => key_pair_templates(file, with_public),
        ImportKind::Aes => {
            let mut key = Attributes::new();
            key.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
            key.set_ulong(CKA_KEY_TYPE, CKK_AES);
            key.set(CKA_VALUE, file.to_vec());
            secret_defaults(&mut key);
            set_flags(&mut key, SECRET_FLAGS, &[flags_of(CKK_AES).0]);
            Ok(vec![key])
        }
        ImportKind::Certificate => certificate_template(file).map(|c| vec![c]),
    }
}

fn flags_of(key_type: CK_KEY_TYPE) -> (&'static [CK_ATTRIBUTE_TYPE], &'static [CK_ATTRIBUTE_TYPE]) {
    USAGE_FLAGS
        .iter()
        .find(|(t, _, _)| *t == key_type)
        .map_or((&[], &[]), |(_, private, public)| (*private, *public))
}

/// A private or secret key kept on the token, private, sensitive and not extractable.
fn secret_defaults(key: &mut Attributes) {
    key.set_bool(CKA_TOKEN, true);
    key.set_bool(CKA_PRIVATE, true);
    key.set_bool(CKA_SENSITIVE, true);
    key.set_bool(CKA_EXTRACTABLE, false);
}

fn key_pair_templates(file: &[u8], with_public: bool) -> Result<Vec<Attributes>> {
    let der = der_of(file, "PRIVATE KEY")?;
    let mut private = crate::object::pkcs8::decode(&der).map_err(|e| {
        bad_file(format!(
            "not a PKCS#8 private key ferrohsm can hold: {}",
            e.context
        ))
    })?;
    let key_type = private
        .get_ulong(CKA_KEY_TYPE)?
        .unwrap_or(CK_UNAVAILABLE_INFORMATION);
    let sm2 = private.get(CKA_EC_PARAMS) == Some(&crate::vendor::SM2_OID_DER[..]);
    let base = flags_of(key_type);
    let extra = if sm2 {
        SM2_EXTRA_FLAGS
    } else {
        (&[][..], &[][..])
    };
    let public = if with_public {
        let mut public = crate::object::public_half::public_key_of(&private)?;
        public.set_bool(CKA_TOKEN, true);
        public.set_bool(CKA_PRIVATE, false);
        set_flags(&mut public, PUBLIC_FLAGS, &[base.1, extra.1]);
        Some(public)
    } else {
        None
    };
    secret_defaults(&mut private);
    set_flags(&mut private, PRIVATE_FLAGS, &[base.0, extra.0]);
    Ok(std::iter::once(private).chain(public).collect())
}

fn certificate_template(file: &[u8]) -> Result<Attributes> {
    let der = der_of(file, "CERTIFICATE")?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| bad_file(format!("not an X.509 certificate: {e}")))?;
    let tbs = cert.tbs_certificate();
    let encoding = |r: der::Result<Vec<u8>>| {
        r.map_err(|e| bad_file(format!("certificate field does not encode: {e}")))
    };
    let mut t = Attributes::new();
    t.set_ulong(CKA_CLASS, CKO_CERTIFICATE);
    t.set_ulong(CKA_CERTIFICATE_TYPE, CKC_X_509);
    t.set_bool(CKA_TOKEN, true);
    t.set_bool(CKA_PRIVATE, false);
    t.set(CKA_SUBJECT, encoding(tbs.subject().to_der())?);
    t.set(CKA_ISSUER, encoding(tbs.issuer().to_der())?);
    t.set(CKA_SERIAL_NUMBER, encoding(tbs.serial_number().to_der())?);
    t.set(CKA_VALUE, der.to_vec());
    Ok(t)
}

impl KmsSession<'_> {
    /// Stores the objects of `file` with `label` and `id`. An id that another object of
    /// the token already has is refused (CKR_ARGUMENTS_BAD) unless `force`; a failure
    /// part-way removes what this call made.
    pub fn import(
        &self,
        kind: ImportKind,
        file: &[u8],
        label: &str,
        id: &[u8],
        force: bool,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let objects = templates(kind, file)?;
        if !force {
            let mut same_id = Attributes::new();
            same_id.set(CKA_ID, id.to_vec());
            if !self.find(same_id)?.is_empty() {
                return Err(Error::with(
                    CKR_ARGUMENTS_BAD,
                    "the ID is already assigned to another object; give --force to use it anyway",
                ));
            }
        }
        let mut made = Vec::new();
        for mut object in objects {
            object.set(CKA_LABEL, label.as_bytes().to_vec());
            object.set(CKA_ID, id.to_vec());
            match api::object::create(self.lib, self.session, object) {
                Ok(handle) => made.push(handle),
                Err(e) => {
                    for handle in made {
                        let _ = api::object::destroy(self.lib, self.session, handle);
                    }
                    return Err(e);
                }
            }
        }
        Ok(made)
    }
}
