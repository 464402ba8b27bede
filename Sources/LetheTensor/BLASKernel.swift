import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The OpenBLAS kernel set a process uses, and a better one when OpenBLAS's CPU detection fell
/// back to a generic kernel.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels when the library loads, before `main`, from the CPU's
/// family and model — or from `OPENBLAS_CORETYPE` when that is set. A CPU newer than the library
/// gets a generic pre-AVX kernel: Debian 12's OpenBLAS 0.3.21 runs an Intel Xeon of family 6,
/// model 207 (AVX-512 with BF16) on its "Prescott" (SSE3) kernels. Measured there, one thread,
/// `cblas_sgemm` at n = 2048: 32 GFLOP/s on Prescott, 122 GFLOP/s with
/// `OPENBLAS_CORETYPE=Cooperlake`; a 15-epoch Fashion-MNIST `mlp` training took 39.4 s against
/// 11.7 s. The kernel cannot be changed once loaded, so executables call
/// `restartWithBetterKernelIfNeeded()` first: it starts the same program again with the variable
/// set. An `OPENBLAS_CORETYPE` the user set is always kept.
///
/// Results are bit-identical only under the same kernel and thread count; `lethe forget` records
/// the kernel with the request so that `replay --recompute` can tell why a re-run differs.
public enum BLASKernel {
    /// The kernel set in use (OpenBLAS's name: "Haswell", "SkylakeX", "Cooperlake", "Zen", "Prescott"...).
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS kernels without AVX2: what its detection falls back to on a CPU it does not know.
    public static let generic: Set<String> = [
        "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
        "Nehalem", "Athlon", "Opteron", "Opteron(SSE3)", "Barcelona", "Nano", "Bobcat", "Sandybridge",
        "Bulldozer", "Piledriver",
    ]

    /// The best kernel this OpenBLAS has for a CPU with these `/proc/cpuinfo` flags, nil below AVX2.
    public static func preferred(cpuFlags flags: Set<String>) -> String? {
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
        if avx512 && flags.contains("avx512_bf16") { return "Cooperlake" }
        if avx512 { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The kernel to restart with: nil when `OPENBLAS_CORETYPE` is set, when the current kernel is
    /// not a generic fallback, or when the CPU has nothing better.
    public static func upgrade(current: String, cpuFlags: Set<String>, coreTypeVariable: String?) -> String? {
        guard coreTypeVariable == nil, generic.contains(current) else { return nil }
        return preferred(cpuFlags: cpuFlags)
    }

    /// The flags of the first processor in `/proc/cpuinfo` (empty where there is none).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingWhitespace == "flags" else { continue }
            return Set(parts[1].split(separator: " ").map(String.init))
        }
        return []
    }

    /// Starts this executable again (same arguments and environment, plus `OPENBLAS_CORETYPE`)
    /// when `upgrade` names a better kernel. Returns when there is none or the restart failed; the
    /// process then runs on the kernel it has.
    public static func restartWithBetterKernelIfNeeded() {
        #if os(Linux)
        let variable = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        guard variable == nil, generic.contains(current) else { return }
        guard let text = try? readSmallFile("/proc/cpuinfo"),
              let better = upgrade(current: current, cpuFlags: cpuFlags(cpuinfo: text), coreTypeVariable: variable) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")  // exec failed: carry on with the loaded kernel
        #endif
    }

    /// Reads a (procfs) file whose size `stat` does not report.
    static func readSmallFile(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw BLASKernelError.unreadable(path) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum BLASKernelError: Error { case unreadable(String) }

extension Substring {
    fileprivate var trimmingWhitespace: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
