//! A SoftHSM object as a C_CreateObject template for ferrohsm.
//!
//! Which attributes go across is decided by ferrohsm's attribute table (`object::rules`),
//! not by a list here: every attribute the table knows for the object's kind and lets a
//! caller give at creation is copied; what the token computes itself (CKA_LOCAL,
//! CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_MODULUS_BITS,
//! CKA_UNIQUE_ID) is recomputed, so a migrated key reads as imported (CKA_LOCAL false), which
//! is what it now is. Everything else is listed in `dropped` for the report.

use super::file::SoftValue;
use super::SoftObject;
use crate::error::{Error, Result};
use crate::object::rules::{self, Kind, Subtype};
use crate::object::Attributes;
use cryptoki_sys::*;

/// A template ready for C_CreateObject, and what was left out of it and why.
pub struct Converted {
    pub template: Attributes,
    pub dropped: Vec<(CK_ATTRIBUTE_TYPE, &'static str)>,
}

fn ulong_of(object: &SoftObject, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
    match object.attributes.get(&ty) {
        Some(SoftValue::Ulong(v)) => CK_ULONG::try_from(*v).ok(),
        _ => None,
    }
}

/// The object's class and kind as ferrohsm's table names them.
fn kind_of(object: &SoftObject) -> Result<(CK_OBJECT_CLASS, Subtype)> {
    let unsupported = |what: String| Error::with(CKR_ATTRIBUTE_VALUE_INVALID, what);
    let class = ulong_of(object, CKA_CLASS)
        .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "no CKA_CLASS"))?;
    let subtype = match class {
        CKO_DATA => Subtype::Data,
        CKO_CERTIFICATE => match ulong_of(object, CKA_CERTIFICATE_TYPE) {
            Some(CKC_X_509) => Subtype::X509,
            other => {
                return Err(unsupported(format!(
                    "certificate type {other:?} is not stored by ferrohsm (X.509 only)"
                )))
            }
        },
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
            let key_type = ulong_of(object, CKA_KEY_TYPE)
                .ok_or_else(|| Error::with(CKR_TEMPLATE_INCOMPLETE, "no CKA_KEY_TYPE"))?;
            Subtype::Key(key_type)
        }
        other => {
            return Err(unsupported(format!(
                "object class 0x{other:x} is not stored by ferrohsm"
            )))
        }
    };
    Ok((class, subtype))
}

