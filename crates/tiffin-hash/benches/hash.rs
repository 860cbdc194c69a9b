//! Throughput of the package hashers: in memory per algorithm, and whole files from the page cache.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tiffin_hash::{Algorithms, NoProgress, hash_file, hash_reader, hash_span};

const SIZE: usize = 64 << 20;

fn data() -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn in_memory(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("reader_64MiB");
    group
        .throughput(Throughput::Bytes(SIZE as u64))
        .sample_size(10);
    for (name, algorithms) in [
        ("sha256+blake3", Algorithms::BOTH),
        ("sha256", Algorithms::SHA256),
        ("blake3", Algorithms::BLAKE3),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| hash_reader(black_box(&data[..]), algorithms, &NoProgress).unwrap())
        });
    }
    group.finish();
}

fn files(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.bin");
    std::fs::write(&path, data()).unwrap();
    let mut group = c.benchmark_group("file_64MiB");
    group
        .throughput(Throughput::Bytes(SIZE as u64))
        .sample_size(10);
    for (name, algorithms) in [
        ("sha256+blake3", Algorithms::BOTH),
        ("blake3_mmap", Algorithms::BLAKE3),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| hash_file(&path, algorithms, &NoProgress).unwrap())
        });
    }
    // The same bytes as a member of an archive: a span at an offset that is a multiple of tar's
    // 512-byte blocks but not of blake3's 1 KiB chunks, hashed in place by positioned reads.
    let archive = dir.path().join("archive.tar");
    let mut bytes = vec![0; 1536];
    bytes.extend(data());
    std::fs::write(&archive, bytes).unwrap();
    let file = std::fs::File::open(&archive).unwrap();
    group.bench_function("blake3_span", |b| {
        b.iter(|| hash_span(&file, 1536, SIZE as u64, Algorithms::BLAKE3, &NoProgress).unwrap())
    });
    group.finish();
}

criterion_group!(benches, in_memory, files);
criterion_main!(benches);
