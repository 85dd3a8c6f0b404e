//! The attribute policy: for each object class and key type, which attributes exist, which
//! are required, defaulted, read-only, sensitive, modifiable, ... as data (the tables in
//! `rules.rs`), following the tables and footnotes of the PKCS#11 spec. This file only
//! interprets those flags for C_CreateObject / C_GenerateKey(Pair), C_SetAttributeValue,
//! C_CopyObject and C_GetAttributeValue.
//!
//! Return codes (PKCS#11 3.x base spec §4.1.1-4.1.3, §5.7):
//! - an attribute the object kind does not have: CKR_ATTRIBUTE_TYPE_INVALID;
//! - a value of the wrong size or shape, an unknown CKA_CLASS or key type:
//!   CKR_ATTRIBUTE_VALUE_INVALID (the spec's code for "an invalid value for a valid
//!   attribute"); a known key type that does not fit the class (CKK_AES on a public key),
//!   or a template class/type that contradicts what the mechanism makes:
//!   CKR_TEMPLATE_INCONSISTENT;
//! - a token-computed attribute (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
//!   CKA_KEY_GEN_MECHANISM, CKA_UNIQUE_ID), any change the footnotes forbid, and any change
//!   of an object whose CKA_MODIFIABLE is false: CKR_ATTRIBUTE_READ_ONLY;
//! - key material given to a generation (footnote 4), or CKA_MODULUS_BITS / CKA_VALUE_LEN
//!   given to C_CreateObject (footnote 2) with a value other than the one the token
//!   derives: CKR_TEMPLATE_INCONSISTENT (a value equal to what the token produces is
//!   accepted: it contradicts nothing, and some clients repeat CKA_EC_PARAMS on the
//!   private template);
//! - a missing footnote-1/3 attribute: CKR_TEMPLATE_INCOMPLETE.

use crate::error::{Error, Result};
use crate::object::check_value;
use crate::object::rules::{self, Kind, RuleSet, Subtype};
use crate::object::Attributes;
use cryptoki_sys::*;
use std::borrow::Cow;

/// Vendor alias for SM2 keys (Sansec/TASS family, see sm2.md): accepted wherever a
/// template names a key type and stored as CKK_EC.
use crate::vendor::CKK_SM2;

/// How an object comes into being; the spec's footnotes differ per origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// C_CreateObject.
    Create,
    /// C_GenerateKey / C_GenerateKeyPair by `mechanism`.
    Generate { mechanism: CK_MECHANISM_TYPE },
    /// C_UnwrapKey: the key material comes from the unwrapped bytes (as a generation's
    /// does: footnote 6 forbids it in the template, like footnote 4), but the key was known
    /// outside the token, so it is not local (as an import).
    Unwrap,
    /// C_DeriveKey from a base key: material from the mechanism, not local; the new key is
    /// always sensitive / never extractable only if the base key was and it is too (§4.10).
    Derive {
        base_always_sensitive: bool,
        base_never_extractable: bool,
    },
}

