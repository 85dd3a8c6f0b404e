//! What is measured: each operation's keys and inputs (made once per module, as session
//! objects), and one timed call of it.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// ferrohsm's vendor mechanisms for SM2 (GB/T 32918); other modules do not list them.
const CKM_SM2_KEY_PAIR_GEN: u64 = 0x8000_8001;
const CKM_SM3_SM2: u64 = 0x8000_8100;
const CKM_SM2_RAW: u64 = 0x8000_8200;

/// DER OIDs for CKA_EC_PARAMS.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const SM2_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];

/// The AES-GCM message: 1 MiB, as a bulk-encryption client sends.
pub const GCM_MESSAGE_BYTES: usize = 1 << 20;
/// What RSA encrypts and SM2 encrypts: a 32-byte secret, as in key transport.
const SECRET: [u8; 32] = [0x5a; 32];
/// What is signed: for CKM_ECDSA a 32-byte digest (as `openssl speed` signs), else a message.
const MESSAGE: [u8; 32] = [0xa5; 32];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    RsaKeygen,
    RsaDecryptPkcs1,
    RsaDecryptOaep,
    RsaSignPkcs1,
    RsaSignPss,
    RsaEncrypt,
    RsaVerify,
    EcdsaP256Sign,
    Ed25519Sign,
    AesGcmEncrypt,
    FindObject,
    GetModulus,
    OpenCloseSession,
    LoginLogout,
    Sm2Sign,
    Sm2Decrypt,
    AesKwDecrypt,
    AesKwUnwrap,
    RsaUnwrapOaep,
    EcdhP256Derive,
}

impl Operation {
    pub const ALL: [Operation; 20] = [
        Operation::RsaKeygen,
        Operation::RsaDecryptPkcs1,
        Operation::RsaDecryptOaep,
        Operation::RsaSignPkcs1,
        Operation::RsaSignPss,
        Operation::RsaEncrypt,
        Operation::RsaVerify,
        Operation::EcdsaP256Sign,
        Operation::Ed25519Sign,
        Operation::AesGcmEncrypt,
        Operation::FindObject,
        Operation::GetModulus,
        Operation::OpenCloseSession,
        Operation::LoginLogout,
        Operation::Sm2Sign,
        Operation::Sm2Decrypt,
        Operation::AesKwDecrypt,
        Operation::AesKwUnwrap,
        Operation::RsaUnwrapOaep,
        Operation::EcdhP256Derive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::RsaKeygen => "rsa2048-keygen",
            Operation::RsaDecryptPkcs1 => "rsa2048-decrypt-pkcs1",
            Operation::RsaDecryptOaep => "rsa2048-decrypt-oaep-sha256",
            Operation::RsaSignPkcs1 => "rsa2048-sign-sha256-pkcs1",
            Operation::RsaSignPss => "rsa2048-sign-sha256-pss",
            Operation::RsaEncrypt => "rsa2048-encrypt-pkcs1",
            Operation::RsaVerify => "rsa2048-verify-sha256-pkcs1",
            Operation::EcdsaP256Sign => "ecdsa-p256-sign",
            Operation::Ed25519Sign => "ed25519-sign",
            Operation::AesGcmEncrypt => "aes256-gcm-encrypt-1mib",
            Operation::FindObject => "find-object",
            Operation::GetModulus => "get-attribute-modulus",
            Operation::OpenCloseSession => "open-close-session",
            Operation::LoginLogout => "login-logout",
            Operation::Sm2Sign => "sm2-sign-sm3",
            Operation::Sm2Decrypt => "sm2-decrypt",
            Operation::AesKwDecrypt => "aes-kw-decrypt-32",
            Operation::AesKwUnwrap => "aes-kw-unwrap-32",
            Operation::RsaUnwrapOaep => "rsa2048-unwrap-oaep-sha256",
            Operation::EcdhP256Derive => "ecdh-p256-derive",
        }
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// C_Login and C_Logout act on every session of the application, so two threads would
    /// log each other out: this one is measured on one thread only.
    pub fn single_threaded(self) -> bool {
        self == Operation::LoginLogout
    }

