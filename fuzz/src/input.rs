//! Structured inputs built by `arbitrary`, and their raw C form.
//!
//! Every raw form keeps its lengths consistent with its buffers: a C caller that lies about
//! a length is undefined behaviour on its side, which no module can detect. NULL values with
//! non-zero lengths, odd sizes, unknown types and unknown mechanisms are all fair game.

use arbitrary::Arbitrary;
use cryptoki_sys::*;
use ferrohsm::ffi::args::GcmParams240;
use ferrohsm::mechanism::params::{layout, ParamLayout};
use ferrohsm::vendor;
use std::mem::size_of;

/// Attribute types a template draws from (plus any raw value).
pub const KNOWN_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_TRUSTED,
    CKA_CHECK_VALUE,
    CKA_UNIQUE_ID,
    CKA_WRAP_TEMPLATE,
    CKA_UNWRAP_TEMPLATE,
    CKA_DERIVE_TEMPLATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_CERTIFICATE_CATEGORY,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_NAME_HASH_ALGORITHM,
    CKA_VENDOR_DEFINED,
];

/// Attribute types whose value is an array of CK_ATTRIBUTE.
pub const TEMPLATE_TYPES: &[CK_ATTRIBUTE_TYPE] =
    &[CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE];

fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Values worth offering whole: curve OIDs, exponents, classes, key types, sizes.
fn known_value(index: u8) -> Vec<u8> {
    let values: [&dyn Fn() -> Vec<u8>; 24] = [
        // SM2 (1.2.156.10197.1.301), P-256, P-384 as DER OIDs
        &|| hex(b"06082a811ccf5501822d"),
        &|| hex(b"06082a8648ce3d030107"),
        &|| hex(b"06052b81040022"),
        &|| vec![1, 0, 1],
        &|| vec![3],
        &|| ulong(CKO_DATA),
        &|| ulong(CKO_CERTIFICATE),
        &|| ulong(CKO_PUBLIC_KEY),
        &|| ulong(CKO_PRIVATE_KEY),
        &|| ulong(CKO_SECRET_KEY),
        &|| ulong(CKK_RSA),
        &|| ulong(CKK_EC),
        &|| ulong(vendor::CKK_SM2),
        &|| ulong(CKK_AES),
        &|| ulong(vendor::CKK_SM4),
        &|| ulong(CKK_GENERIC_SECRET),
        &|| ulong(16),
        &|| ulong(32),
        &|| ulong(1024),
        &|| ulong(2048),
        &|| vec![0x5a; 16],
        &|| vec![0xa5; 32],
        &|| ulong(CKC_X_509),
        &|| ulong(CK_UNAVAILABLE_INFORMATION),
    ];
    values[index as usize % values.len()]()
}

fn hex(text: &[u8]) -> Vec<u8> {
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AttrType {
    Known(u8),
    Raw(u64),
}

impl AttrType {
    pub fn get(self) -> CK_ATTRIBUTE_TYPE {
        match self {
            AttrType::Known(i) => KNOWN_TYPES[i as usize % KNOWN_TYPES.len()],
            AttrType::Raw(t) => t as CK_ATTRIBUTE_TYPE,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum AttrValue {
    True,
    False,
    Byte(u8),
    Ulong(u64),
    SmallUlong(u8),
    Bytes(Vec<u8>),
    Known(u8),
    /// pValue NULL with this ulValueLen.
    Null(u8),
    /// An array of CK_ATTRIBUTE (for the *_TEMPLATE types; nested templates nest once).
    Nested(Vec<(AttrType, Vec<u8>)>),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Attr {
    pub ty: AttrType,
    pub value: AttrValue,
}

impl Attr {
    pub fn new(ty: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Self {
        let index = KNOWN_TYPES.iter().position(|&t| t == ty);
        Attr {
            ty: match index {
                Some(i) => AttrType::Known(i as u8),
                None => AttrType::Raw(ty as u64),
            },
            value: AttrValue::Bytes(value),
        }
    }

    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, value: CK_ULONG) -> Self {
        Attr::new(ty, ulong(value))
    }

    pub fn bool(ty: CK_ATTRIBUTE_TYPE, value: bool) -> Self {
        Attr::new(ty, vec![value as u8])
    }

    /// The value's bytes, or None for NULL/nested values.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        Some(match &self.value {
            AttrValue::True => vec![1],
            AttrValue::False => vec![0],
            AttrValue::Byte(b) => vec![*b],
            AttrValue::Ulong(v) => ulong(*v as CK_ULONG),
            AttrValue::SmallUlong(v) => ulong(*v as CK_ULONG),
            AttrValue::Bytes(b) => b.clone(),
            AttrValue::Known(i) => known_value(*i),
            AttrValue::Null(_) | AttrValue::Nested(_) => return None,
        })
    }

    /// The value as a CK_ULONG when it is one.
    pub fn as_ulong(&self) -> Option<CK_ULONG> {
        let bytes = self.bytes()?;
        Some(CK_ULONG::from_ne_bytes(bytes.try_into().ok()?))
    }
}

/// A template in C form; the buffers it points to live as long as it does.
pub struct RawTemplate {
    attrs: Vec<CK_ATTRIBUTE>,
    _values: Vec<Vec<u8>>,
    _nested: Vec<Vec<CK_ATTRIBUTE>>,
}

fn raw_attr(ty: CK_ATTRIBUTE_TYPE, value: &mut Vec<u8>) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: if value.is_empty() {
            std::ptr::null_mut()
        } else {
            value.as_mut_ptr().cast()
        },
        ulValueLen: value.len() as CK_ULONG,
    }
}

