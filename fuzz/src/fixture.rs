//! One token per fuzzing process, set up once through the C ABI: a temp token dir, a user
//! logged in on a long-lived session holding the baseline keys (session objects, so no
//! input can destroy them through its own session), and samples to mutate. Each input runs
//! in an `ExecSession` whose objects die with it; token objects an input creates are
//! destroyed after it, so inputs do not see each other's leftovers.

use crate::input::{Attr, HashSel, Param, RawMechanism, RawTemplate};
use cryptoki_sys::*;
use ferrohsm::ffi as p11;
use ferrohsm::vendor;
use std::path::PathBuf;
use std::ptr;
use std::sync::OnceLock;

pub const SO_PIN: &[u8] = b"fuzz-so-pin-1234";
pub const USER_PIN: &[u8] = b"fuzz-user-pin-1234";

pub struct Keys {
    pub rsa_public: CK_OBJECT_HANDLE,
    pub rsa_private: CK_OBJECT_HANDLE,
    pub sm2_public: CK_OBJECT_HANDLE,
    pub sm2_private: CK_OBJECT_HANDLE,
    /// P-256 (ECDSA, ECDH), Ed25519 and X25519 pairs.
    pub ec_public: CK_OBJECT_HANDLE,
    pub ec_private: CK_OBJECT_HANDLE,
    pub ed_public: CK_OBJECT_HANDLE,
    pub ed_private: CK_OBJECT_HANDLE,
    pub x25519_private: CK_OBJECT_HANDLE,
    /// AES-256, every usage, sensitive, not extractable.
    pub aes: CK_OBJECT_HANDLE,
    /// AES-128, extractable: what the wrap samples wrap.
    pub aes_extractable: CK_OBJECT_HANDLE,
    pub sm4: CK_OBJECT_HANDLE,
    /// A 32-byte generic secret for HMAC and derivation.
    pub hmac: CK_OBJECT_HANDLE,
}

impl Keys {
    pub fn all(&self) -> [CK_OBJECT_HANDLE; 13] {
        [
            self.rsa_public,
            self.rsa_private,
            self.sm2_public,
            self.sm2_private,
            self.ec_public,
            self.ec_private,
            self.ed_public,
            self.ed_private,
            self.x25519_private,
            self.aes,
            self.aes_extractable,
            self.sm4,
            self.hmac,
        ]
    }

    /// The keys whose secret attributes must never be read.
    pub fn sensitive(&self) -> [CK_OBJECT_HANDLE; 9] {
        [
            self.rsa_private,
            self.sm2_private,
            self.ec_private,
            self.ed_private,
            self.x25519_private,
            self.aes,
            self.aes_extractable,
            self.sm4,
            self.hmac,
        ]
    }
}

/// A mechanism applied to `input` under `key` gave `output`: ciphertext and plaintext,
/// data and signature, or (for wrap samples) the wrapped key.
pub struct Sample {
    pub mech: CK_MECHANISM_TYPE,
    pub param: Param,
    /// The key that undoes it (decrypts, verifies, unwraps).
    pub key: CK_OBJECT_HANDLE,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
}

pub struct Fixture {
    pub dir: PathBuf,
    pub slot: CK_SLOT_ID,
    pub session: CK_SESSION_HANDLE,
    pub keys: Keys,
    pub ciphertexts: Vec<Sample>,
    pub signatures: Vec<Sample>,
    pub wrapped: Vec<Sample>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static DIR: OnceLock<PathBuf> = OnceLock::new();

pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(setup)
}

/// The process's temp dir (created on first use, removed at exit).
pub fn temp_dir() -> &'static PathBuf {
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrohsm-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).expect("create fuzz temp dir");
        extern "C" fn remove_dir() {
            if let Some(dir) = DIR.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        // SAFETY: registers a plain extern "C" function to run at exit().
        unsafe { libc::atexit(remove_dir) };
        dir
    })
}

#[track_caller]
pub fn ck(rv: CK_RV, what: &str) {
    assert_eq!(rv, CKR_OK, "fixture: {what} failed: 0x{rv:x}");
}

