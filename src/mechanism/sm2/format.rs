//! The optional `CK_ULONG` format code of `CKM_SM2_RAW` / `CKM_SM2_CIPHER_DER` (sm2.md):
//! 0 auto (default), 1 DER, 2 raw C1C3C2, 3 raw C1C2C3, OR 0x100 = C1 without the 04 prefix
//! (raw forms only). On Decrypt it restricts the accepted form, on Encrypt it picks the output.

use crate::crypto::sm2::{CiphertextForm, RawOrder};
use crate::error::{Error, Result};
use crate::mechanism::MechanismParam;
use crate::vendor::{
    SM2_CIPHER_FORMAT_AUTO, SM2_CIPHER_FORMAT_C1C2C3, SM2_CIPHER_FORMAT_C1C3C2,
    SM2_CIPHER_FORMAT_DER, SM2_CIPHER_FORMAT_NO_PREFIX,
};
use cryptoki_sys::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatCode {
    base: CK_ULONG,
    no_prefix: bool,
}

fn param_invalid(why: &'static str) -> Error {
    Error::with(CKR_MECHANISM_PARAM_INVALID, why)
}

impl FormatCode {
    /// Reads the parameter: absent = auto; otherwise exactly one native-endian `CK_ULONG`
    /// holding a known code, else `CKR_MECHANISM_PARAM_INVALID`.
    pub fn from_param(param: &MechanismParam) -> Result<Self> {
        let bytes = param
            .bytes()
            .ok_or_else(|| param_invalid("SM2 cipher parameter is a CK_ULONG format code"))?;
        let code = if bytes.is_empty() {
            SM2_CIPHER_FORMAT_AUTO
        } else {
            let raw = <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(bytes)
                .map_err(|_| param_invalid("SM2 format code is not a CK_ULONG"))?;
            CK_ULONG::from_ne_bytes(raw)
        };
        Self::from_code(code)
    }

    fn from_code(code: CK_ULONG) -> Result<Self> {
        let no_prefix = code & SM2_CIPHER_FORMAT_NO_PREFIX != 0;
        let base = code & !SM2_CIPHER_FORMAT_NO_PREFIX;
        match base {
            SM2_CIPHER_FORMAT_AUTO | SM2_CIPHER_FORMAT_C1C3C2 | SM2_CIPHER_FORMAT_C1C2C3 => {}
            SM2_CIPHER_FORMAT_DER if !no_prefix => {}
            SM2_CIPHER_FORMAT_DER => return Err(param_invalid("DER has no 04 prefix to omit")),
            _ => return Err(param_invalid("unknown SM2 format code")),
        }
        Ok(FormatCode { base, no_prefix })
    }

    fn raw(&self, order: RawOrder) -> CiphertextForm {
        CiphertextForm::Raw {
            order,
            prefix: !self.no_prefix,
        }
    }

    /// The form Decrypt accepts; `None` = auto-detection (the prefix flag adds nothing
    /// there: detection finds both raw variants).
    pub fn decrypt_form(&self) -> Option<CiphertextForm> {
        match self.base {
            SM2_CIPHER_FORMAT_DER => Some(CiphertextForm::Der),
            SM2_CIPHER_FORMAT_C1C3C2 => Some(self.raw(RawOrder::C1C3C2)),
            SM2_CIPHER_FORMAT_C1C2C3 => Some(self.raw(RawOrder::C1C2C3)),
            _ => None,
        }
    }

    /// The form Encrypt writes; auto means the mechanism's own form (`default`).
    pub fn encrypt_form(&self, default: CiphertextForm) -> Result<CiphertextForm> {
        Ok(match self.base {
            SM2_CIPHER_FORMAT_DER => CiphertextForm::Der,
            SM2_CIPHER_FORMAT_C1C3C2 => self.raw(RawOrder::C1C3C2),
            SM2_CIPHER_FORMAT_C1C2C3 => self.raw(RawOrder::C1C2C3),
            _ => match default {
                CiphertextForm::Der if self.no_prefix => {
                    return Err(param_invalid("DER has no 04 prefix to omit"))
                }
                CiphertextForm::Der => CiphertextForm::Der,
                CiphertextForm::Raw { order, .. } => self.raw(order),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(code: CK_ULONG) -> MechanismParam {
        MechanismParam::Bytes(code.to_ne_bytes().to_vec())
    }

    const RAW_PREFIXED: CiphertextForm = CiphertextForm::Raw {
        order: RawOrder::C1C3C2,
        prefix: true,
    };

    #[test]
    fn codes() {
        let auto = FormatCode::from_param(&MechanismParam::None).unwrap();
        assert_eq!(auto.decrypt_form(), None);
        assert_eq!(
            auto.encrypt_form(CiphertextForm::Der).unwrap(),
            CiphertextForm::Der
        );
        assert_eq!(auto.encrypt_form(RAW_PREFIXED).unwrap(), RAW_PREFIXED);
        assert_eq!(FormatCode::from_param(&param(0)).unwrap(), auto);

        let der = FormatCode::from_param(&param(1)).unwrap();
        assert_eq!(der.decrypt_form(), Some(CiphertextForm::Der));
        assert_eq!(der.encrypt_form(RAW_PREFIXED).unwrap(), CiphertextForm::Der);

        let c1c2c3_bare = FormatCode::from_param(&param(0x103)).unwrap();
        assert_eq!(
            c1c2c3_bare.decrypt_form(),
            Some(CiphertextForm::Raw {
                order: RawOrder::C1C2C3,
                prefix: false
            })
        );
        let bare_auto = FormatCode::from_param(&param(0x100)).unwrap();
        assert_eq!(
            bare_auto.encrypt_form(RAW_PREFIXED).unwrap(),
            CiphertextForm::Raw {
                order: RawOrder::C1C3C2,
                prefix: false
            }
        );
        assert_eq!(
            bare_auto.encrypt_form(CiphertextForm::Der).unwrap_err().rv,
            CKR_MECHANISM_PARAM_INVALID
        );
    }

    #[test]
    fn bad_codes() {
        for code in [4, 0x101, 0x200, 0x102 | 0x1000, CK_ULONG::MAX] {
            assert_eq!(
                FormatCode::from_param(&param(code)).unwrap_err().rv,
                CKR_MECHANISM_PARAM_INVALID,
                "code {code:#x}"
            );
        }
        for bytes in [vec![2u8], vec![2, 0, 0, 0], vec![0; 9]] {
            assert_eq!(
                FormatCode::from_param(&MechanismParam::Bytes(bytes))
                    .unwrap_err()
                    .rv,
                CKR_MECHANISM_PARAM_INVALID
            );
        }
        let structured = MechanismParam::Pss {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32,
        };
        assert_eq!(
            FormatCode::from_param(&structured).unwrap_err().rv,
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}
