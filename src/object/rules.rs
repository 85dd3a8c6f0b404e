//! The attribute table: for every object class and key type, the attributes an object has,
//! their kind and the flags that PKCS#11 3.x gives them in its attribute tables (base spec
//! §4.4 storage objects, §4.5 data, §4.6 certificates, §4.7-4.10 keys; RSA and EC in the
//! current mechanisms spec §2.1 and §2.3, AES and generic secret in §2.10 / §2.8). The
//! footnote numbers refer to the spec's "Common footnotes for object attribute tables".
//!
//! Everything that decides what a caller may do with an attribute is in these tables; the
//! code in `policy.rs` only interprets the flags.
//!
//! Defaults chosen where the spec leaves them to the token (footnote 9):
//! - `CKA_PRIVATE`: true for private and secret keys, false for public keys, certificates
//!   and data objects. Public keys and certificates are public information: Java's KeyStore
//!   and `pkcs11-tool --list-objects` find certificates and public keys before login, and
//!   a public key hidden behind the PIN would only break those lookups. (SoftHSMv2 makes
//!   every object private by default, which is why scripts for it pass `CKA_PRIVATE=false`
//!   explicitly; those scripts keep working here.)
//! - Usage flags (`CKA_ENCRYPT`, `CKA_DECRYPT`, `CKA_SIGN`, `CKA_VERIFY`, `CKA_WRAP`,
//!   `CKA_UNWRAP`, `CKA_SIGN_RECOVER`, `CKA_VERIFY_RECOVER`): true, as in SoftHSMv2. Java
//!   SunPKCS11 generates keys with templates that carry no usage flags at all and then
//!   signs and decrypts with them; pkcs11-tool sets the flags it wants explicitly. Callers
//!   that want a restricted key (the KMS view in sm2.md) say so in the template, together
//!   with `CKA_MODIFIABLE=false` to freeze it. `CKA_DERIVE` defaults to false: no
//!   mechanism here derives, and it is the one SoftHSMv2 also leaves off.
//! - `CKA_SENSITIVE`: true for private and secret keys. A module whose keys can be read
//!   back unless the caller remembers to say otherwise is a key file, not an HSM; clients
//!   (pkcs11-tool, Java, OpenSSL's pkcs11-provider) never need to read private values.
//! - `CKA_EXTRACTABLE`: false for private and secret keys, so generated keys report
//!   `CKA_NEVER_EXTRACTABLE=true` (what the KMS view promises). Nothing here wraps keys
//!   yet; a caller that wants a wrappable key asks for `CKA_EXTRACTABLE=true`.
//! - `CKA_ALLOWED_MECHANISMS`: no default; absent (or empty) means every mechanism.

use crate::object::Attributes;
use cryptoki_sys::*;
use once_cell::sync::Lazy;

/// The shape of an attribute's value, checked on every write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `CK_BBOOL`, one byte.
    Bool,
    /// `CK_ULONG`, native-endian.
    Ulong,
    /// Any byte string (RFC 2279 strings, DER, big integers).
    Bytes,
    /// `CK_DATE`: empty, or eight ASCII digits YYYYMMDD.
    Date,
    /// An array of `CK_MECHANISM_TYPE`.
    Mechanisms,
    /// An attribute template (`CK_ATTRIBUTE` array: CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE),
    /// stored in the form of `Attributes::to_template_bytes`.
    Template,
}

