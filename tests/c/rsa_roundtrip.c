/*
 * A plain C client of ferrohsm: links -lferrohsm and calls the exported C_* functions
 * directly. Initialises a token on the spare slot, sets the user PIN, generates an
 * RSA-2048 key pair, encrypts with CKM_RSA_PKCS and decrypts. Exit code 0 on success.
 *
 * Built by tests/c_program.rs with -DHAVE_FERROHSM_H when include/ferrohsm.h exists (and
 * the module under test is ferrohsm): then it also uses the header's vendor constants.
 */
#include <stdio.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
#ifdef HAVE_FERROHSM_H
#include "ferrohsm.h"
#endif

#define CHECK(call)                                                          \
    do {                                                                     \
        CK_RV rv_ = (call);                                                  \
        if (rv_ != CKR_OK) {                                                 \
            fprintf(stderr, "%s:%d: %s failed: 0x%lx\n", __FILE__, __LINE__, \
                    #call, (unsigned long)rv_);                              \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static const char SO_PIN[] = "c-so-pin-1234";
static const char USER_PIN[] = "c-user-pin-1234";

int main(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG slot_count = 16;
    CK_UTF8CHAR label[32];
    CK_SESSION_HANDLE session;
    CK_TOKEN_INFO token_info;
    CK_ULONG i;
    CK_SLOT_ID token_slot = (CK_SLOT_ID)-1;

    CHECK(C_Initialize(NULL));
    CHECK(C_GetSlotList(CK_FALSE, slots, &slot_count));
    if (slot_count == 0) {
        fprintf(stderr, "no slots\n");
        return 1;
    }

    memset(label, ' ', sizeof(label));
    memcpy(label, "c-program", 9);
    CHECK(C_InitToken(slots[slot_count - 1], (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));

    /* Look the token up by label: some modules move it to another slot id. */
    slot_count = 16;
    CHECK(C_GetSlotList(CK_TRUE, slots, &slot_count));
    for (i = 0; i < slot_count; i++) {
        CHECK(C_GetTokenInfo(slots[i], &token_info));
        if ((token_info.flags & CKF_TOKEN_INITIALIZED) &&
            memcmp(token_info.label, label, sizeof(label)) == 0) {
            token_slot = slots[i];
            break;
        }
    }
    if (token_slot == (CK_SLOT_ID)-1) {
        fprintf(stderr, "initialised token not found\n");
        return 1;
    }

    CHECK(C_OpenSession(token_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session));
    CHECK(C_Login(session, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
    CHECK(C_InitPIN(session, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    CHECK(C_Logout(session));
    CHECK(C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));

    {
        CK_MECHANISM keygen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
        CK_MECHANISM rsa_pkcs = {CKM_RSA_PKCS, NULL, 0};
        CK_ULONG bits = 2048;
        CK_BYTE exponent[] = {0x01, 0x00, 0x01};
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_ATTRIBUTE public_template[] = {
            {CKA_TOKEN, &no, sizeof(no)},
            {CKA_ENCRYPT, &yes, sizeof(yes)},
            {CKA_MODULUS_BITS, &bits, sizeof(bits)},
            {CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)},
        };
        CK_ATTRIBUTE private_template[] = {
            {CKA_TOKEN, &no, sizeof(no)},
            {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_SENSITIVE, &yes, sizeof(yes)},
            {CKA_DECRYPT, &yes, sizeof(yes)},
        };
        CK_OBJECT_HANDLE public_key, private_key;
        CK_BYTE message[] = "hello from C";
        CK_BYTE ciphertext[512], plaintext[512];
        CK_ULONG ciphertext_len = 0, plaintext_len = 0;

        CHECK(C_GenerateKeyPair(session, &keygen, public_template, 4, private_template, 4,
                                &public_key, &private_key));

        CHECK(C_EncryptInit(session, &rsa_pkcs, public_key));
        CHECK(C_Encrypt(session, message, sizeof(message), NULL, &ciphertext_len));
        if (ciphertext_len != 256) {
            fprintf(stderr, "ciphertext length query gave %lu\n", (unsigned long)ciphertext_len);
            return 1;
        }
        CHECK(C_Encrypt(session, message, sizeof(message), ciphertext, &ciphertext_len));

        CHECK(C_DecryptInit(session, &rsa_pkcs, private_key));
        plaintext_len = sizeof(plaintext);
        CHECK(C_Decrypt(session, ciphertext, ciphertext_len, plaintext, &plaintext_len));
        if (plaintext_len != sizeof(message) || memcmp(plaintext, message, sizeof(message)) != 0) {
            fprintf(stderr, "round trip mismatch\n");
            return 1;
        }
    }

#ifdef HAVE_FERROHSM_H
    {
        /* The vendor constants and 3.0 prototypes of ferrohsm.h, used from C. */
        static const CK_BYTE sm3_abc[32] = {
            0x66, 0xc7, 0xf0, 0xf4, 0x62, 0xee, 0xed, 0xd9, 0xd1, 0xf2, 0xd4, 0x6b, 0xdc, 0x10, 0xe4, 0xe2,
            0x41, 0x67, 0xc4, 0x87, 0x5c, 0xf2, 0xf7, 0xa2, 0x29, 0x7d, 0xa0, 0x2b, 0x8f, 0x4b, 0xa8, 0xe0};
        static const CK_BYTE sm2_oid[] = SM2_OID_DER;
        CK_MECHANISM sm3 = {CKM_SM3, NULL, 0};
        CK_BYTE abc[] = {'a', 'b', 'c'};
        CK_BYTE digest[32];
        CK_ULONG digest_len = sizeof(digest);
        CK_ULONG interface_count = 0;

        CHECK(C_DigestInit(session, &sm3));
        CHECK(C_Digest(session, abc, sizeof(abc), digest, &digest_len));
        if (digest_len != 32 || memcmp(digest, sm3_abc, 32) != 0) {
            fprintf(stderr, "CKM_SM3 digest of \"abc\" is wrong\n");
            return 1;
        }
        if (sizeof(sm2_oid) != 10) {
            fprintf(stderr, "SM2_OID_DER has %zu bytes\n", sizeof(sm2_oid));
            return 1;
        }
        CHECK(C_GetInterfaceList(NULL, &interface_count));
        if (interface_count < 2) {
            fprintf(stderr, "C_GetInterfaceList gave %lu interfaces\n", (unsigned long)interface_count);
            return 1;
        }
        printf("C client: SM3 digest and interface list OK\n");
    }
#endif

    CHECK(C_Logout(session));
    CHECK(C_CloseSession(session));
    CHECK(C_Finalize(NULL));
    printf("C client: RSA-2048 encrypt/decrypt round trip OK\n");
    return 0;
}
