//! The on-disk format of plaid indexes.
//!
//! Most users want the `plaid` facade.
#![deny(unsafe_code)]