impl Origin {
    /// True when the key material comes from the token (`generated`), not the template.
    fn material_from_token(self) -> bool {
        !matches!(self, Origin::Create)
    }
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
///
/// For Generate, `generated` should carry CKA_CLASS, CKA_KEY_TYPE and every attribute that
/// describes the new key (material, CKA_EC_PARAMS on both halves, CKA_VALUE_LEN). A
/// template attribute the mechanism also reports must equal its value (big integers compare
/// without leading zeros: `00 01 00 01` equals `01 00 01`), and the mechanism's form is
/// stored. Missing material is CKR_GENERAL_ERROR: the mechanism's bug, not the caller's.
pub fn new_object(
    template: &Attributes,
    origin: Origin,
    generated: &Attributes,
) -> Result<Attributes> {
    let template = normalized(template);
    let generating = origin.material_from_token();
    let generated = if generating {
        normalized(generated)
    } else {
        Cow::Owned(Attributes::new())
    };

    let class = object_class(&template, &generated, origin)?;
    let subtype = object_subtype(class, &template, &generated, origin)?;
    let set = rules::rules_for(class, subtype)
        .ok_or_else(|| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported object kind"))?;

    // What the template, the mechanism and the derivations give (the defaults come in at
    // the end), with room for the derived attributes.
    let mut object = Attributes::with_capacity(
        template.len() + generated.len() + 4,
        template.byte_len() + generated.byte_len() + 16,
    );
    for (ty, value) in template.iter() {
        object.set_slice(ty, template_value(&set, ty, value)?);
    }

    if generating {
        for (ty, value) in generated.iter() {
            let rule = set.find(ty).ok_or_else(|| {
                Error::with(
                    CKR_GENERAL_ERROR,
                    format!("mechanism produced attribute 0x{ty:x} outside the policy"),
                )
            })?;
            let value = checked_value(rule, value)?;
            if let Some(given) = template.get(ty) {
                if !same_value(ty, given, value) {
                    return Err(Error::with(
                        CKR_TEMPLATE_INCONSISTENT,
                        format!("template attribute 0x{ty:x} contradicts the generated key"),
                    ));
                }
            }
            object.set_slice(ty, value);
        }
        // Footnote 6: an unwrapped or derived key's secret material never comes from the
        // template, not even equal to what the token computes (that would let a caller
        // test guesses of it).
        if matches!(origin, Origin::Unwrap | Origin::Derive { .. }) {
            for ty in template.types() {
                if set.find(ty).is_some_and(|r| r.has(rules::SENSITIVE)) {
                    return Err(Error::with(
                        CKR_TEMPLATE_INCONSISTENT,
                        format!("attribute 0x{ty:x} comes from the unwrapped or derived key"),
                    ));
                }
            }
        }
        // Footnote 4: material the mechanism did not make cannot come from the caller.
        for ty in template.types() {
            let forbidden = set
                .find(ty)
                .is_some_and(|r| r.has(rules::FORBIDDEN_ON_GENERATE));
            if forbidden && !generated.contains(ty) {
                return Err(Error::with(
                    CKR_TEMPLATE_INCONSISTENT,
                    format!("attribute 0x{ty:x} is made by the generation"),
                ));
            }
        }
        // What an import must give (footnote 1) but a generation must not (footnote 4) is
        // the key itself: a mechanism that did not produce it has a bug, and storing a key
        // without its material would only fail later, at first use.
        for rule in set.material() {
            if !object.contains(rule.ty) {
                return Err(Error::with(
                    CKR_GENERAL_ERROR,
                    format!("mechanism did not produce attribute 0x{:x}", rule.ty),
                ));
            }
        }
    }

    // The class and type as decided, also when only inferred or given as an alias.
    object.set_ulong(CKA_CLASS, class);
    if let Subtype::Key(key_type) = subtype {
        object.set_ulong(CKA_KEY_TYPE, key_type);
    }
    derive(class, subtype, &mut object, origin)?;

    // The unwrapped material is in `object` by now, as an import's would be.
    let generated_key = matches!(origin, Origin::Generate { .. });
    // A required attribute with a default is never missing: only the others are looked
    // up, and the defaults merge in afterwards in one pass (in type order).
    for rule in set.required_without_default(generated_key) {
        if !object.contains(rule.ty) {
            return Err(Error::with(
                CKR_TEMPLATE_INCOMPLETE,
                format!("attribute 0x{:x} is required", rule.ty),
            ));
        }
    }
    // §4.6.3: an X.509 certificate needs CKA_VALUE unless CKA_URL says where it is (CKA_URL's
    // default is empty: looked at before the defaults are in, the answer is the same).
    if subtype == Subtype::X509
        && object.get(CKA_VALUE).is_none_or(<[u8]>::is_empty)
        && object.get(CKA_URL).is_none_or(<[u8]>::is_empty)
    {
        return Err(Error::with(
            CKR_TEMPLATE_INCOMPLETE,
            "certificate needs CKA_VALUE or CKA_URL",
        ));
    }
    // The token-computed attributes have no default and are never in the template (a
    // caller's is CKR_ATTRIBUTE_READ_ONLY): they merge in with the defaults, in the same
    // pass. A mechanism's output never names one, but if it did the token's value wins.
    //
    // The object is a copy of the kind's defaults (`RuleSet::defaults`, built once from the
    // table) with the computed values and then the given ones set over them: two buffer
    // copies and a dozen values instead of some thirty insertions.
    let computed = Computed::of(&object, origin)?;
    let computed_values = set
        .computed()
        .iter()
        .filter_map(|ty| Some((*ty, computed.value(*ty)?)));
    Ok(set.defaults().overlaid(
        merged_values(object.iter(), computed_values),
        (
            object.len() + set.computed().len(),
            object.byte_len() + Computed::BYTES,
        ),
    ))
}

/// Two sequences of values in ascending type order merged into one; `winning`'s value of a
/// type both have is the one kept.
fn merged_values<'a>(
    given: impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &'a [u8])>,
    winning: impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &'a [u8])>,
) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &'a [u8])> {
    let mut given = given.peekable();
    let mut winning = winning.peekable();
    std::iter::from_fn(move || match (given.peek(), winning.peek()) {
        (Some((g, _)), Some((w, _))) if g < w => given.next(),
        (Some((g, _)), Some((w, _))) if g == w => {
            given.next();
            winning.next()
        }
        (Some(_), None) => given.next(),
        _ => winning.next(),
    })
}