    /// The mechanisms the module must list for the operation (its keys' generation included).
    fn required_mechanisms(self) -> Vec<MechanismType> {
        let rsa = MechanismType::RSA_PKCS_KEY_PAIR_GEN;
        match self {
            Operation::RsaKeygen | Operation::GetModulus => vec![rsa],
            Operation::RsaDecryptPkcs1 | Operation::RsaEncrypt => {
                vec![rsa, MechanismType::RSA_PKCS]
            }
            Operation::RsaDecryptOaep => vec![rsa, MechanismType::RSA_PKCS_OAEP],
            Operation::RsaSignPkcs1 | Operation::RsaVerify => {
                vec![rsa, MechanismType::SHA256_RSA_PKCS]
            }
            Operation::RsaSignPss => vec![rsa, MechanismType::SHA256_RSA_PKCS_PSS],
            Operation::EcdsaP256Sign => {
                vec![MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA]
            }
            Operation::Ed25519Sign => {
                vec![
                    MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                    MechanismType::EDDSA,
                ]
            }
            Operation::AesGcmEncrypt => vec![MechanismType::AES_KEY_GEN, MechanismType::AES_GCM],
            Operation::Sm2Sign => vec![vendor(CKM_SM2_KEY_PAIR_GEN), vendor(CKM_SM3_SM2)],
            Operation::Sm2Decrypt => vec![vendor(CKM_SM2_KEY_PAIR_GEN), vendor(CKM_SM2_RAW)],
            Operation::AesKwDecrypt | Operation::AesKwUnwrap => {
                vec![MechanismType::AES_KEY_GEN, MechanismType::AES_KEY_WRAP]
            }
            Operation::RsaUnwrapOaep => vec![rsa, MechanismType::RSA_PKCS_OAEP],
            Operation::EcdhP256Derive => {
                vec![MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDH1_DERIVE]
            }
            Operation::FindObject | Operation::OpenCloseSession | Operation::LoginLogout => {
                vec![]
            }
        }
    }
}

fn vendor(value: u64) -> MechanismType {
    // Only values below CKM_VENDOR_DEFINED are refused, and these constants are above it.
    MechanismType::new_vendor_defined(value).expect("a vendor-defined mechanism value")
}

/// One line for an error: cryptoki's Display of a return value is a paragraph of the
/// standard, the function and the value's name say it.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Pkcs11(rv, function) => format!("{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Why an operation was not measured on a module.
#[derive(Debug, Clone)]
pub enum NotMeasured {
    /// The module lacks a mechanism, curve or key size the operation needs.
    Unsupported(String),
    /// Anything else went wrong.
    Failed(String),
}

impl NotMeasured {
    /// Return values by which a module says it does not do something, as opposed to failing.
    pub fn from_error(what: &str, error: Error) -> NotMeasured {
        let described = describe(&error);
        match &error {
            Error::Pkcs11(
                RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::CurveNotSupported
                | RvError::DomainParamsInvalid
                | RvError::KeySizeRange
                | RvError::AttributeValueInvalid
                | RvError::AttributeTypeInvalid
                | RvError::TemplateInconsistent
                | RvError::FunctionNotSupported
                // SoftHSMv2's answer to OAEP with a hash other than SHA-1.
                | RvError::ArgumentsBad,
                _,
            )
            | Error::NotSupported => NotMeasured::Unsupported(format!("{what}: {described}")),
            _ => NotMeasured::Failed(format!("{what}: {described}")),
        }
    }
}

