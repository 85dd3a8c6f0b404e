//! Tests of the SM2 mechanisms.
