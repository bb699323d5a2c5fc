//! The build device option: `cpu` and `auto` always work, `cuda` fails with a
//! typed error (and writes nothing) where no GPU can be used, and a build on
//! the GPU, where there is one, searches like a CPU build.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use ndarray::ArrayView2;
use plaid::{Device, Documents, Error, Index, IndexConfig, SearchParams, synth};

fn corpus() -> synth::SynthCorpus {
    synth::corpus(&synth::SynthConfig::new(300).dim(32).lens(4, 20))
}

fn gpu_usable() -> bool {
    #[cfg(feature = "cuda")]
    {
        plaid::cuda::available().is_ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

#[test]
fn device_names_parse() {
    assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda);
    assert_eq!("auto".parse::<Device>().unwrap(), Device::Auto);
    match "tpu".parse::<Device>() {
        Err(Error::UnknownDevice { name }) => assert_eq!(name, "tpu"),
        other => panic!("expected UnknownDevice, got {other:?}"),
    }
}

#[test]
fn cuda_without_a_gpu_is_a_typed_error_and_auto_falls_back() {
    let c = corpus();
    let docs = Documents::Flat {
        data: &c.embeddings,
        dim: 32,
        lens: &c.doclens,
    };
    let tmp = tempfile::tempdir().unwrap();
    let cpu = Index::create(docs, tmp.path().join("cpu"), &IndexConfig::default()).unwrap();
    let auto_cfg = IndexConfig::default().device(Device::Auto);
    let auto = Index::create(docs, tmp.path().join("auto"), &auto_cfg).unwrap();
    let q = ArrayView2::from_shape((4, 32), &c.embeddings[..4 * 32]).unwrap();
    let p = SearchParams::with_k(5);
    let (a, b) = (cpu.search(q, &p).unwrap(), auto.search(q, &p).unwrap());
    if gpu_usable() {
        eprintln!("GPU present: auto built on it");
        assert_eq!(a.ids[0], b.ids[0]);
    } else {
        // Without a GPU, auto is exactly the CPU build.
        assert_eq!(a, b);
        let dir = tmp.path().join("cuda");
        let cfg = IndexConfig::default().device(Device::Cuda);
        match Index::create(docs, &dir, &cfg) {
            Err(Error::DeviceUnavailable {
                device: "cuda",
                reason,
            }) => {
                eprintln!("cuda refused: {reason}");
            }
            other => panic!("expected DeviceUnavailable, got {:?}", other.map(|_| ())),
        }
        assert!(!dir.exists(), "a refused build left {}", dir.display());
    }
}
