//! The ferrohsm demo: what a KMS's ASYMMETRIC_DECRYPT_RSA_2048 and _SM2 keys do, locally.
//!
//! Creates a token in a fresh directory, generates an RSA-2048 decryption key pair in it,
//! encrypts a message with the public key outside the token (the rsa crate, as a sender
//! would), and decrypts it through the PKCS#11 module, which never lets the private key out;
//! then the same with an SM2 key pair and the vendor mechanisms (`ferrohsm::vendor`); last,
//! a digital envelope: data sealed outside with a fresh AES-256-GCM key that is wrapped for
//! the token's RSA key, unwrapped by the token into a key that never leaves it.
//!
//! Run: `cargo build --release && cargo run --release --example demo [TOKEN_DIR]`

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ferrohsm::vendor::{CKM_SM2_KEY_PAIR_GEN, CKM_SM2_RAW};
use std::error::Error;
use std::path::PathBuf;

const SO_PIN: &str = "demo-so-pin";
const USER_PIN: &str = "demo-user-pin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let token_dir = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("ferrohsm-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&token_dir)?;
    let conf = token_dir.join("ferrohsm.toml");
    std::fs::write(
        &conf,
        format!("token_dir = {:?}\n", token_dir.join("tokens")),
    )?;
    std::env::set_var("FERROHSM_CONF", &conf);

    let module = std::env::var_os("FERROHSM_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/release/libferrohsm.so"));
    println!("module:      {}", module.display());
    println!("token store: {}", token_dir.join("tokens").display());

    let pkcs11 = Pkcs11::new(&module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = pkcs11.get_library_info()?;
    println!(
        "library:     {} {}",
        info.manufacturer_id(),
        info.library_description()
    );

    // The spare, uninitialised slot is always listed last.
    let spare = *pkcs11.get_all_slots()?.last().ok_or("no slot")?;
    pkcs11.init_token(spare, &AuthPin::new(SO_PIN.into()), "ferrohsm demo")?;
    println!(
        "1. initialised token \"ferrohsm demo\" in slot {}",
        spare.id()
    );

    let session = pkcs11.open_rw_session(spare)?;
    session.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))?;
    session.init_pin(&AuthPin::new(USER_PIN.into()))?;
    session.logout()?;
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    println!("2. set the user PIN and logged in");

    // ASYMMETRIC_DECRYPT_RSA_2048: decrypt-only, private, sensitive, never extractable.
    let public_template = [
        Attribute::Token(true),
        Attribute::Label(b"demo-rsa".to_vec()),
        Attribute::Id(vec![1]),
        Attribute::ModulusBits(2048.into()),
        Attribute::Encrypt(true),
        Attribute::Verify(false),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(b"demo-rsa".to_vec()),
        Attribute::Id(vec![1]),
        Attribute::Decrypt(true),
        Attribute::Sign(false),
    ];
    let (public, private) = session.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &public_template,
        &private_template,
    )?;
    println!("3. generated an RSA-2048 key pair \"demo-rsa\" on the token");

    // A sender holds only the public key.
    let attrs = session.get_attributes(
        public,
        &[AttributeType::Modulus, AttributeType::PublicExponent],
    )?;
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    let public_key = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )?;
    let message = b"attack at dawn";
    let ciphertext = public_key.encrypt(
        &mut rand::rng(),
        rsa::Oaep::<rsa::sha2::Sha256>::new(),
        message,
    )?;
    println!(
        "4. encrypted {:?} outside the token with RSAES-OAEP-SHA256: {} bytes",
        String::from_utf8_lossy(message),
        ciphertext.len()
    );

    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    let plaintext = session.decrypt(&Mechanism::RsaPkcsOaep(oaep), private, &ciphertext)?;
    println!(
        "5. decrypted through the module: {:?}",
        String::from_utf8_lossy(&plaintext)
    );
    if plaintext != message {
        return Err("round trip mismatch".into());
    }

    // The private key never leaves: its exponent is unreadable.
    let hidden = session.get_attributes(private, &[AttributeType::PrivateExponent]);
    println!(
        "6. reading the private exponent: {}",
        match hidden {
            Ok(v) if v.is_empty() => "refused (sensitive)".to_string(),
            Ok(_) => "REVEALED".to_string(),
            Err(e) => format!("refused ({e})"),
        }
    );

    sm2_round_trip(&session)?;
    envelope(&session, &public_key, private)?;

    let found = session.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Label(b"demo-rsa".to_vec()),
    ])?;
    println!(
        "10. the token holds {} private key labelled demo-rsa; done",
        found.len()
    );
    Ok(())
}