/// Footnote flags, one bit each.
pub type Flags = u16;
/// Footnote 1: must be given to C_CreateObject (else CKR_TEMPLATE_INCOMPLETE).
pub const REQUIRED_ON_CREATE: Flags = 1 << 0;
/// Footnote 2: must not be given to C_CreateObject; the token derives it from the rest.
pub const FORBIDDEN_ON_CREATE: Flags = 1 << 1;
/// Footnote 3: must be given when generated (the mechanism's output counts).
pub const REQUIRED_ON_GENERATE: Flags = 1 << 2;
/// Footnote 4: must not be given when generated: it is key material the mechanism makes.
pub const FORBIDDEN_ON_GENERATE: Flags = 1 << 3;
/// Footnote 7: unreadable when CKA_SENSITIVE is true or CKA_EXTRACTABLE is false.
pub const SENSITIVE: Flags = 1 << 4;
/// Footnote 8: may be changed by C_SetAttributeValue and C_CopyObject.
pub const MODIFIABLE: Flags = 1 << 5;
/// §4.4: CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE "can be changed in the process of copying
/// an object", and only then.
pub const CHANGE_ON_COPY: Flags = 1 << 6;
/// Footnote 10: only the SO may set it to true: C_SetAttributeValue and C_CopyObject while
/// the SO is logged in (`policy::change_by`); anywhere else true is CKR_ATTRIBUTE_READ_ONLY.
pub const SO_ONLY_TRUE: Flags = 1 << 7;
/// Footnote 11: once true it becomes read-only (may only go false -> true).
pub const ONLY_TO_TRUE: Flags = 1 << 8;
/// Footnote 12: once false it becomes read-only (may only go true -> false).
pub const ONLY_TO_FALSE: Flags = 1 << 9;
/// Footnotes 2,4,6 together: set by the token only (CKA_LOCAL, CKA_UNIQUE_ID, ...); a
/// caller who gives one gets CKR_ATTRIBUTE_READ_ONLY.
pub const TOKEN_COMPUTED: Flags = 1 << 10;
/// ferrohsm's key-management attributes (`object::lifecycle`): changeable by
/// C_SetAttributeValue even when the object's CKA_MODIFIABLE is false, along the
/// transitions `lifecycle` allows.
pub const LIFECYCLE: Flags = 1 << 11;

/// One row of a table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub ty: CK_ATTRIBUTE_TYPE,
    pub kind: Kind,
    pub flags: Flags,
    /// Stored at creation when the template does not give the attribute; also what a read
    /// of an absent attribute returns. `None`: absent unless given or computed.
    pub default: Option<&'static [u8]>,
}

impl Rule {
    pub fn has(&self, flag: Flags) -> bool {
        self.flags & flag != 0
    }
}

const ULONG_LEN: usize = std::mem::size_of::<CK_ULONG>();

const fn ulong(v: CK_ULONG) -> [u8; ULONG_LEN] {
    v.to_ne_bytes()
}

const TRUE: &[u8] = &[CK_TRUE];
const FALSE: &[u8] = &[CK_FALSE];
const EMPTY: &[u8] = &[];
const ULONG_ZERO: [u8; ULONG_LEN] = ulong(0);
const CATEGORY_UNSPECIFIED: [u8; ULONG_LEN] = ulong(CK_CERTIFICATE_CATEGORY_UNSPECIFIED);
const NAME_HASH_SHA1: [u8; ULONG_LEN] = ulong(CKM_SHA_1);

const fn rule(
    ty: CK_ATTRIBUTE_TYPE,
    kind: Kind,
    flags: Flags,
    default: Option<&'static [u8]>,
) -> Rule {
    Rule {
        ty,
        kind,
        flags,
        default,
    }
}

use Kind::*;

/// §4.2 common object attributes, plus CKA_UNIQUE_ID (3.0 §4.4, footnotes 2,4,6).
const OBJECT: &[Rule] = &[
    rule(CKA_CLASS, Ulong, REQUIRED_ON_CREATE, None),
    rule(CKA_UNIQUE_ID, Bytes, TOKEN_COMPUTED, None),
];

/// §4.4 common storage object attributes. CKA_PRIVATE's default is overridden per class.
/// CKA_COPYABLE: "can't be set to TRUE once it is set to FALSE"; CKA_DESTROYABLE is
/// treated the same way, so a key once protected from deletion stays protected.
const STORAGE: &[Rule] = &[
    rule(CKA_TOKEN, Bool, CHANGE_ON_COPY, Some(FALSE)),
    rule(CKA_PRIVATE, Bool, CHANGE_ON_COPY, Some(FALSE)),
    rule(CKA_MODIFIABLE, Bool, CHANGE_ON_COPY, Some(TRUE)),
    rule(CKA_LABEL, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_COPYABLE, Bool, MODIFIABLE | ONLY_TO_FALSE, Some(TRUE)),
    rule(
        CKA_DESTROYABLE,
        Bool,
        MODIFIABLE | ONLY_TO_FALSE,
        Some(TRUE),
    ),
];