impl RawTemplate {
    pub fn new(attrs: &[Attr]) -> RawTemplate {
        let mut values = Vec::new();
        let mut nested = Vec::new();
        let mut out = Vec::new();
        for attr in attrs.iter().take(64) {
            let ty = attr.ty.get();
            match &attr.value {
                AttrValue::Null(len) => out.push(CK_ATTRIBUTE {
                    type_: ty,
                    pValue: std::ptr::null_mut(),
                    ulValueLen: *len as CK_ULONG,
                }),
                AttrValue::Nested(inner) => {
                    let mut inner_values: Vec<Vec<u8>> =
                        inner.iter().take(8).map(|(_, v)| v.clone()).collect();
                    let mut array: Vec<CK_ATTRIBUTE> = inner
                        .iter()
                        .zip(inner_values.iter_mut())
                        .map(|((t, _), v)| raw_attr(t.get(), v))
                        .collect();
                    out.push(CK_ATTRIBUTE {
                        type_: ty,
                        pValue: if array.is_empty() {
                            std::ptr::null_mut()
                        } else {
                            array.as_mut_ptr().cast()
                        },
                        ulValueLen: (array.len() * size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
                    });
                    values.extend(inner_values);
                    nested.push(array);
                }
                _ => {
                    let mut value = attr.bytes().unwrap_or_default();
                    if TEMPLATE_TYPES.contains(&ty) && value.len() >= size_of::<CK_ATTRIBUTE>() {
                        // Bytes read as CK_ATTRIBUTEs would hold wild pointers (the caller's
                        // undefined behaviour); keep the length odd so they are refused.
                        value.truncate(size_of::<CK_ATTRIBUTE>() - 1);
                    }
                    out.push(raw_attr(ty, &mut value));
                    values.push(value);
                }
            }
        }
        RawTemplate {
            attrs: out,
            _values: values,
            _nested: nested,
        }
    }

    pub fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        if self.attrs.is_empty() {
            std::ptr::null_mut()
        } else {
            self.attrs.as_mut_ptr()
        }
    }

    pub fn len(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

/// A mechanism: one of those the module lists, or any number.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MechSel {
    Listed(u8),
    Raw(u64),
}

impl MechSel {
    pub fn get(self) -> CK_MECHANISM_TYPE {
        match self {
            MechSel::Listed(i) => {
                let list = ferrohsm::mechanism::registry::mechanism_list();
                list[i as usize % list.len()]
            }
            MechSel::Raw(m) => m as CK_MECHANISM_TYPE,
        }
    }
}

/// Hash and MGF choices for OAEP/PSS parameters.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum HashSel {
    Known(u8),
    Raw(u64),
}

const HASHES: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    vendor::CKM_SM3,
];
const MGFS: &[CK_RSA_PKCS_MGF_TYPE] = &[
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
];

impl HashSel {
    fn pick(self, table: &[CK_ULONG]) -> CK_ULONG {
        match self {
            HashSel::Known(i) => table[i as usize % table.len()],
            HashSel::Raw(v) => v as CK_ULONG,
        }
    }
}

