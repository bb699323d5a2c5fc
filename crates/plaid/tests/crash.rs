//! Crash safety: `plaid add`, `plaid delete`, `plaid compact` and `plaid
//! rebuild` child processes are killed with SIGKILL at random moments. After
//! every kill the index opens, passes `verify`, and holds exactly the
//! operations that had returned success, plus possibly the one that was
//! killed.
//!
//! The second test does the same with metadata: the index is created with
//! metadata, every add carries metadata (`plaid add --metadata`), and after
//! every operation, killed or not, the ids that have metadata (as
//! `filter_ids`, `filter_count` and `metadata` report them, before any
//! repair) are exactly the live ids, each with its own object; after every
//! completed operation the database holds no other row (the writer removed
//! what a killed one left). It also kills `plaid index --metadata` children:
//! each leaves either no index or one with all its metadata.
//!
//! The normal run kills 20 children per test (a few seconds). Set
//! `PLAID_CRASH_KILLS` for a longer run, e.g. `PLAID_CRASH_KILLS=500 cargo
//! test -p plaid --test crash -- --nocapture`, and `PLAID_CRASH_SEED` to vary
//! the schedule.
// The children are the `plaid` binary, which exists only with the `cli` feature.
#![cfg(all(unix, feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use plaid::storage::npy::npy_bytes;
use plaid::types::DocId;
use plaid::{Documents, Filter, Index, IndexConfig, synth};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIM: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Add { first: u32, n: u32 },
    Delete { ids: Vec<u32> },
    Compact,
    Rebuild,
}

impl Op {
    /// The live set after this operation committed on top of `live`.
    fn apply(&self, live: &BTreeSet<u32>) -> BTreeSet<u32> {
        let mut out = live.clone();
        match self {
            Op::Add { first, n } => out.extend(*first..first + n),
            Op::Delete { ids } => ids.iter().for_each(|d| {
                out.remove(d);
            }),
            Op::Compact | Op::Rebuild => {}
        }
        out
    }
}

/// Appends a line to the journal and syncs it, so it survives whatever the
/// child does.
fn journal(file: &mut std::fs::File, line: &str) {
    writeln!(file, "{line}").unwrap();
    file.sync_all().unwrap();
}

fn live_ids(dir: &Path, max_k: &mut usize) -> (BTreeSet<u32>, u64) {
    let report = plaid::storage::verify::verify(dir)
        .unwrap_or_else(|e| panic!("verify failed after a kill: {e}"));
    let index = Index::open(dir).unwrap();
    let ids: BTreeSet<u32> = index.doc_ids().iter().map(|d| d.as_u32()).collect();
    assert_eq!(ids.len() as u64, report.num_docs);
    *max_k = (*max_k).max(index.num_centroids());
    (ids, index.snapshot().manifest().next_doc_id)
}

/// The metadata of document `id` in the metadata run.
fn meta_of(id: u32) -> Json {
    let section = ["libs", "net", "games"][id as usize % 3];
    json!({"doc": id, "section": section})
}

/// What the metadata checks saw, over a run.
#[derive(Debug, Default)]
struct MetaStats {
    /// Kills after which `metadata.db-journal` was left behind.
    journals: usize,
    /// Kills after which the database held rows of ids that are not live.
    orphaned: usize,
}

