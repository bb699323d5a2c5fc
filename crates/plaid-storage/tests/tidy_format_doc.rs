//! Tidy: `docs/format.md` describes the format this crate writes.
//!
//! The document states the format version and names every manifest field;
//! these tests fail when the code moves on without it.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use plaid_storage::manifest::{
    CodebookFiles, FORMAT_NAME, FORMAT_VERSION, FileEntry, MANIFEST_FILE, Manifest, QuantizerRepr,
    SegmentEntry, SegmentFiles,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn format_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/format.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A manifest with every field present: one segment and one file entry.
fn sample_manifest() -> Manifest {
    let name = |s: &str| s.to_string();
    Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        generation: 1,
        writer: name("plaid 0.1.0"),
        dim: 16,
        nbits: 2,
        quantizer: QuantizerRepr::PerDim,
        num_centroids: 256,
        code_bytes: 2,
        outlier_radius: 0.1,
        next_doc_id: 40,
        next_segment_id: 2,
        codebook: CodebookFiles {
            centroids: name("centroids.1.npy"),
            centroid_scales: Some(name("centroid_scales.1.npy")),
            bucket_cutoffs: name("bucket_cutoffs.1.npy"),
            bucket_weights: name("bucket_weights.1.npy"),
            avg_residual: name("avg_residual.1.npy"),
        },
        segments: vec![SegmentEntry {
            id: 1,
            num_docs: 40,
            num_tokens: 320,
            files: SegmentFiles {
                doc_ids: name("seg-000001.doc_ids.npy"),
                doclens: name("seg-000001.doclens.npy"),
                codes: name("seg-000001.codes.npy"),
                residuals: name("seg-000001.residuals.npy"),
                ivf_lengths: None,
                ivf: None,
            },
            num_deleted: 1,
            tombstones: Some(name("seg-000001.del-000002.npy")),
            code_bits: Some(9),
        }],
        files: BTreeMap::from([(
            name("centroids.1.npy"),
            FileEntry {
                len_bytes: 16512,
                crc32: 0,
            },
        )]),
    }
}

/// Every object key in `value`, at any depth, except the keys of the
/// top-level `files` map: those are file names, not field names (the fields
/// of its entries are collected).
fn field_names(manifest: &serde_json::Value) -> BTreeSet<String> {
    fn walk(value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    out.insert(key.clone());
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    let top = manifest.as_object().unwrap();
    for (key, value) in top {
        out.insert(key.clone());
        match (key.as_str(), value) {
            ("files", serde_json::Value::Object(entries)) => {
                entries.values().for_each(|entry| walk(entry, &mut out));
            }
            _ => walk(value, &mut out),
        }
    }
    out
}

#[test]
fn format_doc_states_the_current_version() {
    let doc = format_doc();
    let versions: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Format version:"))
        .map(str::trim)
        .collect();
    assert_eq!(
        versions,
        [FORMAT_VERSION.to_string()],
        "docs/format.md must have exactly one `Format version: N` line, \
         with N = plaid_storage::manifest::FORMAT_VERSION"
    );
}

#[test]
fn format_doc_names_every_manifest_field() {
    let doc = format_doc();
    let json = serde_json::to_value(sample_manifest()).unwrap();
    let fields = field_names(&json);
    // The sample must reach every level: these come from the nested structs.
    for nested in ["centroids", "doc_ids", "len_bytes", "crc32"] {
        assert!(fields.contains(nested), "sample manifest lacks `{nested}`");
    }
    assert!(
        !fields.contains("centroids.1.npy"),
        "file names are not fields"
    );
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/format.md does not name these manifest fields in backticks: {missing:?}"
    );
}

#[test]
fn format_doc_names_the_manifest_constants() {
    let doc = format_doc();
    let quantizers = [QuantizerRepr::Global, QuantizerRepr::PerDim].map(|q| {
        serde_json::to_value(q)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    });
    for value in [FORMAT_NAME, MANIFEST_FILE]
        .into_iter()
        .chain(quantizers.iter().map(String::as_str))
    {
        assert!(
            doc.contains(&format!("`{value}`")),
            "docs/format.md does not mention `{value}`"
        );
    }
}
