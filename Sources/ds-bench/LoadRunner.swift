import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// The merged outcome of a load run.
struct LoadResult: Sendable {
    var plan: LoadPlan
    var stats: LoadStats
    /// From the start of the run to the last completion, in seconds.
    var elapsed: Double
    /// Requests sent, and the rate they were sent at (first to last send).
    var sent: Int
    var sendRate: Double
    var throughput: Double { elapsed > 0 ? Double(stats.completed) / elapsed : 0 }
}

/// Runs a `LoadPlan` on `plan.threads` loop threads and waits for all of them (any thread but a
/// load thread). The calling thread draws the progress bar when asked to.
enum LoadRunner {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private struct ThreadOutcome: Sendable {
        var stats: LoadStats
        var firstSend: UInt64
        var lastSend: UInt64
        var sent: Int
        var finished: UInt64
    }

    static func run(
        _ plan: LoadPlan, progressBar: Bool, start: UInt64? = nil, progress: LoadProgress = LoadProgress()
    ) throws -> LoadResult {
        let zipf: ZipfTable? = {
            if case .zipf(let s) = plan.ids { return ZipfTable(exponent: s) }
            return nil
        }()
        let outcomes = Locked<[ThreadOutcome?]>(Array(repeating: nil, count: plan.threads))
        let startErrors = Locked<[String]>([])
        let runStart = start ?? Clock.now()
        for thread in 0..<plan.threads {
            LoopThread.start(name: "ds-bench-\(thread)") {
                do {
                    let loop = try EventLoop()
                    var worker: LoadWorker?
                    worker = LoadWorker(
                        plan: plan, thread: thread, runStart: runStart, zipf: zipf,
                        progress: progress, loop: loop
                    ) { loop.stop() }
                    worker!.start()
                    loop.run()
                    let w = worker!
                    outcomes.withLock {
                        $0[thread] = ThreadOutcome(
                            stats: w.stats, firstSend: w.firstSendAt, lastSend: w.lastSendAt,
                            sent: w.sent, finished: w.finishedAt)
                    }
                    worker = nil
                } catch {
                    startErrors.withLock { $0.append("\(error)") }
                    outcomes.withLock {
                        $0[thread] = ThreadOutcome(stats: LoadStats(), firstSend: 0, lastSend: 0, sent: 0, finished: Clock.now())
                    }
                }
            }
        }
        let bar = progressBar ? ProgressBar(plan: plan, start: runStart) : nil
        while true {
            let finished = outcomes.withLock { $0.allSatisfy { $0 != nil } }
            if finished { break }
            bar?.draw(completed: progress.completed.load(ordering: .relaxed), failed: progress.failed.load(ordering: .relaxed))
            usleep(bar == nil ? 10_000 : 100_000)
        }
        bar?.clear()
        let errors = startErrors.withLock { $0 }
        if let first = errors.first { throw Failure(description: "load thread failed to start: \(first)") }
        let all = outcomes.withLock { $0.compactMap { $0 } }
        var stats = LoadStats()
        for outcome in all { stats.merge(outcome.stats) }
        let firstSend = all.map(\.firstSend).filter { $0 > 0 }.min() ?? 0
        let lastSend = all.map(\.lastSend).max() ?? 0
        let sent = all.map(\.sent).reduce(0, +)
        let end = all.map(\.finished).max() ?? Clock.now()
        let sendSpan = Double(lastSend - firstSend) / 1e9
        return LoadResult(
            plan: plan, stats: stats, elapsed: Double(end - runStart) / 1e9, sent: sent,
            sendRate: sent > 1 && sendSpan > 0 ? Double(sent - 1) / sendSpan : 0)
    }
}

/// A one-line progress bar on stderr, redrawn in place; only when stderr is a terminal.
struct ProgressBar {
    let plan: LoadPlan
    let start: UInt64

    func draw(completed: Int, failed: Int) {
        let elapsed = Double(Clock.now() - start) / 1e9
        let fraction: Double
        if let total = plan.requests {
            fraction = Double(completed) / Double(max(total, 1))
        } else {
            fraction = elapsed / (Double(plan.durationNanoseconds ?? 1) / 1e9)
        }
        let width = 30
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let rate = elapsed > 0 ? Double(completed) / elapsed : 0
        let line =
            "\r[\(bar)] \(Int(fraction * 100))%  \(completed) done  \(failed) failed  \(Int(rate)) req/s  \(String(format1: elapsed))s "
        write(line)
    }

    func clear() {
        write("\r" + String(repeating: " ", count: 100) + "\r")
    }

    private func write(_ text: String) {
        var t = text
        t.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

extension String {
    /// One decimal, without Foundation's formatter.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
