//! Keys managed the KMS way, over the same API the PKCS#11 functions use (what
//! `ferrohsm-util`'s key commands run): a key is made for one usage (`usage`), has an alias
//! (`CKA_LABEL`, unique per token), a key id (a UUID in `CKA_ID`), a description and a state
//! (`object::lifecycle`), and is used through KMS algorithm names (`algorithm`).

mod algorithm;
mod import;
mod key_id;
mod session;
pub mod usage;

pub use algorithm::{CIPHERS, SIGNATURES};
pub use import::{templates as import_templates, ImportKind};
pub use key_id::{format_key_id, parse_key_id};
pub use session::{KeyInfo, KmsSession};
pub use usage::{Usage, USAGES};
