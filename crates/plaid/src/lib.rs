//! plaid: multi-vector (ColBERT-style late interaction) search.
#![forbid(unsafe_code)]

pub use plaid_codec as codec;
pub use plaid_kmeans as kmeans;
pub use plaid_search as search;
pub use plaid_storage as storage;
