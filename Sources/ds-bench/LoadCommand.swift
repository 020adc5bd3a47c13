import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `ds-bench load`: argument parsing and output only; the run is `LoadRunner`.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Send HTTP/1.1 keep-alive load and report replies per replica, errors and latency.",
        discussion: """
            Closed loop by default (each connection sends its next request when the previous one \
            is answered). With --rate the load is open loop: requests are due at fixed intervals \
            and latency is measured from when each was due, so a stall is not hidden.
            """)

    @Option(help: "Target URL (http://IP:PORT/path?query).")
    var url: String = "http://127.0.0.1:5000/home"

    @Option(name: [.customShort("n"), .long], help: "Stop after N requests (default 10000 unless --duration is given).")
    var requests: Int?

    @Option(name: [.customShort("d"), .long], help: "Run for this long instead, e.g. 10s, 500ms, 1m.")
    var duration: String?

    @Option(name: [.customShort("c"), .long], help: "Keep-alive connections (spread over the threads).")
    var concurrency: Int = 64

    @Option(name: [.customShort("t"), .long], help: "Event-loop threads.")
    var threads: Int = 1

    @Option(help: "Fixed request rate per second over all connections (open loop).")
    var rate: Double?

    @Option(help: "The id query parameter: random6, sequential, zipf:S or fixed (the URL as given).")
    var ids: String = "random6"

    @Option(help: "Seed for random6 and zipf ids.")
    var seed: UInt64 = 42

    @Option(help: "A request with no answer after this fails as a timeout.")
    var timeout: String = "10s"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "No progress bar even on a terminal.")
    var quiet = false

    func validate() throws {
        _ = try plan()
    }

    func plan() throws -> LoadPlan {
        let target: TargetURL
        do { target = try TargetURL.parse(url) } catch { throw ValidationError("\(error)") }
        guard concurrency >= 1 && concurrency <= 100_000 else {
            throw ValidationError("--concurrency must be 1...100000, got \(concurrency)")
        }
        guard threads >= 1 && threads <= 64 else { throw ValidationError("--threads must be 1...64, got \(threads)") }
        guard threads <= concurrency else {
            throw ValidationError("--threads \(threads) is more than --concurrency \(concurrency)")
        }
        if let requests, requests < 1 { throw ValidationError("--requests must be at least 1, got \(requests)") }
        if let rate, !(rate > 0 && rate <= 10_000_000) { throw ValidationError("--rate must be > 0 and ≤ 10000000, got \(rate)") }
        var durationNs: UInt64?
        if let duration {
            guard let ns = Self.parseDuration(duration), ns > 0 else {
                throw ValidationError("--duration: '\(duration)' is not a duration like 10s, 500ms or 1m")
            }
            durationNs = ns
        }
        if requests != nil && durationNs != nil {
            throw ValidationError("--requests and --duration cannot be combined; give one")
        }
        guard let timeoutNs = Self.parseDuration(timeout), timeoutNs > 0 else {
            throw ValidationError("--timeout: '\(timeout)' is not a duration like 10s or 500ms")
        }
        let idSpec: IDSpec
        do { idSpec = try IDSpec.parse(ids) } catch { throw ValidationError("\(error)") }
        return LoadPlan(
            target: target, requests: durationNs == nil ? (requests ?? 10_000) : nil, durationNanoseconds: durationNs,
            concurrency: concurrency, threads: threads, rate: rate, ids: idSpec, seed: seed,
            timeoutNanoseconds: timeoutNs, timelineBucketNanoseconds: nil)
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let result = try LoadRunner.run(try plan(), progressBar: !quiet && !json && isatty(2) != 0)
        print(json ? LoadReport.json(result) : LoadReport.text(result))
    }

    /// `10s`, `500ms`, `1m`, `250us`, or plain seconds.
    static func parseDuration(_ text: String) -> UInt64? {
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("s", 1e9), ("m", 60e9)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value < 1e7 else { return nil }
            return UInt64(value * scale)
        }
        guard let value = Double(text), value >= 0, value < 1e7 else { return nil }
        return UInt64(value * 1e9)
    }
}