/// An operation ready to run on one module: its key handles (session objects of the setup
/// session, visible to every session of the process) and inputs.
pub enum Prepared {
    RsaKeygen {
        keys_per_thread: u32,
    },
    Decrypt {
        key: ObjectHandle,
        kind: Cipher,
        ciphertext: Vec<u8>,
    },
    Encrypt {
        key: ObjectHandle,
        kind: Cipher,
    },
    Sign {
        key: ObjectHandle,
        kind: Signature,
    },
    Verify {
        key: ObjectHandle,
        kind: Signature,
        signature: Vec<u8>,
    },
    AesGcmEncrypt {
        key: ObjectHandle,
        message: Vec<u8>,
    },
    /// The search template, made once so that the client's own allocation stays out of it.
    FindObject {
        template: Vec<Attribute>,
    },
    GetModulus {
        key: ObjectHandle,
    },
    OpenCloseSession,
    LoginLogout {
        pin: String,
    },
    /// C_UnwrapKey of a 32-byte AES key into a session object: what a digital envelope
    /// costs beside the decryption of the same blob. Only the unwrap is timed: the keys it
    /// makes are destroyed in batches outside the timed part (`Prepared::clean_up`), since
    /// the decryption it compares with makes no object.
    Unwrap {
        key: ObjectHandle,
        kind: Cipher,
        wrapped: Vec<u8>,
        template: Vec<Attribute>,
    },
    /// C_DeriveKey (ECDH, no KDF) of a session generic secret with a fixed peer point, and
    /// C_DestroyObject of it.
    Derive {
        key: ObjectHandle,
        peer_point: Vec<u8>,
        template: Vec<Attribute>,
    },
}

#[derive(Clone, Copy)]
pub enum Cipher {
    RsaPkcs1,
    RsaOaepSha256,
    Sm2Raw,
    /// RFC 3394 key wrap.
    AesKw,
}

#[derive(Clone, Copy)]
pub enum Signature {
    Sha256RsaPkcs1,
    Sha256RsaPss,
    EcdsaRaw,
    Ed25519,
    Sm3Sm2,
}

impl Cipher {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Cipher::RsaPkcs1 => Mechanism::RsaPkcs,
            Cipher::RsaOaepSha256 => Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::empty(),
            )),
            Cipher::Sm2Raw => Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                vendor(CKM_SM2_RAW),
                None,
            )),
            Cipher::AesKw => Mechanism::AesKeyWrap,
        }
    }
}

impl Signature {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Signature::Sha256RsaPkcs1 => Mechanism::Sha256RsaPkcs,
            Signature::Sha256RsaPss => Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32.into(),
            }),
            Signature::EcdsaRaw => Mechanism::Ecdsa,
            Signature::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519)),
            Signature::Sm3Sm2 => Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                vendor(CKM_SM3_SM2),
                None,
            )),
        }
    }
}

/// What preparing an operation needs from the run.
pub struct Setup<'a> {
    /// The session that owns the session objects; open (and logged in) for the whole run.
    pub session: &'a Session,
    /// Whether the token has a mechanism.
    pub has_mechanism: &'a dyn Fn(MechanismType) -> bool,
    pub pin: &'a str,
    pub keygen_keys: u32,
    pub objects: u32,
}

