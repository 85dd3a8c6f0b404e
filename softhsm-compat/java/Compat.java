// Java 17 SunPKCS11 against a PKCS#11 module, launched as a single source file:
//   java Compat.java gen    CONFIG PIN WORKDIR   key pair generation and crypto in one JVM
//   java Compat.java reopen CONFIG PIN WORKDIR   a second JVM finds the key through the KeyStore
//   java Compat.java disabled CONFIG PIN WORKDIR a disabled ferrohsm key (kms-pub.der) is refused
// Each check prints one line: RESULT<TAB>PASS|FAIL|SKIP<TAB>name<TAB>reason.

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Collections;
import java.security.Key;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

public class Compat {
    interface Check {
        void run() throws Exception;
    }

    static boolean failed = false;

    static void result(String status, String name, String reason) {
        System.out.println("RESULT\t" + status + "\t" + name + "\t" + reason.replace('\t', ' ').replace('\n', ' '));
        System.out.flush();
    }

    static boolean check(String name, Check body) {
        try {
            body.run();
            result("PASS", name, "");
            return true;
        } catch (Throwable e) {
            failed = true;
            Throwable root = e;
            StringBuilder why = new StringBuilder(e.toString());
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
                why.append(" <- ").append(root);
            }
            e.printStackTrace();
            result("FAIL", name, why.length() > 300 ? why.substring(0, 300) : why.toString());
            return false;
        }
    }

    static void require(boolean condition, String what) {
        if (!condition) {
            throw new IllegalStateException(what);
        }
    }

    static Provider provider;
    static KeyStore keyStore;
    static KeyPair pair;

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String config = args[1];
        char[] pin = args[2].toCharArray();
        Path work = Path.of(args[3]);

        String suffix = mode.equals("gen") ? "" : mode.equals("reopen") ? "-2nd-jvm" : "-3rd-jvm";
        boolean ready = check("provider-config" + suffix, () -> {
            provider = Security.getProvider("SunPKCS11").configure(config);
            Security.addProvider(provider);
        });
        ready = ready && check("keystore-login" + suffix, () -> {
            keyStore = KeyStore.getInstance("PKCS11", provider);
            keyStore.load(null, pin);
        });
        if (!ready) {
            System.exit(1);
        }
        if (mode.equals("gen")) {
            generate(work);
        } else if (mode.equals("reopen")) {
            reopen(work);
        } else {
            disabled(work);
        }
        System.exit(failed ? 1 : 0);
    }

    static byte[] message() {
        byte[] data = new byte[32];
        new SecureRandom().nextBytes(data);
        return data;
    }

    static void generate(Path work) {
        boolean haveKey = check("keygen-rsa2048-token", () -> {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA", provider);
            generator.initialize(2048);
            pair = generator.generateKeyPair();
            Files.write(work.resolve("java-pub.der"), pair.getPublic().getEncoded());
        });
        if (!haveKey) {
            return;
        }
        check("cipher-rsa-pkcs1-decrypt", () -> decryptRoundTrip(pair.getPublic(), pair.getPrivate()));
        check("signature-sha256withrsa", () -> signRoundTrip("SHA256withRSA", null, pair.getPublic(), pair.getPrivate()));
        check("signature-rsassa-pss", () -> signRoundTrip("RSASSA-PSS",
                new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1),
                pair.getPublic(), pair.getPrivate()));
        check("envelope-rsa-unwrap-aes-gcm", () -> envelope(pair.getPublic(), pair.getPrivate()));
    }

    // The digital envelope: the sender (SunJCE) encrypts data under a fresh AES-256 key with
    // AES/GCM and wraps the key for the token's RSA key; the token unwraps the key
    // (C_UnwrapKey) and decrypts the data with it (CKM_AES_GCM).
    static void envelope(PublicKey publicKey, PrivateKey privateKey) throws Exception {
        byte[] data = new byte[4096];
        new SecureRandom().nextBytes(data);
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);
        KeyGenerator generator = KeyGenerator.getInstance("AES", "SunJCE");
        generator.init(256);
        SecretKey key = generator.generateKey();
        Cipher seal = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
        seal.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
        byte[] sealed = seal.doFinal(data);
        Cipher wrap = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
        wrap.init(Cipher.WRAP_MODE, publicKey);
        byte[] wrapped = wrap.wrap(key);

        Cipher unwrap = Cipher.getInstance("RSA/ECB/PKCS1Padding", provider);
        unwrap.init(Cipher.UNWRAP_MODE, privateKey);
        // SunPKCS11 (JDK 17) unwraps with an RSA decryption on the token and returns the key as
        // a SecretKeySpec when the token can import raw secret keys (it probes C_CreateObject
        // of a generic secret); C_UnwrapKey is its path only for tokens that cannot. The GCM
        // decryption below then imports that key into the token and runs there.
        Key tokenKey = unwrap.unwrap(wrapped, "AES", Cipher.SECRET_KEY);
        require(Arrays.equals(tokenKey.getEncoded(), key.getEncoded()), "unwrapped key differs");
        Cipher open = Cipher.getInstance("AES/GCM/NoPadding", provider);
        open.init(Cipher.DECRYPT_MODE, tokenKey, new GCMParameterSpec(128, iv));
        require(open.getProvider() == provider, "GCM decryption did not use the token");
        require(Arrays.equals(data, open.doFinal(sealed)), "envelope plaintext differs");
        // A tampered envelope is refused.
        sealed[7] ^= 1;
        open.init(Cipher.DECRYPT_MODE, tokenKey, new GCMParameterSpec(128, iv));
        try {
            open.doFinal(sealed);
            throw new IllegalStateException("tampered GCM ciphertext decrypted");
        } catch (javax.crypto.AEADBadTagException expected) {
            // what SunPKCS11 makes of CKR_ENCRYPTED_DATA_INVALID
        }
    }

    // Encrypts in software (SunJCE) with the public key, decrypts on the token.
    static void decryptRoundTrip(PublicKey publicKey, PrivateKey privateKey) throws Exception {
        byte[] plain = message();
        Cipher encrypt = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
        encrypt.init(Cipher.ENCRYPT_MODE, publicKey);
        byte[] ciphertext = encrypt.doFinal(plain);
        Cipher decrypt = Cipher.getInstance("RSA/ECB/PKCS1Padding", provider);
        decrypt.init(Cipher.DECRYPT_MODE, privateKey);
        require(decrypt.getProvider() == provider, "decryption did not use the token");
        require(Arrays.equals(plain, decrypt.doFinal(ciphertext)), "decrypted text differs");
    }

    // Signs on the token, verifies in software (SunRsaSign).
    static void signRoundTrip(String algorithm, PSSParameterSpec pss, PublicKey publicKey, PrivateKey privateKey)
            throws Exception {
        byte[] data = message();
        Signature signer = Signature.getInstance(algorithm, provider);
        if (pss != null) {
            signer.setParameter(pss);
        }
        signer.initSign(privateKey);
        signer.update(data);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance(algorithm, "SunRsaSign");
        if (pss != null) {
            verifier.setParameter(pss);
        }
        verifier.initVerify(publicKey);
        verifier.update(data);
        require(verifier.verify(signature), algorithm + " signature does not verify");
    }

    // The key entry whose certificate holds `publicKey`, or null.
    static PrivateKey keyEntryFor(PublicKey publicKey) throws Exception {
        for (String alias : Collections.list(keyStore.aliases())) {
            Certificate cert = keyStore.getCertificate(alias);
            if (cert != null && keyStore.isKeyEntry(alias)
                    && Arrays.equals(cert.getPublicKey().getEncoded(), publicKey.getEncoded())) {
                return (PrivateKey) keyStore.getKey(alias, null);
            }
        }
        return null;
    }

    // A key ferrohsm-util made for ASYMMETRIC_DECRYPT_RSA_2048 and then disabled: SunPKCS11's
    // decryption fails with CKR_KEY_FUNCTION_NOT_PERMITTED, as for every client.
    static void disabled(Path work) {
        check("disabled-key-refused", () -> {
            PublicKey publicKey = KeyFactory.getInstance("RSA")
                    .generatePublic(new X509EncodedKeySpec(Files.readAllBytes(work.resolve("kms-pub.der"))));
            PrivateKey privateKey = keyEntryFor(publicKey);
            require(privateKey != null, "no key entry for the disabled key");
            Cipher encrypt = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
            encrypt.init(Cipher.ENCRYPT_MODE, publicKey);
            byte[] ciphertext = encrypt.doFinal(message());
            Cipher decrypt = Cipher.getInstance("RSA/ECB/PKCS1Padding", provider);
            try {
                decrypt.init(Cipher.DECRYPT_MODE, privateKey);
                decrypt.doFinal(ciphertext);
            } catch (Exception e) {
                StringBuilder chain = new StringBuilder();
                for (Throwable t = e; t != null && t != t.getCause(); t = t.getCause()) {
                    chain.append(t).append(' ');
                }
                System.out.println("refused: " + chain);
                require(chain.toString().contains("CKR_KEY_FUNCTION_NOT_PERMITTED"),
                        "refused, but not with CKR_KEY_FUNCTION_NOT_PERMITTED: " + chain);
                return;
            }
            throw new IllegalStateException("a disabled key decrypted");
        });
    }

    static void reopen(Path work) {
        PublicKey[] publicKey = new PublicKey[1];
        PrivateKey[] privateKey = new PrivateKey[1];
        boolean found = check("keystore-alias-with-cert", () -> {
            publicKey[0] = KeyFactory.getInstance("RSA")
                    .generatePublic(new X509EncodedKeySpec(Files.readAllBytes(work.resolve("java-pub.der"))));
            privateKey[0] = keyEntryFor(publicKey[0]);
            require(privateKey[0] != null, "no key entry whose certificate holds the generated public key");
        });
        if (!found) {
            return;
        }
        check("key-survives-jvm", () -> {
            decryptRoundTrip(publicKey[0], privateKey[0]);
            signRoundTrip("SHA256withRSA", null, publicKey[0], privateKey[0]);
        });
    }
}