/// Converts one object. Errors (the object is skipped): CKR_ATTRIBUTE_VALUE_INVALID for a
/// kind of object ferrohsm does not store, CKR_TEMPLATE_INCOMPLETE without class or type.
pub fn to_template(object: &SoftObject) -> Result<Converted> {
    let (class, subtype) = kind_of(object)?;
    let set = rules::rules_for(class, subtype).ok_or_else(|| {
        Error::with(
            CKR_ATTRIBUTE_VALUE_INVALID,
            format!("{subtype:?} objects of class 0x{class:x} are not stored by ferrohsm"),
        )
    })?;
    let mut template = Attributes::new();
    let mut dropped = Vec::new();
    for (&ty, value) in &object.attributes {
        if matches!(value, SoftValue::AttributeMap(map) if map.is_empty()) {
            // SoftHSM stores an empty wrap/unwrap template on every key: nothing to lose.
            continue;
        }
        let Some(rule) = set.find(ty) else {
            dropped.push((ty, "not an attribute ferrohsm stores for this object"));
            continue;
        };
        if rule.has(rules::TOKEN_COMPUTED) || rule.has(rules::FORBIDDEN_ON_CREATE) {
            // Recomputed by ferrohsm at creation; not a loss.
            continue;
        }
        let wire = match (rule.kind, value) {
            (Kind::Bool, SoftValue::Bool(b)) => {
                if *b && rule.has(rules::SO_ONLY_TRUE) {
                    dropped.push((ty, "only the SO may set it to true"));
                    continue;
                }
                vec![if *b { CK_TRUE } else { CK_FALSE }]
            }
            (Kind::Ulong, SoftValue::Ulong(v)) => match CK_ULONG::try_from(*v) {
                Ok(v) => v.to_ne_bytes().to_vec(),
                Err(_) => {
                    dropped.push((ty, "value out of range"));
                    continue;
                }
            },
            (Kind::Bytes | Kind::Date, SoftValue::Bytes(b)) => b.clone(),
            (Kind::Mechanisms, SoftValue::Mechanisms(list)) => {
                if list.is_empty() {
                    // SoftHSM stores "no restriction" as an empty set; so does ferrohsm,
                    // by leaving the attribute out.
                    continue;
                }
                list.iter()
                    .flat_map(|m| (*m as CK_ULONG).to_ne_bytes())
                    .collect()
            }
            _ => {
                dropped.push((ty, "stored by SoftHSM in another form"));
                continue;
            }
        };
        template.set(ty, wire);
    }
    Ok(Converted { template, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::policy::{self, Origin};

    fn object(attributes: Vec<(CK_ATTRIBUTE_TYPE, SoftValue)>) -> SoftObject {
        SoftObject {
            file: "test.object".into(),
            attributes: attributes.into_iter().collect(),
        }
    }

    #[test]
    fn token_made_attributes_are_recomputed_and_the_rest_copied() {
        let o = object(vec![
            (CKA_CLASS, SoftValue::Ulong(CKO_DATA)),
            (CKA_TOKEN, SoftValue::Bool(true)),
            (CKA_PRIVATE, SoftValue::Bool(true)),
            (CKA_LABEL, SoftValue::Bytes(b"notes".to_vec())),
            (CKA_APPLICATION, SoftValue::Bytes(b"app".to_vec())),
            (CKA_VALUE, SoftValue::Bytes(b"secret notes".to_vec())),
            (CKA_UNIQUE_ID, SoftValue::Bytes(b"softhsm's".to_vec())),
            (0x8000_5348, SoftValue::Bool(true)),
        ]);
        let c = to_template(&o).unwrap();
        assert_eq!(c.template.get(CKA_LABEL), Some(&b"notes"[..]));
        assert_eq!(c.template.get(CKA_PRIVATE), Some(&[CK_TRUE][..]));
        assert_eq!(c.template.get(CKA_VALUE), Some(&b"secret notes"[..]));
        assert!(!c.template.contains(CKA_UNIQUE_ID));
        assert_eq!(c.dropped.len(), 1);
        assert_eq!(c.dropped[0].0, 0x8000_5348);
        // What comes out is a template C_CreateObject accepts.
        policy::new_object(&c.template, Origin::Create, &Attributes::new()).unwrap();
    }

    #[test]
    fn key_attributes_keep_their_wire_form() {
        let o = object(vec![
            (CKA_CLASS, SoftValue::Ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, SoftValue::Ulong(CKK_RSA)),
            (CKA_LOCAL, SoftValue::Bool(true)),
            (
                CKA_KEY_GEN_MECHANISM,
                SoftValue::Ulong(CKM_RSA_PKCS_KEY_PAIR_GEN),
            ),
            (CKA_MODULUS_BITS, SoftValue::Ulong(2048)),
            (CKA_TRUSTED, SoftValue::Bool(true)),
            (
                CKA_ALLOWED_MECHANISMS,
                SoftValue::Mechanisms(vec![CKM_RSA_PKCS_OAEP]),
            ),
            (CKA_WRAP_TEMPLATE, SoftValue::AttributeMap(vec![1; 17])),
            (CKA_UNWRAP_TEMPLATE, SoftValue::AttributeMap(vec![])),
        ]);
        let c = to_template(&o).unwrap();
        for computed in [CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_MODULUS_BITS] {
            assert!(!c.template.contains(computed), "0x{computed:x}");
        }
        assert_eq!(c.template.get_ulong(CKA_KEY_TYPE).unwrap(), Some(CKK_RSA));
        assert_eq!(
            c.template.get(CKA_ALLOWED_MECHANISMS),
            Some(&CKM_RSA_PKCS_OAEP.to_ne_bytes()[..])
        );
        let dropped: Vec<_> = c.dropped.iter().map(|d| d.0).collect();
        assert_eq!(dropped, vec![CKA_TRUSTED, CKA_WRAP_TEMPLATE]);
    }

    #[test]
    fn kinds_ferrohsm_does_not_store_are_refused() {
        let des = object(vec![
            (CKA_CLASS, SoftValue::Ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, SoftValue::Ulong(CKK_DES3)),
        ]);
        assert_eq!(
            to_template(&des).err().unwrap().rv,
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        let no_class = object(vec![(CKA_LABEL, SoftValue::Bytes(vec![]))]);
        assert_eq!(
            to_template(&no_class).err().unwrap().rv,
            CKR_TEMPLATE_INCOMPLETE
        );
    }
}