pub fn prepare(operation: Operation, setup: &Setup) -> Result<Prepared, NotMeasured> {
    if let Some(missing) = operation
        .required_mechanisms()
        .into_iter()
        .find(|mechanism| !(setup.has_mechanism)(*mechanism))
    {
        let name = missing.to_string();
        let name = if name.starts_with("unknown") {
            format!("vendor mechanism {:#x}", *missing)
        } else {
            name
        };
        return Err(NotMeasured::Unsupported(format!("{name} not offered")));
    }
    let session = setup.session;
    let prepared = match operation {
        Operation::RsaKeygen => Prepared::RsaKeygen {
            keys_per_thread: setup.keygen_keys,
        },
        Operation::RsaDecryptPkcs1 | Operation::RsaDecryptOaep | Operation::Sm2Decrypt => {
            let (kind, (public, private)) = match operation {
                Operation::RsaDecryptPkcs1 => (Cipher::RsaPkcs1, rsa_pair(session)?),
                Operation::RsaDecryptOaep => (Cipher::RsaOaepSha256, rsa_pair(session)?),
                _ => (Cipher::Sm2Raw, sm2_pair(session)?),
            };
            let ciphertext = session
                .encrypt(&kind.mechanism(), public, &SECRET)
                .map_err(|e| NotMeasured::from_error("C_Encrypt of the input", e))?;
            Prepared::Decrypt {
                key: private,
                kind,
                ciphertext,
            }
        }
        Operation::RsaEncrypt => Prepared::Encrypt {
            key: rsa_pair(session)?.0,
            kind: Cipher::RsaPkcs1,
        },
        Operation::RsaSignPkcs1 => Prepared::Sign {
            key: rsa_pair(session)?.1,
            kind: Signature::Sha256RsaPkcs1,
        },
        Operation::RsaSignPss => Prepared::Sign {
            key: rsa_pair(session)?.1,
            kind: Signature::Sha256RsaPss,
        },
        Operation::EcdsaP256Sign => Prepared::Sign {
            key: ec_pair(session, Mechanism::EccKeyPairGen, P256_OID)?.1,
            kind: Signature::EcdsaRaw,
        },
        Operation::Ed25519Sign => Prepared::Sign {
            key: ec_pair(session, Mechanism::EccEdwardsKeyPairGen, ED25519_OID)?.1,
            kind: Signature::Ed25519,
        },
        Operation::Sm2Sign => Prepared::Sign {
            key: sm2_pair(session)?.1,
            kind: Signature::Sm3Sm2,
        },
        Operation::RsaVerify => {
            let (public, private) = rsa_pair(session)?;
            let kind = Signature::Sha256RsaPkcs1;
            let signature = session
                .sign(&kind.mechanism(), private, &MESSAGE)
                .map_err(|e| NotMeasured::from_error("C_Sign of the input", e))?;
            Prepared::Verify {
                key: public,
                kind,
                signature,
            }
        }
        Operation::AesGcmEncrypt => {
            let template = [
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ];
            let key = session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(|e| NotMeasured::from_error("C_GenerateKey(AES-256)", e))?;
            Prepared::AesGcmEncrypt {
                key,
                message: vec![0x3c; GCM_MESSAGE_BYTES],
            }
        }
        Operation::FindObject => Prepared::FindObject {
            template: vec![
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(create_data_objects(setup)?),
            ],
        },
        Operation::GetModulus => Prepared::GetModulus {
            key: rsa_pair(session)?.0,
        },
        Operation::OpenCloseSession => Prepared::OpenCloseSession,
        Operation::LoginLogout => Prepared::LoginLogout {
            pin: setup.pin.to_owned(),
        },
        Operation::AesKwDecrypt | Operation::AesKwUnwrap | Operation::RsaUnwrapOaep => {
            let (kind, wrapping, unwrapping) = match operation {
                Operation::RsaUnwrapOaep => {
                    let (public, private) = rsa_unwrap_pair(session)?;
                    (Cipher::RsaOaepSha256, public, private)
                }
                _ => {
                    let key = aes_key(session, &[Attribute::Wrap(true), Attribute::Unwrap(true)])?;
                    (Cipher::AesKw, key, key)
                }
            };
            let target = aes_key(session, &[Attribute::Extractable(true)])?;
            let wrapped = session
                .wrap_key(&kind.mechanism(), wrapping, target)
                .map_err(|e| NotMeasured::from_error("C_WrapKey of the input", e))?;
            match operation {
                Operation::AesKwDecrypt => Prepared::Decrypt {
                    key: unwrapping,
                    kind,
                    ciphertext: wrapped,
                },
                _ => Prepared::Unwrap {
                    key: unwrapping,
                    kind,
                    wrapped,
                    template: vec![
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::Token(false),
                        Attribute::Decrypt(true),
                    ],
                },
            }
        }
        Operation::EcdhP256Derive => {
            let (key, _) = ec_derive_pair(session)?;
            // The peer's public key: any point of the curve does; that of a second pair.
            let (_, peer_public) = ec_derive_pair(session)?;
            let peer_point = match session.get_attributes(peer_public, &[AttributeType::EcPoint]) {
                Ok(attrs) => match attrs.into_iter().next() {
                    Some(Attribute::EcPoint(point)) => point,
                    _ => return Err(NotMeasured::Failed("no CKA_EC_POINT".into())),
                },
                Err(e) => {
                    return Err(NotMeasured::from_error(
                        "C_GetAttributeValue(CKA_EC_POINT)",
                        e,
                    ))
                }
            };
            Prepared::Derive {
                key,
                peer_point,
                template: vec![
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                ],
            }
        }
    };
    Ok(prepared)
}

