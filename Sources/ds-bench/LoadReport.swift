import Foundation

/// `ds-bench load`'s output: a human table, or one JSON object for scripts.
enum LoadReport {
    static let percentiles: [Double] = [50, 90, 99, 99.9]

    static func percentileKey(_ p: Double) -> String {
        p == p.rounded() ? "p\(Int(p))" : "p" + "\(p)".replacingOccurrences(of: ".", with: "_")
    }

    /// JSON keys: url, threads, concurrency, rate, ids, requests (completed), succeeded, failed,
    /// sent, elapsed_s, throughput_rps, send_rate_rps, latency_ms {min, mean, p50, p90, p99,
    /// p99_9, max}, replicas {name: count}, unattributed, statuses {code: count}, errors {kind: count}.
    static func jsonObject(_ r: LoadResult) -> [String: Any] {
        let s = r.stats
        var latency: [String: Any] = [:]
        if s.latency.totalCount > 0 {
            latency["min"] = Double(s.latency.min) / 1000
            latency["mean"] = s.latency.mean / 1000
            latency["max"] = Double(s.latency.max) / 1000
            for p in percentiles { latency[percentileKey(p)] = Double(s.latency.valueAtPercentile(p)) / 1000 }
        }
        var object: [String: Any] = [
            "url": r.plan.target.description,
            "threads": r.plan.threads,
            "concurrency": r.plan.concurrency,
            "ids": r.plan.ids.description,
            "requests": s.completed,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "sent": r.sent,
            "elapsed_s": r.elapsed,
            "throughput_rps": r.throughput,
            "send_rate_rps": r.sendRate,
            "latency_ms": latency,
            "replicas": s.replicas,
            "unattributed": s.unattributed,
            "statuses": Dictionary(uniqueKeysWithValues: s.statuses.map { (String($0.key), $0.value) }),
            "errors": s.errors,
        ]
        object["rate"] = r.plan.rate ?? NSNull()
        return object
    }

    static func json(_ r: LoadResult) -> String {
        let data = try! JSONSerialization.data(withJSONObject: jsonObject(r), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func text(_ r: LoadResult) -> String {
        let s = r.stats
        var lines: [String] = []
        let mode = r.plan.rate.map { "open loop at \(format($0, 0)) req/s" } ?? "closed loop"
        lines.append(
            "\(r.plan.target)  \(r.plan.threads) thread(s), \(r.plan.concurrency) connection(s), \(mode), ids \(r.plan.ids)")
        lines.append(
            "  \(s.completed) requests in \(format(r.elapsed, 2)) s: \(format(r.throughput, 0)) req/s, \(s.succeeded) succeeded, \(s.failed) failed"
        )
        if r.plan.rate != nil { lines.append("  sent at \(format(r.sendRate, 1)) req/s (target \(format(r.plan.rate!, 1)))") }
        if s.latency.totalCount > 0 {
            let ps = percentiles.map {
                "p\($0 == $0.rounded() ? String(Int($0)) : String($0)) \(ms(s.latency.valueAtPercentile($0)))"
            }.joined(separator: "  ")
            lines.append(
                "  latency: min \(ms(s.latency.min))  mean \(format(s.latency.mean / 1000, 3)) ms  \(ps)  max \(ms(s.latency.max))"
            )
        }
        if !s.replicaNames.isEmpty {
            lines.append("  replies per replica:")
            let total = max(s.replicaCounts.reduce(0, +), 1)
            let order = s.replicaNames.indices.sorted { naturalLess(s.replicaNames[$0], s.replicaNames[$1]) }
            for i in order {
                let share = Double(s.replicaCounts[i]) * 100 / Double(total)
                lines.append("    Server \(s.replicaNames[i]): \(s.replicaCounts[i]) (\(format(share, 1)) %)")
            }
        }
        if s.unattributed > 0 { lines.append("  answers without a replica name: \(s.unattributed)") }
        let statuses = s.statuses.keys.sorted().map { "\($0): \(s.statuses[$0]!)" }.joined(separator: ", ")
        if !statuses.isEmpty { lines.append("  statuses: \(statuses)") }
        if !s.errors.isEmpty {
            lines.append("  errors: " + s.errors.keys.sorted().map { "\($0) \(s.errors[$0]!)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// "2" before "10": replica names are usually numbers.
    static func naturalLess(_ a: String, _ b: String) -> Bool {
        let pa = a.reversed().prefix { $0.isNumber }.count, pb = b.reversed().prefix { $0.isNumber }.count
        if pa > 0, pb > 0, a.dropLast(pa) == b.dropLast(pb), let x = Int(a.suffix(pa)), let y = Int(b.suffix(pb)), x != y {
            return x < y
        }
        return a < b
    }

    private static func ms(_ micros: UInt64) -> String { "\(format(Double(micros) / 1000, 3)) ms" }

    static func format(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }
}
