import XCTest
@testable import LetheTensor

final class BLASKernelTests: XCTestCase {
    /// The flags of an Intel Xeon of family 6, model 207 (abridged), where OpenBLAS 0.3.21 falls back to Prescott.
    let xeon = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 207\nflags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 amx_tile\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu\n"

    func testCPUFlagsAreTheFirstProcessorsFlagsLine() {
        let flags = BLASKernel.cpuFlags(cpuinfo: xeon)
        XCTAssertTrue(flags.isSuperset(of: ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]))
        XCTAssertFalse(flags.contains("spectre_v1"), "the bugs line is not the flags line")
        XCTAssertEqual(flags.count, 13)
        XCTAssertEqual(BLASKernel.cpuFlags(cpuinfo: "processor : 0\n"), [])
    }

    func testPreferredKernelFollowsTheWidestVectorInstructions() {
        XCTAssertEqual(BLASKernel.preferred(cpuFlags: BLASKernel.cpuFlags(cpuinfo: xeon)), "Cooperlake")
        XCTAssertEqual(BLASKernel.preferred(cpuFlags: ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]), "SkylakeX")
        XCTAssertEqual(BLASKernel.preferred(cpuFlags: ["avx2", "fma", "avx512f"]), "Haswell", "partial AVX-512 is not enough for SkylakeX kernels")
        XCTAssertEqual(BLASKernel.preferred(cpuFlags: ["avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASKernel.preferred(cpuFlags: ["avx", "sse4_2"]))
    }

    func testOnlyAGenericFallbackWithoutTheUsersChoiceIsUpgraded() {
        let flags = BLASKernel.cpuFlags(cpuinfo: xeon)
        XCTAssertEqual(BLASKernel.upgrade(current: "Prescott", cpuFlags: flags, coreTypeVariable: nil), "Cooperlake")
        XCTAssertEqual(BLASKernel.upgrade(current: "Sandybridge", cpuFlags: ["avx2", "fma"], coreTypeVariable: nil), "Haswell")
        XCTAssertNil(BLASKernel.upgrade(current: "Prescott", cpuFlags: flags, coreTypeVariable: "Prescott"), "the user's OPENBLAS_CORETYPE is kept")
        XCTAssertNil(BLASKernel.upgrade(current: "Zen", cpuFlags: flags, coreTypeVariable: nil), "a detected kernel is kept")
        XCTAssertNil(BLASKernel.upgrade(current: "SkylakeX", cpuFlags: flags, coreTypeVariable: nil))
        XCTAssertNil(BLASKernel.upgrade(current: "Prescott", cpuFlags: ["sse3"], coreTypeVariable: nil), "nothing better on this CPU")
    }

    func testCurrentKernelIsNamed() {
        XCTAssertFalse(BLASKernel.current.isEmpty)
        XCTAssertNotEqual(BLASKernel.current, "unknown")
    }
}
