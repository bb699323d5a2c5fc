//! Metadata through the facade: create with metadata, filtered search
//! against the exhaustive oracle over the filtered subset, deletes.
#![allow(clippy::unwrap_used)]

use ndarray::ArrayView2;
use plaid::types::DocId;
use plaid::{
    Documents, Error, ExactScoring, Filter, FilterPlan, Index, IndexConfig, SearchParams, Value,
    synth,
};
use serde_json::{Value as Json, json};

const DIM: usize = 32;
const N: usize = 400;

fn meta(i: usize) -> Json {
    let section = ["libs", "net", "games", "admin"][i % 4];
    json!({
        "section": section,
        "installed_size": (i * 37) % 1000,
        "order": i % 10,
    })
}

struct Fixture {
    _tmp: tempfile::TempDir,
    index: Index,
    queries: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let corpus = synth::corpus(&synth::SynthConfig::new(N).dim(DIM).lens(5, 30));
    let tmp = tempfile::tempdir().unwrap();
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    let metadata: Vec<Json> = (0..N).map(meta).collect();
    let index = Index::create_with_metadata(
        docs,
        tmp.path().join("idx"),
        &IndexConfig::default(),
        &metadata,
    )
    .unwrap();
    let (rows, lens, _) = synth::queries(&corpus, 20, 8, 5);
    let mut queries = Vec::new();
    let mut off = 0;
    for l in lens {
        queries.push(rows[off * DIM..(off + l) * DIM].to_vec());
        off += l;
    }
    Fixture {
        _tmp: tmp,
        index,
        queries,
    }
}

fn q(v: &[f32]) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((v.len() / DIM, DIM), v).unwrap()
}

/// Exact MaxSim over the decompressed vectors of the allowed documents.
fn oracle(index: &Index, query: &[f32], allowed: &[DocId], k: usize) -> Vec<DocId> {
    let all = index.exhaustive(q(query), N).unwrap();
    all.ids
        .into_iter()
        .filter(|d| allowed.contains(d))
        .take(k)
        .collect()
}

#[test]
fn filtered_search_matches_the_oracle_over_the_subset() {
    let f = fixture();
    // The oracle is exhaustive float MaxSim; score the same way so that the
    // subset plan can be held to identical ids.
    let params = SearchParams::with_k(10).exact_scoring(ExactScoring::Float);
    // (condition, params, plan expected)
    let cases: Vec<(&str, Vec<Value>)> = vec![
        (
            "section = ? AND installed_size < ?",
            vec!["libs".into(), 300.into()],
        ),
        ("\"order\" IN (?, ?)", vec![1.into(), 2.into()]),
        ("section != 'admin'", vec![]),
        ("installed_size >= 0", vec![]),
    ];
    let mut plans = [0usize; 2];
    for (cond, p) in cases {
        let filter = Filter::new(cond, p);
        let allowed = f.index.filter_ids(&filter).unwrap();
        assert_eq!(f.index.filter_count(&filter).unwrap(), allowed.len());
        let expected: Vec<DocId> = (0..N)
            .filter(|&i| {
                let m = meta(i);
                let (s, z, o) = (
                    m["section"].as_str().unwrap(),
                    m["installed_size"].as_u64().unwrap(),
                    m["order"].as_u64().unwrap(),
                );
                match cond {
                    c if c.starts_with("section = ") => s == "libs" && z < 300,
                    c if c.starts_with("\"order\"") => o == 1 || o == 2,
                    c if c.starts_with("section !=") => s != "admin",
                    _ => true,
                }
            })
            .map(|i| DocId::new(i as u32))
            .collect();
        assert_eq!(allowed, expected, "{cond}");
        let mut overlap = 0;
        for query in &f.queries {
            let (hits, plan) = f
                .index
                .search_filtered_with_plan(q(query), &params, &filter)
                .unwrap();
            assert!(hits.ids.iter().all(|d| allowed.contains(d)), "{cond}");
            let want = oracle(&f.index, query, &allowed, 10);
            plans[usize::from(matches!(plan, FilterPlan::Probe { .. }))] += 1;
            if let FilterPlan::Subset { allowed: n } = plan {
                assert_eq!(n, allowed.len());
                // Every allowed document was scored exactly (all fit n_exact).
                assert_eq!(hits.ids, want, "{cond}");
            }
            overlap += hits.ids.iter().filter(|d| want.contains(d)).count();
        }
        let recall = overlap as f64 / (f.queries.len() * 10) as f64;
        assert!(recall >= 0.9, "{cond}: recall {recall}");
    }
    // Both plans were exercised.
    assert!(plans[0] > 0 && plans[1] > 0, "{plans:?}");
}

