//! The attribute policy: for each object class and key type, which attributes exist, which
//! are required, defaulted, read-only, sensitive, modifiable, ... as data (a table of
//! flags per attribute), following the tables and footnotes of the PKCS#11 spec.
//!
//! API SKELETON: bodies are filled in by the object-policy work.

use crate::error::Result;
use crate::object::Attributes;
use cryptoki_sys::*;

/// How an object comes into being; the spec's footnotes differ per origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// C_CreateObject.
    Create,
    /// C_GenerateKey / C_GenerateKeyPair by `mechanism`.
    Generate { mechanism: CK_MECHANISM_TYPE },
}

/// What C_GetAttributeValue may reveal of one attribute.
#[derive(Debug, PartialEq, Eq)]
pub enum Readable<'a> {
    Value(&'a [u8]),
    /// Sensitive or unextractable: CK_UNAVAILABLE_INFORMATION and CKR_ATTRIBUTE_SENSITIVE.
    Sensitive,
    /// Not an attribute of this object: CKR_ATTRIBUTE_TYPE_INVALID.
    Invalid,
}

/// Checks a caller's template for a new object and returns the complete attribute set:
/// the template, plus `generated` key material (for Generate), plus every default, plus
/// the token-computed attributes (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
/// CKA_KEY_GEN_MECHANISM, CKA_UNIQUE_ID). Errors: CKR_TEMPLATE_INCOMPLETE,
/// CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_VALUE_INVALID.
pub fn new_object(
    _template: &Attributes,
    _origin: Origin,
    _generated: &Attributes,
) -> Result<Attributes> {
    todo!()
}

/// C_SetAttributeValue (`copy` false) or the template of C_CopyObject (`copy` true):
/// returns the object's new attribute set. Errors: CKR_ATTRIBUTE_READ_ONLY (not
/// modifiable, or CKA_MODIFIABLE false), CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT.
pub fn change(_current: &Attributes, _changes: &Attributes, _copy: bool) -> Result<Attributes> {
    todo!()
}

/// What the caller may read of attribute `ty` of `object`.
pub fn read(_object: &Attributes, _ty: CK_ATTRIBUTE_TYPE) -> Readable<'_> {
    todo!()
}

/// True for attributes that are sealed at rest (private exponent, primes, CRT values,
/// private EC scalar, secret key values).
pub fn is_secret(object: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let class = object.get_ulong(CKA_CLASS).ok().flatten();
    match ty {
        CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2
        | CKA_COEFFICIENT => true,
        CKA_VALUE => matches!(class, Some(CKO_PRIVATE_KEY) | Some(CKO_SECRET_KEY)),
        _ => false,
    }
}

/// CKR_KEY_FUNCTION_NOT_PERMITTED unless `key` allows `usage` with `mechanism`.
pub fn check_usage(
    _key: &Attributes,
    _usage: CK_ATTRIBUTE_TYPE,
    _mechanism: CK_MECHANISM_TYPE,
) -> Result<()> {
    todo!()
}

/// Search templates: CKK_SM2 means CKK_EC.
pub fn normalize_template(_template: &mut Attributes) {
    todo!()
}

/// A fresh CKA_UNIQUE_ID value.
pub fn new_unique_id() -> Result<Vec<u8>> {
    todo!()
}