/// `template` with `normalize_template`'s rewrites, copied only when there is one to make.
fn normalized(template: &Attributes) -> Cow<'_, Attributes> {
    if !template.iter().any(|(ty, v)| is_loose(ty, v)) {
        return Cow::Borrowed(template);
    }
    let mut template = template.clone();
    normalize_template(&mut template);
    Cow::Owned(template)
}

/// C_SetAttributeValue (`copy` false) or the template of C_CopyObject (`copy` true):
/// returns the object's new attribute set. Errors: CKR_ATTRIBUTE_READ_ONLY (not
/// modifiable, or CKA_MODIFIABLE false), CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT.
///
/// On copy (§5.7 C_CopyObject) the footnote-8 attributes and CKA_TOKEN, CKA_PRIVATE,
/// CKA_MODIFIABLE may be given; a value equal to the original's is accepted for any
/// attribute (it changes nothing). The copy keeps CKA_LOCAL, CKA_ALWAYS_SENSITIVE,
/// CKA_NEVER_EXTRACTABLE and CKA_KEY_GEN_MECHANISM of the original, as the spec says, and
/// gets a new CKA_UNIQUE_ID. When the original's CKA_MODIFIABLE is false, a copy may still
/// change CKA_TOKEN, CKA_PRIVATE and CKA_MODIFIABLE, nothing else (making a modifiable copy
/// is what CKA_COPYABLE=false exists to prevent, §4.4).
pub fn change(current: &Attributes, changes: &Attributes, copy: bool) -> Result<Attributes> {
    change_by(current, changes, copy, false)
}

/// `change` by a session in which the SO is logged in (`by_so`): the SO alone may set the
/// footnote-10 attributes (CKA_TRUSTED) to true.
pub fn change_by(
    current: &Attributes,
    changes: &Attributes,
    copy: bool,
    by_so: bool,
) -> Result<Attributes> {
    let mut changes = changes.clone();
    normalize_template(&mut changes);
    let set = stored_rules(current).ok_or_else(|| {
        Error::with(
            CKR_GENERAL_ERROR,
            "stored object has no known class or type",
        )
    })?;
    let object_modifiable = current.flag(CKA_MODIFIABLE, true);

    let mut object = current.clone();
    for (ty, value) in changes.iter() {
        let rule = set.find(ty).ok_or_else(|| type_invalid(ty))?;
        let value = checked_value(rule, value)?;
        if copy && current.get(ty).is_some_and(|v| same_value(ty, v, value)) {
            continue;
        }
        if rule.has(rules::TOKEN_COMPUTED) {
            return Err(read_only(ty, "set by the token"));
        }
        if rule.has(rules::CHANGE_ON_COPY) {
            if !copy {
                return Err(read_only(ty, "changeable only by C_CopyObject"));
            }
        } else if rule.has(rules::LIFECYCLE) {
            // The key's management state, checked as a whole by `lifecycle::check_change`.
        } else {
            let so_trust = by_so && rule.has(rules::SO_ONLY_TRUE);
            if !rule.has(rules::MODIFIABLE) && !so_trust {
                return Err(read_only(ty, "fixed at creation"));
            }
            if !object_modifiable {
                return Err(read_only(ty, "object has CKA_MODIFIABLE false"));
            }
            let was = current.flag(ty, rule.default.is_some_and(is_true));
            let now = is_true(value);
            if rule.has(rules::ONLY_TO_TRUE) && was && !now {
                return Err(read_only(ty, "cannot go back to false"));
            }
            if rule.has(rules::ONLY_TO_FALSE) && !was && now {
                return Err(read_only(ty, "cannot go back to true"));
            }
        }
        if rule.has(rules::SO_ONLY_TRUE) && is_true(value) && !by_so {
            return Err(read_only(ty, "only the SO may set it to true"));
        }
        object.set_slice(ty, value);
    }
    // A copy made by anyone but the SO is not trusted, whatever the original is: else a
    // user could copy a trusted key with CKA_MODIFIABLE true and widen its usage.
    if copy && !by_so && object.flag(CKA_TRUSTED, false) {
        object.set_bool(CKA_TRUSTED, false);
    }
    if copy && set.find(CKA_UNIQUE_ID).is_some() {
        object.set_slice(CKA_UNIQUE_ID, &unique_id()?);
    }
    Ok(object)
}

