//! Vendor-defined PKCS#11 values for SM2, SM3 and SM4 (see ../shared/design/sm2.md).
//!
//! No PKCS#11 version defines SM2, SM3 or SM4, so every value here is vendor-defined. ferrohsm
//! uses the values shared by the most common Chinese HSM vendors (Sansec, TASS; also mapped
//! by the xipki wrapper), so code written for those tokens works unchanged.
//!
//! Plain C types only: build.rs exports this module to `include/ferrohsm.h` with cbindgen.
//! `c_ulong` is `CK_ULONG` on every platform PKCS#11 supports.
//!
//! Worked example (C, error checks left out): generate an SM2 key pair, decrypt what
//! `openssl pkeyutl -encrypt -pubin -inkey pub.pem` wrote, sign with the default signer ID.
//!
//! ```c
//! CK_BYTE sm2_oid[] = SM2_OID_DER;
//! CK_BBOOL yes = CK_TRUE;
//! CK_ATTRIBUTE pub_tpl[] = {{CKA_EC_PARAMS, sm2_oid, sizeof sm2_oid},
//!                           {CKA_ENCRYPT, &yes, 1}, {CKA_VERIFY, &yes, 1}};
//! CK_ATTRIBUTE priv_tpl[] = {{CKA_DECRYPT, &yes, 1}, {CKA_SIGN, &yes, 1},
//!                            {CKA_SENSITIVE, &yes, 1}};
//! CK_MECHANISM gen = {CKM_SM2_KEY_PAIR_GEN, NULL, 0};  /* or CKM_EC_KEY_PAIR_GEN */
//! C_GenerateKeyPair(s, &gen, pub_tpl, 3, priv_tpl, 3, &pub, &priv);
//!
//! /* Decrypt: no parameter = auto-detect DER / raw C1C3C2 (with or without 04). */
//! CK_MECHANISM dec = {CKM_SM2_CIPHER_DER, NULL, 0};
//! C_DecryptInit(s, &dec, priv);
//! C_Decrypt(s, ct, ct_len, NULL, &pt_len);          /* length query: |C2| */
//! C_Decrypt(s, ct, ct_len, pt, &pt_len);
//!
//! /* Legacy C1C2C3 input needs its format code. */
//! CK_ULONG fmt = SM2_CIPHER_FORMAT_C1C2C3;
//! CK_MECHANISM legacy = {CKM_SM2_RAW, &fmt, sizeof fmt};
//!
//! /* Sign: e = SM3(Z || M) inside, ID 1234567812345678, DER signature. */
//! CK_MECHANISM sig = {CKM_SM3_SM2_DER, NULL, 0};
//! C_SignInit(s, &sig, priv);
//! C_Sign(s, msg, msg_len, signature, &sig_len);
//! /* openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678 \
//!      -pubin -inkey pub.pem -in msg -sigfile signature   ->  Signature Verified Successfully */
//! ```

use std::os::raw::c_ulong;

/// Key type alias for SM2 keys (`CKK_VENDOR_DEFINED | 4`). Accepted in templates of
/// `C_GenerateKeyPair`, `C_CreateObject` and `C_FindObjectsInit`; it means the same key as
/// `CKK_EC` with `CKA_EC_PARAMS` = the SM2 OID, and stored objects report `CKK_EC`.
pub const CKK_SM2: c_ulong = 0x8000_0004;

/// SM2 signature over a caller-supplied 32-byte digest e (already SM3(Z||M)); no parameter;
/// signature raw `r||s` (64 bytes).
pub const CKM_SM2: c_ulong = 0x8000_8000;

/// SM2 key pair generation; `CKA_EC_PARAMS` optional (defaults to the SM2 OID).
pub const CKM_SM2_KEY_PAIR_GEN: c_ulong = 0x8000_8001;

/// SM2 signature with SM3: e = SM3(Z||M) computed inside. Optional parameter: the raw signer
/// ID bytes (NULL means [`SM2_DEFAULT_SIGNER_ID`]). Signature raw `r||s` (64 bytes).
pub const CKM_SM3_SM2: c_ulong = 0x8000_8100;

