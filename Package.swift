// swift-tools-version:6.0
// Lethe — a model-artifact store with a versioned unlearning history.
// No outside Swift packages: system C libraries come in through module maps.
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "Lethe",
    products: [
        .executable(name: "lethe", targets: ["LetheCLI"]),
        .library(name: "Lethe", targets: ["Lethe"]),
    ],
    targets: [
        // System C libraries (Debian packages named in `providers`).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres",
                       providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),

        // Library targets, each with one job; arrows point down DESIGN.md's table.
        .target(name: "LetheText"),
        .target(name: "LetheCrypto", dependencies: ["CCrypto"]),
        .target(name: "LetheTensor", dependencies: ["CBLAS", "LetheText"], swiftSettings: optimize),
        .target(name: "LetheNN", dependencies: ["LetheTensor", "LetheCrypto", "CZlib"], swiftSettings: optimize),
        .target(name: "LetheUnlearning", dependencies: ["LetheNN"], swiftSettings: optimize),
        .target(name: "LetheStore", dependencies: ["LetheTensor", "LetheCrypto", "CZstd", "CCurl"], swiftSettings: optimize),
        .target(name: "LetheLedger", dependencies: ["LetheCrypto", "CSQLite", "CPostgres", "CCrypto", "LetheText"]),
        .target(name: "LetheCommandLine", dependencies: ["LetheText"]),
        .target(name: "Lethe", dependencies: [
            "LetheCrypto", "LetheTensor", "LetheNN", "LetheUnlearning", "LetheStore", "LetheLedger", "LetheCommandLine",
        ], swiftSettings: optimize),
        .executableTarget(name: "LetheCLI", dependencies: ["Lethe", "LetheCommandLine", "LetheLedger"]),

        // Benchmarks (tools/bench), run by tools/bench/run.
        .executableTarget(name: "lethe-bench", dependencies: ["LetheTensor", "LetheNN", "LetheUnlearning", "LetheStore", "CBLAS", "LetheLedger"],
                          path: "tools/bench/Sources/lethe-bench", swiftSettings: optimize),

        // Paper-style evaluation (tools/eval), writes EVALUATION.md.
        .executableTarget(name: "lethe-eval", dependencies: ["LetheNN", "LetheUnlearning", "LetheTensor"],
                          path: "tools/eval/Sources/lethe-eval", swiftSettings: optimize),

        .testTarget(name: "LetheCryptoTests", dependencies: ["LetheCrypto"]),
        .testTarget(name: "LetheTensorTests", dependencies: ["LetheTensor"]),
        .testTarget(name: "LetheNNTests", dependencies: ["LetheNN"], exclude: ["Fixtures"]),
        .testTarget(name: "LetheUnlearningTests", dependencies: ["LetheUnlearning"]),
        .testTarget(name: "LetheStoreTests", dependencies: ["LetheStore"], exclude: ["Fixtures"]),
        .testTarget(name: "LetheLedgerTests", dependencies: ["LetheLedger"]),
        .testTarget(name: "LetheTests", dependencies: ["Lethe"]),
        .testTarget(name: "LetheCommandLineTests", dependencies: ["LetheCommandLine"]),
        .testTarget(name: "LetheCLITests", dependencies: ["LetheCLI", "LetheLedger", "LetheTensor", "CSQLite"]),
    ],
    swiftLanguageModes: [.v6]
)