/// A mechanism parameter. Struct forms are laid out as the C structs, pointing into
/// buffers the raw mechanism owns.
#[derive(Arbitrary, Debug, Clone)]
pub enum Param {
    None,
    /// pParameter NULL with this ulParameterLen.
    Null(u8),
    Bytes(Vec<u8>),
    Ulong(u64),
    Oaep {
        hash: HashSel,
        mgf: HashSel,
        source: u8,
        label: Vec<u8>,
    },
    Pss {
        hash: HashSel,
        mgf: HashSel,
        salt: u16,
    },
    Gcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        iv_bits: u16,
        tag_bits: u8,
        /// The 2.40 layout (no ulIvBits).
        v240: bool,
    },
    Ctr {
        bits: u8,
        block: [u8; 16],
    },
    DerivationString(Vec<u8>),
    CbcEncryptData {
        iv: [u8; 16],
        data: Vec<u8>,
    },
    Ecdh1 {
        /// CKD_* (small values: the defined KDFs and a few beyond).
        kdf: u8,
        shared: Vec<u8>,
        public: Vec<u8>,
    },
    Eddsa {
        prehash: bool,
        context: Vec<u8>,
    },
}

fn struct_bytes<T>(value: &T) -> Vec<u8> {
    // SAFETY: T is a plain C struct, read as the bytes a C caller would pass.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn ptr_of(buf: &[u8]) -> *const u8 {
    if buf.is_empty() {
        std::ptr::null()
    } else {
        buf.as_ptr()
    }
}

/// A mechanism in C form, owning what its parameter points to.
pub struct RawMechanism {
    pub mech: CK_MECHANISM,
    _param: Vec<u8>,
    _buffers: Vec<Vec<u8>>,
}