/// True when `ty` is a key-management attribute of `object` (`rules::LIFECYCLE`).
pub fn is_lifecycle(object: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> bool {
    stored_rules(object)
        .and_then(|set| set.find(ty))
        .is_some_and(|rule| rule.has(rules::LIFECYCLE))
}

/// What the caller may read of attribute `ty` of `object`.
pub fn read(object: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> Readable<'_> {
    let Some(set) = stored_rules(object) else {
        return Readable::Invalid;
    };
    let Some(rule) = set.find(ty) else {
        return Readable::Invalid;
    };
    // Footnote 7. Absent flags count as sensitive / unextractable: fail closed.
    if rule.has(rules::SENSITIVE)
        && (object.flag(CKA_SENSITIVE, true) || !object.flag(CKA_EXTRACTABLE, false))
    {
        return Readable::Sensitive;
    }
    match object.get(ty) {
        Some(value) => Readable::Value(value),
        // An attribute of this kind never set (an RSA private key imported without CRT
        // values, CKA_ALLOWED_MECHANISMS without restriction): the spec's empty default.
        None => Readable::Value(rule.default.unwrap_or(&[])),
    }
}

/// True for attributes that are sealed at rest (private exponent, primes, CRT values,
/// private EC scalar, secret key values).
pub fn is_secret(object: &Attributes, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let class = object.get_ulong(CKA_CLASS).ok().flatten();
    match ty {
        CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2
        | CKA_COEFFICIENT => true,
        CKA_VALUE => match class {
            Some(CKO_PRIVATE_KEY) | Some(CKO_SECRET_KEY) => true,
            // A private data object's value is the application's secret: sealed too.
            Some(CKO_DATA) => object.flag(CKA_PRIVATE, false),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `object` is a match for a C_FindObjectsInit `template`. An attribute that is
/// secret on the object (`is_secret`: sealed at rest, or sensitive) is never a search
/// criterion: a template naming one matches nothing, so a search cannot confirm a guess of
/// a private exponent or a key value. That is decided from the object's class alone, before
/// any value is compared, so the time taken does not depend on how much of a guess was right.
pub fn search_matches(object: &Attributes, template: &Attributes) -> bool {
    if template.iter().any(|(ty, _)| is_secret(object, ty)) {
        return false;
    }
    object.matches(template)
}

/// Rewrites a template so that it names stored values: CKA_KEY_TYPE = CKK_SM2 becomes
/// CKK_EC, and any non-zero one-byte CK_BBOOL becomes CK_TRUE (stored booleans are 0/1, so
/// a search for `0xFF` finds true objects). Use it on C_FindObjectsInit templates.
pub fn normalize_template(template: &mut Attributes) {
    let loose: Vec<CK_ATTRIBUTE_TYPE> = template
        .iter()
        .filter(|(ty, v)| is_loose(*ty, v))
        .map(|(ty, _)| ty)
        .collect();
    for ty in loose {
        if ty == CKA_KEY_TYPE {
            template.set_ulong(CKA_KEY_TYPE, CKK_EC);
        } else {
            template.set_bool(ty, true);
        }
    }
}

/// A template value `normalize_template` rewrites: the vendor key type CKK_SM2, or a
/// CK_BBOOL other than 0 or 1.
fn is_loose(ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> bool {
    (ty == CKA_KEY_TYPE && value == CKK_SM2.to_ne_bytes())
        || (value.len() == 1 && value[0] > 1 && rules::is_bool_attribute(ty))
}

/// Private-key mechanisms that are more than one usage: what each needs of the key.
const RAW_PRIMITIVES: &[(CK_MECHANISM_TYPE, &[CK_ATTRIBUTE_TYPE])] =
    &[(CKM_RSA_X_509, &[CKA_DECRYPT, CKA_SIGN])];

/// May `key` be used for `usage` (CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY, ...) with
/// `mechanism`? CKR_KEY_FUNCTION_NOT_PERMITTED when the usage flag is false or absent;
/// CKR_MECHANISM_INVALID when a non-empty CKA_ALLOWED_MECHANISMS does not list `mechanism`
/// ("the mechanism specified cannot be used ... with the selected function", §5.1; the same
/// code SoftHSMv2 and kryoptic return for it).
pub fn check_usage(
    key: &Attributes,
    usage: CK_ATTRIBUTE_TYPE,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<()> {
    if !key.flag(usage, false) {
        return Err(Error::with(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            format!("key does not allow usage 0x{usage:x}"),
        ));
    }
    if key.get_ulong(CKA_CLASS)? != Some(CKO_PUBLIC_KEY) {
        crate::object::lifecycle::check_usable(key)?;
    }
    let listed = key
        .get(CKA_ALLOWED_MECHANISMS)
        .and_then(mechanism_list)
        .is_some_and(|list| list.contains(&mechanism));
    // A raw private-key primitive is every usage of the key at once (raw RSA decryption
    // of a chosen value is a signature): unless CKA_ALLOWED_MECHANISMS names the mechanism,
    // the key must allow each of those usages.
    if !listed && key.get_ulong(CKA_CLASS)? == Some(CKO_PRIVATE_KEY) {
        if let Some((_, usages)) = RAW_PRIMITIVES.iter().find(|(m, _)| *m == mechanism) {
            if let Some(missing) = usages.iter().find(|u| !key.flag(**u, false)) {
                return Err(Error::with(
                    CKR_KEY_FUNCTION_NOT_PERMITTED,
                    format!(
                        "raw mechanism 0x{mechanism:x} needs usage 0x{missing:x} too \
                         (or the mechanism in CKA_ALLOWED_MECHANISMS)"
                    ),
                ));
            }
        }
    }
    let Some(allowed) = key.get(CKA_ALLOWED_MECHANISMS) else {
        return Ok(());
    };
    let Some(list) = mechanism_list(allowed) else {
        return Err(Error::with(
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            "malformed CKA_ALLOWED_MECHANISMS",
        ));
    };
    if list.is_empty() || list.contains(&mechanism) {
        Ok(())
    } else {
        Err(Error::with(
            CKR_MECHANISM_INVALID,
            format!("mechanism 0x{mechanism:x} not in CKA_ALLOWED_MECHANISMS"),
        ))
    }
}

/// Cheap checks of a C_GenerateKey(Pair) template before the (slow) generation runs: every
/// attribute known for `class`/`key_type`, well-formed, not token-computed, and class and
/// key type, if given, the expected ones, no key material (footnote 4:
/// CKR_TEMPLATE_INCONSISTENT). CKA_EC_PARAMS or CKA_PUBLIC_EXPONENT repeated on a private
/// template pass here; `new_object` accepts them afterwards only when equal to the key's.
pub fn check_generate_template(
    template: &Attributes,
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
) -> Result<()> {
    let mut template = template.clone();
    normalize_template(&mut template);
    let set = rules::rules_for(class, Subtype::Key(key_type))
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCONSISTENT, "mechanism makes no such key"))?;
    for (ty, value) in template.iter() {
        template_value(&set, ty, value)?;
        // Random key material can never equal what the generation will make; only the
        // descriptive inputs a client may repeat (curve, public exponent) can.
        let repeatable = matches!(ty, CKA_EC_PARAMS | CKA_PUBLIC_EXPONENT);
        let material = set
            .find(ty)
            .is_some_and(|r| r.has(rules::FORBIDDEN_ON_GENERATE));
        if material && !repeatable {
            return Err(Error::with(
                CKR_TEMPLATE_INCONSISTENT,
                format!("attribute 0x{ty:x} is made by the generation"),
            ));
        }
    }
    if template.get_ulong(CKA_CLASS)?.is_some_and(|c| c != class) {
        return Err(Error::with(CKR_TEMPLATE_INCONSISTENT, "wrong CKA_CLASS"));
    }
    if template
        .get_ulong(CKA_KEY_TYPE)?
        .is_some_and(|k| k != key_type)
    {
        return Err(Error::with(CKR_TEMPLATE_INCONSISTENT, "wrong CKA_KEY_TYPE"));
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------

/// One attribute of a caller's template for a new object, in stored form: known for the
/// object kind, well-formed, not token-computed, and not a flag only the SO may set.
fn template_value<'a>(set: &RuleSet, ty: CK_ATTRIBUTE_TYPE, value: &'a [u8]) -> Result<&'a [u8]> {
    let rule = set.find(ty).ok_or_else(|| type_invalid(ty))?;
    let value = checked_value(rule, value)?;
    if rule.has(rules::TOKEN_COMPUTED) {
        return Err(read_only(ty, "set by the token"));
    }
    if rule.has(rules::SO_ONLY_TRUE) && is_true(value) {
        return Err(read_only(ty, "only the SO may set it to true"));
    }
    Ok(value)
}

fn type_invalid(ty: CK_ATTRIBUTE_TYPE) -> Error {
    Error::with(
        CKR_ATTRIBUTE_TYPE_INVALID,
        format!("attribute 0x{ty:x} is not valid for this object"),
    )
}

fn read_only(ty: CK_ATTRIBUTE_TYPE, why: &'static str) -> Error {
    Error::with(
        CKR_ATTRIBUTE_READ_ONLY,
        format!("attribute 0x{ty:x} is read-only: {why}"),
    )
}

fn value_invalid(ty: CK_ATTRIBUTE_TYPE, why: &'static str) -> Error {
    Error::with(
        CKR_ATTRIBUTE_VALUE_INVALID,
        format!("attribute 0x{ty:x}: {why}"),
    )
}

fn is_true(value: &[u8]) -> bool {
    value.first().is_some_and(|b| *b != 0)
}

/// The value in stored form (booleans as 0/1), or CKR_ATTRIBUTE_VALUE_INVALID. Borrowed:
/// the caller copies it once, into the object.
fn checked_value<'a>(rule: &rules::Rule, value: &'a [u8]) -> Result<&'a [u8]> {
    let ty = rule.ty;
    let ulong_len = std::mem::size_of::<CK_ULONG>();
    match rule.kind {
        Kind::Bool => match value {
            [b] => Ok(if *b != 0 { &[CK_TRUE] } else { &[CK_FALSE] }),
            _ => Err(value_invalid(ty, "not a CK_BBOOL")),
        },
        Kind::Ulong if value.len() != ulong_len => Err(value_invalid(ty, "not a CK_ULONG")),
        Kind::Ulong => {
            if ty == CKA_CERTIFICATE_CATEGORY {
                // §4.6.2: 0 unspecified, 1 token user, 2 authority, 3 other entity.
                // The length is checked above: the conversion cannot fail.
                let category = <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(value)
                    .map(CK_ULONG::from_ne_bytes);
                if category.is_ok_and(|c| c > 3) {
                    return Err(value_invalid(ty, "unknown certificate category"));
                }
            }
            Ok(value)
        }
        Kind::Date => {
            if value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit)) {
                Ok(value)
            } else {
                Err(value_invalid(ty, "not a CK_DATE"))
            }
        }
        Kind::Mechanisms => {
            if value.len().is_multiple_of(ulong_len) {
                Ok(value)
            } else {
                Err(value_invalid(ty, "not a CK_MECHANISM_TYPE array"))
            }
        }
        Kind::Template => match Attributes::from_template_bytes(value) {
            Some(_) => Ok(value),
            None => Err(value_invalid(ty, "not an attribute template")),
        },
        Kind::Bytes => {
            let material = matches!(
                ty,
                CKA_MODULUS
                    | CKA_PUBLIC_EXPONENT
                    | CKA_PRIVATE_EXPONENT
                    | CKA_EC_PARAMS
                    | CKA_EC_POINT
            ) || (ty == CKA_VALUE && rule.has(rules::SENSITIVE));
            if material && value.is_empty() {
                Err(value_invalid(ty, "empty key component"))
            } else {
                Ok(value)
            }
        }
    }
}