#[test]
fn metadata_rows_go_with_their_documents() {
    let mut f = fixture();
    let got = f.index.metadata(&[DocId::new(7)]).unwrap();
    assert_eq!(got[0].clone().map(Json::Object), Some(meta(7)));
    // Deleting documents 0..50 (the live-index wiring calls this).
    let gone: Vec<DocId> = (0..50).map(DocId::new).collect();
    assert_eq!(f.index.delete_metadata(&gone).unwrap(), 50);
    assert!(f.index.metadata(&gone).unwrap().iter().all(Option::is_none));
    let all = Filter::new("installed_size >= ?", vec![0.into()]);
    assert_eq!(
        f.index.filter_ids(&all).unwrap(),
        (50..N as u32).map(DocId::new).collect::<Vec<_>>()
    );
    // The same generation: nothing to repair.
    assert!(f.index.repair_metadata().unwrap().removed.is_empty());
}

#[test]
fn index_delete_removes_metadata_rows() {
    let f = fixture();
    let gone = [DocId::new(3), DocId::new(11)];
    assert_eq!(f.index.delete(&gone).unwrap(), 2);
    assert!(f.index.metadata(&gone).unwrap().iter().all(Option::is_none));
    let all = Filter::new("installed_size >= ?", vec![0.into()]);
    let ids = f.index.filter_ids(&all).unwrap();
    assert_eq!(ids.len(), N - 2);
    assert!(!ids.contains(&gone[0]) && !ids.contains(&gone[1]));
}

#[test]
fn rejects_bad_metadata_before_writing() {
    let corpus = synth::corpus(&synth::SynthConfig::new(20).dim(DIM).lens(5, 10));
    let tmp = tempfile::tempdir().unwrap();
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    let dir = tmp.path().join("idx");
    let short: Vec<Json> = (0..19).map(meta).collect();
    let e = Index::create_with_metadata(docs, &dir, &IndexConfig::default(), &short).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MetadataCount {
                docs: 20,
                entries: 19
            }
        ),
        "{e}"
    );
    let mut bad: Vec<Json> = (0..20).map(meta).collect();
    bad[4] = json!("not an object");
    let e = Index::create_with_metadata(docs, &dir, &IndexConfig::default(), &bad).unwrap_err();
    assert!(
        matches!(e, Error::Meta(plaid::meta::Error::NotAnObject { index: 4 })),
        "{e}"
    );
    assert!(!dir.exists());
}

#[test]
fn refuses_filters_and_reports_missing_metadata() {
    let f = fixture();
    let e = f
        .index
        .filter_ids(&Filter::new("section = ?; DROP TABLE x", vec!["a".into()]))
        .unwrap_err();
    assert!(
        matches!(e, Error::Meta(plaid::meta::Error::Filter(_))),
        "{e}"
    );
    let corpus = synth::corpus(&synth::SynthConfig::new(20).dim(DIM).lens(5, 10));
    let tmp = tempfile::tempdir().unwrap();
    let docs = Documents::Flat {
        data: &corpus.embeddings,
        dim: DIM,
        lens: &corpus.doclens,
    };
    let plain = Index::create(docs, tmp.path().join("idx"), &IndexConfig::default()).unwrap();
    assert!(!plain.has_metadata());
    let e = plain.filter_ids(&Filter::new("a = 1", vec![])).unwrap_err();
    assert!(
        matches!(e, Error::Meta(plaid::meta::Error::Missing { .. })),
        "{e}"
    );
}

/// Documents `range` of a fresh corpus (other seed) as flat input.
fn more_docs(n: usize) -> synth::SynthCorpus {
    synth::corpus(&synth::SynthConfig::new(n).dim(DIM).lens(5, 30).seed(99))
}

fn flat(c: &synth::SynthCorpus) -> Documents<'_> {
    Documents::Flat {
        data: &c.embeddings,
        dim: DIM,
        lens: &c.doclens,
    }
}

/// Every id that has metadata, as the API reports it.
fn ids_with_rows(index: &Index) -> Vec<DocId> {
    let all = Filter::new("installed_size IS NOT NULL", vec![]);
    let ids = index.filter_ids(&all).unwrap();
    assert_eq!(index.filter_count(&all).unwrap(), ids.len());
    ids
}

#[test]
fn add_with_metadata_stores_rows_for_the_new_ids() {
    let f = fixture();
    let extra = more_docs(6);
    let objects: Vec<Json> = (N..N + 6).map(meta).collect();
    let ids = f.index.add_with_metadata(flat(&extra), &objects).unwrap();
    assert_eq!(
        ids,
        (N as u32..N as u32 + 6).map(DocId::new).collect::<Vec<_>>()
    );
    let got = f.index.metadata(&ids).unwrap();
    for (m, want) in got.into_iter().zip(&objects) {
        assert_eq!(m.map(Json::Object).as_ref(), Some(want));
    }
    assert_eq!(ids_with_rows(&f.index), f.index.doc_ids());
    // Deleting one of them removes its row.
    f.index.delete(&ids[2..3]).unwrap();
    assert_eq!(ids_with_rows(&f.index), f.index.doc_ids());
    // An index without metadata gets a database on its first such add.
    let tmp = tempfile::tempdir().unwrap();
    let base = more_docs(30);
    let plain = Index::create(flat(&base), tmp.path().join("p"), &IndexConfig::default()).unwrap();
    assert!(!plain.has_metadata());
    let added = plain.add_with_metadata(flat(&extra), &objects).unwrap();
    assert!(plain.has_metadata());
    assert_eq!(ids_with_rows(&plain), added);
}

