import ArgumentParser
import DSHashing

/// `ds-lb ring`: offline balance, churn, lookup and build figures for one algorithm.
/// Argument parsing only; the measurement is `HashAnalysis.run`, the output `Report.text`/`json`.
struct RingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Measure a consistent-hash algorithm: balance, keys moved, lookup and build time.",
        discussion: """
            Members are server-1 … server-N; keys are K pseudo-random decimal strings from --seed.
            With --weights, server-i has the i-th weight and the report compares every server's
            share with its weight's share; --reweight server-i=W measures the keys a weight change
            moves. Build with -c release for meaningful timings.
            """)

    @Option(help: HashAlgorithm.optionHelp)
    var hash: String = HashAlgorithm.default.rawValue

    @Option(help: "Number of servers N (default 10, or as many as --weights lists).")
    var servers: Int?

    @Option(
        parsing: .unconditional,
        help: "Weights of server-1, server-2, … (0...\(HashMember.maxWeight), comma-separated, one per server).")
    var weights: String?

    @Option(parsing: .unconditional, help: "Change one server's weight (server-i=W) and report the keys that moved.")
    var reweight: String?

    @Option(help: "Number of random keys K.")
    var keys: Int = 1_000_000

    @Option(help: "Remove R of the N servers (chosen by the seed) and report the keys that moved.")
    var remove: Int?

    @Option(help: "Add A servers (server-N+1 …) and report the keys that moved.")
    var add: Int?

    @Option(help: "Seed for the keys and the servers removed.")
    var seed: UInt64 = 1

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    /// Upper bounds keep a typo from allocating gigabytes: 10⁴ servers is ten times what
    /// `serve --replicas` allows (a 10⁷-point ring at the default 1000 points each), and 10⁸ keys
    /// already take ≈ 2.5 GB.
    static let maxServers = 10_000
    static let maxKeys = 100_000_000

    /// What the options describe, checked: the server count, the weights and the change.
    struct Plan {
        var servers: Int
        var weights: [Int]?
        var change: HashAnalysis.Change?
    }

    func validate() throws {
        _ = try plan()
    }

    func plan() throws -> Plan {
        _ = try HashAlgorithm(option: hash)
        let weights = try self.weights.map { text in
            try Self.checked { try HashAnalysis.parseWeights(text) }
        }
        let servers = self.servers ?? weights?.count ?? 10
        guard servers > 0 && servers <= Self.maxServers else {
            throw ValidationError("--servers must be 1...\(Self.maxServers), got \(servers)")
        }
        if let weights, weights.count != servers {
            throw ValidationError("--weights lists \(weights.count) weights for --servers \(servers); give one per server")
        }
        if let weights, !weights.contains(where: { $0 > 0 }) {
            throw ValidationError("--weights are all 0: no server would take keys")
        }
        guard keys > 0 && keys <= Self.maxKeys else {
            throw ValidationError("--keys must be 1...\(Self.maxKeys), got \(keys)")
        }
        if let remove, let add {
            throw ValidationError("--remove \(remove) and --add \(add) cannot be combined; give one")
        }
        if let remove, !(1..<servers).contains(remove) {
            throw ValidationError("--remove must be 1...\(servers - 1) (fewer than --servers \(servers)), got \(remove)")
        }
        if let add, add < 1 || add > Self.maxServers - servers {
            throw ValidationError("--add must be 1...\(Self.maxServers - servers), got \(add)")
        }
        var change: HashAnalysis.Change? = remove.map { .remove($0) } ?? add.map { .add($0) }
        if let reweight {
            if change != nil {
                throw ValidationError("--reweight cannot be combined with --remove or --add; give one")
            }
            let (index, weight) = try Self.checked { try HashAnalysis.parseReweight(reweight, servers: servers) }
            var after = weights ?? Array(repeating: 1, count: servers)
            after[index] = weight
            if !after.contains(where: { $0 > 0 }) {
                throw ValidationError("--reweight \(reweight) leaves every weight at 0: no server would take keys")
            }
            change = .reweight(index, weight: weight)
        }
        return Plan(servers: servers, weights: weights, change: change)
    }

    /// `body`'s result, its `OptionError` as the parser's one-line usage error.
    static func checked<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as HashAnalysis.OptionError {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let plan = try plan()
        let report = HashAnalysis.run(
            algorithm: try HashAlgorithm(option: hash), servers: plan.servers, keys: keys,
            weights: plan.weights, change: plan.change, seed: seed)
        print(json ? report.json : report.text)
    }
}
