import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The analyses, named by what they measure. `a1`…`a4`, the course exercises they answer (and the
/// names of their output files), stay accepted so existing scripts and notes keep working.
enum Analysis: String, CaseIterable {
    case loadDistribution = "load-distribution"
    case scaling
    case failureRecovery = "failure-recovery"
    case hashFunctions = "hash-functions"

    var alias: String {
        switch self {
        case .loadDistribution: "a1"
        case .scaling: "a2"
        case .failureRecovery: "a3"
        case .hashFunctions: "a4"
        }
    }

    /// `all`, a name or an alias; nil for anything else.
    static func select(_ argument: String) -> [Analysis]? {
        if argument == "all" { return allCases }
        return allCases.first { $0.rawValue == argument || $0.alias == argument }.map { [$0] }
    }

    static let usage = allCases.map { "\($0.rawValue) (\($0.alias))" }.joined(separator: ", ") + " or all"
}

/// `ds-bench analysis <analysis>|all --out DIR`: argument parsing and dispatch only.
struct AnalysisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analysis",
        abstract: "Run the analyses (A-1…A-4): a PNG chart, a CSV and a Markdown summary each.",
        discussion: """
            load-distribution (a1)  requests per replica on N = 3, per algorithm
            scaling (a2)            the spread over the replicas as N grows from 2 to 6
            failure-recovery (a3)   every endpoint, then a replica killed under load
            hash-functions (a4)     slot and hash functions compared offline
            all                     the four in turn

            Each starts its own ds-lb (the binary next to ds-bench) with local replicas, unless \
            --url names a running one (which is scaled for the run and scaled back after). The \
            output files keep the a1…a4 prefixes.
            """)

    @Argument(help: ArgumentHelp("The analysis: \(Analysis.usage).", valueName: "analysis"))
    var which: String

    @Option(help: "Directory for the charts, CSVs and summaries (created).")
    var out: String

    @Option(help: "A running ds-lb to use instead of starting one (http://IP:PORT).")
    var url: String?

    @Option(
        name: [.customShort("n"), .long], help: "Requests per measurement (load-distribution, scaling, the hash-functions views)."
    )
    var requests: Int = 10_000

    @Option(name: [.customShort("c"), .long], help: "Keep-alive connections of the load.")
    var concurrency: Int = 16

    @Option(help: "Seed of the random ids.")
    var seed: UInt64 = 42

    @Option(help: "failure-recovery: load rate (requests per second).")
    var rate: Double = 1000

    @Option(help: "failure-recovery: how long the load runs, in seconds.")
    var seconds: Double = 8

    @Option(help: "failure-recovery: seconds into the load at which the replica is killed.")
    var killAfter: Double = 2.5

    @Option(help: "The ds-lb binary (default: next to ds-bench).")
    var dsLb: String?

    @Option(help: "Python with matplotlib (default: /usr/bin/python3, else python3).")
    var python: String?

    @Option(help: "The chart script (default: bench/plot.py of the source tree).")
    var plotScript: String?

    func validate() throws {
        guard Analysis.select(which) != nil else {
            throw ValidationError("unknown analysis '\(which)' (use \(Analysis.usage))")
        }
        guard requests >= 10 && requests <= 10_000_000 else {
            throw ValidationError("--requests must be 10...10000000, got \(requests)")
        }
        guard concurrency >= 1 && concurrency <= 10_000 else {
            throw ValidationError("--concurrency must be 1...10000, got \(concurrency)")
        }
        guard rate > 0 && rate <= 1_000_000 else { throw ValidationError("--rate must be > 0 and ≤ 1000000, got \(rate)") }
        guard seconds >= 1 && seconds <= 3600 else { throw ValidationError("--seconds must be 1...3600, got \(seconds)") }
        guard killAfter > 0 && killAfter < seconds else {
            throw ValidationError("--kill-after must be between 0 and --seconds (\(seconds)), got \(killAfter)")
        }
        if let url {
            do { _ = try TargetURL.parse(url) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let binary =
            dsLb
            ?? URL(fileURLWithPath: CommandLine.executablePath).deletingLastPathComponent().appendingPathComponent("ds-lb").path
        let selected = Analysis.select(which) ?? []
        if url == nil && selected != [.hashFunctions] && !FileManager.default.isExecutableFile(atPath: binary) {
            throw ValidationError("ds-lb not found at \(binary): build it (swift build) or pass --ds-lb")
        }
        let context = AnalysisContext(
            outDir: out, url: try url.map(TargetURL.parse), requests: requests, concurrency: concurrency,
            seed: seed, lbBinary: binary, plotter: try Plotter.locate(python: python, script: plotScript))
        for analysis in selected {
            let summary: String
            switch analysis {
            case .loadDistribution: summary = try LoadDistributionAnalysis.run(context)
            case .scaling: summary = try ScalingAnalysis.run(context)
            case .failureRecovery:
                summary = try FailureRecoveryAnalysis.run(context, rate: rate, seconds: seconds, killAfter: killAfter)
            case .hashFunctions: summary = try HashFunctionsAnalysis.run(context)
            }
            print(summary + "\n")
        }
    }
}