impl RawMechanism {
    pub fn new(mechanism: CK_MECHANISM_TYPE, param: &Param) -> RawMechanism {
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut keep = |b: &Vec<u8>| -> *const u8 {
            buffers.push(b.clone());
            ptr_of(buffers.last().unwrap())
        };
        let (null, mut bytes) = match param {
            Param::None => (None, Vec::new()),
            Param::Null(len) => (Some(*len as CK_ULONG), Vec::new()),
            Param::Bytes(b) => (None, b.clone()),
            Param::Ulong(v) => (None, ulong(*v as CK_ULONG)),
            Param::Oaep {
                hash,
                mgf,
                source,
                label,
            } => {
                let p = CK_RSA_PKCS_OAEP_PARAMS {
                    hashAlg: hash.pick(HASHES),
                    mgf: mgf.pick(MGFS),
                    source: *source as CK_ULONG,
                    pSourceData: keep(label) as *mut _,
                    ulSourceDataLen: label.len() as CK_ULONG,
                };
                (None, struct_bytes(&p))
            }
            Param::Pss { hash, mgf, salt } => {
                let p = CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: hash.pick(HASHES),
                    mgf: mgf.pick(MGFS),
                    sLen: *salt as CK_ULONG,
                };
                (None, struct_bytes(&p))
            }
            Param::Gcm {
                iv,
                aad,
                iv_bits,
                tag_bits,
                v240,
            } => {
                let (piv, paad) = (keep(iv), keep(aad));
                if *v240 {
                    let p = GcmParams240 {
                        iv: piv,
                        iv_len: iv.len() as CK_ULONG,
                        aad: paad,
                        aad_len: aad.len() as CK_ULONG,
                        tag_bits: *tag_bits as CK_ULONG,
                    };
                    (None, struct_bytes(&p))
                } else {
                    let p = CK_GCM_PARAMS {
                        pIv: piv as *mut _,
                        ulIvLen: iv.len() as CK_ULONG,
                        ulIvBits: *iv_bits as CK_ULONG,
                        pAAD: paad as *mut _,
                        ulAADLen: aad.len() as CK_ULONG,
                        ulTagBits: *tag_bits as CK_ULONG,
                    };
                    (None, struct_bytes(&p))
                }
            }
            Param::Ctr { bits, block } => {
                let p = CK_AES_CTR_PARAMS {
                    ulCounterBits: *bits as CK_ULONG,
                    cb: *block,
                };
                (None, struct_bytes(&p))
            }
            Param::DerivationString(data) => {
                let p = CK_KEY_DERIVATION_STRING_DATA {
                    pData: keep(data) as *mut _,
                    ulLen: data.len() as CK_ULONG,
                };
                (None, struct_bytes(&p))
            }
            Param::CbcEncryptData { iv, data } => {
                let p = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
                    iv: *iv,
                    pData: keep(data) as *mut _,
                    length: data.len() as CK_ULONG,
                };
                (None, struct_bytes(&p))
            }
            Param::Ecdh1 {
                kdf,
                shared,
                public,
            } => {
                let p = CK_ECDH1_DERIVE_PARAMS {
                    kdf: *kdf as CK_ULONG,
                    ulSharedDataLen: shared.len() as CK_ULONG,
                    pSharedData: keep(shared) as *mut _,
                    ulPublicDataLen: public.len() as CK_ULONG,
                    pPublicData: keep(public) as *mut _,
                };
                (None, struct_bytes(&p))
            }
            Param::Eddsa { prehash, context } => {
                let p = CK_EDDSA_PARAMS {
                    phFlag: *prehash as CK_BBOOL,
                    ulContextDataLen: context.len() as CK_ULONG,
                    pContextData: keep(context) as *mut _,
                };
                (None, struct_bytes(&p))
            }
        };
        // Bytes (or another struct) of exactly a pointer-holding struct's size would be read
        // as that struct: wild pointers, the caller's undefined behaviour. Keep them one short.
        let (pointer_sizes, own): (&[usize], bool) = match layout(mechanism) {
            ParamLayout::Oaep => (
                &[size_of::<CK_RSA_PKCS_OAEP_PARAMS>()],
                matches!(param, Param::Oaep { .. }),
            ),
            ParamLayout::Gcm => (
                &[size_of::<CK_GCM_PARAMS>(), size_of::<GcmParams240>()],
                matches!(param, Param::Gcm { .. }),
            ),
            ParamLayout::DerivationString => (
                &[size_of::<CK_KEY_DERIVATION_STRING_DATA>()],
                matches!(param, Param::DerivationString(_)),
            ),
            ParamLayout::CbcEncryptData => (
                &[size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>()],
                matches!(param, Param::CbcEncryptData { .. }),
            ),
            ParamLayout::Ecdh1 => (
                &[size_of::<CK_ECDH1_DERIVE_PARAMS>()],
                matches!(param, Param::Ecdh1 { .. }),
            ),
            ParamLayout::Eddsa => (
                &[size_of::<CK_EDDSA_PARAMS>()],
                matches!(param, Param::Eddsa { .. }),
            ),
            _ => (&[], true),
        };
        if !own && pointer_sizes.contains(&bytes.len()) {
            bytes.pop();
        }
        let mech = CK_MECHANISM {
            mechanism,
            pParameter: match null {
                Some(_) => std::ptr::null_mut(),
                None if bytes.is_empty() => std::ptr::null_mut(),
                None => bytes.as_mut_ptr().cast(),
            },
            ulParameterLen: null.unwrap_or(bytes.len() as CK_ULONG),
        };
        RawMechanism {
            mech,
            _param: bytes,
            _buffers: buffers,
        }
    }

    pub fn ptr(&mut self) -> *mut CK_MECHANISM {
        &mut self.mech
    }
}

/// A key: one of the fixture's baseline keys, or any handle.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum KeySel {
    Baseline(u8),
    Raw(u64),
}

impl KeySel {
    pub fn get(self) -> CK_OBJECT_HANDLE {
        match self {
            KeySel::Baseline(i) => {
                let keys = crate::fixture().keys.all();
                keys[i as usize % keys.len()]
            }
            KeySel::Raw(h) => h as CK_OBJECT_HANDLE,
        }
    }
}

/// A mutation of a sample (ciphertext, signature, wrapped key): byte flips and a cut.
#[derive(Arbitrary, Debug, Clone)]
pub struct Mutation {
    pub flips: Vec<(u16, u8)>,
    pub cut: Option<u16>,
}

impl Mutation {
    /// The mutated bytes, and whether they differ from the original.
    pub fn apply(&self, original: &[u8]) -> (Vec<u8>, bool) {
        let mut out = original.to_vec();
        if !out.is_empty() {
            for &(at, xor) in self.flips.iter().take(8) {
                let i = at as usize % out.len();
                out[i] ^= xor;
            }
        }
        if let Some(cut) = self.cut {
            out.truncate(cut as usize);
        }
        let changed = out != original;
        (out, changed)
    }
}
