//! General purpose, slot and token management functions.

use crate::error::{fail, Result};
use crate::ffi::args::padded;
use crate::mechanism;
use crate::state::Library;
use cryptoki_sys::*;

use crate::config::MAX_PIN_LEN;
use crate::token::{MANUFACTURER, MODEL};

fn version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

pub fn info() -> CK_INFO {
    CK_INFO {
        cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
        manufacturerID: padded(MANUFACTURER),
        flags: 0,
        libraryDescription: padded("ferrohsm PKCS#11 module"),
        libraryVersion: version(),
    }
}

pub fn slot_list(lib: &Library) -> Result<Vec<CK_SLOT_ID>> {
    lib.slots.refresh()?;
    // Every slot holds a token: the spare slot's token is present but not initialised.
    Ok(lib.slots.slot_ids())
}

pub fn slot_info(lib: &Library, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    lib.slots.token(slot)?; // CKR_SLOT_ID_INVALID for an unknown slot
    Ok(CK_SLOT_INFO {
        slotDescription: padded(&format!("ferrohsm slot {slot}")),
        manufacturerID: padded(MANUFACTURER),
        flags: CKF_TOKEN_PRESENT
            | if lib.config.removable {
                CKF_REMOVABLE_DEVICE
            } else {
                0
            },
        hardwareVersion: version(),
        firmwareVersion: version(),
    })
}

pub fn token_info(lib: &Library, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    let info = lib.slots.token_info(slot)?;
    let sessions = lib.sessions_on(Some(slot));
    let rw = sessions.iter().filter(|(_, rw)| *rw).count();
    Ok(CK_TOKEN_INFO {
        label: padded(&info.label),
        manufacturerID: padded(MANUFACTURER),
        model: padded(MODEL),
        serialNumber: padded(&info.serial),
        flags: info.flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions.len() as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
        ulMinPinLen: lib.config.pin.min_len as CK_ULONG,
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: version(),
        firmwareVersion: version(),
        // No clock on this token (CKF_CLOCK_ON_TOKEN unset): the field is blank.
        utcTime: [b' '; 16],
    })
}

pub fn mechanism_list(lib: &Library, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    lib.slots.token(slot)?; // CKR_SLOT_ID_INVALID for an unknown slot
    let mut list = mechanism::mechanism_list();
    list.retain(|m| lib.config.mechanisms.allows(*m));
    Ok(list)
}

pub fn mechanism_info(
    lib: &Library,
    slot: CK_SLOT_ID,
    ty: CK_MECHANISM_TYPE,
) -> Result<CK_MECHANISM_INFO> {
    lib.slots.token(slot)?; // CKR_SLOT_ID_INVALID for an unknown slot
    let info = super::key_size::mechanism_info(&lib.config, ty, lib.mechanism(ty)?.info());
    Ok(CK_MECHANISM_INFO {
        ulMinKeySize: info.min_key_size,
        ulMaxKeySize: info.max_key_size,
        flags: lib.offered_flags(ty, info.flags),
    })
}

/// C_InitToken: the label is the 32-byte blank-padded field.
pub fn init_token(lib: &Library, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8]) -> Result<()> {
    lib.slots.token(slot)?; // CKR_SLOT_ID_INVALID for an unknown slot
    if !lib.sessions_on(Some(slot)).is_empty() {
        return fail(CKR_SESSION_EXISTS);
    }
    let label = String::from_utf8_lossy(label)
        .trim_end_matches([' ', '\0'])
        .to_string();
    lib.slots.init_token(slot, so_pin, &label)
}