fn setup() -> Fixture {
    let dir = temp_dir().clone();
    let conf = dir.join("ferrohsm.toml");
    std::fs::write(
        &conf,
        format!(
            "token_dir = \"{}\"\nrsa_min_bits = 1024\n",
            dir.join("tokens").display()
        ),
    )
    .expect("write config");
    std::env::set_var("FERROHSM_CONF", &conf);
    if std::env::var_os("FERROHSM_LOG").is_none() {
        std::env::set_var("FERROHSM_LOG", "error");
    }
    // SAFETY (this whole function): raw calls with valid pointers, as a C client makes them.
    unsafe {
        ck(p11::C_Initialize(ptr::null_mut()), "C_Initialize");
        let mut slots = [0 as CK_SLOT_ID; 16];
        let mut count = slots.len() as CK_ULONG;
        ck(
            p11::C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count),
            "C_GetSlotList",
        );
        let slot = slots[count as usize - 1];
        let mut label = [b' '; 32];
        label[..4].copy_from_slice(b"fuzz");
        ck(
            p11::C_InitToken(
                slot,
                SO_PIN.as_ptr() as *mut _,
                SO_PIN.len() as CK_ULONG,
                label.as_mut_ptr(),
            ),
            "C_InitToken",
        );
        let session = open_session(slot);
        login(session, CKU_SO, SO_PIN);
        ck(
            p11::C_InitPIN(
                session,
                USER_PIN.as_ptr() as *mut _,
                USER_PIN.len() as CK_ULONG,
            ),
            "C_InitPIN",
        );
        ck(p11::C_Logout(session), "C_Logout");
        login(session, CKU_USER, USER_PIN);
        let keys = baseline_keys(session);
        let mut fixture = Fixture {
            dir,
            slot,
            session,
            keys,
            ciphertexts: Vec::new(),
            signatures: Vec::new(),
            wrapped: Vec::new(),
        };
        make_samples(&mut fixture);
        fixture
    }
}

fn login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) {
    // SAFETY: a PIN buffer of its length.
    let rv = unsafe { p11::C_Login(session, user, pin.as_ptr() as *mut _, pin.len() as CK_ULONG) };
    ck(rv, "C_Login");
}

pub fn open_session(slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut session = 0;
    // SAFETY: valid out pointer.
    let rv = unsafe {
        p11::C_OpenSession(
            slot,
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            ptr::null_mut(),
            None,
            &mut session,
        )
    };
    ck(rv, "C_OpenSession");
    session
}

fn usages(attrs: &mut Vec<Attr>, types: &[CK_ATTRIBUTE_TYPE]) {
    attrs.extend(types.iter().map(|&t| Attr::bool(t, true)));
}

fn key_pair(
    session: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    mut public: Vec<Attr>,
    mut private: Vec<Attr>,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    public.push(Attr::bool(CKA_TOKEN, false));
    private.extend([
        Attr::bool(CKA_TOKEN, false),
        Attr::bool(CKA_PRIVATE, true),
        Attr::bool(CKA_SENSITIVE, true),
    ]);
    usages(&mut public, &[CKA_ENCRYPT, CKA_VERIFY, CKA_WRAP]);
    usages(&mut private, &[CKA_DECRYPT, CKA_SIGN, CKA_UNWRAP]);
    let (mut public, mut private) = (RawTemplate::new(&public), RawTemplate::new(&private));
    let mut mechanism = RawMechanism::new(mech, &Param::None);
    let (mut hpub, mut hpriv) = (0, 0);
    // SAFETY: valid templates and out pointers.
    let rv = unsafe {
        p11::C_GenerateKeyPair(
            session,
            mechanism.ptr(),
            public.ptr(),
            public.len(),
            private.ptr(),
            private.len(),
            &mut hpub,
            &mut hpriv,
        )
    };
    ck(rv, "C_GenerateKeyPair");
    (hpub, hpriv)
}

fn secret_key(
    session: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    len: CK_ULONG,
    extractable: bool,
    usage: &[CK_ATTRIBUTE_TYPE],
) -> CK_OBJECT_HANDLE {
    let mut template = vec![
        Attr::bool(CKA_TOKEN, false),
        Attr::bool(CKA_SENSITIVE, true),
        Attr::bool(CKA_EXTRACTABLE, extractable),
    ];
    if mech != vendor::CKM_SM4_KEY_GEN {
        template.push(Attr::ulong(CKA_VALUE_LEN, len));
    }
    usages(&mut template, usage);
    let mut template = RawTemplate::new(&template);
    let mut mechanism = RawMechanism::new(mech, &Param::None);
    let mut handle = 0;
    // SAFETY: valid template and out pointer.
    let rv = unsafe {
        p11::C_GenerateKey(
            session,
            mechanism.ptr(),
            template.ptr(),
            template.len(),
            &mut handle,
        )
    };
    ck(rv, "C_GenerateKey");
    handle
}

