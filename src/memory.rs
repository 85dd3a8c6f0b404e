//! Allocations whose size a caller chose (a C length, a template value, a data part): they
//! fail with CKR_HOST_MEMORY instead of aborting the host process, as `Vec`'s own
//! allocation does when the memory is not there.

use crate::error::{Error, Result};
use cryptoki_sys::CKR_HOST_MEMORY;

/// An empty vector with room for `capacity` bytes, or CKR_HOST_MEMORY.
pub fn buffer(capacity: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(capacity)
        .map_err(|_| Error::with(CKR_HOST_MEMORY, "no memory for a caller-sized buffer"))?;
    Ok(v)
}

/// A copy of `bytes`, or CKR_HOST_MEMORY.
pub fn copy(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut v = buffer(bytes.len())?;
    v.extend_from_slice(bytes);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_buffer_is_host_memory_not_an_abort() {
        let e = buffer(1 << 62).unwrap_err();
        assert_eq!(e.rv, CKR_HOST_MEMORY);
        assert_eq!(copy(b"abc").unwrap(), b"abc");
    }
}