/// §4.5 data objects. PKCS#11 v2.01 said "both of these attributes may be modified after
/// the object is created"; later versions dropped the sentence without forbidding it, and
/// data objects exist to be application-managed, so all three are modifiable.
const DATA: &[Rule] = &[
    rule(CKA_APPLICATION, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_OBJECT_ID, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_VALUE, Bytes, MODIFIABLE, Some(EMPTY)),
];

/// §4.6.2 common certificate attributes. CKA_CHECK_VALUE is computed (first three bytes
/// of the SHA-1 of CKA_VALUE) and verified when given.
const CERTIFICATE: &[Rule] = &[
    rule(CKA_CERTIFICATE_TYPE, Ulong, REQUIRED_ON_CREATE, None),
    rule(CKA_TRUSTED, Bool, SO_ONLY_TRUE, Some(FALSE)),
    rule(
        CKA_CERTIFICATE_CATEGORY,
        Ulong,
        0,
        Some(&CATEGORY_UNSPECIFIED),
    ),
    rule(CKA_CHECK_VALUE, Bytes, 0, None),
    rule(CKA_START_DATE, Date, 0, Some(EMPTY)),
    rule(CKA_END_DATE, Date, 0, Some(EMPTY)),
    rule(CKA_PUBLIC_KEY_INFO, Bytes, 0, Some(EMPTY)),
];

/// §4.6.3 X.509 public key certificates. CKA_VALUE is required unless CKA_URL is given
/// (checked in code). CKA_ID, CKA_ISSUER and CKA_SERIAL_NUMBER are footnote 8 (Java's
/// KeyStore renames entries by rewriting CKA_ID/CKA_LABEL).
const X509: &[Rule] = &[
    rule(CKA_SUBJECT, Bytes, REQUIRED_ON_CREATE, None),
    rule(CKA_ID, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_ISSUER, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_SERIAL_NUMBER, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_VALUE, Bytes, 0, None),
    rule(CKA_URL, Bytes, 0, Some(EMPTY)),
    rule(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Bytes, 0, Some(EMPTY)),
    rule(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Bytes, 0, Some(EMPTY)),
    rule(CKA_JAVA_MIDP_SECURITY_DOMAIN, Ulong, 0, Some(&ULONG_ZERO)),
    rule(CKA_NAME_HASH_ALGORITHM, Ulong, 0, Some(&NAME_HASH_SHA1)),
];

const KEY_STATE_ENABLED: [u8; ULONG_LEN] = ulong(crate::vendor::KEY_STATE_ENABLED);

/// §4.7 common key attributes. CKA_ALLOWED_MECHANISMS has no footnote 8: fixed at creation.
/// Then ferrohsm's key-management attributes (`crate::vendor`): state, deletion time and
/// description change along `object::lifecycle`; the usage is fixed at creation; the
/// creation time is the token's.
const KEY: &[Rule] = &[
    rule(CKA_KEY_TYPE, Ulong, REQUIRED_ON_CREATE, None),
    rule(CKA_ID, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_START_DATE, Date, MODIFIABLE, Some(EMPTY)),
    rule(CKA_END_DATE, Date, MODIFIABLE, Some(EMPTY)),
    rule(CKA_DERIVE, Bool, MODIFIABLE, Some(FALSE)),
    rule(CKA_LOCAL, Bool, TOKEN_COMPUTED, None),
    rule(CKA_KEY_GEN_MECHANISM, Ulong, TOKEN_COMPUTED, None),
    rule(CKA_ALLOWED_MECHANISMS, Mechanisms, 0, None),
    rule(
        crate::vendor::CKA_FERROHSM_KEY_STATE,
        Ulong,
        LIFECYCLE,
        Some(&KEY_STATE_ENABLED),
    ),
    rule(
        crate::vendor::CKA_FERROHSM_DELETION_TIME,
        Ulong,
        LIFECYCLE,
        Some(&ULONG_ZERO),
    ),
    rule(
        crate::vendor::CKA_FERROHSM_DESCRIPTION,
        Bytes,
        LIFECYCLE,
        Some(EMPTY),
    ),
    rule(
        crate::vendor::CKA_FERROHSM_KEY_USAGE,
        Ulong,
        0,
        Some(&ULONG_ZERO),
    ),
    rule(
        crate::vendor::CKA_FERROHSM_CREATION_TIME,
        Ulong,
        TOKEN_COMPUTED,
        None,
    ),
];

