//! One session: read-only or read-write, its state (derived from the token's login state),
//! and at most one active operation of each kind.
//!
//! An operation ends when it completes or fails with anything but CKR_BUFFER_TOO_SMALL; a
//! length query or a too-small buffer keeps it, and the output already computed is kept too
//! so that the retry returns it without doing the private-key work twice.

use crate::error::{fail, Result};
use crate::mechanism::{CipherOperation, DigestOperation, SignOperation, VerifyOperation};
use crate::token::{Token, UserType};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The outcome of an output-producing call, written back through `pulLen` either way.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done(usize),
    TooSmall(usize),
}

impl Written {
    /// Writes the length back (in every case, as the spec's section 5.2 says); a too-small
    /// buffer is CKR_BUFFER_TOO_SMALL.
    pub fn report(self, len: &mut CK_ULONG) -> Result<()> {
        match self {
            Written::Done(n) => {
                *len = n as CK_ULONG;
                Ok(())
            }
            Written::TooSmall(n) => {
                *len = n as CK_ULONG;
                fail(CKR_BUFFER_TOO_SMALL)
            }
        }
    }
}

/// The output of a call under the buffer protocol, as the C boundary hands it over: the
/// caller's buffer (None for a length query) and its length word.
pub type Output<'a> = (Option<&'a mut [u8]>, &'a mut CK_ULONG);

/// A call's input as the C boundary hands it over: the caller's own bytes when they cannot
/// be the output buffer too, else a copy (the spec allows in-place operation, and a Rust
/// `&[u8]` must not alias the `&mut [u8]` being written). Borrowing spares a large
/// encryption a copy of its whole input.
pub enum Input<'a> {
    Borrowed(&'a [u8]),
    Copied(Zeroizing<Vec<u8>>),
}

impl std::ops::Deref for Input<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Input::Borrowed(b) => b,
            Input::Copied(c) => c,
        }
    }
}

/// An active operation with its kept output.
pub struct Active<T: ?Sized> {
    pub op: Box<T>,
    /// Output computed for a call whose buffer was too small.
    pub pending: Option<Zeroizing<Vec<u8>>>,
    /// The kind of the calls made so far; a call of the other kind is refused.
    pub calls: Calls,
    /// The key has CKA_ALWAYS_AUTHENTICATE: a CKU_CONTEXT_SPECIFIC login must come first.
    pub needs_login: bool,
    /// What the audit log notes when the operation ends (`audit = "operations"`, private
    /// and secret keys).
    pub audit: Option<std::sync::Arc<crate::audit::KeyUse>>,
}

impl<T: ?Sized> Active<T> {
    pub fn new(op: Box<T>) -> Self {
        Active {
            op,
            pending: None,
            calls: Calls::None,
            needs_login: false,
            audit: None,
        }
    }
}

/// Which calls an operation has had. The spec finishes an operation either with one
/// single-part call (C_Encrypt, C_Sign, C_Digest, ...) or with updates and a final call,
/// never with a mix. A single-part call that answered a length query or
/// CKR_BUFFER_TOO_SMALL keeps the operation, but for that single-part call only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    None,
    SinglePart,
    MultiPart,
}

/// A search in progress: the matching handles not yet returned.
pub struct Search {
    pub remaining: std::vec::IntoIter<CK_OBJECT_HANDLE>,
}

#[derive(Default)]
pub struct Operations {
    pub find: Option<Search>,
    pub encrypt: Option<Active<dyn CipherOperation>>,
    pub decrypt: Option<Active<dyn CipherOperation>>,
    pub sign: Option<Active<dyn SignOperation>>,
    pub verify: Option<Active<dyn VerifyOperation>>,
    pub digest: Option<Active<dyn DigestOperation>>,
}

pub struct Session {
    pub slot_id: CK_SLOT_ID,
    pub token: Arc<Token>,
    pub read_write: bool,
    pub ops: Operations,
}

impl Session {
    /// CKS_* from the token's login state and this session's kind.
    pub fn state(&self) -> CK_STATE {
        match (self.token.logged_in(), self.read_write) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(UserType::User), false) => CKS_RO_USER_FUNCTIONS,
            (Some(UserType::User), true) => CKS_RW_USER_FUNCTIONS,
            // An SO cannot log in while RO sessions exist, so an RO SO state never arises.
            (Some(UserType::So), _) => CKS_RW_SO_FUNCTIONS,
        }
    }

    pub fn require_rw(&self) -> Result<()> {
        if self.read_write {
            Ok(())
        } else {
            fail(CKR_SESSION_READ_ONLY)
        }
    }
}

/// Runs one step of an output-producing operation under the spec's buffer protocol.
///
/// `slot` holds the operation; `out` is None for a length query; `len_hint` bounds the
/// output without doing the work; `produce` does the work. The operation is ended when the
/// call completes (`ends` true for single-part and final calls) or fails.
pub fn deliver<T: ?Sized>(
    slot: &mut Option<Active<T>>,
    out: Option<&mut [u8]>,
    ends: bool,
    len_hint: impl FnOnce(&T) -> Result<usize>,
    produce: impl FnOnce(&mut T) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<Written> {
    deliver_direct(slot, out, ends, len_hint, |_, _| None, produce)
}

/// As `deliver`, first offering the caller's buffer to `produce_into`, which may write the
/// output there itself (`Some(length)`) instead of handing back a buffer to copy.
pub fn deliver_direct<T: ?Sized>(
    slot: &mut Option<Active<T>>,
    out: Option<&mut [u8]>,
    ends: bool,
    len_hint: impl FnOnce(&T) -> Result<usize>,
    produce_into: impl FnOnce(&mut T, &mut [u8]) -> Option<Result<usize>>,
    produce: impl FnOnce(&mut T) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<Written> {
    let active = slot
        .as_mut()
        .ok_or(crate::error::Error::new(CKR_OPERATION_NOT_INITIALIZED))?;
    let result = (|| {
        let Some(buf) = out else {
            if let Some(p) = &active.pending {
                return Ok((Written::Done(p.len()), false));
            }
            return Ok((Written::Done(len_hint(&active.op)?), false));
        };
        let output = match active.pending.take() {
            Some(p) => p,
            None => {
                if let Some(written) = produce_into(&mut active.op, buf) {
                    return Ok((Written::Done(written?), ends));
                }
                produce(&mut active.op)?
            }
        };
        if output.len() > buf.len() {
            let n = output.len();
            active.pending = Some(output);
            return Ok((Written::TooSmall(n), false));
        }
        buf[..output.len()].copy_from_slice(&output);
        Ok((Written::Done(output.len()), ends))
    })();
    match result {
        Ok((w, finished)) => {
            if finished {
                *slot = None;
            }
            Ok(w)
        }
        Err(e) => {
            *slot = None;
            Err(e)
        }
    }
}
