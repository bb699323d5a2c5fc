//! PLAID search over borrowed index views. This crate does no IO.
//!
//! Most users want the `plaid` facade.
#![deny(unsafe_code)]