/// Checks that the ids with metadata, as readers see them (no repair), are
/// exactly `live`, each with its own object. With `exact`, also that the
/// database holds no other row.
fn check_metadata(dir: &Path, live: &BTreeSet<u32>, exact: bool, stats: &mut MetaStats) {
    if dir.join("metadata.db-journal").exists() {
        stats.journals += 1;
    }
    let index = Index::open(dir).unwrap();
    let every = Filter::new("doc IS NOT NULL", vec![]);
    let with_rows: BTreeSet<u32> = index
        .filter_ids(&every)
        .unwrap_or_else(|e| panic!("filter_ids after a kill: {e}"))
        .iter()
        .map(|d| d.as_u32())
        .collect();
    assert_eq!(&with_rows, live, "ids with metadata vs live ids");
    assert_eq!(index.filter_count(&every).unwrap(), live.len());
    let ids: Vec<DocId> = live.iter().map(|&d| DocId::new(d)).collect();
    for (id, m) in ids.iter().zip(index.metadata(&ids).unwrap()) {
        assert_eq!(m.map(Json::Object), Some(meta_of(id.as_u32())), "{id:?}");
    }
    let store = plaid::meta::MetaStore::open_read_only(dir.join(plaid::meta::DB_FILE)).unwrap();
    let rows: BTreeSet<u32> = store
        .all_ids()
        .unwrap()
        .iter()
        .map(|d| d.as_u32())
        .collect();
    if exact {
        assert_eq!(&rows, live, "rows after a completed write");
    } else if &rows != live {
        stats.orphaned += 1;
    }
}

