//! The object model: attribute sets, the policy table, and object creation rules.

pub mod attributes;
pub mod check_value;
pub mod index;
pub mod lifecycle;
pub mod pkcs8;
pub mod policy;
pub mod public_half;
pub mod rules;
pub mod spki;

pub use attributes::Attributes;
