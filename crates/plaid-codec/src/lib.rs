//! Residual quantisation and bit packing for PLAID indexes.
//!
//! Most users want the `plaid` facade.
#![forbid(unsafe_code)]

pub mod types;
