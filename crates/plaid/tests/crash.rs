//! Crash safety: `plaid add`, `plaid delete`, `plaid compact` and `plaid
//! rebuild` child processes are killed with SIGKILL at random moments. After
//! every kill the index opens, passes `verify`, and holds exactly the
//! operations that had returned success, plus possibly the one that was
//! killed.
//!
//! The normal run kills 20 children (a few seconds). Set `PLAID_CRASH_KILLS`
//! for a longer run, e.g. `PLAID_CRASH_KILLS=500 cargo test -p plaid --test
//! crash -- --nocapture`, and `PLAID_CRASH_SEED` to vary the schedule.
// The children are the `plaid` binary, which exists only with the `cli` feature.
#![cfg(all(unix, feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use plaid::storage::npy::npy_bytes;
use plaid::{Documents, Index, IndexConfig, synth};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

#[test]
fn killed_writers_leave_the_old_or_the_new_state() {
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
    drop(
        Index::create(
            Documents::Flat {
                data: &pool.embeddings[..offsets[initial] * DIM],
                dim: DIM,
                lens: &pool.doclens[..initial],
            },
            &dir,
            &IndexConfig::default().num_centroids(Some(16)),
        )
        .unwrap(),
    );
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
            (
                Op::Add {
                    first: next_id,
                    n: n as u32,
                },
                vec![
                    "add".into(),
                    dir.display().to_string(),
                    "--embeddings".into(),
                    e.display().to_string(),
                    "--doclens".into(),
                    l.display().to_string(),
                    "--threads".into(),
                    "1".into(),
                ],
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
        .collect();
    assert_eq!(present, listed);
    eprintln!(
        "crash test: {kills} kills ({in_flight_applied} after the commit point), \
         {done} completed operations, {} live documents, {centroids} centroids at the end \
         (16 trained, up to {max_k} grown), {:.1} s",
        live.len(),
        started.elapsed().as_secs_f64()
    );
}
