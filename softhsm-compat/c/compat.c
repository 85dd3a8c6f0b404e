/*
 * A plain C client of a PKCS#11 module, run under valgrind by scenarios/70-c.sh.
 *
 *   compat MODULE.so TOKEN_LABEL PIN rsa KEY_LABEL   RSA encrypt/decrypt with a token key pair
 *   compat MODULE.so TOKEN_LABEL PIN sm2             SM2 key pair, SM2 encrypt/decrypt, sign, SM3
 *
 * Built twice: by default it dlopen()s MODULE.so and calls through C_GetFunctionList; with
 * -DCOMPAT_LINKED it is linked against the module and calls C_Initialize and friends directly
 * (MODULE.so is then only printed). With -DCOMPAT_WITH_FERROHSM_H it includes ferrohsm's header
 * for the vendor constants, as a ferrohsm user would.
 *
 * Prints one line per check, RESULT<TAB>PASS|FAIL<TAB>name<TAB>reason, and exits 0 only when
 * every check passed (2 otherwise; valgrind's own error exit code is different).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#ifdef COMPAT_WITH_FERROHSM_H
#include "ferrohsm.h"
#endif

/* Vendor values of the Sansec/TASS family (see the SM2 design notes); the header wins. */
#ifndef CKM_SM2_KEY_PAIR_GEN
#define CKM_SM2_KEY_PAIR_GEN 0x80008001UL
#endif
#ifndef CKM_SM2_CIPHER_DER
#define CKM_SM2_CIPHER_DER 0x80008201UL
#endif
#ifndef CKM_SM3_SM2
#define CKM_SM3_SM2 0x80008100UL
#endif
#ifndef CKM_SM3
#define CKM_SM3 0x80009001UL
#endif

#ifdef COMPAT_LINKED
#define P11(name) name
#else
static CK_FUNCTION_LIST_PTR fns;
#define P11(name) fns->name
#endif

static int failures;

