import DSHashing
import Foundation

/// What every analysis shares: where to write, how much load, and how to get a ds-lb with N
/// replicas running a given algorithm (a fresh local one, or the `--url` one scaled to N).
/// Main thread only.
struct AnalysisContext {
    let outDir: String
    let url: TargetURL?
    let requests: Int
    let concurrency: Int
    let seed: UInt64
    let lbBinary: String
    let plotter: Plotter

    /// A-1/A-2's algorithms: the default first, then the assignment preset, then the others.
    static var algorithms: [HashAlgorithm] {
        [HashAlgorithm.default]
            + HashAlgorithm.allCases.filter { $0 != .default }.sorted {
                ($0 == .assignment ? 0 : 1, $0.rawValue) < ($1 == .assignment ? 0 : 1, $1.rawValue)
            }
    }

    static func label(_ algorithm: HashAlgorithm) -> String {
        algorithm == .default ? "\(algorithm.rawValue) (default)" : algorithm.rawValue
    }

    func path(_ name: String) -> String { (outDir as NSString).appendingPathComponent(name) }

    func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Runs `body` with a ds-lb at `replicas` replicas. A launched one is stopped afterwards; an
    /// attached one (`--url`) is scaled to `replicas` and scaled back to its old size afterwards.
    /// `algorithm` nil with `--url` means "whatever it runs".
    func withBalancer<T>(
        replicas: Int, algorithm: HashAlgorithm, extra: [String] = [],
        _ body: (Balancer) throws -> T
    ) throws -> T {
        if let url {
            let balancer = Balancer.attach(url)
            let before = (try balancer.status()["replicas"] as? [Any])?.count ?? replicas
            try balancer.scale(to: replicas)
            defer { try? balancer.scale(to: before) }
            return try body(balancer)
        }
        let balancer = try Balancer.launch(binary: lbBinary, replicas: replicas, hash: algorithm.rawValue, extra: extra)
        defer { balancer.stop() }
        return try body(balancer)
    }

    /// The algorithm a `--url` ds-lb runs (from /status), or nil for launched ones.
    func attachedAlgorithm() throws -> HashAlgorithm? {
        guard let url else { return nil }
        let name = try Balancer.attach(url).status()["algorithm"] as? String ?? ""
        guard let algorithm = HashAlgorithm(rawValue: name) else {
            throw Balancer.Failure(description: "\(url) runs an algorithm ds-bench does not know: '\(name)'")
        }
        return algorithm
    }

    /// The load every distribution analysis sends: `requests` GET /home with random 6-digit ids
    /// from the same seed (so every algorithm sees the same ids), closed loop.
    func distributionLoad(
        on balancer: Balancer, timelineBucket: UInt64? = nil, rate: Double? = nil,
        duration: UInt64? = nil, start: UInt64? = nil
    ) throws -> LoadResult {
        let target = TargetURL(address: balancer.address, authority: "127.0.0.1:\(balancer.port)", pathAndQuery: "/home")
        let plan = LoadPlan(
            target: target, requests: duration == nil ? requests : nil, durationNanoseconds: duration,
            concurrency: concurrency, threads: 1, rate: rate, ids: .random6, seed: seed,
            timeoutNanoseconds: 10_000_000_000, timelineBucketNanoseconds: timelineBucket)
        return try LoadRunner.run(plan, progressBar: false, start: start)
    }

    /// The same ids `distributionLoad` sends, for offline comparisons.
    func distributionIDs(count: Int) -> [UInt64] {
        var generator = IDGenerator(spec: .random6, seed: seed, thread: 0, threads: 1, zipf: nil)
        return (0..<count).map { _ in generator.nextID() }
    }
}
