/*
 * A C client that calls every entry point of ferrohsm, through the 2.40 function list and
 * the 3.0 interface, with valid arguments and with invalid ones (NULL pointers, bad handles,
 * short buffers, unknown mechanisms, calls before C_Initialize and after C_Finalize).
 * Run under valgrind memcheck by tests/valgrind.rs: no error and no definite leak allowed.
 * Exit code 0 when every call returned what is expected; each mismatch is printed.
 *
 * Needs include/ferrohsm.h (the 3.0 types and the vendor constants).
 */
#include <stdio.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
#include "ferrohsm.h"

static int failures = 0;

#define EXPECT(call, want)                                                             \
    do {                                                                               \
        CK_RV rv_ = (call);                                                            \
        if (rv_ != (CK_RV)(want)) {                                                    \
            fprintf(stderr, "%s:%d: %s returned 0x%lx, expected 0x%lx (%s)\n",         \
                    __FILE__, __LINE__, #call, (unsigned long)rv_,                     \
                    (unsigned long)(want), #want);                                     \
            failures++;                                                                \
        }                                                                              \
    } while (0)

#define OK(call) EXPECT(call, CKR_OK)

/* Refused, whatever the exact code, but never as an internal error. */
#define REFUSED(call)                                                                  \
    do {                                                                               \
        CK_RV rv_ = (call);                                                            \
        if (rv_ == CKR_OK || rv_ == CKR_GENERAL_ERROR) {                               \
            fprintf(stderr, "%s:%d: %s returned 0x%lx, expected a refusal\n",          \
                    __FILE__, __LINE__, #call, (unsigned long)rv_);                    \
            failures++;                                                                \
        }                                                                              \
    } while (0)

/* The 3.0 function list: the 2.40 one followed by the 3.0 additions. */
struct function_list_3_0 {
    CK_FUNCTION_LIST base;
    CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
    CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
    CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG,
                         CK_UTF8CHAR_PTR, CK_ULONG);
    CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
    CK_RV (*C_MessageEncryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
    CK_RV (*C_EncryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                              CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
    CK_RV (*C_EncryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                   CK_ULONG);
    CK_RV (*C_EncryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                  CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS);
    CK_RV (*C_MessageEncryptFinal)(CK_SESSION_HANDLE);
    CK_RV (*C_MessageDecryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
    CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                              CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
    CK_RV (*C_DecryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                   CK_ULONG);
    CK_RV (*C_DecryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                  CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS);
    CK_RV (*C_MessageDecryptFinal)(CK_SESSION_HANDLE);
    CK_RV (*C_MessageSignInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
    CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                           CK_BYTE_PTR, CK_ULONG_PTR);
    CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
    CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                               CK_BYTE_PTR, CK_ULONG_PTR);
    CK_RV (*C_MessageSignFinal)(CK_SESSION_HANDLE);
    CK_RV (*C_MessageVerifyInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
    CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                             CK_BYTE_PTR, CK_ULONG);
    CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
    CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                 CK_ULONG, CK_BYTE_PTR, CK_ULONG);
    CK_RV (*C_MessageVerifyFinal)(CK_SESSION_HANDLE);
};

static const char SO_PIN[] = "c-so-pin-1234";
static const char USER_PIN[] = "c-user-pin-1234";
static const char NEW_PIN[] = "c-user-pin-5678";
#define BAD_SESSION ((CK_SESSION_HANDLE)0x7fff1234)
#define BAD_OBJECT ((CK_OBJECT_HANDLE)0x7fff4321)
#define BAD_SLOT ((CK_SLOT_ID)0x7ffffff0)
#define PIN(p) (CK_UTF8CHAR_PTR)(p), (CK_ULONG)strlen(p)

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* Every 2.40 function before C_Initialize: CKR_CRYPTOKI_NOT_INITIALIZED. */
static void before_initialize(CK_FUNCTION_LIST_PTR f)
{
    CK_INFO info;
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s = 1;
    CK_BYTE buf[16];
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    const CK_RV NI = CKR_CRYPTOKI_NOT_INITIALIZED;

    EXPECT(f->C_Finalize(NULL), NI);
    EXPECT(f->C_GetInfo(&info), NI);
    EXPECT(f->C_GetSlotList(CK_FALSE, NULL, &n), NI);
    EXPECT(f->C_GetSlotInfo(0, NULL), NI);
    EXPECT(f->C_GetTokenInfo(0, NULL), NI);
    EXPECT(f->C_GetMechanismList(0, NULL, &n), NI);
    EXPECT(f->C_GetMechanismInfo(0, CKM_SHA256, NULL), NI);
    EXPECT(f->C_InitToken(0, NULL, 0, NULL), NI);
    EXPECT(f->C_InitPIN(s, NULL, 0), NI);
    EXPECT(f->C_SetPIN(s, NULL, 0, NULL, 0), NI);
    EXPECT(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s), NI);
    EXPECT(f->C_CloseSession(s), NI);
    EXPECT(f->C_CloseAllSessions(0), NI);
    EXPECT(f->C_GetSessionInfo(s, NULL), NI);
    EXPECT(f->C_Login(s, CKU_USER, NULL, 0), NI);
    EXPECT(f->C_Logout(s), NI);
    EXPECT(f->C_CreateObject(s, NULL, 0, NULL), NI);
    EXPECT(f->C_DestroyObject(s, 1), NI);
    EXPECT(f->C_FindObjectsInit(s, NULL, 0), NI);
    EXPECT(f->C_DigestInit(s, &m), NI);
    EXPECT(f->C_Digest(s, buf, 1, buf, &n), NI);
    EXPECT(f->C_GenerateRandom(s, buf, sizeof(buf)), NI);
    EXPECT(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), NI);
}

