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
            Build with -c release for meaningful timings.
            """)

    @Option(help: HashAlgorithm.optionHelp)
    var hash: String = HashAlgorithm.default.rawValue

    @Option(help: "Number of servers N.")
    var servers: Int = 10

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

    func validate() throws {
        _ = try HashAlgorithm(option: hash)
        guard servers > 0 && servers <= Self.maxServers else {
            throw ValidationError("--servers must be 1...\(Self.maxServers), got \(servers)")
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
    }

    func run() throws {
        let report = HashAnalysis.run(
            algorithm: try HashAlgorithm(option: hash), servers: servers, keys: keys,
            remove: remove ?? 0, add: add ?? 0, seed: seed)
        print(json ? report.json : report.text)
    }
}