fn baseline_keys(session: CK_SESSION_HANDLE) -> Keys {
    let (rsa_public, rsa_private) = key_pair(
        session,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        vec![
            Attr::ulong(CKA_MODULUS_BITS, 1024),
            Attr::new(CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        ],
        vec![],
    );
    let (sm2_public, sm2_private) = key_pair(session, vendor::CKM_SM2_KEY_PAIR_GEN, vec![], vec![]);
    let curve = |oid: &[u8]| vec![Attr::new(CKA_EC_PARAMS, oid.to_vec())];
    let derive = || vec![Attr::bool(CKA_DERIVE, true)];
    let (ec_public, ec_private) = key_pair(
        session,
        CKM_EC_KEY_PAIR_GEN,
        curve(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
        derive(),
    );
    let (ed_public, ed_private) = key_pair(
        session,
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        curve(&[0x06, 0x03, 0x2b, 0x65, 0x70]),
        vec![],
    );
    let (_, x25519_private) = key_pair(
        session,
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
        curve(&[0x06, 0x03, 0x2b, 0x65, 0x6e]),
        derive(),
    );
    let all = [
        CKA_ENCRYPT,
        CKA_DECRYPT,
        CKA_SIGN,
        CKA_VERIFY,
        CKA_WRAP,
        CKA_UNWRAP,
        CKA_DERIVE,
    ];
    Keys {
        rsa_public,
        rsa_private,
        sm2_public,
        sm2_private,
        ec_public,
        ec_private,
        ed_public,
        ed_private,
        x25519_private,
        aes: secret_key(session, CKM_AES_KEY_GEN, 32, false, &all),
        aes_extractable: secret_key(session, CKM_AES_KEY_GEN, 16, true, &all),
        sm4: secret_key(session, vendor::CKM_SM4_KEY_GEN, 16, false, &all),
        hmac: secret_key(
            session,
            CKM_GENERIC_SECRET_KEY_GEN,
            32,
            false,
            &[CKA_SIGN, CKA_VERIFY, CKA_DERIVE],
        ),
    }
}

pub type InitFn =
    unsafe extern "C" fn(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE) -> CK_RV;
pub type OneShotFn = unsafe extern "C" fn(
    CK_SESSION_HANDLE,
    CK_BYTE_PTR,
    CK_ULONG,
    CK_BYTE_PTR,
    CK_ULONG_PTR,
) -> CK_RV;

/// Init + single-part call with a large buffer; the output or the failing code.
pub fn one_shot(
    session: CK_SESSION_HANDLE,
    init: InitFn,
    call: OneShotFn,
    mech: CK_MECHANISM_TYPE,
    param: &Param,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut mechanism = RawMechanism::new(mech, param);
    // SAFETY: valid mechanism and buffers.
    unsafe {
        let rv = init(session, mechanism.ptr(), key);
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut out = vec![0u8; 1 << 16];
        let mut len = out.len() as CK_ULONG;
        let mut input = data.to_vec();
        let rv = call(
            session,
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        );
        if rv != CKR_OK {
            return Err(rv);
        }
        out.truncate(len as usize);
        Ok(out)
    }
}

fn gcm() -> Param {
    Param::Gcm {
        iv: vec![7; 12],
        aad: b"fuzz aad".to_vec(),
        iv_bits: 96,
        tag_bits: 128,
        v240: false,
    }
}

fn make_samples(f: &mut Fixture) {
    let k = &f.keys;
    let s = f.session;
    let oaep = |hash: u8, label: &[u8]| Param::Oaep {
        hash: HashSel::Known(hash),
        mgf: HashSel::Known(hash),
        source: CKZ_DATA_SPECIFIED as u8,
        label: label.to_vec(),
    };
    let message = b"a fuzz plaintext of some length".to_vec();
    let encryptions = [
        (CKM_RSA_PKCS, Param::None, k.rsa_public, k.rsa_private),
        (CKM_RSA_PKCS_OAEP, oaep(2, b""), k.rsa_public, k.rsa_private),
        (
            CKM_RSA_PKCS_OAEP,
            oaep(0, b"label"),
            k.rsa_public,
            k.rsa_private,
        ),
        (
            vendor::CKM_SM2_RAW,
            Param::None,
            k.sm2_public,
            k.sm2_private,
        ),
        (
            vendor::CKM_SM2_CIPHER_DER,
            Param::None,
            k.sm2_public,
            k.sm2_private,
        ),
        (CKM_AES_GCM, gcm(), k.aes, k.aes),
        (CKM_AES_CBC_PAD, Param::Bytes(vec![9; 16]), k.aes, k.aes),
        (
            vendor::CKM_SM4_CBC_PAD,
            Param::Bytes(vec![9; 16]),
            k.sm4,
            k.sm4,
        ),
    ];
    for (mech, param, enc_key, dec_key) in encryptions {
        match one_shot(
            s,
            p11::C_EncryptInit,
            p11::C_Encrypt,
            mech,
            &param,
            enc_key,
            &message,
        ) {
            Ok(output) => f.ciphertexts.push(Sample {
                mech,
                param,
                key: dec_key,
                input: message.clone(),
                output,
            }),
            Err(rv) => eprintln!("fuzz fixture: no ciphertext sample for 0x{mech:x}: 0x{rv:x}"),
        }
    }
    let pss = Param::Pss {
        hash: HashSel::Known(2),
        mgf: HashSel::Known(2),
        salt: 32,
    };
    let signatures = [
        (
            CKM_SHA256_RSA_PKCS,
            Param::None,
            k.rsa_private,
            k.rsa_public,
        ),
        (CKM_SHA256_RSA_PKCS_PSS, pss, k.rsa_private, k.rsa_public),
        (
            vendor::CKM_SM3_SM2,
            Param::None,
            k.sm2_private,
            k.sm2_public,
        ),
        (
            vendor::CKM_SM3_SM2_DER,
            Param::None,
            k.sm2_private,
            k.sm2_public,
        ),
        (CKM_ECDSA_SHA256, Param::None, k.ec_private, k.ec_public),
        (CKM_EDDSA, Param::None, k.ed_private, k.ed_public),
        (CKM_AES_CMAC, Param::None, k.aes, k.aes),
        (CKM_AES_CMAC_GENERAL, Param::Ulong(8), k.aes, k.aes),
        (CKM_SHA256_HMAC, Param::None, k.hmac, k.hmac),
        (vendor::CKM_SM3_HMAC, Param::None, k.hmac, k.hmac),
    ];
    for (mech, param, sign_key, verify_key) in signatures {
        match one_shot(
            s,
            p11::C_SignInit,
            p11::C_Sign,
            mech,
            &param,
            sign_key,
            &message,
        ) {
            Ok(output) => f.signatures.push(Sample {
                mech,
                param,
                key: verify_key,
                input: message.clone(),
                output,
            }),
            Err(rv) => eprintln!("fuzz fixture: no signature sample for 0x{mech:x}: 0x{rv:x}"),
        }
    }
    let wraps = [
        (CKM_AES_KEY_WRAP, Param::None, k.aes, k.aes),
        (CKM_AES_KEY_WRAP_KWP, Param::None, k.aes, k.aes),
        (CKM_AES_CBC_PAD, Param::Bytes(vec![3; 16]), k.aes, k.aes),
        (CKM_RSA_PKCS, Param::None, k.rsa_public, k.rsa_private),
        (CKM_RSA_PKCS_OAEP, oaep(2, b""), k.rsa_public, k.rsa_private),
    ];
    for (mech, param, wrap_key, unwrap_key) in wraps {
        match wrap(s, mech, &param, wrap_key, k.aes_extractable) {
            Ok(output) => f.wrapped.push(Sample {
                mech,
                param,
                key: unwrap_key,
                input: Vec::new(),
                output,
            }),
            Err(rv) => eprintln!("fuzz fixture: no wrap sample for 0x{mech:x}: 0x{rv:x}"),
        }
    }
}

fn wrap(
    session: CK_SESSION_HANDLE,
    mech: CK_MECHANISM_TYPE,
    param: &Param,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Result<Vec<u8>, CK_RV> {
    let mut mechanism = RawMechanism::new(mech, param);
    let mut out = vec![0u8; 4096];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: valid mechanism and buffer.
    let rv = unsafe {
        p11::C_WrapKey(
            session,
            mechanism.ptr(),
            wrapping,
            key,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

/// The session one input runs in. Dropping it closes it (its session objects and any
/// active operation go with it) and destroys the token objects the input created.
pub struct ExecSession {
    pub handle: CK_SESSION_HANDLE,
}

impl ExecSession {
    pub fn open() -> ExecSession {
        ExecSession {
            handle: open_session(fixture().slot),
        }
    }
}

impl Drop for ExecSession {
    fn drop(&mut self) {
        let f = fixture();
        // SAFETY: valid handles, template and buffers.
        unsafe {
            ck(p11::C_CloseSession(self.handle), "C_CloseSession");
            let mut template = RawTemplate::new(&[Attr::bool(CKA_TOKEN, true)]);
            ck(
                p11::C_FindObjectsInit(f.session, template.ptr(), template.len()),
                "C_FindObjectsInit (cleanup)",
            );
            let mut found = [0 as CK_OBJECT_HANDLE; 256];
            let mut count = 0;
            let rv = p11::C_FindObjects(
                f.session,
                found.as_mut_ptr(),
                found.len() as CK_ULONG,
                &mut count,
            );
            ck(
                p11::C_FindObjectsFinal(f.session),
                "C_FindObjectsFinal (cleanup)",
            );
            ck(rv, "C_FindObjects (cleanup)");
            for &handle in &found[..count as usize] {
                // An input may have made it non-destroyable: that is its right.
                let _ = p11::C_DestroyObject(f.session, handle);
            }
        }
    }
}