static void result(int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static void result(int ok, const char *name, const char *fmt, ...)
{
    char reason[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    printf("RESULT\t%s\t%s\t%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : reason);
    fflush(stdout);
    if (!ok)
        failures++;
}

static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
    case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
    case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_ENCRYPTED_DATA_LEN_RANGE: return "CKR_ENCRYPTED_DATA_LEN_RANGE";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_SIGNATURE_INVALID: return "CKR_SIGNATURE_INVALID";
    case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
    case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
    default: {
        static char unknown[32];
        snprintf(unknown, sizeof unknown, "CK_RV 0x%lx", (unsigned long)rv);
        return unknown;
    }
    }
}

static int find_slot(const char *token_label, CK_SLOT_ID *slot)
{
    CK_ULONG count = 0, i;
    CK_SLOT_ID *slots;
    CK_RV rv = P11(C_GetSlotList)(CK_TRUE, NULL, &count);
    if (rv != CKR_OK || count == 0)
        return 0;
    slots = calloc(count, sizeof *slots);
    if (!slots)
        return 0;
    rv = P11(C_GetSlotList)(CK_TRUE, slots, &count);
    for (i = 0; rv == CKR_OK && i < count; i++) {
        CK_TOKEN_INFO info;
        char label[33];
        size_t n;
        if (P11(C_GetTokenInfo)(slots[i], &info) != CKR_OK)
            continue;
        memcpy(label, info.label, 32);
        label[32] = 0;
        for (n = 32; n > 0 && label[n - 1] == ' '; n--)
            label[n - 1] = 0;
        if (strcmp(label, token_label) == 0) {
            *slot = slots[i];
            free(slots);
            return 1;
        }
    }
    free(slots);
    return 0;
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE session, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    if (P11(C_FindObjectsInit)(session, template, 2) != CKR_OK)
        return CK_INVALID_HANDLE;
    if (P11(C_FindObjects)(session, found, 2, &count) != CKR_OK)
        count = 0;
    P11(C_FindObjectsFinal)(session);
    return count == 1 ? found[0] : CK_INVALID_HANDLE;
}

/* Encrypts with the public key and decrypts with the private one, both with the length query. */
static void round_trip(CK_SESSION_HANDLE session, const char *name, CK_MECHANISM *mech,
                       CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
    unsigned char plain[32], cipher[512], back[512];
    CK_ULONG cipher_len = 0, back_len = 0;
    CK_RV rv;
    size_t i;
    for (i = 0; i < sizeof plain; i++)
        plain[i] = (unsigned char)(i * 7 + 1);

    if ((rv = P11(C_EncryptInit)(session, mech, pub)) != CKR_OK) {
        result(0, name, "C_EncryptInit: %s", rv_name(rv));
        return;
    }
    if ((rv = P11(C_Encrypt)(session, plain, sizeof plain, NULL, &cipher_len)) != CKR_OK) {
        result(0, name, "C_Encrypt length query: %s", rv_name(rv));
        return;
    }
    if (cipher_len > sizeof cipher) {
        result(0, name, "C_Encrypt wants %lu bytes", (unsigned long)cipher_len);
        return;
    }
    if ((rv = P11(C_Encrypt)(session, plain, sizeof plain, cipher, &cipher_len)) != CKR_OK) {
        result(0, name, "C_Encrypt: %s", rv_name(rv));
        return;
    }

    if ((rv = P11(C_DecryptInit)(session, mech, priv)) != CKR_OK) {
        result(0, name, "C_DecryptInit: %s", rv_name(rv));
        return;
    }
    if ((rv = P11(C_Decrypt)(session, cipher, cipher_len, NULL, &back_len)) != CKR_OK) {
        result(0, name, "C_Decrypt length query: %s", rv_name(rv));
        return;
    }
    if (back_len > sizeof back) {
        result(0, name, "C_Decrypt wants %lu bytes", (unsigned long)back_len);
        return;
    }
    if ((rv = P11(C_Decrypt)(session, cipher, cipher_len, back, &back_len)) != CKR_OK) {
        result(0, name, "C_Decrypt: %s", rv_name(rv));
        return;
    }
    if (back_len != sizeof plain || memcmp(back, plain, sizeof plain) != 0) {
        result(0, name, "decrypted text differs");
        return;
    }
    result(1, name, "%s", "");
}

static void rsa_checks(CK_SESSION_HANDLE session, const char *key_label)
{
    CK_OBJECT_HANDLE pub = find_key(session, CKO_PUBLIC_KEY, key_label);
    CK_OBJECT_HANDLE priv = find_key(session, CKO_PRIVATE_KEY, key_label);
    CK_MECHANISM pkcs1 = {CKM_RSA_PKCS, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS sha1 = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS sha256 = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep1 = {CKM_RSA_PKCS_OAEP, &sha1, sizeof sha1};
    CK_MECHANISM oaep256 = {CKM_RSA_PKCS_OAEP, &sha256, sizeof sha256};

    result(pub != CK_INVALID_HANDLE && priv != CK_INVALID_HANDLE, "find-key-pair-by-label",
           "key pair %s not found exactly once", key_label);
    if (pub == CK_INVALID_HANDLE || priv == CK_INVALID_HANDLE)
        return;
    round_trip(session, "rsa-pkcs1-roundtrip", &pkcs1, pub, priv);
    round_trip(session, "rsa-oaep-sha1-roundtrip", &oaep1, pub, priv);
    round_trip(session, "rsa-oaep-sha256-roundtrip", &oaep256, pub, priv);
}

static void sm2_checks(CK_SESSION_HANDLE session)
{
    static CK_BYTE sm2_curve[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D};
    /* GB/T 32905 example 1: SM3("abc") */
    static const CK_BYTE sm3_abc[32] = {
        0x66, 0xc7, 0xf0, 0xf4, 0x62, 0xee, 0xed, 0xd9, 0xd1, 0xf2, 0xd4, 0x6b, 0xdc, 0x10, 0xe4, 0xe2,
        0x41, 0x67, 0xc4, 0x87, 0x5c, 0xf2, 0xf7, 0xa2, 0x29, 0x7d, 0xa0, 0x2b, 0x8f, 0x4b, 0xa8, 0xe0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub_template[] = {
        {CKA_TOKEN, &no, sizeof no},
        {CKA_EC_PARAMS, sm2_curve, sizeof sm2_curve},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_VERIFY, &yes, sizeof yes},
    };
    CK_ATTRIBUTE priv_template[] = {
        {CKA_TOKEN, &no, sizeof no},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
        {CKA_SIGN, &yes, sizeof yes},
    };
    CK_MECHANISM keygen = {CKM_SM2_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM cipher_der = {CKM_SM2_CIPHER_DER, NULL, 0};
    CK_MECHANISM sign = {CKM_SM3_SM2, NULL, 0};
    CK_MECHANISM digest = {CKM_SM3, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    unsigned char msg[] = "abc", sig[128], hash[64];
    CK_ULONG sig_len = sizeof sig, hash_len = sizeof hash;
    CK_RV rv;

    rv = P11(C_DigestInit)(session, &digest);
    if (rv == CKR_OK)
        rv = P11(C_Digest)(session, msg, 3, hash, &hash_len);
    if (rv != CKR_OK)
        result(0, "sm3-digest-known-answer", "%s", rv_name(rv));
    else
        result(hash_len == 32 && memcmp(hash, sm3_abc, 32) == 0, "sm3-digest-known-answer",
               "SM3(abc) differs from GB/T 32905");

    rv = P11(C_GenerateKeyPair)(session, &keygen, pub_template, 4, priv_template, 5, &pub, &priv);
    result(rv == CKR_OK, "sm2-keygen", "C_GenerateKeyPair: %s", rv_name(rv));
    if (rv != CKR_OK)
        return;
    round_trip(session, "sm2-cipher-der-roundtrip", &cipher_der, pub, priv);

    if ((rv = P11(C_SignInit)(session, &sign, priv)) != CKR_OK) {
        result(0, "sm2-sign-verify", "C_SignInit: %s", rv_name(rv));
        return;
    }
    if ((rv = P11(C_Sign)(session, msg, 3, sig, &sig_len)) != CKR_OK) {
        result(0, "sm2-sign-verify", "C_Sign: %s", rv_name(rv));
        return;
    }
    if ((rv = P11(C_VerifyInit)(session, &sign, pub)) != CKR_OK) {
        result(0, "sm2-sign-verify", "C_VerifyInit: %s", rv_name(rv));
        return;
    }
    rv = P11(C_Verify)(session, msg, 3, sig, sig_len);
    result(rv == CKR_OK && sig_len == 64, "sm2-sign-verify", "C_Verify: %s, %lu-byte signature",
           rv_name(rv), (unsigned long)sig_len);
    P11(C_DestroyObject)(session, pub);
    P11(C_DestroyObject)(session, priv);
}

int main(int argc, char **argv)
{
    CK_C_INITIALIZE_ARGS init = {0};
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_RV rv;
#ifndef COMPAT_LINKED
    void *module;
    CK_C_GetFunctionList get_function_list;
#endif

    if (argc < 5 || (strcmp(argv[4], "rsa") == 0 && argc < 6)) {
        fprintf(stderr, "usage: %s MODULE TOKEN PIN rsa KEY_LABEL | sm2\n", argv[0]);
        return 64;
    }
#ifdef COMPAT_LINKED
    printf("linked against %s\n", argv[1]);
#else
    module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        result(0, "load-module", "%s", dlerror());
        return 2;
    }
    /* POSIX: dlsym results are converted to function pointers through an object pointer. */
    *(void **)&get_function_list = dlsym(module, "C_GetFunctionList");
    if (!get_function_list || get_function_list(&fns) != CKR_OK || !fns) {
        result(0, "load-module", "no C_GetFunctionList");
        return 2;
    }
#endif
    init.flags = CKF_OS_LOCKING_OK;
    rv = P11(C_Initialize)(&init);
    result(rv == CKR_OK, "initialize", "C_Initialize: %s", rv_name(rv));
    if (rv != CKR_OK)
        return 2;

    if (!find_slot(argv[2], &slot)) {
        result(0, "open-session-login", "token %s not found", argv[2]);
    } else if ((rv = P11(C_OpenSession)(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                        &session)) != CKR_OK) {
        result(0, "open-session-login", "C_OpenSession: %s", rv_name(rv));
    } else if ((rv = P11(C_Login)(session, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) !=
               CKR_OK) {
        result(0, "open-session-login", "C_Login: %s", rv_name(rv));
    } else {
        result(1, "open-session-login", "%s", "");
        if (strcmp(argv[4], "rsa") == 0)
            rsa_checks(session, argv[5]);
        else
            sm2_checks(session);
        P11(C_Logout)(session);
    }
    if (session != CK_INVALID_HANDLE)
        P11(C_CloseSession)(session);
    rv = P11(C_Finalize)(NULL);
    result(rv == CKR_OK, "finalize", "C_Finalize: %s", rv_name(rv));
#ifndef COMPAT_LINKED
    dlclose(module);
#endif
    return failures ? 2 : 0;
}
