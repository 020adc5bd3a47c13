// swift-tools-version:6.0
import PackageDescription

// The data plane's modules skip the runtime exclusivity checks in release builds: their
// swift_beginAccess/endAccess calls were ≈ 3 % of a worker's CPU (perf, wrk -c256 keep-alive),
// 14 % of its user-space time. Debug builds, and so every test run, keep the checks; the
// compile-time exclusivity diagnostics apply in both.
let dataPlaneSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

// The module graph (docs/ARCHITECTURE.md §6): each target depends only on those below it.
let package = Package(
    name: "ds-lb",
    products: [
        .executable(name: "ds-lb", targets: ["ds-lb"]),
        .executable(name: "ds-server", targets: ["ds-server"]),
        .executable(name: "ds-bench", targets: ["ds-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .target(name: "CLinux", cSettings: [.define("_GNU_SOURCE")]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "DSSystem", dependencies: ["CLinux"]),
        .target(name: "DSReactor", dependencies: ["DSSystem"], swiftSettings: dataPlaneSettings),
        .target(name: "DSHTTP1", swiftSettings: dataPlaneSettings),
        .target(name: "DSHTTPClient", dependencies: ["DSHTTP1", "DSReactor", "DSSystem"]),
        .target(name: "DSDocker", dependencies: ["DSHTTPClient", "DSHTTP1", "DSReactor", "DSSystem"]),
        .target(name: "DSEtcd", dependencies: ["DSHTTPClient", "DSReactor", "DSSystem"]),
        .target(name: "DSHashing"),
        // TLS termination: OpenSSL's contexts and sessions, all of its unsafe pointer code.
        .target(name: "DSTLS", dependencies: ["COpenSSL", "DSSystem"]),
        .target(name: "DSBalancer", dependencies: ["DSHashing", "DSSystem"], swiftSettings: dataPlaneSettings),
        .target(
            name: "DSProxy",
            dependencies: [
                "DSReactor", "DSSystem", "DSHTTP1", "DSBalancer", "DSTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: dataPlaneSettings),
        .target(
            name: "DSControl",
            dependencies: [
                "DSDocker", "DSEtcd", "DSHTTPClient", "DSProxy", "DSReactor", "DSSystem", "DSHTTP1", "DSBalancer", "DSHashing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .target(
            name: "DSSystemd",
            dependencies: [
                "CSystemd", "DSReactor", "DSSystem",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "DSConfig", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        // A whole ds-lb (listeners, workers, control loop, reload, graceful stop) as a library
        // type, which the executable configures and a test can run in its own process.
        .target(
            name: "DSServer",
            dependencies: [
                "DSControl", "DSProxy", "DSBalancer", "DSHashing", "DSReactor", "DSSystem", "DSSystemd", "DSTLS",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "ds-lb",
            dependencies: [
                "DSServer", "DSControl", "DSDocker", "DSEtcd", "DSProxy", "DSSystem", "CSystemd", "DSSystemd", "DSConfig",
                "DSTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "ds-server",
            dependencies: [
                "DSReactor", "DSSystem", "DSHTTP1",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "ds-bench",
            dependencies: [
                "DSReactor", "DSSystem", "DSHTTP1", "DSHTTPClient", "DSHashing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        // Counts heap allocations per proxied request (malloc wrappers): only ds-alloc-count links it.
        .target(name: "CAllocCounter"),
        .executableTarget(
            name: "ds-alloc-count",
            dependencies: ["CAllocCounter", "DSProxy", "DSReactor", "DSBalancer", "DSHashing", "DSSystem"]),
        // Shared by the test targets: a seeded generator, so none depends on DSHashing for one,
        // and a log handler that keeps what was logged.
        .target(
            name: "DSTestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/DSTestSupport"),
        // The framing and smuggling corpus's request rows: data only, so the black-box
        // integration tests can share it with the data plane's unit tests.
        .target(name: "SmugglingCorpus", path: "Tests/SmugglingCorpus"),
        .testTarget(name: "DSHTTP1Tests", dependencies: ["DSHTTP1", "DSTestSupport"]),
        .testTarget(name: "DSHTTPClientTests", dependencies: ["DSHTTPClient", "DSHTTP1", "DSReactor", "DSSystem"]),
        .testTarget(name: "DSReactorTests", dependencies: ["DSReactor", "DSSystem", "DSTestSupport"]),
        .testTarget(name: "DSHashingTests", dependencies: ["DSHashing"]),
        .testTarget(name: "DSBalancerTests", dependencies: ["DSBalancer", "DSHashing", "DSSystem"]),
        .testTarget(name: "DSProxyTests", dependencies: ["DSProxy", "SmugglingCorpus"]),
        .testTarget(
            name: "DSControlTests",
            dependencies: ["DSControl", "DSBalancer", "DSProxy", "DSDocker", "DSDockerTestSupport", "DSTestSupport"]),
        // A fake Docker engine (unix socket) shared by the DSDocker and driver tests.
        .target(name: "DSDockerTestSupport", path: "Tests/DSDockerTestSupport"),
        .testTarget(name: "DSDockerTests", dependencies: ["DSDocker", "DSDockerTestSupport"]),
        // Against real etcd members (etcd-server), started and stopped by the tests.
        .testTarget(
            name: "DSEtcdTests",
            dependencies: ["DSEtcd", "DSControl", "DSBalancer", "DSHTTPClient", "DSReactor", "DSSystem", "DSTestSupport"]),
        .testTarget(name: "DSConfigTests", dependencies: ["DSConfig"]),
        .testTarget(name: "DSTLSTests", dependencies: ["DSTLS", "COpenSSL", "DSSystem"]),
        .testTarget(name: "DSSystemTests", dependencies: ["DSSystem"]),
        .testTarget(
            name: "DSServerTests",
            dependencies: [
                "DSServer", "DSControl", "DSProxy", "DSBalancer", "DSSystem", "DSTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "DSSystemdTests",
            dependencies: ["DSSystemd", "DSReactor", "DSSystem", .product(name: "Logging", package: "swift-log")]),
        // Black box: starts ds-lb and ds-server as processes and talks to them over sockets. Its
        // project dependencies are the C shim's cl_spawn (fork + exec with PR_SET_PDEATHSIG), so
        // no process a test starts outlives the test process, the corpus's data, and OpenSSL
        // for a TLS client that sends raw bytes.
        .testTarget(name: "IntegrationTests", dependencies: ["CLinux", "SmugglingCorpus", "COpenSSL", "DSTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