/// As [`CKM_SM3_SM2`], with the signature DER `SEQUENCE { r INTEGER, s INTEGER }`.
pub const CKM_SM3_SM2_DER: c_ulong = 0x8000_8101;

/// SM2 public-key encryption (SM3 for KDF and C3). Encrypt writes raw `04||x1||y1||C3||C2`;
/// decrypt auto-detects the input form. Optional parameter: a `CK_ULONG` format code
/// (`SM2_CIPHER_FORMAT_*`).
pub const CKM_SM2_RAW: c_ulong = 0x8000_8200;

/// As [`CKM_SM2_RAW`], but Encrypt writes the GM/T 0009 DER form
/// `SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (32), ciphertext OCTET STRING }`
/// (what OpenSSL 3 `pkeyutl` writes and reads).
pub const CKM_SM2_CIPHER_DER: c_ulong = 0x8000_8201;

/// SM3 digest (32 bytes).
pub const CKM_SM3: c_ulong = 0x8000_9001;

/// SM2 ciphertext format code: decrypt auto-detects (DER, then raw C1C3C2 with the 04
/// prefix, then raw C1C3C2 without it); encrypt writes the mechanism's own form.
pub const SM2_CIPHER_FORMAT_AUTO: c_ulong = 0;

/// SM2 ciphertext format code: DER (GM/T 0009) only.
pub const SM2_CIPHER_FORMAT_DER: c_ulong = 1;

/// SM2 ciphertext format code: raw `C1||C3||C2` only (GB/T 32918-2016 order).
pub const SM2_CIPHER_FORMAT_C1C3C2: c_ulong = 2;

/// SM2 ciphertext format code: raw `C1||C2||C3` only (the legacy 2010 draft order).
pub const SM2_CIPHER_FORMAT_C1C2C3: c_ulong = 3;

/// Flag OR-ed into a raw format code: C1 is `x1||y1` without the 0x04 prefix byte.
pub const SM2_CIPHER_FORMAT_NO_PREFIX: c_ulong = 0x100;