/// §4.8 public key objects. CKA_WRAP_TEMPLATE has no footnote 8: fixed at creation, so a
/// policy cannot be loosened afterwards.
const PUBLIC_KEY: &[Rule] = &[
    rule(CKA_SUBJECT, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_ENCRYPT, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_VERIFY, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_VERIFY_RECOVER, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_WRAP, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_TRUSTED, Bool, SO_ONLY_TRUE, Some(FALSE)),
    rule(CKA_PUBLIC_KEY_INFO, Bytes, 0, Some(EMPTY)),
    rule(CKA_WRAP_TEMPLATE, Template, 0, None),
];

/// §4.9 private key objects. CKA_UNWRAP_TEMPLATE is fixed at creation.
const PRIVATE_KEY: &[Rule] = &[
    rule(CKA_PRIVATE, Bool, CHANGE_ON_COPY, Some(TRUE)),
    rule(CKA_SUBJECT, Bytes, MODIFIABLE, Some(EMPTY)),
    rule(CKA_SENSITIVE, Bool, MODIFIABLE | ONLY_TO_TRUE, Some(TRUE)),
    rule(CKA_DECRYPT, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_SIGN, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_SIGN_RECOVER, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_UNWRAP, Bool, MODIFIABLE, Some(TRUE)),
    rule(
        CKA_EXTRACTABLE,
        Bool,
        MODIFIABLE | ONLY_TO_FALSE,
        Some(FALSE),
    ),
    rule(CKA_ALWAYS_SENSITIVE, Bool, TOKEN_COMPUTED, None),
    rule(CKA_NEVER_EXTRACTABLE, Bool, TOKEN_COMPUTED, None),
    rule(
        CKA_WRAP_WITH_TRUSTED,
        Bool,
        MODIFIABLE | ONLY_TO_TRUE,
        Some(FALSE),
    ),
    rule(CKA_ALWAYS_AUTHENTICATE, Bool, 0, Some(FALSE)),
    rule(CKA_PUBLIC_KEY_INFO, Bytes, 0, Some(EMPTY)),
    rule(CKA_UNWRAP_TEMPLATE, Template, 0, None),
];

/// §4.10 secret key objects. CKA_CHECK_VALUE is computed by the token (AES: first three
/// bytes of E(K, 0^128); generic secret: of SHA-1(K)) and verified when given.
const SECRET_KEY: &[Rule] = &[
    rule(CKA_PRIVATE, Bool, CHANGE_ON_COPY, Some(TRUE)),
    rule(CKA_SENSITIVE, Bool, MODIFIABLE | ONLY_TO_TRUE, Some(TRUE)),
    rule(CKA_ENCRYPT, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_DECRYPT, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_SIGN, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_VERIFY, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_WRAP, Bool, MODIFIABLE, Some(TRUE)),
    rule(CKA_UNWRAP, Bool, MODIFIABLE, Some(TRUE)),
    rule(
        CKA_EXTRACTABLE,
        Bool,
        MODIFIABLE | ONLY_TO_FALSE,
        Some(FALSE),
    ),
    rule(CKA_ALWAYS_SENSITIVE, Bool, TOKEN_COMPUTED, None),
    rule(CKA_NEVER_EXTRACTABLE, Bool, TOKEN_COMPUTED, None),
    rule(CKA_CHECK_VALUE, Bytes, 0, None),
    rule(
        CKA_WRAP_WITH_TRUSTED,
        Bool,
        MODIFIABLE | ONLY_TO_TRUE,
        Some(FALSE),
    ),
    rule(CKA_TRUSTED, Bool, SO_ONLY_TRUE, Some(FALSE)),
    rule(CKA_WRAP_TEMPLATE, Template, 0, None),
    rule(CKA_UNWRAP_TEMPLATE, Template, 0, None),
];

