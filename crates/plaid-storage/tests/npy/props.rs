//! Property tests: round trips and never-panic on hostile bytes.

use super::*;
use proptest::prelude::*;

const DTYPES: [DType; 9] = [
    DType::F16,
    DType::F32,
    DType::F64,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

/// Writes `bytes` as an array of `dtype` through the typed writer.
fn write_as(dtype: DType, shape: &[usize], bytes: &[u8]) -> Vec<u8> {
    fn typed<T: plaid_storage::npy::Element>(shape: &[usize], bytes: &[u8]) -> Vec<u8> {
        let mut data = vec![T::zeroed(); bytes.len() / std::mem::size_of::<T>()];
        bytemuck::cast_slice_mut::<T, u8>(&mut data).copy_from_slice(bytes);
        let mut out = Vec::new();
        write_npy(&mut out, shape, &data).unwrap();
        assert_eq!(npy_bytes(shape, &data).unwrap(), out);
        out
    }
    match dtype {
        DType::F16 => typed::<f16>(shape, bytes),
        DType::F32 => typed::<f32>(shape, bytes),
        DType::F64 => typed::<f64>(shape, bytes),
        DType::I32 => typed::<i32>(shape, bytes),
        DType::I64 => typed::<i64>(shape, bytes),
        DType::U8 => typed::<u8>(shape, bytes),
        DType::U16 => typed::<u16>(shape, bytes),
        DType::U32 => typed::<u32>(shape, bytes),
        DType::U64 => typed::<u64>(shape, bytes),
        _ => unreachable!("DTYPES lists every variant"),
    }
}

/// A dtype, a shape and random data bytes for it.
fn array() -> impl Strategy<Value = (DType, Vec<usize>, Vec<u8>)> {
    (0..DTYPES.len(), prop::collection::vec(0usize..6, 0..4)).prop_flat_map(|(d, shape)| {
        let dtype = DTYPES[d];
        let len = shape.iter().product::<usize>() * dtype.itemsize();
        (
            Just(dtype),
            Just(shape),
            prop::collection::vec(any::<u8>(), len),
        )
    })
}

/// Parsing and reading must not panic; what they accept must be consistent.
fn read_without_panic(bytes: &[u8]) {
    if let Ok(header) = parse_header(bytes) {
        assert!(header.data_offset <= bytes.len());
    }
    if let Ok(array) = read_npy_from_bytes(bytes) {
        let header = parse_header(bytes).unwrap();
        assert_eq!(array.as_bytes(), &bytes[header.data_offset..]);
        assert_eq!(array.shape(), header.shape.as_slice());
    }
}

/// A valid file with a few bytes replaced, perhaps truncated.
fn mutated_file() -> impl Strategy<Value = Vec<u8>> {
    (
        array(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|((dtype, shape, bytes), edits, cut)| {
            let mut file = write_as(dtype, &shape, &bytes);
            for (index, byte) in edits {
                let i = index.index(file.len());
                file[i] = byte;
            }
            if let Some(cut) = cut {
                file.truncate(cut.index(file.len() + 1));
            }
            file
        })
}

proptest! {
    #[test]
    fn roundtrip_is_byte_identical((dtype, shape, bytes) in array()) {
        let file = write_as(dtype, &shape, &bytes);
        let array = read_npy_from_bytes(&file).unwrap();
        prop_assert_eq!(array.dtype(), dtype);
        prop_assert_eq!(array.shape(), shape.as_slice());
        prop_assert_eq!(array.as_bytes(), bytes.as_slice());
        prop_assert_eq!(parse_header(&file).unwrap().data_offset % 64, 0);
        prop_assert_eq!(write_as(dtype, array.shape(), array.as_bytes()), file);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_without_panic(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        version in prop::sample::select(vec![1u8, 2, 3]),
        text in "[{}()\\[\\]'\",: a-z_0-9<>|LTF\n-]{0,120}",
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        read_without_panic(&npy_file(version, &text, 1, &data));
    }

    #[test]
    fn mutated_files_never_panic(file in mutated_file()) {
        read_without_panic(&file);
    }

    #[test]
    fn file_reader_agrees_with_bytes_reader(
        file in prop_oneof![
            mutated_file(),
            (prop::sample::select(vec![1u8, 2, 3]), prop::collection::vec(any::<u8>(), 0..8))
                .prop_map(|(version, rest)| {
                    let mut file = b"\x93NUMPY".to_vec();
                    file.extend_from_slice(&[version, 0]);
                    file.extend_from_slice(&rest);
                    file
                }),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        std::fs::write(&path, &file).unwrap();
        let from_file = match read_npy(&path) {
            Ok(array) => Ok(array.as_bytes().to_vec()),
            Err(Error::Npy { kind, .. }) => Err(kind),
            Err(other) => panic!("unexpected error {other:?}"),
        };
        let from_bytes = read_npy_from_bytes(&file).map(|a| a.as_bytes().to_vec());
        prop_assert_eq!(from_file, from_bytes);
    }
}
