//! Integrity of the store (format 3): every object row and the token record carry an
//! HMAC-SHA256 tag over their whole content, so an edit of the SQLite file (a flipped
//! CKA_SENSITIVE, a CKA_CLASS rewritten to CKO_DATA, a replaced CKA_MODULUS, a row
//! re-inserted after its deletion) is found when the row is loaded.
//!
//! Keys, both derived with HKDF-SHA256 (RFC 5869), one per purpose:
//! - the *token MAC key* from the token key (which only a PIN opens): it tags every object
//!   written while someone is logged in and the token record. Only a PIN holder can forge it.
//! - the *public MAC key* from the public-object key (in clear in the token record): it tags
//!   the public objects written without login. It catches damage and hand edits, not a
//!   forger who reads the file (see README, "Store integrity").
//!
//! An object's tag binds the token epoch (rows from before a re-initialisation fail), the
//! object id, its generation and whether it belongs to the *object set*: the private
//! objects, whose tags are XOR-ed into the record's `object_set` digest. Private objects
//! are only ever written with the token key at hand, so the digest is always kept current;
//! a deleted private row put back (or one removed, or an old version restored) makes the
//! digest differ.
//!
//! The PIN retry counters and the change counter are not covered: they change without any
//! key at hand (a wrong PIN, a public write), and the slot id changes at a restore.

use super::seal::{PublicObjectKey, TokenKey};
use super::{ObjectId, Seal, StoredObject, StoredValue, TokenRecord};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub const TAG_LEN: usize = 32;
/// A row's tag, and the XOR of the object set's tags.
pub type Tag = [u8; TAG_LEN];

/// A key that tags store rows.
pub struct MacKey(Zeroizing<[u8; 32]>);

impl MacKey {
    /// The token MAC key.
    pub fn for_token(token_key: &TokenKey) -> MacKey {
        MacKey::derive(token_key.as_slice(), b"ferrohsm store integrity v3: token")
    }

    /// The public MAC key.
    pub fn for_public(public: &PublicObjectKey) -> MacKey {
        MacKey::derive(public.0.as_slice(), b"ferrohsm store integrity v3: public")
    }

    fn derive(ikm: &[u8], info: &[u8]) -> MacKey {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, ikm)
            .expand(info, out.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        MacKey(out)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes any key length")
    }
}

/// Length-prefixed fields, so no two different contents encode alike.
struct Encoder(Hmac<Sha256>);

impl Encoder {
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.update(b);
    }
    fn tag(self) -> Tag {
        self.0.finalize().into_bytes().into()
    }
}

/// The `sealed` code of a stored value (as in the store's `sealed` column).
fn seal_code(value: &StoredValue) -> (u64, &[u8]) {
    match value {
        StoredValue::Clear(v) => (0, v),
        StoredValue::Sealed(Seal::Token, v) => (1, v),
        StoredValue::Sealed(Seal::Public, v) => (2, v),
    }
}

/// The tag of one object row. Attribute order does not matter (sorted by type).
// CK_ULONG is 32 bits on some platforms; the tag always encodes 64.
#[allow(clippy::unnecessary_cast)]
pub fn object_tag(
    key: &MacKey,
    epoch: u64,
    id: ObjectId,
    generation: u64,
    in_set: bool,
    attributes: &[(CK_ATTRIBUTE_TYPE, StoredValue)],
) -> Tag {
    let mut sorted: Vec<_> = attributes.iter().collect();
    sorted.sort_by_key(|(ty, _)| *ty);
    let mut e = Encoder(key.mac());
    e.bytes(b"ferrohsm object v3");
    e.u64(epoch);
    e.u64(id as u64);
    e.u64(generation);
    e.u64(in_set as u64);
    e.u64(sorted.len() as u64);
    for (ty, value) in sorted {
        let (code, bytes) = seal_code(value);
        e.u64(*ty as u64);
        e.u64(code);
        e.bytes(bytes);
    }
    e.tag()
}