/// Generic secret (§2.8), AES (§2.10) and SM4 (vendor, the same shape) keys: CKA_VALUE footnotes 1,4,6,7; CKA_VALUE_LEN
/// footnotes 2,3 (computed from CKA_VALUE on import).
const SECRET_VALUE: &[Rule] = &[
    rule(
        CKA_VALUE,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
    rule(
        CKA_VALUE_LEN,
        Ulong,
        FORBIDDEN_ON_CREATE | REQUIRED_ON_GENERATE,
        None,
    ),
];

/// RSA public key (mechanisms spec §2.1.2). CKA_MODULUS_BITS: footnotes 2,3 — an input of
/// generation, computed from CKA_MODULUS on import, read-only afterwards.
const RSA_PUBLIC: &[Rule] = &[
    rule(
        CKA_MODULUS,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE,
        None,
    ),
    rule(
        CKA_MODULUS_BITS,
        Ulong,
        FORBIDDEN_ON_CREATE | REQUIRED_ON_GENERATE,
        None,
    ),
    rule(CKA_PUBLIC_EXPONENT, Bytes, REQUIRED_ON_CREATE, None),
];

/// RSA private key (§2.1.3): only the modulus and private exponent are required on import;
/// the public exponent and CRT values are optional (footnotes 4,6 only).
const RSA_PRIVATE: &[Rule] = &[
    rule(
        CKA_MODULUS,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE,
        None,
    ),
    rule(CKA_PUBLIC_EXPONENT, Bytes, FORBIDDEN_ON_GENERATE, None),
    rule(
        CKA_PRIVATE_EXPONENT,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
    rule(CKA_PRIME_1, Bytes, FORBIDDEN_ON_GENERATE | SENSITIVE, None),
    rule(CKA_PRIME_2, Bytes, FORBIDDEN_ON_GENERATE | SENSITIVE, None),
    rule(
        CKA_EXPONENT_1,
        Bytes,
        FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
    rule(
        CKA_EXPONENT_2,
        Bytes,
        FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
    rule(
        CKA_COEFFICIENT,
        Bytes,
        FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
];

/// EC public key (§2.3.3): CKA_EC_PARAMS footnotes 1,3; CKA_EC_POINT 1,4.
const EC_PUBLIC: &[Rule] = &[
    rule(
        CKA_EC_PARAMS,
        Bytes,
        REQUIRED_ON_CREATE | REQUIRED_ON_GENERATE,
        None,
    ),
    rule(
        CKA_EC_POINT,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE,
        None,
    ),
];

/// EC private key (§2.3.4): CKA_EC_PARAMS footnotes 1,4,6; CKA_VALUE 1,4,6,7.
const EC_PRIVATE: &[Rule] = &[
    rule(
        CKA_EC_PARAMS,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE,
        None,
    ),
    rule(
        CKA_VALUE,
        Bytes,
        REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | SENSITIVE,
        None,
    ),
];

/// Which concrete kind of object a set of tables describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subtype {
    Data,
    X509,
    Key(CK_KEY_TYPE),
}

/// The rows of one object kind: its tables merged most specific first, a type listed
/// twice (CKA_PRIVATE's class-specific default, CKA_VALUE) keeping its first row. Merged
/// once per kind (`kind!`): every attribute of every object created, changed or loaded is
/// looked up here.
#[derive(Clone, Copy, Debug)]
pub struct RuleSet {
    rows: &'static [&'static Rule],
    /// The same rows in ascending type order: `find` is a binary search, and the defaults
    /// merge into an object's (sorted) attributes in one pass.
    by_type: &'static [&'static Rule],
    /// Every default of the kind as one attribute set, built once from the rows: a new
    /// object starts as a copy of it (two buffer copies) instead of some thirty insertions.
    defaults: &'static Attributes,
    /// The TOKEN_COMPUTED attributes of the kind, in ascending type order.
    computed: &'static [CK_ATTRIBUTE_TYPE],
    /// In table order: the rows REQUIRED_ON_CREATE, and REQUIRED_ON_GENERATE, without a
    /// default (what a new object may lack), and the key material (REQUIRED_ON_CREATE and
    /// FORBIDDEN_ON_GENERATE).
    required_on_create: &'static [&'static Rule],
    required_on_generate: &'static [&'static Rule],
    material: &'static [&'static Rule],
}

/// The rows of one kind, in both orders, and its defaults (`RuleSet`).
struct Rows {
    rows: Vec<&'static Rule>,
    by_type: Vec<&'static Rule>,
    defaults: Attributes,
    computed: Vec<CK_ATTRIBUTE_TYPE>,
    required_on_create: Vec<&'static Rule>,
    required_on_generate: Vec<&'static Rule>,
    material: Vec<&'static Rule>,
}

