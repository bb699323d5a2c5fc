//! The npy reader and writer, through the public API.
#![allow(clippy::unwrap_used)] // Tests unwrap freely.

use std::path::Path;

use half::f16;
use plaid_storage::npy::{
    DType, MAX_HEADER_LEN, NpyArray, npy_bytes, parse_header, read_npy, read_npy_from_bytes,
    write_npy,
};
use plaid_storage::{Error, HeaderFault, NpyErrorKind};

/// An npy file with the given version, raw header dictionary and data.
///
/// The dictionary is padded with spaces and `\n` to a multiple of `align`
/// bytes (NumPy uses 64; other writers use 16 or nothing).
fn npy_file(version: u8, dict: &str, align: usize, data: &[u8]) -> Vec<u8> {
    let preamble = if version == 1 { 10 } else { 12 };
    let header_len = (preamble + dict.len() + 1).next_multiple_of(align) - preamble;
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&u16::try_from(header_len).unwrap().to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(header_len).unwrap().to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(preamble + header_len - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn dict(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

fn malformed(reason: HeaderFault) -> NpyErrorKind {
    NpyErrorKind::MalformedHeader { reason }
}

/// Parses `dict` as the header of a version 1.0 file and compares.
fn check_header(dict: &str, expected: Result<(DType, &[usize]), NpyErrorKind>) {
    let file = npy_file(1, dict, 64, &[]);
    let got = parse_header(&file);
    let got = got.as_ref().map(|h| (h.dtype, h.shape.as_slice()));
    assert_eq!(
        got,
        expected.as_ref().map(|&(d, s)| (d, s)),
        "header {dict:?}"
    );
}

/// Reads `bytes` in memory and expects the error `kind`.
fn check_rejects(bytes: &[u8], kind: NpyErrorKind) {
    assert_eq!(read_npy_from_bytes(bytes).err(), Some(kind));
}

#[test]
fn parses_headers_as_numpy_and_other_writers_write_them() {
    let f4 = DType::F32;
    let cases: &[(&str, (DType, &[usize]))] = &[
        // NumPy.
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
            (f4, &[3, 2]),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (60,), }",
            (f4, &[60]),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            (f4, &[]),
        ),
        // Rust writers used by next-plaid and fast-plaid.
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 10)}",
            (f4, &[5, 10]),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (512,32,), }",
            (f4, &[512, 32]),
        ),
        // Any key order, either quote, any whitespace.
        (
            "{'shape': (7,), 'descr': \"<f4\", 'fortran_order': False}",
            (f4, &[7]),
        ),
        (
            "{'descr':'<f4','fortran_order':False,'shape':(0,4)}",
            (f4, &[0, 4]),
        ),
        (
            "\t{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 4 ) , }",
            (f4, &[2, 4]),
        ),
        // Python 2 long integers.
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }",
            (f4, &[3, 2]),
        ),
    ];
    for &(dict, expected) in cases {
        check_header(dict, Ok(expected));
    }
}

#[test]
fn parses_every_dtype() {
    let cases = [
        ("<f2", DType::F16),
        ("<f4", DType::F32),
        ("<f8", DType::F64),
        ("<i4", DType::I32),
        ("<i8", DType::I64),
        ("|u1", DType::U8),
        ("<u1", DType::U8),
        ("<u2", DType::U16),
        ("<u4", DType::U32),
        ("<u8", DType::U64),
    ];
    for (descr, dtype) in cases {
        check_header(&dict(descr, "(1,)"), Ok((dtype, &[1])));
    }
}