/// Equal values; big integers compare without leading zero bytes.
fn same_value(ty: CK_ATTRIBUTE_TYPE, a: &[u8], b: &[u8]) -> bool {
    match ty {
        CKA_MODULUS | CKA_PUBLIC_EXPONENT => strip_zeros(a) == strip_zeros(b),
        _ => a == b,
    }
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

fn mechanism_list(value: &[u8]) -> Option<Vec<CK_MECHANISM_TYPE>> {
    let len = std::mem::size_of::<CK_MECHANISM_TYPE>();
    if !value.len().is_multiple_of(len) {
        return None;
    }
    value
        .chunks_exact(len)
        .map(|c| c.try_into().ok().map(CK_MECHANISM_TYPE::from_ne_bytes))
        .collect()
}

const KNOWN_CLASSES: &[CK_OBJECT_CLASS] = &[
    CKO_DATA,
    CKO_CERTIFICATE,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
];

fn object_class(
    template: &Attributes,
    generated: &Attributes,
    origin: Origin,
) -> Result<CK_OBJECT_CLASS> {
    let given = template.get_ulong(CKA_CLASS)?;
    let made = generated.get_ulong(CKA_CLASS)?;
    let class = match (given, made) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::with(
                CKR_TEMPLATE_INCONSISTENT,
                "template CKA_CLASS contradicts the mechanism",
            ))
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => match origin {
            Origin::Create => {
                return Err(Error::with(
                    CKR_TEMPLATE_INCOMPLETE,
                    "CKA_CLASS is required",
                ))
            }
            Origin::Generate { .. } | Origin::Unwrap | Origin::Derive { .. } => {
                inferred_class(generated)
                    .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?
            }
        },
    };
    if !KNOWN_CLASSES.contains(&class) {
        return Err(value_invalid(CKA_CLASS, "unsupported object class"));
    }
    if origin.material_from_token()
        && !matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY)
    {
        return Err(Error::with(
            CKR_TEMPLATE_INCONSISTENT,
            "only keys are generated or unwrapped",
        ));
    }
    Ok(class)
}