/// An RSA-2048 pair as session objects: (public, private).
fn rsa_pair(session: &Session) -> Result<(ObjectHandle, ObjectHandle), NotMeasured> {
    generate_rsa_pair(session)
        .map_err(|e| NotMeasured::from_error("C_GenerateKeyPair(RSA-2048)", e))
}

fn generate_rsa_pair(session: &Session) -> Result<(ObjectHandle, ObjectHandle), Error> {
    let public = [
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
    ];
    session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private_template())
}

fn ec_pair(
    session: &Session,
    mechanism: Mechanism,
    curve: &[u8],
) -> Result<(ObjectHandle, ObjectHandle), NotMeasured> {
    let public = [
        Attribute::Token(false),
        Attribute::Verify(true),
        Attribute::EcParams(curve.to_vec()),
    ];
    let private = [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
    ];
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| NotMeasured::from_error("C_GenerateKeyPair(EC)", e))
}

/// An RSA-2048 pair for key transport: (public with CKA_WRAP, private with CKA_UNWRAP).
fn rsa_unwrap_pair(session: &Session) -> Result<(ObjectHandle, ObjectHandle), NotMeasured> {
    let public = [
        Attribute::Token(false),
        Attribute::Wrap(true),
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
    ];
    let private = [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Unwrap(true),
    ];
    session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .map_err(|e| NotMeasured::from_error("C_GenerateKeyPair(RSA-2048)", e))
}

/// A P-256 pair as session objects: (private with CKA_DERIVE, public).
fn ec_derive_pair(session: &Session) -> Result<(ObjectHandle, ObjectHandle), NotMeasured> {
    let public = [
        Attribute::Token(false),
        Attribute::EcParams(P256_OID.to_vec()),
    ];
    let private = [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Derive(true),
    ];
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .map(|(public, private)| (private, public))
        .map_err(|e| NotMeasured::from_error("C_GenerateKeyPair(EC P-256)", e))
}

/// A session AES-256 key with the usage flags in `usage`.
fn aes_key(session: &Session, usage: &[Attribute]) -> Result<ObjectHandle, NotMeasured> {
    let mut template = vec![Attribute::Token(false), Attribute::ValueLen(32.into())];
    template.extend_from_slice(usage);
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| NotMeasured::from_error("C_GenerateKey(AES-256)", e))
}

fn sm2_pair(session: &Session) -> Result<(ObjectHandle, ObjectHandle), NotMeasured> {
    let public = [
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Verify(true),
        Attribute::EcParams(SM2_OID.to_vec()),
    ];
    let mechanism = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        vendor(CKM_SM2_KEY_PAIR_GEN),
        None,
    ));
    session
        .generate_key_pair(&mechanism, &public, &private_template())
        .map_err(|e| NotMeasured::from_error("C_GenerateKeyPair(SM2)", e))
}

fn private_template() -> [Attribute; 5] {
    [
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
    ]
}

/// Fills the token with `objects` data objects (session objects, gone when the run ends) and
/// returns the label of the one in the middle, the one searched for.
fn create_data_objects(setup: &Setup) -> Result<Vec<u8>, NotMeasured> {
    let label_of = |index: u32| format!("ferrohsm-bench-object-{index}").into_bytes();
    for index in 0..setup.objects {
        let template = [
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Private(false),
            Attribute::Label(label_of(index)),
            Attribute::Value(index.to_be_bytes().to_vec()),
        ];
        setup
            .session
            .create_object(&template)
            .map_err(|e| NotMeasured::from_error("C_CreateObject(data)", e))?;
    }
    Ok(label_of(setup.objects / 2))
}

