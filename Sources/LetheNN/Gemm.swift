import LetheTensor
#if canImport(Glibc)
import Glibc
#endif

/// Optional accounting of the time and flops LetheNN spends in OpenBLAS GEMM (for benchmarks).
///
/// Off by default; when `enabled`, every GEMM the layers issue is timed with
/// `clock_gettime(CLOCK_MONOTONIC)`. Not thread-safe: enable it only in single-threaded drivers.
public enum GemmProfiler {
    /// Whether GEMM calls are timed.
    nonisolated(unsafe) public static var enabled = false
    /// Seconds spent in GEMM since the last `reset()`.
    nonisolated(unsafe) public static var seconds = 0.0
    /// Floating-point operations (2·m·n·k per call) since the last `reset()`.
    nonisolated(unsafe) public static var flops = 0.0
    /// Number of GEMM calls since the last `reset()`.
    nonisolated(unsafe) public static var calls = 0

    /// Clears the counters.
    public static func reset() { seconds = 0; flops = 0; calls = 0 }

    @inline(__always) static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Row-major `C = alpha·op(A)·op(B) + beta·C` through `cblas_sgemm`, with optional profiling.
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if GemmProfiler.enabled {
        let t0 = GemmProfiler.now()
        Tensor<Float>.gemmRaw(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        GemmProfiler.seconds += GemmProfiler.now() - t0
        GemmProfiler.flops += 2 * Double(m) * Double(n) * Double(k)
        GemmProfiler.calls += 1
    } else {
        Tensor<Float>.gemmRaw(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// Process-wide allocator tuning for training loops.
public enum AllocatorTuning {
    /// Asks glibc malloc (`mallopt`) to serve blocks up to 32 MiB from the heap and to keep freed
    /// memory, so per-batch activations reuse pages instead of faulting in fresh zeroed ones
    /// from `mmap` every step. Call once from an executable (CLI, benchmark) before training.
    public static func keepFreedMemory() {
        #if os(Linux)
        _ = glibcMallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
        #endif
    }
}

#if os(Linux)
/// glibc's `int mallopt(int param, int value)` (<malloc.h> is not in the Glibc module).
@_silgen_name("mallopt")
func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