/// Kills `plaid index --metadata` children at random moments: each leaves
/// no index, or an index whose every document has its metadata. Returns
/// (kills, kills that left an index).
fn kill_creates(
    plaid: &str,
    tmp: &Path,
    e: &Path,
    l: &Path,
    n: u32,
    attempts: usize,
    rng: &mut ChaCha8Rng,
) -> (usize, usize) {
    let jsonl: String = (0..n).map(|i| format!("{}\n", meta_of(i))).collect();
    let m = tmp.join("create-m.jsonl");
    std::fs::write(&m, jsonl).unwrap();
    let run = |dir: &Path| {
        Command::new(plaid)
            .args([
                "index",
                &dir.display().to_string(),
                "--embeddings",
                &e.display().to_string(),
                "--doclens",
                &l.display().to_string(),
                "--metadata",
                &m.display().to_string(),
                "--num-centroids",
                "16",
                "--threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // One uninterrupted run to learn how long a create takes.
    let t0 = Instant::now();
    let out = run(&tmp.join("create-full")).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = t0.elapsed();
    let all: BTreeSet<u32> = (0..n).collect();
    let (mut kills, mut created) = (0, 0);
    for k in 0..attempts {
        let dir = tmp.join(format!("create-{k}"));
        let mut child = run(&dir);
        let delay = full.mul_f64(rng.random_range(0.0..1.1));
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() >= delay {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            kills += 1;
        }
        if dir.join("manifest.json").exists() {
            created += usize::from(!out.status.success());
            check_metadata(&dir, &all, true, &mut MetaStats::default());
        } else {
            // Nothing at all: not even a metadata database without its index.
            let empty = std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none());
            assert!(empty, "a killed create left files at {}", dir.display());
        }
    }
    (kills, created)
}

#[test]
fn killed_writers_leave_the_old_or_the_new_state() {
    run(false);
}

#[test]
fn killed_writers_leave_index_and_metadata_in_agreement() {
    run(true);
}

fn run(with_metadata: bool) {
    let kills_wanted: usize = std::env::var("PLAID_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("PLAID_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let plaid = env!("CARGO_BIN_EXE_plaid");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let pool = synth::corpus(&synth::SynthConfig::new(4000).dim(DIM).lens(2, 6).seed(seed));
    // Documents of other topics, added 100 at a time, make the codebook grow.
    let other = synth::corpus(
        &synth::SynthConfig::new(1000)
            .dim(DIM)
            .lens(4, 8)
            .seed(seed + 1000),
    );
    let offsets_of = |c: &synth::SynthCorpus| -> Vec<usize> {
        std::iter::once(0)
            .chain(c.doclens.iter().scan(0, |acc, &l| {
                *acc += l;
                Some(*acc)
            }))
            .collect()
    };
    let offsets = offsets_of(&pool);
    let other_offsets = offsets_of(&other);
    let mut other_pos = 0usize;
    let initial = 30;
    let initial_docs = Documents::Flat {
        data: &pool.embeddings[..offsets[initial] * DIM],
        dim: DIM,
        lens: &pool.doclens[..initial],
    };
    let config = IndexConfig::default().num_centroids(Some(16));
    let mut meta_stats = MetaStats::default();
    let mut create_kills = (0, 0);
    if with_metadata {
        let e = tmp.path().join("create-e.npy");
        let l = tmp.path().join("create-l.npy");
        std::fs::write(
            &e,
            npy_bytes(
                &[offsets[initial], DIM],
                &pool.embeddings[..offsets[initial] * DIM],
            )
            .unwrap(),
        )
        .unwrap();
        let lens: Vec<i64> = pool.doclens[..initial].iter().map(|&l| l as i64).collect();
        std::fs::write(&l, npy_bytes(&[initial], &lens).unwrap()).unwrap();
        let attempts = (kills_wanted / 4).max(3);
        create_kills = kill_creates(
            plaid,
            tmp.path(),
            &e,
            &l,
            initial as u32,
            attempts,
            &mut rng,
        );
        let objects: Vec<Json> = (0..initial as u32).map(meta_of).collect();
        drop(Index::create_with_metadata(initial_docs, &dir, &config, &objects).unwrap());
    } else {
        drop(Index::create(initial_docs, &dir, &config).unwrap());
    }
    let mut live: BTreeSet<u32> = (0..initial as u32).collect();
    let mut next_id = initial as u32;
    let mut pool_pos = initial;
    let mut log = std::fs::File::create(tmp.path().join("journal.txt")).unwrap();

    let (mut kills, mut done, mut in_flight_applied) = (0usize, 0usize, 0usize);
    let mut max_k = 0usize;
    // Typical duration of a finished operation, to spread kills over it.
    let mut typical = Duration::from_millis(20);
    let started = Instant::now();
    while kills < kills_wanted {
        let roll = rng.random_range(0..100);
        let (op, args): (Op, Vec<String>) = if roll < 50 || live.len() < 10 {
            let big = roll < 4;
            let (src, offs, pos) = if big {
                (&other, &other_offsets, &mut other_pos)
            } else {
                (&pool, &offsets, &mut pool_pos)
            };
            let n = if big {
                100
            } else {
                rng.random_range(1..=6usize)
            };
            if *pos + n > src.doclens.len() {
                *pos = 0;
            }
            let (a, b) = (offs[*pos], offs[*pos + n]);
            let lens: Vec<i64> = src.doclens[*pos..*pos + n]
                .iter()
                .map(|&l| l as i64)
                .collect();
            *pos += n;
            let e = tmp.path().join("add-e.npy");
            let l = tmp.path().join("add-l.npy");
            std::fs::write(
                &e,
                npy_bytes(&[b - a, DIM], &src.embeddings[a * DIM..b * DIM]).unwrap(),
            )
            .unwrap();
            std::fs::write(&l, npy_bytes(&[n], &lens).unwrap()).unwrap();
            let mut args = vec![
                "add".into(),
                dir.display().to_string(),
                "--embeddings".into(),
                e.display().to_string(),
                "--doclens".into(),
                l.display().to_string(),
                "--threads".into(),
                "1".into(),
            ];
            if with_metadata {
                let m = tmp.path().join("add-m.jsonl");
                let jsonl: String = (next_id..next_id + n as u32)
                    .map(|id| format!("{}\n", meta_of(id)))
                    .collect();
                std::fs::write(&m, jsonl).unwrap();
                args.extend(["--metadata".into(), m.display().to_string()]);
            }
            (
                Op::Add {
                    first: next_id,
                    n: n as u32,
                },
                args,
            )
        } else if roll < 88 {
            let all: Vec<u32> = live.iter().copied().collect();
            let k = rng.random_range(1..=4usize);
            let ids: BTreeSet<u32> = (0..k)
                .map(|_| all[rng.random_range(0..all.len())])
                .collect();
            let list: Vec<String> = ids.iter().map(u32::to_string).collect();
            (
                Op::Delete {
                    ids: ids.into_iter().collect(),
                },
                vec![
                    "delete".into(),
                    dir.display().to_string(),
                    "--ids".into(),
                    list.join(","),
                ],
            )
        } else if roll < 96 {
            (
                Op::Compact,
                vec!["compact".into(), dir.display().to_string()],
            )
        } else {
            (
                Op::Rebuild,
                vec![
                    "rebuild".into(),
                    dir.display().to_string(),
                    "--num-centroids".into(),
                    "16".into(),
                    "--threads".into(),
                    "1".into(),
                ],
            )
        };
        journal(&mut log, &format!("begin {op:?}"));
        let t0 = Instant::now();
        let mut child = Command::new(plaid)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = typical.mul_f64(rng.random_range(0.0..1.3));
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() >= delay {
                let _ = child.kill(); // SIGKILL; harmless when it just exited
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let out = child.wait_with_output().unwrap();
        let expected_new = op.apply(&live);
        if out.status.success() {
            journal(&mut log, &format!("done {op:?}"));
            done += 1;
            typical = (typical * 7 + t0.elapsed()) / 8;
            live = expected_new;
            if let Op::Add { n, .. } = op {
                next_id += n;
            }
            let (ids, _) = live_ids(&dir, &mut max_k);
            assert_eq!(ids, live, "state after a successful {op:?}");
            if with_metadata {
                check_metadata(&dir, &live, true, &mut meta_stats);
            }
        } else {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(9),
                "{op:?} failed on its own: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            kills += 1;
            // Killed before it finished: aim a little later next time, so
            // kills spread over the whole operation and some complete.
            typical = typical.mul_f64(1.15).min(Duration::from_secs(2));
            journal(&mut log, &format!("killed {op:?}"));
            let (ids, next) = live_ids(&dir, &mut max_k);
            if ids == expected_new && ids != live {
                in_flight_applied += 1;
            }
            assert!(
                ids == live || ids == expected_new,
                "after killing {op:?}: index holds {} ids, expected {} (old) or {} (new)",
                ids.len(),
                live.len(),
                expected_new.len()
            );
            match op {
                Op::Add { n, .. } if ids == expected_new => {
                    next_id += n;
                    assert_eq!(next, u64::from(next_id));
                }
                // An interrupted add consumed no ids.
                Op::Add { .. } => assert_eq!(next, u64::from(next_id)),
                _ => {}
            }
            live = ids;
            if with_metadata {
                check_metadata(&dir, &live, false, &mut meta_stats);
            }
        }
    }
    // A last writer cleans up whatever the kills left; then only the
    // manifest, the lock file and listed files remain.
    let index = Index::open(&dir).unwrap();
    index.compact().unwrap();
    index.delete(&[]).unwrap();
    let listed: BTreeSet<String> = index.snapshot().manifest().files.keys().cloned().collect();
    let centroids = index.num_centroids();
    drop(index);
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json" && n != "write.lock")
        // metadata.db and SQLite's own side files (a rolled-back journal can
        // outlive the kill that left it; SQLite owns it, and the metadata
        // check below reads the database's committed state).
        .filter(|n| !(with_metadata && n.starts_with(plaid::meta::DB_FILE)))
        .collect();
    assert_eq!(present, listed);
    if with_metadata {
        check_metadata(&dir, &live, true, &mut meta_stats);
        eprintln!(
            "crash test (metadata): {} of {} creates killed ({} after the rename), \
             {} kills left a journal, {} left rows of ids that are not live",
            create_kills.0,
            (kills_wanted / 4).max(3),
            create_kills.1,
            meta_stats.journals,
            meta_stats.orphaned
        );
    }
    eprintln!(
        "crash test: {kills} kills ({in_flight_applied} after the commit point), \
         {done} completed operations, {} live documents, {centroids} centroids at the end \
         (16 trained, up to {max_k} grown), {:.1} s",
        live.len(),
        started.elapsed().as_secs_f64()
    );
}