/// The tag of the token record: label, serial, epoch, public-object key, object-set digest
/// and both PIN records (KDF parameters, salt, flags, wrapped key), not the retry counter
/// fields (`failures`, `attempts`, `success_at`, `counter_mac`: they change at every
/// attempt, without the token key at hand; the counter MAC guards them instead).
pub fn record_tag(key: &MacKey, record: &TokenRecord) -> Tag {
    let mut e = Encoder(key.mac());
    e.bytes(b"ferrohsm token record v3");
    e.bytes(record.label.as_bytes());
    e.bytes(record.serial.as_bytes());
    e.u64(record.epoch);
    e.bytes(
        record
            .public_key
            .as_ref()
            .map_or(&[][..], |k| k.0.as_slice()),
    );
    e.bytes(&record.object_set);
    for pin in [&record.so_pin, &record.user_pin] {
        match pin {
            None => e.u64(0),
            Some(pin) => {
                e.u64(1);
                e.u64(pin.kdf.memory_kib.into());
                e.u64(pin.kdf.iterations.into());
                e.u64(pin.kdf.parallelism.into());
                e.bytes(&pin.salt);
                e.u64(pin.flags.into());
                e.bytes(&pin.wrapped_key);
            }
        }
    }
    e.tag()
}

/// Constant-time comparison of a stored tag (of any length) with the expected one.
pub fn tags_match(stored: &[u8], expected: &Tag) -> bool {
    use subtle::ConstantTimeEq;
    stored.len() == TAG_LEN && bool::from(stored.ct_eq(expected))
}

/// Whether `tag` is `object`'s tag under `key` at `epoch` (as stored: its id, generation,
/// set membership and attributes).
pub fn object_tag_holds(key: &MacKey, epoch: u64, object: &StoredObject, tag: &[u8]) -> bool {
    let expected = object_tag(
        key,
        epoch,
        object.id,
        object.generation,
        object.in_set,
        &object.attributes,
    );
    tags_match(tag, &expected)
}

pub fn xor_into(digest: &mut Tag, tag: &[u8]) {
    for (d, t) in digest.iter_mut().zip(tag) {
        *d ^= t;
    }
}

/// A stored tag as a `Tag`; anything else is a damaged row.
pub fn tag_from(bytes: &[u8], what: &str) -> Result<Tag> {
    bytes
        .try_into()
        .map_err(|_| Error::with(CKR_DEVICE_ERROR, format!("{what}: damaged integrity tag")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_tag_covers_every_field() {
        let key = MacKey::for_token(&super::super::seal::new_token_key().unwrap());
        let attrs = vec![
            (CKA_CLASS, StoredValue::Clear(vec![3, 0, 0, 0, 0, 0, 0, 0])),
            (CKA_SENSITIVE, StoredValue::Clear(vec![1])),
            (CKA_VALUE, StoredValue::Sealed(Seal::Token, vec![9; 40])),
        ];
        let tag = object_tag(&key, 1, 2, 3, true, &attrs);
        let mut reversed = attrs.clone();
        reversed.reverse();
        assert_eq!(object_tag(&key, 1, 2, 3, true, &reversed), tag);
        for other in [
            object_tag(&key, 9, 2, 3, true, &attrs),
            object_tag(&key, 1, 9, 3, true, &attrs),
            object_tag(&key, 1, 2, 9, true, &attrs),
            object_tag(&key, 1, 2, 3, false, &attrs),
            object_tag(&key, 1, 2, 3, true, &attrs[1..]),
        ] {
            assert_ne!(other, tag);
        }
        let mut flipped = attrs.clone();
        flipped[1].1 = StoredValue::Clear(vec![0]);
        assert_ne!(object_tag(&key, 1, 2, 3, true, &flipped), tag);
        let mut resealed = attrs;
        resealed[2].1 = StoredValue::Sealed(Seal::Public, vec![9; 40]);
        assert_ne!(object_tag(&key, 1, 2, 3, true, &resealed), tag);
        assert!(tags_match(&tag, &tag));
        assert!(!tags_match(&tag[1..], &tag));
    }
}