/// What a measuring thread has: the library, the token's slot and a session of its own.
pub struct Worker {
    pub pkcs11: Pkcs11,
    pub slot: Slot,
    pub session: Session,
    /// Keys an untimed operation part still has to destroy (`Prepared::clean_up`).
    pub made: std::cell::RefCell<Vec<ObjectHandle>>,
}

/// Unwrapped keys destroyed at a time, outside the timed part.
pub const CLEAN_UP_BATCH: usize = 256;

impl Prepared {
    /// Whether `run_once` left work for `clean_up` (`all`: any at all; else a full batch).
    pub fn clean_up_due(worker: &Worker, all: bool) -> bool {
        let made = worker.made.borrow().len();
        made >= CLEAN_UP_BATCH || (all && made > 0)
    }

    /// Destroys the objects `run_once` made (the untimed part of an operation).
    pub fn clean_up(worker: &Worker) -> Result<(), Error> {
        for handle in worker.made.borrow_mut().drain(..) {
            worker.session.destroy_object(handle)?;
        }
        Ok(())
    }

    /// One call of the operation (for key generation: one key pair, made and destroyed) in
    /// the calling thread's own session. `iteration` makes every GCM IV unique.
    pub fn run_once(&self, worker: &Worker, iteration: u64) -> Result<(), Error> {
        let session = &worker.session;
        match self {
            Prepared::RsaKeygen { .. } => {
                let (public, private) = generate_rsa_pair(session)?;
                session.destroy_object(public)?;
                session.destroy_object(private)?;
            }
            Prepared::Decrypt {
                key,
                kind,
                ciphertext,
            } => {
                session.decrypt(&kind.mechanism(), *key, ciphertext)?;
            }
            Prepared::Encrypt { key, kind } => {
                session.encrypt(&kind.mechanism(), *key, &SECRET)?;
            }
            Prepared::Sign { key, kind } => {
                session.sign(&kind.mechanism(), *key, &MESSAGE)?;
            }
            Prepared::Verify {
                key,
                kind,
                signature,
            } => {
                session.verify(&kind.mechanism(), *key, &MESSAGE, signature)?;
            }
            Prepared::AesGcmEncrypt { key, message } => {
                let mut iv = [0u8; 12];
                iv[4..].copy_from_slice(&iteration.to_be_bytes());
                let params = GcmParams::new(&mut iv, &[], 128.into())?;
                session.encrypt(&Mechanism::AesGcm(params), *key, message)?;
            }
            Prepared::FindObject { template } => {
                if session.find_objects(template)?.len() != 1 {
                    return Err(Error::InvalidValue);
                }
            }
            Prepared::GetModulus { key } => {
                session.get_attributes(*key, &[AttributeType::Modulus])?;
            }
            Prepared::OpenCloseSession => {
                worker.pkcs11.open_ro_session(worker.slot)?.close()?;
            }
            Prepared::LoginLogout { pin } => {
                session.login(UserType::User, Some(&AuthPin::new(pin.as_str().into())))?;
                session.logout()?;
            }
            Prepared::Unwrap {
                key,
                kind,
                wrapped,
                template,
            } => {
                let unwrapped = session.unwrap_key(&kind.mechanism(), *key, wrapped, template)?;
                worker.made.borrow_mut().push(unwrapped);
            }
            Prepared::Derive {
                key,
                peer_point,
                template,
            } => {
                let params = Ecdh1DeriveParams::new(EcKdf::null(), peer_point);
                let derived =
                    session.derive_key(&Mechanism::Ecdh1Derive(params), *key, template)?;
                session.destroy_object(derived)?;
            }
        }
        Ok(())
    }
}
