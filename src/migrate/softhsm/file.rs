//! SoftHSMv2's object file format (`objectstore.backend = file`, SoftHSMv2 2.x): the
//! parser for `token.object` and `<uuid>.object`.
//!
//! A file is a generation number followed by attributes, every integer an 8-byte
//! big-endian unsigned value: `type`, `kind`, then the value by kind: 1 boolean (one
//! byte, non-zero = true), 2 unsigned long, 3 byte string (length + bytes), 4 attribute map
//! (total length + nested type/kind/value triples; only wrap/unwrap/derive templates use
//! it), 5 mechanism set (count + values). Values are returned as stored: the byte strings
//! of private objects are still encrypted (see `token_key`).

use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::collections::BTreeMap;

/// One stored attribute value, by SoftHSM's kind.
#[derive(Clone, PartialEq, Eq)]
pub enum SoftValue {
    Bool(bool),
    Ulong(u64),
    Bytes(Vec<u8>),
    /// An attribute map (CKA_WRAP_TEMPLATE and friends), kept as its raw encoding: ferrohsm
    /// stores no such templates, so it is only reported.
    AttributeMap(Vec<u8>),
    Mechanisms(Vec<u64>),
}

impl std::fmt::Debug for SoftValue {
    // Byte strings may be key material: lengths only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SoftValue::Bool(b) => write!(f, "Bool({b})"),
            SoftValue::Ulong(v) => write!(f, "Ulong({v})"),
            SoftValue::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            SoftValue::AttributeMap(b) => write!(f, "AttributeMap({} bytes)", b.len()),
            SoftValue::Mechanisms(m) => write!(f, "Mechanisms({m:?})"),
        }
    }
}

/// The attributes of one SoftHSM object file, in type order.
pub type SoftAttributes = BTreeMap<CK_ATTRIBUTE_TYPE, SoftValue>;

const KIND_BOOL: u64 = 1;
const KIND_ULONG: u64 = 2;
const KIND_BYTES: u64 = 3;
const KIND_ATTRIBUTE_MAP: u64 = 4;
const KIND_MECHANISMS: u64 = 5;

fn corrupt(what: &str) -> Error {
    Error::with(
        CKR_DEVICE_ERROR,
        format!("not a SoftHSMv2 object file: {what}"),
    )
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| corrupt("length out of range"))?;
        if n > self.rest.len() {
            return Err(corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn ulong(&mut self) -> Result<u64> {
        let bytes = self.take(8)?;
        let mut be = [0u8; 8];
        be.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(be))
    }

    fn byte_string(&mut self) -> Result<Vec<u8>> {
        let len = self.ulong()?;
        Ok(self.take(len)?.to_vec())
    }
}

/// Parses a whole object file. Errors are CKR_DEVICE_ERROR naming what is wrong: a torn or
/// foreign file is reported, never half-read.
pub fn parse(bytes: &[u8]) -> Result<SoftAttributes> {
    let mut reader = Reader { rest: bytes };
    if bytes.is_empty() {
        return Err(corrupt("empty file"));
    }
    let _generation = reader.ulong()?;
    let mut attributes = SoftAttributes::new();
    while !reader.rest.is_empty() {
        let ty = reader.ulong()?;
        let value = match reader.ulong()? {
            KIND_BOOL => SoftValue::Bool(reader.take(1)?[0] != 0),
            KIND_ULONG => SoftValue::Ulong(reader.ulong()?),
            KIND_BYTES => SoftValue::Bytes(reader.byte_string()?),
            KIND_ATTRIBUTE_MAP => SoftValue::AttributeMap(reader.byte_string()?),
            KIND_MECHANISMS => {
                let count = reader.ulong()?;
                // Each entry needs 8 bytes: a count larger than the rest is corruption,
                // caught before allocating for it.
                if count > (reader.rest.len() / 8) as u64 {
                    return Err(corrupt("truncated mechanism set"));
                }
                let mechanisms = (0..count)
                    .map(|_| reader.ulong())
                    .collect::<Result<Vec<_>>>()?;
                SoftValue::Mechanisms(mechanisms)
            }
            kind => return Err(corrupt(&format!("unknown attribute kind {kind}"))),
        };
        attributes.insert(ty as CK_ATTRIBUTE_TYPE, value);
    }
    Ok(attributes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes attributes the way SoftHSMv2's ObjectFile does (test input only).
    pub(crate) fn encode(attributes: &[(u64, SoftValue)]) -> Vec<u8> {
        let mut out = 7u64.to_be_bytes().to_vec(); // generation
        for (ty, value) in attributes {
            out.extend(ty.to_be_bytes());
            match value {
                SoftValue::Bool(b) => {
                    out.extend(KIND_BOOL.to_be_bytes());
                    out.push(if *b { 0xFF } else { 0 });
                }
                SoftValue::Ulong(v) => {
                    out.extend(KIND_ULONG.to_be_bytes());
                    out.extend(v.to_be_bytes());
                }
                SoftValue::Bytes(b) | SoftValue::AttributeMap(b) => {
                    let kind = match value {
                        SoftValue::Bytes(_) => KIND_BYTES,
                        _ => KIND_ATTRIBUTE_MAP,
                    };
                    out.extend(kind.to_be_bytes());
                    out.extend((b.len() as u64).to_be_bytes());
                    out.extend(b);
                }
                SoftValue::Mechanisms(m) => {
                    out.extend(KIND_MECHANISMS.to_be_bytes());
                    out.extend((m.len() as u64).to_be_bytes());
                    for v in m {
                        out.extend(v.to_be_bytes());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_kind_round_trips() {
        let attributes = vec![
            (CKA_CLASS, SoftValue::Ulong(CKO_PRIVATE_KEY)),
            (CKA_TOKEN, SoftValue::Bool(true)),
            (CKA_LABEL, SoftValue::Bytes(b"old key".to_vec())),
            (CKA_ID, SoftValue::Bytes(vec![])),
            (
                CKA_ALLOWED_MECHANISMS,
                SoftValue::Mechanisms(vec![CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP]),
            ),
            (CKA_WRAP_TEMPLATE, SoftValue::AttributeMap(vec![0; 17])),
        ];
        let parsed = parse(&encode(&attributes)).unwrap();
        let want: SoftAttributes = attributes
            .into_iter()
            .map(|(t, v)| (t as CK_ATTRIBUTE_TYPE, v))
            .collect();
        assert_eq!(parsed, want);
    }

    #[test]
    fn torn_and_foreign_files_are_device_errors() {
        let good = encode(&[(CKA_LABEL, SoftValue::Bytes(b"label".to_vec()))]);
        for cut in 1..good.len() {
            if cut == 8 {
                continue; // the generation alone is a valid, empty object
            }
            assert_eq!(
                parse(&good[..cut]).unwrap_err().rv,
                CKR_DEVICE_ERROR,
                "cut {cut}"
            );
        }
        assert_eq!(parse(b"").unwrap_err().rv, CKR_DEVICE_ERROR);
        let mut bad_kind = good.clone();
        bad_kind[23] = 9;
        assert_eq!(parse(&bad_kind).unwrap_err().rv, CKR_DEVICE_ERROR);
        let mut huge = 7u64.to_be_bytes().to_vec();
        huge.extend((CKA_ALLOWED_MECHANISMS).to_be_bytes());
        huge.extend(KIND_MECHANISMS.to_be_bytes());
        huge.extend(u64::MAX.to_be_bytes());
        assert_eq!(parse(&huge).unwrap_err().rv, CKR_DEVICE_ERROR);
    }
}
