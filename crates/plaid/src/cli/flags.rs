//! Flag definitions. Names are stable: scripts depend on them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Multi-vector (ColBERT/PLAID) search.
#[derive(Debug, Parser)]
#[command(name = "plaid", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an index from token embeddings.
    Index(IndexArgs),
    /// Search an index with query embeddings.
    Search(SearchArgs),
    /// Describe an index.
    Info(InfoArgs),
    /// Import a next-plaid or fast-plaid index (the source is only read).
    Import(ImportArgs),
    /// Build and search an index of generated sample data.
    Demo(DemoArgs),
    /// Append documents to an index (new ids continue after the largest ever assigned).
    Add(AddArgs),
    /// Delete documents by id.
    Delete(DeleteArgs),
    /// Rewrite the index as one segment of live documents.
    Compact(DirArgs),
    /// Check every invariant of an index's files; non-zero exit when one fails.
    Verify(DirArgs),
    /// Retrain the codebook from the live documents' decompressed vectors.
    Rebuild(RebuildArgs),
    /// Print documents' metadata, or the documents matching a filter.
    Meta(MetaArgs),
}

impl Command {
    pub(crate) fn threads(&self) -> Option<usize> {
        match self {
            Command::Index(a) => a.threads,
            Command::Search(a) => a.threads,
            Command::Demo(a) => a.threads,
            Command::Add(a) => a.threads,
            Command::Rebuild(a) => a.threads,
            Command::Info(_)
            | Command::Import(_)
            | Command::Meta(_)
            | Command::Delete(_)
            | Command::Compact(_)
            | Command::Verify(_) => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct IndexArgs {
    /// Directory to create (must not exist or be empty).
    pub(crate) dir: PathBuf,
    /// float16 or float32 `[T, D]` npy: documents' tokens concatenated.
    #[arg(long)]
    pub(crate) embeddings: PathBuf,
    /// int32 or int64 `[N]` npy: tokens per document.
    #[arg(long)]
    pub(crate) doclens: PathBuf,
    /// Residual bits per dimension (1, 2 or 4).
    #[arg(long, default_value_t = 4)]
    pub(crate) nbits: u8,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Number of centroids (default: 2^floor(log2(16·sqrt(T)))).
    #[arg(long)]
    pub(crate) num_centroids: Option<usize>,
    /// Residual quantiser: `per-dim` (default) or `global` (next-plaid's).
    #[arg(long, default_value = "per-dim")]
    pub(crate) quantizer: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// JSON lines: one metadata object per document, in document order.
    #[arg(long)]
    pub(crate) metadata: Option<PathBuf>,
    /// Where k-means and encoding run: cpu, cuda (fails without a GPU) or
    /// auto (a GPU when one is usable, else the CPU).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// float16 or float32 `[sum(query_lens), D]` npy.
    #[arg(long)]
    pub(crate) queries: PathBuf,
    /// int32 or int64 `[Q]` npy: tokens per query.
    #[arg(long)]
    pub(crate) query_lens: PathBuf,
    /// Documents per query.
    #[arg(long, default_value_t = 10)]
    pub(crate) k: usize,
    /// Search only the first N queries of the file.
    #[arg(long)]
    pub(crate) max_queries: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Write int64 `[Q, k]` ids here (-1 where fewer than k).
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Write float32 `[Q, k]` scores here.
    #[arg(long)]
    pub(crate) scores: Option<PathBuf>,
    /// Also time the batch API.
    #[arg(long)]
    pub(crate) batch: bool,
    /// Time each pipeline stage over one more pass and report the mean per
    /// query (`profile` in the JSON summary).
    #[arg(long)]
    pub(crate) profile: bool,
    /// Exact MaxSim over every document (the index's quality ceiling).
    #[arg(long)]
    pub(crate) exhaustive: bool,
    /// Timed passes over the queries (the median pass gives qps).
    #[arg(long, default_value_t = 1)]
    pub(crate) repeats: usize,
    /// Centroids probed per query token for k <= 10 (x2 for k <= 100, x4 above).
    #[arg(long, default_value_t = 8)]
    pub(crate) n_probe: usize,
    /// Probe exactly --n-probe centroids per token, whatever k.
    #[arg(long)]
    pub(crate) fixed_probe: bool,
    /// Candidates kept after approximate scoring (a quarter get exact MaxSim).
    #[arg(long, default_value_t = 2048)]
    pub(crate) n_full_scores: usize,
    /// Drop probed centroids scoring below this for every query token.
    #[arg(long)]
    pub(crate) centroid_score_threshold: Option<f32>,
    /// Exact-stage arithmetic: int8 (query and residual weights rounded to
    /// bytes, VNNI where the CPU has it) or float (decoded f32, slower).
    #[arg(long, default_value = "int8", value_parser = ["int8", "float"])]
    pub(crate) exact_scoring: String,
    /// Where to search: cpu, cuda (fails without a GPU) or auto (a GPU when
    /// one is usable, else the CPU).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// Directory to create (must not exist or be empty).
    pub(crate) dir: PathBuf,
    /// The next-plaid or fast-plaid index directory to read.
    pub(crate) src: PathBuf,
    /// Library that wrote SRC: `next-plaid` or `fast-plaid` (default: detect).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Number of generated documents.
    #[arg(long, default_value_t = 2000)]
    pub(crate) docs: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// float16 or float32 `[T, D]` npy: the new documents' tokens concatenated.
    #[arg(long)]
    pub(crate) embeddings: PathBuf,
    /// int32 or int64 `[N]` npy: tokens per new document.
    #[arg(long)]
    pub(crate) doclens: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// JSON lines: one metadata object per new document, in document order.
    #[arg(long)]
    pub(crate) metadata: Option<PathBuf>,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// Comma-separated document ids, e.g. `3,17,42`.
    #[arg(long, value_delimiter = ',', required_unless_present = "ids_file")]
    pub(crate) ids: Vec<u32>,
    /// A text file with one document id per line.
    #[arg(long, conflicts_with = "ids")]
    pub(crate) ids_file: Option<PathBuf>,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DirArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RebuildArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// Residual bits per dimension (default: the index's).
    #[arg(long)]
    pub(crate) nbits: Option<u8>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Number of centroids (default: 2^floor(log2(16·sqrt(T)))).
    #[arg(long)]
    pub(crate) num_centroids: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print a one-line JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A metadata filter: a condition and its placeholder values.
#[derive(Debug, clap::Args)]
pub(crate) struct FilterArgs {
    /// Only documents whose metadata matches this condition, e.g.
    /// "section = ? AND installed_size < ?" (comparisons, LIKE, IN, BETWEEN,
    /// IS [NOT] NULL, AND/OR/NOT, parentheses; quote keyword column names).
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// A value for the next `?` of --filter: a JSON scalar when it parses
    /// as one (500, 2.5, true, null, "500"), else the text itself.
    #[arg(long = "param", allow_hyphen_values = true)]
    pub(crate) params: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MetaArgs {
    /// Index directory.
    pub(crate) dir: PathBuf,
    /// Comma-separated document ids to print.
    #[arg(long, value_delimiter = ',')]
    pub(crate) ids: Vec<u32>,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// With --filter: print only the number of matching documents.
    #[arg(long)]
    pub(crate) count: bool,
    /// Print a one-line JSON summary as the last line (with --count: the count).
    #[arg(long)]
    pub(crate) json: bool,
}
