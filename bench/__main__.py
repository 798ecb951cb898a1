"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run."""

from bench import bench_dsl, bench_ingest, bench_segments

if __name__ == "__main__":
    bench_ingest.main([])
    print()
    bench_dsl.main([])
    print()
    bench_segments.main([])