impl Rows {
    fn of(tables: &[&'static [Rule]]) -> Rows {
        let rows = merged(tables);
        let mut by_type = rows.clone();
        by_type.sort_by_key(|r| r.ty);
        let mut defaults = Attributes::new();
        defaults.set_missing(
            by_type
                .iter()
                .filter_map(|rule| Some((rule.ty, rule.default?))),
        );
        let computed = by_type
            .iter()
            .filter(|rule| rule.has(TOKEN_COMPUTED))
            .map(|rule| rule.ty)
            .collect();
        let rows_with = |wanted: &dyn Fn(&Rule) -> bool| -> Vec<&'static Rule> {
            rows.iter().copied().filter(|rule| wanted(rule)).collect()
        };
        let required_on_create =
            rows_with(&|rule| rule.default.is_none() && rule.has(REQUIRED_ON_CREATE));
        let required_on_generate =
            rows_with(&|rule| rule.default.is_none() && rule.has(REQUIRED_ON_GENERATE));
        let material =
            rows_with(&|rule| rule.has(REQUIRED_ON_CREATE) && rule.has(FORBIDDEN_ON_GENERATE));
        Rows {
            rows,
            by_type,
            defaults,
            computed,
            required_on_create,
            required_on_generate,
            material,
        }
    }
}

impl RuleSet {
    /// The rule of `ty` for this object kind; `None`: not an attribute of it.
    pub fn find(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Rule> {
        let i = self.by_type.binary_search_by_key(&ty, |r| r.ty).ok()?;
        Some(self.by_type[i])
    }

    /// Every attribute of this object kind once, in table order.
    pub fn all(&self) -> impl Iterator<Item = &'static Rule> + '_ {
        self.rows.iter().copied()
    }

    /// Every attribute of this object kind once, in ascending type order.
    pub fn by_type(&self) -> impl Iterator<Item = &'static Rule> + '_ {
        self.by_type.iter().copied()
    }

    /// The attributes of this kind that have a default, set to it.
    pub fn defaults(&self) -> &'static Attributes {
        self.defaults
    }

    /// The attributes of this kind that the token computes (TOKEN_COMPUTED), in ascending
    /// type order.
    pub fn computed(&self) -> &'static [CK_ATTRIBUTE_TYPE] {
        self.computed
    }

    /// In table order, the attributes without a default that a new object must have:
    /// REQUIRED_ON_GENERATE ones when `generated`, else REQUIRED_ON_CREATE ones.
    pub fn required_without_default(&self, generated: bool) -> &'static [&'static Rule] {
        if generated {
            self.required_on_generate
        } else {
            self.required_on_create
        }
    }

    /// In table order, the key material: what an import must give (footnote 1) and a
    /// generation must not (footnote 4).
    pub fn material(&self) -> &'static [&'static Rule] {
        self.material
    }

    /// How many attributes this object kind has.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn merged(tables: &[&'static [Rule]]) -> Vec<&'static Rule> {
    let mut rows: Vec<&'static Rule> = Vec::new();
    for rule in tables.iter().flat_map(|t| t.iter()) {
        if !rows.iter().any(|r| r.ty == rule.ty) {
            rows.push(rule);
        }
    }
    rows
}

/// The merged rows of the listed tables, computed at first use.
macro_rules! kind {
    ($($table:expr),+) => {{
        static ROWS: Lazy<Rows> = Lazy::new(|| Rows::of(&[$($table),+]));
        &*ROWS
    }};
}

/// The key types ferrohsm stores, per class.
pub const ASYMMETRIC_KEY_TYPES: &[CK_KEY_TYPE] =
    &[CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY];
pub const SECRET_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_GENERIC_SECRET, CKK_AES, crate::vendor::CKK_SM4];

