#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation

/// `ds-bench analysis a1|a2|a3|a4|all --out DIR`: argument parsing and dispatch only.
struct AnalysisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analysis",
        abstract: "Run the A-1…A-4 analyses: a PNG chart, a CSV and a Markdown summary each.",
        discussion: """
            a1: requests per replica on N = 3 per algorithm; a2: N = 2…6; a3: endpoints and a replica \
            killed under load; a4: hash functions compared offline. Each starts its own ds-lb (the \
            binary next to ds-bench) with local replicas, unless --url names a running one (which \
            is scaled for the run and scaled back after).
            """)

    @Argument(help: "a1, a2, a3, a4 or all.")
    var which: String

    @Option(help: "Directory for the charts, CSVs and summaries (created).")
    var out: String

    @Option(help: "A running ds-lb to use instead of starting one (http://IP:PORT).")
    var url: String?

    @Option(name: [.customShort("n"), .long], help: "Requests per measurement (A-1, A-2, A-4 views).")
    var requests: Int = 10_000

    @Option(name: [.customShort("c"), .long], help: "Keep-alive connections of the load.")
    var concurrency: Int = 16

    @Option(help: "Seed of the random ids.")
    var seed: UInt64 = 42

    @Option(help: "A-3: load rate (requests per second).")
    var rate: Double = 1000

    @Option(help: "A-3: how long the load runs, in seconds.")
    var seconds: Double = 8

    @Option(help: "A-3: seconds into the load at which the replica is killed.")
    var killAfter: Double = 2.5

    @Option(help: "The ds-lb binary (default: next to ds-bench).")
    var dsLb: String?

    @Option(help: "Python with matplotlib (default: /usr/bin/python3, else python3).")
    var python: String?

    @Option(help: "The chart script (default: bench/plot.py of the source tree).")
    var plotScript: String?

    static let names = ["a1", "a2", "a3", "a4"]

    func validate() throws {
        guard which == "all" || Self.names.contains(which) else {
            throw ValidationError("unknown analysis '\(which)' (use a1, a2, a3, a4 or all)")
        }
        guard requests >= 10 && requests <= 10_000_000 else { throw ValidationError("--requests must be 10...10000000, got \(requests)") }
        guard concurrency >= 1 && concurrency <= 10_000 else { throw ValidationError("--concurrency must be 1...10000, got \(concurrency)") }
        guard rate > 0 && rate <= 1_000_000 else { throw ValidationError("--rate must be > 0 and ≤ 1000000, got \(rate)") }
        guard seconds >= 1 && seconds <= 3600 else { throw ValidationError("--seconds must be 1...3600, got \(seconds)") }
        guard killAfter > 0 && killAfter < seconds else { throw ValidationError("--kill-after must be between 0 and --seconds (\(seconds)), got \(killAfter)") }
        if let url {
            do { _ = try TargetURL.parse(url) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let binary = dsLb ?? URL(fileURLWithPath: CommandLine.executablePath).deletingLastPathComponent().appendingPathComponent("ds-lb").path
        let selected = which == "all" ? Self.names : [which]
        if url == nil && selected != ["a4"] && !FileManager.default.isExecutableFile(atPath: binary) {
            throw ValidationError("ds-lb not found at \(binary): build it (swift build) or pass --ds-lb")
        }
        let context = AnalysisContext(outDir: out, url: try url.map(TargetURL.parse), requests: requests, concurrency: concurrency,
                                      seed: seed, lbBinary: binary, plotter: try Plotter.locate(python: python, script: plotScript))
        for name in selected {
            let summary: String
            switch name {
            case "a1": summary = try A1Analysis.run(context)
            case "a2": summary = try A2Analysis.run(context)
            case "a3": summary = try A3Analysis.run(context, rate: rate, seconds: seconds, killAfter: killAfter)
            default: summary = try A4Analysis.run(context)
            }
            print(summary + "\n")
        }
    }
}