static CK_SLOT_ID init_token(CK_FUNCTION_LIST_PTR f, int round)
{
    CK_SLOT_ID slots[16];
    CK_ULONG count = 0, i;
    CK_UTF8CHAR label[32];
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_SLOT_ID spare;

    OK(f->C_GetSlotList(CK_FALSE, NULL, &count));
    if (count == 0 || count > 16) {
        fprintf(stderr, "slot count %lu\n", (unsigned long)count);
        failures++;
        return 0;
    }
    if (count > 1) {
        CK_ULONG small = 1;
        EXPECT(f->C_GetSlotList(CK_FALSE, slots, &small), CKR_BUFFER_TOO_SMALL);
    }
    EXPECT(f->C_GetSlotList(CK_FALSE, slots, NULL), CKR_ARGUMENTS_BAD);
    OK(f->C_GetSlotList(CK_FALSE, slots, &count));
    spare = slots[count - 1];
    OK(f->C_GetSlotInfo(spare, &si));
    EXPECT(f->C_GetSlotInfo(spare, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetSlotInfo(BAD_SLOT, &si), CKR_SLOT_ID_INVALID);
    OK(f->C_GetTokenInfo(spare, &ti));
    EXPECT(f->C_GetTokenInfo(spare, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetTokenInfo(BAD_SLOT, &ti), CKR_SLOT_ID_INVALID);

    memset(label, ' ', sizeof(label));
    memcpy(label, "valgrind", 8);
    label[8] = (CK_UTF8CHAR)('0' + round);
    EXPECT(f->C_InitToken(spare, PIN(SO_PIN), NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_InitToken(BAD_SLOT, PIN(SO_PIN), label), CKR_SLOT_ID_INVALID);
    OK(f->C_InitToken(spare, PIN(SO_PIN), label));

    count = 16;
    OK(f->C_GetSlotList(CK_TRUE, slots, &count));
    for (i = 0; i < count; i++) {
        OK(f->C_GetTokenInfo(slots[i], &ti));
        if ((ti.flags & CKF_TOKEN_INITIALIZED) && memcmp(ti.label, label, 32) == 0)
            return slots[i];
    }
    fprintf(stderr, "initialised token not found\n");
    failures++;
    return spare;
}

static void mechanisms(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot)
{
    CK_MECHANISM_TYPE list[256];
    CK_ULONG count = 0, small = 1, i;
    CK_MECHANISM_INFO info;

    OK(f->C_GetMechanismList(slot, NULL, &count));
    if (count > 256) {
        fprintf(stderr, "mechanism count %lu\n", (unsigned long)count);
        failures++;
        return;
    }
    EXPECT(f->C_GetMechanismList(slot, list, &small), CKR_BUFFER_TOO_SMALL);
    EXPECT(f->C_GetMechanismList(slot, list, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetMechanismList(BAD_SLOT, list, &count), CKR_SLOT_ID_INVALID);
    OK(f->C_GetMechanismList(slot, list, &count));
    for (i = 0; i < count; i++)
        OK(f->C_GetMechanismInfo(slot, list[i], &info));
    EXPECT(f->C_GetMechanismInfo(slot, 0x7fff0000UL, &info), CKR_MECHANISM_INVALID);
    EXPECT(f->C_GetMechanismInfo(slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
}

static void sessions_and_pins(CK_FUNCTION_LIST_PTR f, struct function_list_3_0 *f3,
                              CK_SLOT_ID slot, CK_SESSION_HANDLE *out)
{
    CK_SESSION_HANDLE s, ro;
    CK_SESSION_INFO info;

    EXPECT(f->C_OpenSession(slot, 0, NULL, NULL, &s), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    EXPECT(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_OpenSession(BAD_SLOT, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_SLOT_ID_INVALID);
    OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    OK(f->C_GetSessionInfo(s, &info));
    EXPECT(f->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetSessionInfo(BAD_SESSION, &info), CKR_SESSION_HANDLE_INVALID);

    EXPECT(f->C_Login(s, CKU_SO, NULL, 5), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_Login(s, 77, PIN(SO_PIN)), CKR_USER_TYPE_INVALID);
    EXPECT(f->C_Login(BAD_SESSION, CKU_SO, PIN(SO_PIN)), CKR_SESSION_HANDLE_INVALID);
    EXPECT(f->C_Login(s, CKU_SO, PIN(SO_PIN)), CKR_SESSION_READ_ONLY_EXISTS);
    OK(f->C_CloseSession(ro));
    EXPECT(f->C_CloseSession(ro), CKR_SESSION_HANDLE_INVALID);
    EXPECT(f->C_Login(s, CKU_SO, PIN("wrong-so-pin")), CKR_PIN_INCORRECT);
    OK(f->C_Login(s, CKU_SO, PIN(SO_PIN)));
    EXPECT(f->C_InitPIN(s, NULL, 8), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_InitPIN(BAD_SESSION, PIN(USER_PIN)), CKR_SESSION_HANDLE_INVALID);
    OK(f->C_InitPIN(s, PIN(USER_PIN)));
    OK(f->C_Logout(s));
    EXPECT(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);

    /* 3.0 C_LoginUser without a user name is C_Login; SO logins with one are refused. */
    OK(f3->C_LoginUser(s, CKU_USER, PIN(USER_PIN), NULL, 0));
    OK(f->C_SetPIN(s, PIN(USER_PIN), PIN(NEW_PIN)));
    EXPECT(f->C_SetPIN(s, PIN(USER_PIN), PIN(NEW_PIN)), CKR_PIN_INCORRECT);
    EXPECT(f->C_SetPIN(s, NULL, 4, PIN(NEW_PIN)), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_Login(s, CKU_USER, PIN(NEW_PIN)), CKR_USER_ALREADY_LOGGED_IN);
    OK(f3->C_SessionCancel(s, 0));
    EXPECT(f3->C_SessionCancel(BAD_SESSION, 0), CKR_SESSION_HANDLE_INVALID);
    *out = s;
}

static void objects(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS data_class = CKO_DATA;
    CK_BYTE value[] = "valgrind data value";
    CK_BYTE label[] = "vg-data";
    CK_BYTE relabel[] = "vg-data-renamed";
    CK_ATTRIBUTE data[] = {
        {CKA_CLASS, &data_class, sizeof(data_class)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, label, sizeof(label) - 1},
        {CKA_VALUE, value, sizeof(value)},
    };
    CK_ATTRIBUTE bad_null[] = {{CKA_LABEL, NULL, 4}};
    CK_ATTRIBUTE rename[] = {{CKA_LABEL, relabel, sizeof(relabel) - 1}};
    CK_OBJECT_HANDLE obj, copy, found[4];
    CK_ULONG size = 0, count = 0;
    CK_BYTE buf[64], tiny[2];
    CK_ATTRIBUTE get[] = {{CKA_VALUE, NULL, 0}, {CKA_LABEL, buf, sizeof(buf)}};
    CK_ATTRIBUTE get_small[] = {{CKA_VALUE, tiny, sizeof(tiny)}};
    CK_ATTRIBUTE get_unknown[] = {{0x7fff7777UL, buf, sizeof(buf)}};

    EXPECT(f->C_CreateObject(s, data, 4, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_CreateObject(s, NULL, 4, &obj), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_CreateObject(s, bad_null, 1, &obj), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_CreateObject(BAD_SESSION, data, 4, &obj), CKR_SESSION_HANDLE_INVALID);
    OK(f->C_CreateObject(s, data, 4, &obj));
    OK(f->C_GetObjectSize(s, obj, &size));
    EXPECT(f->C_GetObjectSize(s, obj, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetObjectSize(s, BAD_OBJECT, &size), CKR_OBJECT_HANDLE_INVALID);
    OK(f->C_GetAttributeValue(s, obj, get, 2));
    if (get[0].ulValueLen != sizeof(value)) {
        fprintf(stderr, "CKA_VALUE length query gave %lu\n", (unsigned long)get[0].ulValueLen);
        failures++;
    }
    EXPECT(f->C_GetAttributeValue(s, obj, get_small, 1), CKR_BUFFER_TOO_SMALL);
    EXPECT(f->C_GetAttributeValue(s, obj, get_unknown, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT(f->C_GetAttributeValue(s, obj, NULL, 1), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetAttributeValue(s, BAD_OBJECT, get, 2), CKR_OBJECT_HANDLE_INVALID);
    OK(f->C_SetAttributeValue(s, obj, rename, 1));
    EXPECT(f->C_SetAttributeValue(s, obj, bad_null, 1), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_SetAttributeValue(s, BAD_OBJECT, rename, 1), CKR_OBJECT_HANDLE_INVALID);
    OK(f->C_CopyObject(s, obj, NULL, 0, &copy));
    EXPECT(f->C_CopyObject(s, obj, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_CopyObject(s, BAD_OBJECT, NULL, 0, &copy), CKR_OBJECT_HANDLE_INVALID);

    EXPECT(f->C_FindObjects(s, found, 4, &count), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    OK(f->C_FindObjectsInit(s, rename, 1));
    EXPECT(f->C_FindObjectsInit(s, rename, 1), CKR_OPERATION_ACTIVE);
    EXPECT(f->C_FindObjects(s, found, 4, NULL), CKR_ARGUMENTS_BAD);
    OK(f->C_FindObjects(s, found, 4, &count));
    if (count != 2) {
        fprintf(stderr, "found %lu objects, expected 2\n", (unsigned long)count);
        failures++;
    }
    OK(f->C_FindObjectsFinal(s));
    EXPECT(f->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);

    OK(f->C_DestroyObject(s, copy));
    EXPECT(f->C_DestroyObject(s, copy), CKR_OBJECT_HANDLE_INVALID);
    OK(f->C_DestroyObject(s, obj));
}

/* Encrypt/decrypt single-part and in parts, with length queries and short buffers. */
static void ciphers(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE aes)
{
    CK_BYTE iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    CK_MECHANISM cbc_bad = {CKM_AES_CBC_PAD, iv, 3};
    CK_MECHANISM unknown = {0x7fff0001UL, NULL, 0};
    CK_BYTE plain[40] = "forty bytes of plaintext for valgrind!!";
    CK_BYTE cipher[128], back[128], tiny[4];
    CK_ULONG clen = 0, blen, part, tlen = sizeof(tiny);

    EXPECT(f->C_EncryptInit(s, &cbc_bad, aes), CKR_MECHANISM_PARAM_INVALID);
    EXPECT(f->C_EncryptInit(s, &unknown, aes), CKR_MECHANISM_INVALID);
    EXPECT(f->C_EncryptInit(s, NULL, aes), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_EncryptInit(s, &cbc, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
    EXPECT(f->C_Encrypt(s, plain, sizeof(plain), cipher, &clen), CKR_OPERATION_NOT_INITIALIZED);
    OK(f->C_EncryptInit(s, &cbc, aes));
    OK(f->C_Encrypt(s, plain, sizeof(plain), NULL, &clen));
    EXPECT(f->C_Encrypt(s, plain, sizeof(plain), tiny, &tlen), CKR_BUFFER_TOO_SMALL);
    OK(f->C_Encrypt(s, plain, sizeof(plain), cipher, &clen));

    OK(f->C_DecryptInit(s, &cbc, aes));
    blen = sizeof(back);
    OK(f->C_Decrypt(s, cipher, clen, back, &blen));
    if (blen != sizeof(plain) || memcmp(back, plain, blen) != 0) {
        fprintf(stderr, "AES-CBC-PAD round trip mismatch\n");
        failures++;
    }
    OK(f->C_DecryptInit(s, &cbc, aes));
    EXPECT(f->C_Decrypt(s, cipher, 7, back, &blen), CKR_ENCRYPTED_DATA_LEN_RANGE);

    /* In parts. */
    OK(f->C_EncryptInit(s, &cbc, aes));
    part = sizeof(cipher);
    OK(f->C_EncryptUpdate(s, plain, 20, cipher, &part));
    clen = part;
    part = sizeof(cipher) - clen;
    OK(f->C_EncryptUpdate(s, plain + 20, 20, cipher + clen, &part));
    clen += part;
    part = sizeof(cipher) - clen;
    EXPECT(f->C_EncryptFinal(s, cipher + clen, NULL), CKR_ARGUMENTS_BAD);
    OK(f->C_EncryptInit(s, &cbc, aes));
    part = sizeof(cipher);
    OK(f->C_EncryptUpdate(s, plain, sizeof(plain), cipher, &part));
    clen = part;
    part = sizeof(cipher) - clen;
    OK(f->C_EncryptFinal(s, cipher + clen, &part));
    clen += part;

    OK(f->C_DecryptInit(s, &cbc, aes));
    part = sizeof(back);
    OK(f->C_DecryptUpdate(s, cipher, clen, back, &part));
    blen = part;
    part = sizeof(back) - blen;
    OK(f->C_DecryptFinal(s, back + blen, &part));
    blen += part;
    if (blen != sizeof(plain) || memcmp(back, plain, blen) != 0) {
        fprintf(stderr, "AES-CBC-PAD multi-part round trip mismatch\n");
        failures++;
    }
    EXPECT(f->C_DecryptUpdate(s, cipher, clen, back, &part), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_EncryptFinal(s, cipher, &part), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DecryptFinal(s, back, &part), CKR_OPERATION_NOT_INITIALIZED);
}

static void digests_and_macs(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                             CK_OBJECT_HANDLE hmac, CK_OBJECT_HANDLE aes)
{
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM sm3 = {CKM_SM3, NULL, 0};
    CK_MECHANISM mac = {CKM_SHA256_HMAC, NULL, 0};
    CK_BYTE data[] = "digest me";
    CK_BYTE out[64], sig[64];
    CK_ULONG len = sizeof(out), slen = sizeof(sig), tiny = 1;

    OK(f->C_DigestInit(s, &sha));
    EXPECT(f->C_DigestInit(s, &sha), CKR_OPERATION_ACTIVE);
    EXPECT(f->C_Digest(s, data, sizeof(data), out, &tiny), CKR_BUFFER_TOO_SMALL);
    OK(f->C_Digest(s, data, sizeof(data), out, &len));
    OK(f->C_DigestInit(s, &sm3));
    OK(f->C_DigestUpdate(s, data, 4));
    /* A sensitive, non-extractable key is not digested; the error ends the operation. */
    EXPECT(f->C_DigestKey(s, aes), CKR_KEY_INDIGESTIBLE);
    EXPECT(f->C_DigestUpdate(s, data, 4), CKR_OPERATION_NOT_INITIALIZED);
    OK(f->C_DigestInit(s, &sm3));
    OK(f->C_DigestUpdate(s, data, sizeof(data)));
    len = sizeof(out);
    OK(f->C_DigestFinal(s, out, &len));
    EXPECT(f->C_DigestUpdate(s, data, 1), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DigestKey(s, aes), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);

    EXPECT(f->C_SignInit(s, &mac, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
    OK(f->C_SignInit(s, &mac, hmac));
    OK(f->C_Sign(s, data, sizeof(data), NULL, &slen));
    OK(f->C_Sign(s, data, sizeof(data), sig, &slen));
    OK(f->C_VerifyInit(s, &mac, hmac));
    OK(f->C_Verify(s, data, sizeof(data), sig, slen));
    OK(f->C_VerifyInit(s, &mac, hmac));
    EXPECT(f->C_Verify(s, data, sizeof(data), sig, slen - 1), CKR_SIGNATURE_LEN_RANGE);
    OK(f->C_SignInit(s, &mac, hmac));
    OK(f->C_SignUpdate(s, data, 3));
    OK(f->C_SignUpdate(s, data + 3, sizeof(data) - 3));
    slen = sizeof(sig);
    OK(f->C_SignFinal(s, sig, &slen));
    OK(f->C_VerifyInit(s, &mac, hmac));
    OK(f->C_VerifyUpdate(s, data, sizeof(data)));
    sig[0] ^= 1;
    EXPECT(f->C_VerifyFinal(s, sig, slen), CKR_SIGNATURE_INVALID);
    EXPECT(f->C_VerifyFinal(s, sig, slen), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_SignUpdate(s, data, 1), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_SignFinal(s, sig, &slen), CKR_OPERATION_NOT_INITIALIZED);
    EXPECT(f->C_VerifyUpdate(s, data, 1), CKR_OPERATION_NOT_INITIALIZED);
}

static void key_management(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                           CK_OBJECT_HANDLE *aes_out, CK_OBJECT_HANDLE *hmac_out)
{
    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM generic_gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_MECHANISM sm2_gen = {CKM_SM2_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_MECHANISM sm2_sign = {CKM_SM3_SM2, NULL, 0};
    CK_MECHANISM rsa_oaep;
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_BYTE derive_data[16] = "sixteen bytes!!";
    CK_KEY_DERIVATION_STRING_DATA kds = {derive_data, sizeof(derive_data)};
    CK_MECHANISM derive = {CKM_AES_ECB_ENCRYPT_DATA, &kds, sizeof(kds)};
    CK_ULONG len16 = 16, len32 = 32, bits = 1024;
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_KEY_TYPE aes_type = CKK_AES;
    CK_BYTE exponent[] = {1, 0, 1};
    CK_ATTRIBUTE aes_t[] = {
        {CKA_TOKEN, &no, sizeof(no)},     {CKA_VALUE_LEN, &len32, sizeof(len32)},
        {CKA_ENCRYPT, &yes, sizeof(yes)}, {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &yes, sizeof(yes)},    {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_DERIVE, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE extractable_t[] = {
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_VALUE_LEN, &len16, sizeof(len16)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE hmac_t[] = {
        {CKA_VALUE_LEN, &len32, sizeof(len32)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE unwrap_t[] = {
        {CKA_CLASS, &secret, sizeof(secret)},
        {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)},
        {CKA_TOKEN, &no, sizeof(no)},
    };
    CK_ATTRIBUTE derive_t[] = {
        {CKA_CLASS, &secret, sizeof(secret)},
        {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)},
        {CKA_VALUE_LEN, &len16, sizeof(len16)},
    };
    CK_ATTRIBUTE sm2_pub_t[] = {{CKA_TOKEN, &no, sizeof(no)}, {CKA_VERIFY, &yes, sizeof(yes)}};
    CK_ATTRIBUTE sm2_priv_t[] = {{CKA_TOKEN, &no, sizeof(no)}, {CKA_SIGN, &yes, sizeof(yes)}};
    CK_ATTRIBUTE rsa_pub_t[] = {
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
        {CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE rsa_priv_t[] = {{CKA_TOKEN, &no, sizeof(no)}, {CKA_DECRYPT, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE aes, extractable, hmac, unwrapped, derived, pub, priv, rsa_pub, rsa_priv;
    CK_BYTE wrapped[64], sig[128], cipher[256], plain[256], msg[] = "sm2 message";
    CK_ULONG wlen = sizeof(wrapped), slen = sizeof(sig), clen = sizeof(cipher), plen;

    EXPECT(f->C_GenerateKey(s, &aes_gen, aes_t, 7, NULL), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKey(s, NULL, aes_t, 7, &aes), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateKey(s, &aes_gen, NULL, 0, &aes), CKR_TEMPLATE_INCOMPLETE);
    OK(f->C_GenerateKey(s, &aes_gen, aes_t, 7, &aes));
    OK(f->C_GenerateKey(s, &aes_gen, extractable_t, 3, &extractable));
    OK(f->C_GenerateKey(s, &generic_gen, hmac_t, 3, &hmac));

    OK(f->C_WrapKey(s, &wrap, aes, extractable, NULL, &wlen));
    OK(f->C_WrapKey(s, &wrap, aes, extractable, wrapped, &wlen));
    EXPECT(f->C_WrapKey(s, &wrap, aes, BAD_OBJECT, wrapped, &wlen), CKR_KEY_HANDLE_INVALID);
    EXPECT(f->C_WrapKey(s, &wrap, aes, extractable, wrapped, NULL), CKR_ARGUMENTS_BAD);
    OK(f->C_UnwrapKey(s, &wrap, aes, wrapped, wlen, unwrap_t, 3, &unwrapped));
    wrapped[3] ^= 0x40;
    REFUSED(f->C_UnwrapKey(s, &wrap, aes, wrapped, wlen, unwrap_t, 3, &unwrapped));
    EXPECT(f->C_UnwrapKey(s, &wrap, aes, NULL, 24, unwrap_t, 3, &unwrapped), CKR_ARGUMENTS_BAD);
    OK(f->C_DeriveKey(s, &derive, aes, derive_t, 3, &derived));
    EXPECT(f->C_DeriveKey(s, &derive, aes, derive_t, 3, NULL), CKR_ARGUMENTS_BAD);
    derive.ulParameterLen = 3;
    EXPECT(f->C_DeriveKey(s, &derive, aes, derive_t, 3, &derived), CKR_MECHANISM_PARAM_INVALID);

    OK(f->C_GenerateKeyPair(s, &sm2_gen, sm2_pub_t, 2, sm2_priv_t, 2, &pub, &priv));
    EXPECT(f->C_GenerateKeyPair(s, &sm2_gen, sm2_pub_t, 2, sm2_priv_t, 2, NULL, &priv),
           CKR_ARGUMENTS_BAD);
    OK(f->C_SignInit(s, &sm2_sign, priv));
    OK(f->C_Sign(s, msg, sizeof(msg), sig, &slen));
    OK(f->C_VerifyInit(s, &sm2_sign, pub));
    OK(f->C_Verify(s, msg, sizeof(msg), sig, slen));
    OK(f->C_VerifyInit(s, &sm2_sign, pub));
    sig[10] ^= 1;
    EXPECT(f->C_Verify(s, msg, sizeof(msg), sig, slen), CKR_SIGNATURE_INVALID);

    OK(f->C_GenerateKeyPair(s, &rsa_gen, rsa_pub_t, 4, rsa_priv_t, 2, &rsa_pub, &rsa_priv));
    rsa_oaep.mechanism = CKM_RSA_PKCS_OAEP;
    rsa_oaep.pParameter = &oaep;
    rsa_oaep.ulParameterLen = sizeof(oaep);
    OK(f->C_EncryptInit(s, &rsa_oaep, rsa_pub));
    OK(f->C_Encrypt(s, msg, sizeof(msg), cipher, &clen));
    OK(f->C_DecryptInit(s, &rsa_oaep, rsa_priv));
    plen = 0;
    OK(f->C_Decrypt(s, cipher, clen, NULL, &plen));
    OK(f->C_Decrypt(s, cipher, clen, plain, &plen));
    if (plen != sizeof(msg) || memcmp(plain, msg, plen) != 0) {
        fprintf(stderr, "RSA-OAEP round trip mismatch\n");
        failures++;
    }
    OK(f->C_DecryptInit(s, &rsa_oaep, rsa_priv));
    cipher[5] ^= 1;
    plen = sizeof(plain);
    EXPECT(f->C_Decrypt(s, cipher, clen, plain, &plen), CKR_ENCRYPTED_DATA_INVALID);
    rsa_oaep.ulParameterLen = 5;
    EXPECT(f->C_DecryptInit(s, &rsa_oaep, rsa_priv), CKR_MECHANISM_PARAM_INVALID);

    OK(f->C_DestroyObject(s, unwrapped));
    OK(f->C_DestroyObject(s, derived));
    OK(f->C_DestroyObject(s, extractable));
    *aes_out = aes;
    *hmac_out = hmac;
}

static void the_rest(CK_FUNCTION_LIST_PTR f, struct function_list_3_0 *f3, CK_SLOT_ID slot,
                     CK_SESSION_HANDLE s, CK_OBJECT_HANDLE aes)
{
    CK_BYTE buf[64], seed[8] = {0};
    CK_ULONG len = sizeof(buf), len2 = sizeof(buf);
    CK_SLOT_ID event_slot;
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM cbc = {CKM_AES_CBC_PAD, buf, 16};
    CK_INTERFACE_PTR iface = NULL;
    CK_INTERFACE ifaces[8];
    CK_ULONG n = 0;
    CK_VERSION v30 = {3, 0}, v99 = {9, 9};
    CK_INFO info;

    OK(f->C_GetInfo(&info));
    EXPECT(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    OK(f->C_GenerateRandom(s, buf, sizeof(buf)));
    EXPECT(f->C_GenerateRandom(s, NULL, 8), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GenerateRandom(BAD_SESSION, buf, 8), CKR_SESSION_HANDLE_INVALID);
    OK(f->C_SeedRandom(s, seed, sizeof(seed)));
    EXPECT(f->C_SeedRandom(s, NULL, 4), CKR_ARGUMENTS_BAD);
    EXPECT(f->C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);
    EXPECT(f->C_CancelFunction(s), CKR_FUNCTION_NOT_PARALLEL);
    EXPECT(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event_slot, NULL), CKR_NO_EVENT);
    EXPECT(f->C_WaitForSlotEvent(0, &event_slot, NULL), CKR_FUNCTION_NOT_SUPPORTED);

    OK(f->C_DigestInit(s, &sha));
    REFUSED(f->C_GetOperationState(s, NULL, &len));
    REFUSED(f->C_SetOperationState(s, buf, 8, 0, 0));
    REFUSED(f->C_SignRecoverInit(s, &sha, aes));
    REFUSED(f->C_SignRecover(s, buf, 8, buf, &len));
    REFUSED(f->C_VerifyRecoverInit(s, &sha, aes));
    REFUSED(f->C_VerifyRecover(s, buf, 8, buf, &len));
    REFUSED(f->C_DigestEncryptUpdate(s, buf, 8, buf, &len));
    REFUSED(f->C_DecryptDigestUpdate(s, buf, 8, buf, &len));
    REFUSED(f->C_SignEncryptUpdate(s, buf, 8, buf, &len));
    REFUSED(f->C_DecryptVerifyUpdate(s, buf, 8, buf, &len2));

    /* 3.0: interfaces and the message-based functions (not offered). */
    OK(C_GetInterfaceList(NULL, &n));
    if (n == 0 || n > 8) {
        fprintf(stderr, "interface count %lu\n", (unsigned long)n);
        failures++;
        n = 8;
    }
    OK(C_GetInterfaceList(ifaces, &n));
    EXPECT(C_GetInterfaceList(NULL, NULL), CKR_ARGUMENTS_BAD);
    OK(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &iface, 0));
    EXPECT(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v99, &iface, 0), CKR_ARGUMENTS_BAD);
    EXPECT(C_GetInterface((CK_UTF8CHAR_PTR) "no such", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
    EXPECT(C_GetInterface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    EXPECT(f3->C_GetInterfaceList(NULL, NULL), CKR_ARGUMENTS_BAD);
    OK(f3->C_GetInterface(NULL, NULL, &iface, 0));

    len = sizeof(buf);
    EXPECT(f3->C_MessageEncryptInit(s, &cbc, aes), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_EncryptMessage(s, NULL, 0, NULL, 0, buf, 8, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_EncryptMessageBegin(s, NULL, 0, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_EncryptMessageNext(s, NULL, 0, buf, 8, buf, &len, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageEncryptFinal(s), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageDecryptInit(s, &cbc, aes), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_DecryptMessage(s, NULL, 0, NULL, 0, buf, 8, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_DecryptMessageBegin(s, NULL, 0, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_DecryptMessageNext(s, NULL, 0, buf, 8, buf, &len, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageDecryptFinal(s), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageSignInit(s, &sha, aes), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_SignMessage(s, NULL, 0, buf, 8, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_SignMessageBegin(s, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_SignMessageNext(s, NULL, 0, buf, 8, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageSignFinal(s), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageVerifyInit(s, &sha, aes), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_VerifyMessage(s, NULL, 0, buf, 8, buf, 8), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_VerifyMessageBegin(s, NULL, 0), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_VerifyMessageNext(s, NULL, 0, buf, 8, buf, 8), CKR_FUNCTION_NOT_SUPPORTED);
    EXPECT(f3->C_MessageVerifyFinal(s), CKR_FUNCTION_NOT_SUPPORTED);

    OK(f->C_Logout(s));
    OK(f->C_CloseAllSessions(slot));
    EXPECT(f->C_CloseAllSessions(BAD_SLOT), CKR_SLOT_ID_INVALID);
    EXPECT(f->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
}

int main(void)
{
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_INTERFACE_PTR iface = NULL;
    struct function_list_3_0 *f3;
    CK_C_INITIALIZE_ARGS bad_args;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE aes, hmac;

    EXPECT(C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    OK(C_GetFunctionList(&f));
    if (f == NULL)
        return 2;
    OK(C_GetInterface(NULL, NULL, &iface, 0));
    if (iface == NULL || iface->pFunctionList == NULL)
        return 2;
    f3 = (struct function_list_3_0 *)iface->pFunctionList;
    if (f3->base.version.major != 3) {
        fprintf(stderr, "default interface is version %d.%d\n", f3->base.version.major,
                f3->base.version.minor);
        failures++;
    }

    /* Everything once, then a second initialisation in the same process (what it sets up
     * must be released again at C_Finalize). */
    before_initialize(f);
    memset(&bad_args, 0, sizeof(bad_args));
    bad_args.pReserved = &bad_args;
    EXPECT(f->C_Initialize(&bad_args), CKR_ARGUMENTS_BAD);
    OK(f->C_Initialize(NULL));
    EXPECT(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    slot = init_token(f, 0);
    mechanisms(f, slot);
    sessions_and_pins(f, f3, slot, &s);
    objects(f, s);
    key_management(f, s, &aes, &hmac);
    ciphers(f, s, aes);
    digests_and_macs(f, s, hmac, aes);
    the_rest(f, f3, slot, s, aes);
    EXPECT(f->C_Finalize(&bad_args), CKR_ARGUMENTS_BAD);
    OK(f->C_Finalize(NULL));
    EXPECT(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

    before_initialize(f);
    OK(f->C_Initialize(NULL));
    OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    mechanisms(f, slot);
    OK(f->C_Finalize(NULL));

    if (failures) {
        fprintf(stderr, "%d unexpected results\n", failures);
        return 1;
    }
    printf("C client: every entry point OK\n");
    return 0;
}
