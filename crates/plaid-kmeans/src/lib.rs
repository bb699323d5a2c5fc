//! Deterministic Lloyd k-means for PLAID codebooks.
//!
//! Most users want the `plaid` facade, which trains the codebook for you.
//! Use this crate directly to cluster `f32` rows yourself.
#![forbid(unsafe_code)]