/// DER of the SM2 curve OID 1.2.156.10197.1.301 (sm2p256v1): the value of `CKA_EC_PARAMS`
/// on SM2 public and private key objects.
pub const SM2_OID_DER: [u8; 10] = [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

/// Signer ID used by `CKM_SM3_SM2` and `CKM_SM3_SM2_DER` when no parameter is given
/// (GM/T 0009). OpenSSL 3 needs `-pkeyopt distid:1234567812345678` to match.
pub const SM2_DEFAULT_SIGNER_ID: [u8; 16] = [
    0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
];

/// Key size, in bits, reported by `C_GetMechanismInfo` for every SM2 mechanism.
pub const SM2_KEY_BITS: c_ulong = 256;

// ---- SM4 and SM3-HMAC ----------------------------------------------------------------
// CKK_SM4 .. CKM_SM4_CBC are the Sansec/TASS family values (the same vendors as the SM2
// values above). No vendor value for a padded SM4-CBC or for HMAC-SM3 was found in that
// family; the two below are ferrohsm's own, taken next to their relatives so that they
// cannot collide with the family's published values.

/// SM4 secret key type (`CKK_VENDOR_DEFINED | 0x106`): `CKA_VALUE` 16 bytes.
pub const CKK_SM4: c_ulong = 0x8000_0106;

/// SM4 key generation; `CKA_VALUE_LEN` optional (always 16).
pub const CKM_SM4_KEY_GEN: c_ulong = 0x8000_0107;

/// SM4 in ECB mode, no padding: input a multiple of 16 bytes. Single- and multi-part.
pub const CKM_SM4_ECB: c_ulong = 0x8000_0108;

/// SM4 in CBC mode, no padding; parameter: the 16-byte IV. Single- and multi-part.
pub const CKM_SM4_CBC: c_ulong = 0x8000_0109;

/// SM4 in CBC mode with PKCS#7 padding (what `openssl enc -sm4-cbc` writes); parameter:
/// the 16-byte IV; also wraps and unwraps keys. ferrohsm's own value.
pub const CKM_SM4_CBC_PAD: c_ulong = 0x8000_010A;

/// HMAC with SM3 (RFC 2104 over SM3, 32-byte MAC) under a generic secret key. ferrohsm's
/// own value, next to `CKM_SM3`.
pub const CKM_SM3_HMAC: c_ulong = 0x8000_9002;

/// As [`CKM_SM3_HMAC`] with a `CK_MAC_GENERAL_PARAMS` (`CK_ULONG` MAC length, 1..=32).
pub const CKM_SM3_HMAC_GENERAL: c_ulong = 0x8000_9003;

// ---- Key management (the KMS view) ------------------------------------------------------
// ferrohsm's own attributes (`CKA_VENDOR_DEFINED | 0x4648_xxxx`, "FH"), on every key object.
// Readable through C_GetAttributeValue; the state, the deletion time and the description may
// be changed with C_SetAttributeValue even on a key whose CKA_MODIFIABLE is false (they are
// its management state, not its properties), along the transitions `KEY_STATE_*` names.

/// `CK_ULONG`: the key's state, one of `KEY_STATE_*` (absent: enabled). A private or secret
/// key that is not enabled refuses every operation with `CKR_KEY_FUNCTION_NOT_PERMITTED`.
pub const CKA_FERROHSM_KEY_STATE: c_ulong = 0xC648_0001;

/// `CK_ULONG`: seconds since the Unix epoch at which a `KEY_STATE_PENDING_DELETE` key is
/// destroyed (0 otherwise). From then on the key is gone for every client; its objects are
/// removed at the next login of any process.
pub const CKA_FERROHSM_DELETION_TIME: c_ulong = 0xC648_0002;

/// UTF-8 text: a free description of the key.
pub const CKA_FERROHSM_DESCRIPTION: c_ulong = 0xC648_0003;

/// `CK_ULONG`: the usage the key was made for, one of `KEY_USAGE_*` (0: none, a key made
/// through plain PKCS#11). Fixed at creation.
pub const CKA_FERROHSM_KEY_USAGE: c_ulong = 0xC648_0004;

/// `CK_ULONG`: seconds since the Unix epoch at which the key object was made. Set by the token.
pub const CKA_FERROHSM_CREATION_TIME: c_ulong = 0xC648_0005;

/// The key may be used.
pub const KEY_STATE_ENABLED: c_ulong = 1;
/// The key refuses every private/secret-key operation; it may be enabled again or scheduled
/// for deletion.
pub const KEY_STATE_DISABLED: c_ulong = 2;
/// As disabled, and destroyed at `CKA_FERROHSM_DELETION_TIME` unless cancelled first
/// (back to disabled). Set together with the deletion time, at least `key_deletion_min_days`
/// (configuration, default 7) and at most 30 days ahead.
pub const KEY_STATE_PENDING_DELETE: c_ulong = 3;

/// Usage `ASYMMETRIC_DECRYPT_RSA_2048`: an RSA-2048 pair that decrypts (and unwraps) only.
pub const KEY_USAGE_ASYMMETRIC_DECRYPT_RSA_2048: c_ulong = 1;
/// Usage `ASYMMETRIC_DECRYPT_SM2`.
pub const KEY_USAGE_ASYMMETRIC_DECRYPT_SM2: c_ulong = 2;
/// Usage `ASYMMETRIC_SIGN_VERIFY_RSA_2048`.
pub const KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_RSA_2048: c_ulong = 3;
/// Usage `ASYMMETRIC_SIGN_VERIFY_SM2`.
pub const KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_SM2: c_ulong = 4;
/// Usage `ASYMMETRIC_SIGN_VERIFY_ECC` (P-256).
pub const KEY_USAGE_ASYMMETRIC_SIGN_VERIFY_ECC: c_ulong = 5;
/// Usage `ENCRYPT_DECRYPT`: an AES-256 key.
pub const KEY_USAGE_ENCRYPT_DECRYPT: c_ulong = 6;