#[test]
fn reads_numpy_f16_file() {
    // np.save(f, np.arange(6, dtype='<f2').reshape(3, 2))
    let values: Vec<f16> = (0..6).map(|i| f16::from_f32(i as f32)).collect();
    let file = npy_file(1, &dict("<f2", "(3, 2)"), 64, bytemuck::cast_slice(&values));
    assert_eq!(&file[..10], b"\x93NUMPY\x01\x00\x76\x00");
    let array = read_npy_from_bytes(&file).unwrap();
    assert_eq!(array.dtype(), DType::F16);
    assert_eq!(array.dims::<2>(), Ok([3, 2]));
    assert_eq!(array.len(), 6);
    assert_eq!(array.as_slice::<f16>().unwrap(), values.as_slice());
    assert_eq!(array.to_f32_vec().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // What we write for the same array is what NumPy writes.
    assert_eq!(npy_bytes(&[3, 2], &values).unwrap(), file);
}

#[test]
fn reads_any_data_offset() {
    // fast-plaid pads to 16 bytes, next-plaid 1.1.2 writes offset 129.
    let ids = [7i64, -1, i64::MAX];
    for align in [1, 16, 64] {
        let file = npy_file(1, &dict("<i8", "(3,)"), align, bytemuck::cast_slice(&ids));
        let array = read_npy_from_bytes(&file).unwrap();
        assert_eq!(array.as_slice::<i64>().unwrap(), &ids, "align {align}");
    }
}

#[test]
fn reads_versions_2_and_3() {
    for version in [2, 3] {
        let file = npy_file(version, &dict("<u2", "(2,)"), 64, &[1, 0, 2, 1]);
        let array = read_npy_from_bytes(&file).unwrap();
        assert_eq!(array.as_slice::<u16>().unwrap(), &[1, 0x0102]);
    }
}

#[test]
fn converts_to_f32_and_i64() {
    let f64s = read_npy_from_bytes(&npy_bytes(&[2], &[0.5f64, -2.25]).unwrap()).unwrap();
    assert_eq!(f64s.to_f32_vec().unwrap(), [0.5, -2.25]);
    let f32s = read_npy_from_bytes(&npy_bytes(&[1], &[1.5f32]).unwrap()).unwrap();
    assert_eq!(f32s.to_f32_vec().unwrap(), [1.5]);

    let ints: [(Vec<u8>, Vec<i64>); 5] = [
        (npy_bytes(&[2], &[-3i32, 4]).unwrap(), vec![-3, 4]),
        (npy_bytes(&[2], &[i64::MIN, 4]).unwrap(), vec![i64::MIN, 4]),
        (npy_bytes(&[2], &[255u8, 4]).unwrap(), vec![255, 4]),
        (npy_bytes(&[2], &[65535u16, 4]).unwrap(), vec![65535, 4]),
        (
            npy_bytes(&[2], &[u32::MAX, 4]).unwrap(),
            vec![u32::MAX.into(), 4],
        ),
    ];
    for (file, expected) in ints {
        assert_eq!(
            read_npy_from_bytes(&file).unwrap().to_i64_vec().unwrap(),
            expected
        );
    }
    let u64s = read_npy_from_bytes(&npy_bytes(&[2], &[i64::MAX as u64, 0]).unwrap()).unwrap();
    assert_eq!(u64s.to_i64_vec().unwrap(), [i64::MAX, 0]);
}

#[test]
fn rejects_wrong_dtype() {
    let array = read_npy_from_bytes(&npy_bytes(&[2], &[1i64, 2]).unwrap()).unwrap();
    let mismatch = |expected| NpyErrorKind::DtypeMismatch {
        expected,
        found: DType::I64,
    };
    assert_eq!(array.as_slice::<f32>(), Err(mismatch(DType::F32)));
    assert_eq!(array.as_slice::<u64>(), Err(mismatch(DType::U64)));
    assert_eq!(array.to_f32_vec(), Err(mismatch(DType::F32)));
    let floats = read_npy_from_bytes(&npy_bytes(&[1], &[1.0f32]).unwrap()).unwrap();
    assert_eq!(
        floats.to_i64_vec(),
        Err(NpyErrorKind::DtypeMismatch {
            expected: DType::I64,
            found: DType::F32
        })
    );
}

#[test]
fn rejects_u64_above_i64_max() {
    let array = read_npy_from_bytes(&npy_bytes(&[3], &[1u64, 2, u64::MAX]).unwrap()).unwrap();
    assert_eq!(
        array.to_i64_vec(),
        Err(NpyErrorKind::ValueOutOfRange {
            index: 2,
            value: u64::MAX
        })
    );
}

#[test]
fn rejects_rank_mismatch() {
    let array = read_npy_from_bytes(&npy_bytes(&[2, 1], &[1u8, 2]).unwrap()).unwrap();
    assert_eq!(
        array.dims::<1>(),
        Err(NpyErrorKind::RankMismatch {
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn rejects_huge_shape_without_allocating() {
    // 10^15 f32s claimed by a file of about 100 bytes: the length check fails
    // before anything is allocated (an allocation of 4 PB would abort).
    let file = npy_file(1, &dict("<f4", "(1000000000000000,)"), 16, &[0; 8]);
    let data_offset = parse_header(&file).unwrap().data_offset as u64;
    check_rejects(
        &file,
        NpyErrorKind::Truncated {
            expected: 4_000_000_000_000_000 + data_offset,
            found: file.len() as u64,
        },
    );
    let overflow = npy_file(1, &dict("<f8", "(4294967296, 4294967296)"), 64, &[]);
    check_rejects(&overflow, NpyErrorKind::ShapeOverflow);
    let dim_overflow = npy_file(1, &dict("<f8", "(18446744073709551616,)"), 64, &[]);
    check_rejects(&dim_overflow, NpyErrorKind::ShapeOverflow);
}

#[test]
fn rejects_short_data() {
    let file = npy_bytes(&[4], &[1u32, 2, 3, 4]).unwrap();
    let short = &file[..file.len() - 1];
    check_rejects(
        short,
        NpyErrorKind::Truncated {
            expected: file.len() as u64,
            found: short.len() as u64,
        },
    );
}

#[test]
fn rejects_trailing_bytes() {
    let mut file = npy_bytes(&[1], &[1u32]).unwrap();
    let expected = file.len() as u64;
    file.push(0);
    check_rejects(
        &file,
        NpyErrorKind::TrailingBytes {
            expected,
            found: expected + 1,
        },
    );
}

#[test]
fn rejects_bad_magic() {
    let mut file = npy_bytes(&[1], &[1u8]).unwrap();
    file[1] = b'n';
    check_rejects(&file, NpyErrorKind::BadMagic);
    check_rejects(b"PK\x03\x04", NpyErrorKind::BadMagic);
}

#[test]
fn rejects_unsupported_version() {
    for (major, minor) in [(1, 1), (0, 0), (4, 0), (2, 1)] {
        let mut file = npy_bytes(&[1], &[1u8]).unwrap();
        file[6] = major;
        file[7] = minor;
        check_rejects(&file, NpyErrorKind::UnsupportedVersion { major, minor });
    }
}

#[test]
fn rejects_header_length_beyond_file() {
    let mut file = b"\x93NUMPY\x01\x00\x00\x10".to_vec();
    file.extend_from_slice(b"{'descr': '<f4'");
    check_rejects(
        &file,
        NpyErrorKind::Truncated {
            expected: 10 + 0x1000,
            found: file.len() as u64,
        },
    );
    check_rejects(
        b"\x93NUMPY\x02\x00\x76\x00",
        NpyErrorKind::Truncated {
            expected: 12,
            found: 10,
        },
    );
}

#[test]
fn rejects_header_too_large() {
    let len = MAX_HEADER_LEN + 1;
    let mut file = b"\x93NUMPY\x02\x00".to_vec();
    file.extend_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
    check_rejects(
        &file,
        NpyErrorKind::HeaderTooLarge {
            len,
            max: MAX_HEADER_LEN,
        },
    );
}

#[test]
fn rejects_non_ascii_header() {
    let file = npy_file(
        3,
        &dict("<f4", "(1,)").replace("descr", "déscr"),
        64,
        &[0; 4],
    );
    check_rejects(&file, malformed(HeaderFault::NotAscii));
}

#[test]
fn rejects_missing_keys() {
    let cases = [
        ("{'fortran_order': False, 'shape': (1,)}", "descr"),
        ("{'descr': '<f4', 'shape': (1,)}", "fortran_order"),
        ("{'descr': '<f4', 'fortran_order': False}", "shape"),
    ];
    for (dict, key) in cases {
        check_header(dict, Err(malformed(HeaderFault::MissingKey(key))));
    }
}

#[test]
fn rejects_fortran_order() {
    let file = npy_file(
        1,
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        64,
        &[0; 16],
    );
    check_rejects(&file, NpyErrorKind::FortranOrder);
}

#[test]
fn rejects_negative_dims() {
    let file = npy_file(1, &dict("<f4", "(-1, 4)"), 64, &[]);
    check_rejects(&file, malformed(HeaderFault::BadShape));
}

#[test]
fn rejects_unsupported_dtypes() {
    for descr in [
        "<c8", ">f4", ">i8", "=f4", "|O", "|b1", ">i1", ">u1", "<U8", "f4",
    ] {
        check_header(
            &dict(descr, "(1,)"),
            Err(NpyErrorKind::UnsupportedDtype {
                descr: descr.to_owned(),
            }),
        );
    }
}

#[test]
fn rejects_malformed_headers() {
    let base = "'descr': '<f4', 'fortran_order': False";
    let cases: &[(String, NpyErrorKind)] = &[
        (String::new(), malformed(HeaderFault::NotADict)),
        ("['descr']".into(), malformed(HeaderFault::NotADict)),
        (
            format!("{{{base}, 'shape': (3,)"),
            malformed(HeaderFault::NotADict),
        ),
        (
            format!("{{{base}, 'shape': (3,),,}}"),
            malformed(HeaderFault::NotADict),
        ),
        (
            format!("{{{base} 'shape': (3,)}}"),
            malformed(HeaderFault::NotADict),
        ),
        (
            format!("{{{base}, shape: (3,)}}"),
            malformed(HeaderFault::NotADict),
        ),
        (
            format!("{{{base}, 'shape': (3,)}} x"),
            malformed(HeaderFault::TrailingCharacters),
        ),
        (
            format!("{{{base}, 'shape': (3,)}}\0"),
            malformed(HeaderFault::TrailingCharacters),
        ),
        (
            format!("{{{base}, 'shape': (3)}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': (,)}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': (03,)}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': [3]}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': (3.0,)}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': (1_000,)}}"),
            malformed(HeaderFault::BadShape),
        ),
        (
            format!("{{{base}, 'shape': (3,), 'shape': (3,)}}"),
            malformed(HeaderFault::DuplicateKey("shape")),
        ),
        (
            format!("{{{base}, 'shape': (3,), 'x': 1}}"),
            malformed(HeaderFault::UnknownKey),
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}".into(),
            malformed(HeaderFault::BadFortranOrder),
        ),
        (
            "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}".into(),
            malformed(HeaderFault::BadFortranOrder),
        ),
        (
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}".into(),
            malformed(HeaderFault::BadDescr),
        ),
        (
            "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}".into(),
            malformed(HeaderFault::BadDescr),
        ),
    ];
    for (dict, kind) in cases {
        check_header(dict, Err(kind.clone()));
    }
}

#[test]
fn writes_data_at_multiples_of_64() {
    let shapes: &[&[usize]] = &[&[], &[0], &[1], &[3, 2], &[100, 128], &[usize::MAX, 0]];
    for shape in shapes {
        let n = shape.iter().product::<usize>();
        let file = npy_bytes(shape, &vec![0.5f32; n]).unwrap();
        let header = parse_header(&file).unwrap();
        assert_eq!(header.data_offset % 64, 0, "shape {shape:?}");
        assert_eq!(header.shape, *shape);
        assert_eq!(file[header.data_offset - 1], b'\n');
    }
}

#[test]
fn roundtrip_large_header_uses_version_2() {
    let shape = vec![1; 30_000];
    let file = npy_bytes(&shape, &[42u8]).unwrap();
    assert_eq!(&file[6..8], &[2, 0]);
    let array = read_npy_from_bytes(&file).unwrap();
    assert_eq!(array.shape(), shape.as_slice());
    assert_eq!(array.as_slice::<u8>().unwrap(), &[42]);
}

#[test]
fn roundtrip_file_and_errors_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut file = std::fs::File::create(&path).unwrap();
    write_npy(&mut file, &[2, 2], &[1.0f64, 2.0, 3.0, 4.0]).unwrap();
    drop(file);
    let array: NpyArray = read_npy(&path).unwrap();
    assert_eq!(array.as_slice::<f64>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);

    std::fs::write(&path, b"\x93NUMPY\x09\x00").unwrap();
    match read_npy(&path) {
        Err(Error::Npy { path: p, kind }) => {
            assert_eq!(p, path);
            assert_eq!(
                kind,
                NpyErrorKind::UnsupportedVersion { major: 9, minor: 0 }
            );
        }
        other => panic!("expected an npy error, got {other:?}"),
    }
    let missing = dir.path().join("missing.npy");
    match read_npy(&missing) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn read_npy_checks_length_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npy");
    let file = npy_file(1, &dict("<f8", "(1000000000000000, 1000)"), 64, &[0; 32]);
    std::fs::write(&path, &file).unwrap();
    let err = read_npy(&path).err().unwrap();
    assert!(
        matches!(&err, Error::Npy { kind: NpyErrorKind::Truncated { found, .. }, .. } if *found == file.len() as u64),
        "{err:?}"
    );
    assert!(err.to_string().contains("huge.npy"), "{err}");
    // A header longer than the file is caught before reading the header.
    std::fs::write(&path, b"\x93NUMPY\x03\x00\x00\x00\x01\x00{").unwrap();
    let err = read_npy(&path).err().unwrap();
    assert!(
        matches!(
            err,
            Error::Npy {
                kind: NpyErrorKind::Truncated {
                    expected: 65548,
                    found: 13
                },
                ..
            }
        ),
        "{err:?}"
    );
    // A header that ends before the 12 bytes read for the preamble.
    std::fs::write(&path, b"\x93NUMPY\x01\x00\x01\x00{}").unwrap();
    let err = read_npy(&path).err().unwrap();
    assert!(
        matches!(
            err,
            Error::Npy {
                kind: NpyErrorKind::MalformedHeader {
                    reason: HeaderFault::NotADict
                },
                ..
            }
        ),
        "{err:?}"
    );
    // Files shorter than a preamble.
    for bytes in [&b""[..], b"\x93NU", b"\x93NUMPY\x01\x00\x05"] {
        std::fs::write(&path, bytes).unwrap();
        let err = read_npy(&path).err().unwrap();
        assert!(
            matches!(
                err,
                Error::Npy {
                    kind: NpyErrorKind::Truncated { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn errors_display_their_fields() {
    let cases = [
        (
            NpyErrorKind::DtypeMismatch {
                expected: DType::F32,
                found: DType::I64,
            },
            "expected an array of f32, found i64",
        ),
        (
            NpyErrorKind::UnsupportedDtype {
                descr: "<c8".into(),
            },
            "unsupported npy dtype \"<c8\"",
        ),
        (
            malformed(HeaderFault::MissingKey("shape")),
            "malformed npy header: key \"shape\" is missing",
        ),
    ];
    for (kind, message) in cases {
        assert_eq!(kind.to_string(), message);
    }
    let err = Error::Npy {
        path: Path::new("/idx/codes.npy").to_path_buf(),
        kind: NpyErrorKind::FortranOrder,
    };
    assert_eq!(
        err.to_string(),
        "/idx/codes.npy: Fortran-order arrays are not supported"
    );
}

mod props;