fn vendor_mechanism(value: u64) -> Result<Mechanism<'static>, Box<dyn Error>> {
    let ty = MechanismType::new_vendor_defined(value)?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        ty, None,
    )))
}

/// ASYMMETRIC_DECRYPT_SM2: the same flow with an SM2 key pair and the vendor mechanisms.
fn sm2_round_trip(session: &cryptoki::session::Session) -> Result<(), Box<dyn Error>> {
    let (public, private) = session.generate_key_pair(
        &vendor_mechanism(CKM_SM2_KEY_PAIR_GEN)?,
        &[
            Attribute::Token(true),
            Attribute::Label(b"demo-sm2".to_vec()),
            Attribute::Encrypt(true),
            Attribute::Verify(false),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(b"demo-sm2".to_vec()),
            Attribute::Decrypt(true),
            Attribute::Sign(false),
        ],
    )?;
    println!("7. generated an SM2 key pair \"demo-sm2\" (CKM_SM2_KEY_PAIR_GEN)");

    // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point 04||X||Y.
    let point = match session
        .get_attributes(public, &[AttributeType::EcPoint])?
        .pop()
    {
        Some(Attribute::EcPoint(der)) if der.len() == 67 => der[2..].to_vec(),
        _ => return Err("unexpected CKA_EC_POINT".into()),
    };
    let sender = sm2::pke::EncryptingKey::new_with_mode(
        sm2::PublicKey::from_sec1_bytes(&point)?,
        sm2::pke::Mode::C1C3C2,
    );
    let message = b"the eagle has landed";
    let ciphertext = sender.encrypt(&mut rand::rng(), message)?;
    let plaintext = session.decrypt(&vendor_mechanism(CKM_SM2_RAW)?, private, &ciphertext)?;
    println!(
        "8. SM2: encrypted {} bytes outside the token (C1C3C2), decrypted through the module: {:?}",
        ciphertext.len(),
        String::from_utf8_lossy(&plaintext)
    );
    if plaintext != message {
        return Err("SM2 round trip mismatch".into());
    }
    Ok(())
}

/// The digital envelope: the sender makes a fresh AES-256 key, encrypts the data with
/// AES-256-GCM and wraps the key under the token's RSA key (OAEP-SHA256), all outside the
/// token (RustCrypto's aes-gcm, the rsa crate); the token unwraps the key into a sensitive,
/// non-extractable key object and decrypts the data with it.
fn envelope(
    session: &cryptoki::session::Session,
    public_key: &rsa::PublicKey,
    private: cryptoki::object::ObjectHandle,
) -> Result<(), Box<dyn Error>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use cryptoki::mechanism::aead::GcmParams;
    use cryptoki::object::KeyType;

    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    getrandom::fill(&mut key).map_err(|_| "OS random source")?;
    getrandom::fill(&mut iv).map_err(|_| "OS random source")?;
    let document = b"the envelope's contents: only the token can open them".to_vec();
    let sealed = aes_gcm::Aes256Gcm::new_from_slice(&key)
        .map_err(|_| "AES-256 key length")?
        .encrypt(
            (&iv).into(),
            Payload {
                msg: &document,
                aad: b"demo",
            },
        )
        .map_err(|_| "AES-GCM")?;
    let wrapped = public_key.encrypt(
        &mut rand::rng(),
        rsa::Oaep::<rsa::sha2::Sha256>::new(),
        &key,
    )?;
    println!(
        "9. envelope: {} bytes sealed with a fresh AES-256-GCM key outside the token, the key wrapped with RSA-OAEP",
        sealed.len()
    );
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    let token_key = session.unwrap_key(
        &Mechanism::RsaPkcsOaep(oaep),
        private,
        &wrapped,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
        ],
    )?;
    let gcm = GcmParams::new(&mut iv, b"demo", 128.into())?;
    let opened = session.decrypt(&Mechanism::AesGcm(gcm), token_key, &sealed)?;
    if opened != document {
        return Err("envelope mismatch".into());
    }
    let readable = session.get_attributes(token_key, &[AttributeType::Value])?;
    println!(
        "   the token unwrapped the key (its value {}) and decrypted: {:?}",
        if readable.is_empty() {
            "unreadable"
        } else {
            "READABLE"
        },
        String::from_utf8_lossy(&opened)
    );
    Ok(())
}