/// The class of generated material when neither the template nor the mechanism says it.
fn inferred_class(generated: &Attributes) -> Option<CK_OBJECT_CLASS> {
    if generated.contains(CKA_PRIVATE_EXPONENT)
        || (generated.contains(CKA_EC_PARAMS) && generated.contains(CKA_VALUE))
    {
        Some(CKO_PRIVATE_KEY)
    } else if generated.contains(CKA_MODULUS) || generated.contains(CKA_EC_POINT) {
        Some(CKO_PUBLIC_KEY)
    } else if generated.contains(CKA_VALUE) {
        Some(CKO_SECRET_KEY)
    } else {
        None
    }
}

fn object_subtype(
    class: CK_OBJECT_CLASS,
    template: &Attributes,
    generated: &Attributes,
    origin: Origin,
) -> Result<Subtype> {
    match class {
        CKO_DATA => Ok(Subtype::Data),
        CKO_CERTIFICATE => match template.get_ulong(CKA_CERTIFICATE_TYPE)? {
            None => Err(Error::with(
                CKR_TEMPLATE_INCOMPLETE,
                "CKA_CERTIFICATE_TYPE is required",
            )),
            Some(CKC_X_509) => Ok(Subtype::X509),
            Some(_) => Err(value_invalid(
                CKA_CERTIFICATE_TYPE,
                "only X.509 certificates are stored",
            )),
        },
        _ => {
            let given = template.get_ulong(CKA_KEY_TYPE)?;
            let made = generated.get_ulong(CKA_KEY_TYPE)?;
            let key_type = match (given, made) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::with(
                        CKR_TEMPLATE_INCONSISTENT,
                        "template CKA_KEY_TYPE contradicts the mechanism",
                    ))
                }
                (Some(k), _) | (None, Some(k)) => k,
                (None, None) => {
                    let why = match origin {
                        Origin::Create | Origin::Unwrap | Origin::Derive { .. } => {
                            "CKA_KEY_TYPE is required"
                        }
                        Origin::Generate { .. } => "generated key has no CKA_KEY_TYPE",
                    };
                    return Err(Error::with(CKR_TEMPLATE_INCOMPLETE, why));
                }
            };
            let fits = match class {
                CKO_SECRET_KEY => rules::SECRET_KEY_TYPES.contains(&key_type),
                _ => rules::ASYMMETRIC_KEY_TYPES.contains(&key_type),
            };
            let known = rules::SECRET_KEY_TYPES.contains(&key_type)
                || rules::ASYMMETRIC_KEY_TYPES.contains(&key_type);
            match (fits, known) {
                (true, _) => Ok(Subtype::Key(key_type)),
                (false, true) => Err(Error::with(
                    CKR_TEMPLATE_INCONSISTENT,
                    "key type does not fit the object class",
                )),
                (false, false) => Err(value_invalid(CKA_KEY_TYPE, "unsupported key type")),
            }
        }
    }
}