#[test]
fn rejects_bad_add_metadata_before_writing() {
    let f = fixture();
    let extra = more_docs(5);
    let generation = f.index.generation();
    let short: Vec<Json> = (0..4).map(meta).collect();
    let e = f.index.add_with_metadata(flat(&extra), &short).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MetadataCount {
                docs: 5,
                entries: 4
            }
        ),
        "{e}"
    );
    let mut bad: Vec<Json> = (0..5).map(meta).collect();
    bad[3] = json!([1, 2]);
    let e = f.index.add_with_metadata(flat(&extra), &bad).unwrap_err();
    assert!(
        matches!(e, Error::Meta(plaid::meta::Error::NotAnObject { index: 3 })),
        "{e}"
    );
    bad[3] = json!({"_plaid_id": 1});
    let e = f.index.add_with_metadata(flat(&extra), &bad).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Meta(plaid::meta::Error::BadKey {
                index: 3,
                problem: plaid::meta::KeyProblem::Reserved,
                ..
            })
        ),
        "{e}"
    );
    // Bad documents are refused as by `add`.
    let e = f
        .index
        .add_with_metadata(
            Documents::Flat {
                data: &extra.embeddings,
                dim: DIM,
                lens: &[],
            },
            &[],
        )
        .unwrap_err();
    assert!(matches!(e, Error::NoDocuments), "{e}");
    assert_eq!(f.index.generation(), generation);
    assert_eq!(f.index.num_docs(), N);
    assert_eq!(ids_with_rows(&f.index).len(), N);
}

#[test]
fn rows_of_an_interrupted_add_are_ignored_then_removed_by_the_next_writer() {
    let f = fixture();
    let generation = f.index.generation();
    // What an add_with_metadata killed between its metadata transaction and
    // its manifest commit leaves: rows for the ids it would have assigned,
    // stamped with the generation it would have committed.
    let orphans: Vec<DocId> = (N as u32..N as u32 + 3).map(DocId::new).collect();
    {
        let mut store =
            plaid::meta::MetaStore::open(f.index.dir().join(plaid::meta::DB_FILE)).unwrap();
        store
            .add(
                &orphans,
                &vec![json!({"installed_size": 1}); 3],
                generation + 1,
            )
            .unwrap();
    }
    // Readers never return them.
    assert_eq!(ids_with_rows(&f.index), f.index.doc_ids());
    assert!(
        f.index
            .metadata(&orphans)
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    let (hits, _) = f
        .index
        .search_filtered_with_plan(
            q(&fixture_query()),
            &SearchParams::with_k(10),
            &Filter::new("installed_size = 1", vec![]),
        )
        .unwrap();
    assert!(
        hits.ids.iter().all(|d| !orphans.contains(d)),
        "{:?}",
        hits.ids
    );
    // A plain add is given the same ids (the interrupted add consumed none)
    // and commits the same generation; the orphaned rows must not become
    // its documents' metadata.
    let extra = more_docs(3);
    let ids = f.index.add(flat(&extra)).unwrap();
    assert_eq!(ids, orphans);
    assert_eq!(f.index.generation(), generation + 1);
    assert!(f.index.metadata(&ids).unwrap().iter().all(Option::is_none));
    let store =
        plaid::meta::MetaStore::open_read_only(f.index.dir().join(plaid::meta::DB_FILE)).unwrap();
    assert_eq!(store.all_ids().unwrap().len(), N);
    // The stamp followed the commit, so readers trust the rows again.
    assert_eq!(store.generation().unwrap(), Some(generation + 1));
}

#[test]
fn repair_metadata_reports_the_rows_it_removed() {
    let mut f = fixture();
    let generation = f.index.generation();
    let orphans: Vec<DocId> = (1000..1002).map(DocId::new).collect();
    {
        let mut store =
            plaid::meta::MetaStore::open(f.index.dir().join(plaid::meta::DB_FILE)).unwrap();
        store
            .add(
                &orphans,
                &[json!({"x": 1}), json!({"x": 2})],
                generation + 1,
            )
            .unwrap();
    }
    let report = f.index.repair_metadata().unwrap();
    assert_eq!(report.removed, orphans);
    assert_eq!(report.from_generation, Some(generation + 1));
    assert_eq!(report.to_generation, generation);
    assert!(f.index.repair_metadata().unwrap().removed.is_empty());
}

/// The first query tokens of document 0.
fn fixture_query() -> Vec<f32> {
    let corpus = synth::corpus(&synth::SynthConfig::new(N).dim(DIM).lens(5, 30));
    corpus.embeddings[..5 * DIM].to_vec()
}