/// The tables for an object of `class` and `subtype`; `None` when ferrohsm does not store
/// such objects.
pub fn rules_for(class: CK_OBJECT_CLASS, subtype: Subtype) -> Option<RuleSet> {
    let rows = match (class, subtype) {
        (CKO_DATA, Subtype::Data) => kind!(DATA, STORAGE, OBJECT),
        (CKO_CERTIFICATE, Subtype::X509) => kind!(X509, CERTIFICATE, STORAGE, OBJECT),
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_RSA)) => {
            kind!(RSA_PUBLIC, PUBLIC_KEY, KEY, STORAGE, OBJECT)
        }
        // Edwards and Montgomery keys (§2.3.5, §2.3.7) have the EC key's attributes.
        (CKO_PUBLIC_KEY, Subtype::Key(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)) => {
            kind!(EC_PUBLIC, PUBLIC_KEY, KEY, STORAGE, OBJECT)
        }
        (CKO_PRIVATE_KEY, Subtype::Key(CKK_RSA)) => {
            kind!(RSA_PRIVATE, PRIVATE_KEY, KEY, STORAGE, OBJECT)
        }
        (CKO_PRIVATE_KEY, Subtype::Key(CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)) => {
            kind!(EC_PRIVATE, PRIVATE_KEY, KEY, STORAGE, OBJECT)
        }
        (CKO_SECRET_KEY, Subtype::Key(CKK_GENERIC_SECRET | CKK_AES | crate::vendor::CKK_SM4)) => {
            kind!(SECRET_VALUE, SECRET_KEY, KEY, STORAGE, OBJECT)
        }
        _ => return None,
    };
    Some(RuleSet {
        rows: &rows.rows,
        by_type: &rows.by_type,
        defaults: &rows.defaults,
        computed: &rows.computed,
        required_on_create: &rows.required_on_create,
        required_on_generate: &rows.required_on_generate,
        material: &rows.material,
    })
}

/// True when `ty` is a `CK_BBOOL` in any table (used to normalise search templates).
pub fn is_bool_attribute(ty: CK_ATTRIBUTE_TYPE) -> bool {
    ALL_TABLES
        .iter()
        .flat_map(|t| t.iter())
        .any(|r| r.ty == ty && r.kind == Kind::Bool)
}

static ALL_TABLES: &[&[Rule]] = &[
    OBJECT,
    STORAGE,
    DATA,
    CERTIFICATE,
    X509,
    KEY,
    PUBLIC_KEY,
    PRIVATE_KEY,
    SECRET_KEY,
    SECRET_VALUE,
    RSA_PUBLIC,
    RSA_PRIVATE,
    EC_PUBLIC,
    EC_PRIVATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_lists_a_type_twice() {
        for table in ALL_TABLES {
            for (i, r) in table.iter().enumerate() {
                assert!(
                    table[..i].iter().all(|e| e.ty != r.ty),
                    "0x{:x} twice in one table",
                    r.ty
                );
            }
        }
    }

    #[test]
    fn defaults_have_their_kind_shape() {
        for r in ALL_TABLES.iter().flat_map(|t| t.iter()) {
            if let Some(d) = r.default {
                match r.kind {
                    Kind::Bool => assert_eq!(d.len(), 1),
                    Kind::Ulong => assert_eq!(d.len(), ULONG_LEN),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn most_specific_row_wins() {
        let set = rules_for(CKO_PRIVATE_KEY, Subtype::Key(CKK_RSA)).unwrap();
        assert_eq!(set.find(CKA_PRIVATE).unwrap().default, Some(TRUE));
        assert_eq!(set.all().filter(|r| r.ty == CKA_PRIVATE).count(), 1);
        let set = rules_for(CKO_PUBLIC_KEY, Subtype::Key(CKK_RSA)).unwrap();
        assert_eq!(set.find(CKA_PRIVATE).unwrap().default, Some(FALSE));
    }

    #[test]
    fn every_forbidden_on_create_attribute_is_token_made() {
        // policy.rs derives CKA_MODULUS_BITS and CKA_VALUE_LEN; everything else that
        // footnote 2 forbids must be TOKEN_COMPUTED, or new_object would store a value
        // nobody checked.
        for r in ALL_TABLES.iter().flat_map(|t| t.iter()) {
            if r.has(FORBIDDEN_ON_CREATE) {
                assert!(
                    matches!(r.ty, CKA_MODULUS_BITS | CKA_VALUE_LEN) || r.has(TOKEN_COMPUTED),
                    "0x{:x}",
                    r.ty
                );
            }
        }
    }
}