/// The rules of a stored object.
fn stored_rules(object: &Attributes) -> Option<RuleSet> {
    let class = object.get_ulong(CKA_CLASS).ok().flatten()?;
    let subtype = match class {
        CKO_DATA => Subtype::Data,
        CKO_CERTIFICATE => match object.get_ulong(CKA_CERTIFICATE_TYPE).ok().flatten()? {
            CKC_X_509 => Subtype::X509,
            _ => return None,
        },
        _ => Subtype::Key(object.get_ulong(CKA_KEY_TYPE).ok().flatten()?),
    };
    rules::rules_for(class, subtype)
}

/// Sets `ty` to the value the token derives; a value the caller gave must equal it.
fn set_derived(
    object: &mut Attributes,
    ty: CK_ATTRIBUTE_TYPE,
    value: &[u8],
    mismatch: CK_RV,
) -> Result<()> {
    if let Some(given) = object.get(ty) {
        if given != value {
            return Err(Error::with(
                mismatch,
                format!("attribute 0x{ty:x} does not match the key"),
            ));
        }
    }
    object.set_slice(ty, value);
    Ok(())
}

/// The DER form of a raw `CKA_EC_POINT` of the key's curve; `None` when it is DER already,
/// or the curve is unknown (the key's own checks then refuse it).
fn ec_point_as_der(object: &Attributes) -> Option<Vec<u8>> {
    let point = object.get(CKA_EC_POINT)?;
    let raw_len = crate::mechanism::ec_public_key_len(object.get(CKA_EC_PARAMS)?)?;
    (point.len() == raw_len).then(|| crate::mechanism::ec_point_der(point))
}

