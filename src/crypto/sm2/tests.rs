//! Tests of the SM2 adapter.