/// Attributes the token derives from others: CKA_MODULUS_BITS, CKA_VALUE_LEN, the DER form
/// of CKA_EC_POINT, CKA_CHECK_VALUE of certificates and secret keys; and per-type checks.
fn derive(
    class: CK_OBJECT_CLASS,
    subtype: Subtype,
    object: &mut Attributes,
    origin: Origin,
) -> Result<()> {
    match (class, subtype) {
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_RSA)) => {
            if let Some(modulus) = object.get(CKA_MODULUS) {
                let bits = bit_length(modulus) as CK_ULONG;
                let value = bits.to_ne_bytes();
                set_derived(object, CKA_MODULUS_BITS, &value, CKR_TEMPLATE_INCONSISTENT)?;
            }
        }
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY))
            if origin == Origin::Create =>
        {
            // Importers send the raw public key as well as the DER OCTET STRING the spec
            // defines; the DER form is stored.
            if let Some(der) = ec_point_as_der(object) {
                object.set(CKA_EC_POINT, der);
            }
        }
        (CKO_SECRET_KEY, Subtype::Key(key_type)) => {
            if let Some(len) = object.get(CKA_VALUE).map(<[u8]>::len) {
                let fits = crate::mechanism::secret::key_lengths(key_type)
                    .is_some_and(|lengths| lengths.contains(len));
                if !fits {
                    return Err(value_invalid(CKA_VALUE, "wrong length for the key type"));
                }
                let value = (len as CK_ULONG).to_ne_bytes();
                set_derived(object, CKA_VALUE_LEN, &value, CKR_TEMPLATE_INCONSISTENT)?;
            }
            // A check value the caller gives must be the key's (the spec's code for a
            // wrong value of a valid attribute); otherwise the token supplies it.
            let check = object
                .get(CKA_VALUE)
                .and_then(|v| check_value::secret_key_check_value(key_type, v));
            if let Some(check) = check {
                set_derived(object, CKA_CHECK_VALUE, &check, CKR_ATTRIBUTE_VALUE_INVALID)?;
            }
        }
        (CKO_CERTIFICATE, Subtype::X509) => {
            if let Some(cert) = object.get(CKA_VALUE).filter(|v| !v.is_empty()) {
                let check = check_value::sha1_check_value(cert);
                set_derived(object, CKA_CHECK_VALUE, &check, CKR_ATTRIBUTE_VALUE_INVALID)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_length(v: &[u8]) -> usize {
    let v = strip_zeros(v);
    match v.first() {
        None => 0,
        Some(top) => (v.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// 32 lowercase hex characters (`crypto::unique_block`): unique with overwhelming
/// probability, and printable, as CKA_UNIQUE_ID (an RFC 2279 string) must be.
fn unique_id() -> Result<[u8; 32]> {
    let raw = crate::crypto::unique_block()?;
    let mut id = [0u8; 32];
    // The lengths fit (two characters a byte): this cannot fail.
    hex::encode_to_slice(raw, &mut id)
        .map_err(|_| Error::with(CKR_GENERAL_ERROR, "CKA_UNIQUE_ID encoding"))?;
    Ok(id)
}

/// CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
/// CKA_UNIQUE_ID and the creation time: what the token sets on a new object, where the
/// object kind has them (`value`). A key imported by C_CreateObject or C_UnwrapKey was known
/// outside the token: it is neither local, nor always sensitive, nor never extractable,
/// whatever its flags say now (§4.9, §4.10); a derived key inherits the base key's history.
struct Computed {
    local: [u8; 1],
    mechanism: [u8; std::mem::size_of::<CK_ULONG>()],
    always_sensitive: [u8; 1],
    never_extractable: [u8; 1],
    unique_id: [u8; 32],
    creation_time: [u8; std::mem::size_of::<CK_ULONG>()],
}

impl Computed {
    /// Computed from `object` (the template's values so far: an absent CKA_SENSITIVE or
    /// CKA_EXTRACTABLE counts as its default, true and false).
    fn of(object: &Attributes, origin: Origin) -> Result<Computed> {
        let (local, mechanism) = match origin {
            Origin::Generate { mechanism } => (true, mechanism),
            _ => (false, CK_UNAVAILABLE_INFORMATION),
        };
        // What the key's history allows, before its own flags count.
        let (may_be_always_sensitive, may_be_never_extractable) = match origin {
            Origin::Generate { .. } => (true, true),
            Origin::Derive {
                base_always_sensitive,
                base_never_extractable,
            } => (base_always_sensitive, base_never_extractable),
            Origin::Create | Origin::Unwrap => (false, false),
        };
        let sensitive = object.flag(CKA_SENSITIVE, true);
        let extractable = object.flag(CKA_EXTRACTABLE, false);
        let now = crate::object::lifecycle::now() as CK_ULONG;
        Ok(Computed {
            local: [local as u8],
            mechanism: mechanism.to_ne_bytes(),
            always_sensitive: [(may_be_always_sensitive && sensitive) as u8],
            never_extractable: [(may_be_never_extractable && !extractable) as u8],
            unique_id: unique_id()?,
            creation_time: now.to_ne_bytes(),
        })
    }

    /// The bytes of their values.
    const BYTES: usize = std::mem::size_of::<Computed>();

    /// The value of `ty` when the token computes it.
    fn value(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        match ty {
            CKA_LOCAL => Some(&self.local),
            CKA_KEY_GEN_MECHANISM => Some(&self.mechanism),
            CKA_ALWAYS_SENSITIVE => Some(&self.always_sensitive),
            CKA_NEVER_EXTRACTABLE => Some(&self.never_extractable),
            CKA_UNIQUE_ID => Some(&self.unique_id),
            crate::vendor::CKA_FERROHSM_CREATION_TIME => Some(&self.creation_time),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
