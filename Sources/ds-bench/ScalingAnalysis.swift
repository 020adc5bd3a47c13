import DSHashing
import Foundation

/// Scaling (A-2): N = 2…6, `requests` requests each, per algorithm: the mean load per replica and
/// the spread (max/avg, standard deviation). One ds-lb per algorithm, started with 2 replicas and
/// grown by `POST /add` (the table depends only on the member set, so this routes exactly as a
/// fresh ds-lb with N replicas would; it also exercises scaling under the analysis).
enum ScalingAnalysis {
    static let sizes = Array(2...6)
    /// The weighted run: N = 4 at these weights (server-1 … server-4).
    static let weights = [1, 1, 2, 4]

    static func run(_ context: AnalysisContext) throws -> String {
        let algorithms = try context.attachedAlgorithm().map { [$0] } ?? AnalysisContext.algorithms
        var long = CSVTable("group", "n", "replica", "requests", "status_requests")
        var lines = CSVTable("group", "n", "mean", "min", "max", "max_over_avg", "stddev_pct")
        var table = [
            "| algorithm | " + sizes.map { "N = \($0)" }.joined(separator: " | ") + " |",
            "|---|" + sizes.map { _ in "---:|" }.joined(),
        ]
        var weighted = CSVTable("group", "replica", "requests", "status_requests", "expected")
        var weightedTable = [
            "| algorithm | " + weights.enumerated().map { "server-\($0 + 1) (w \($1))" }.joined(separator: " | ")
                + " | largest deviation |",
            "|---|" + weights.map { _ in "---:|" }.joined() + "---:|",
        ]
        var allAgree = true
        var failed = 0
        for algorithm in algorithms {
            var cells: [String] = []
            try context.withBalancer(replicas: sizes[0], algorithm: algorithm) { balancer in
                for n in sizes {
                    try balancer.scale(to: n)
                    context.say("A-2: \(algorithm.rawValue), N = \(n), \(context.requests) requests")
                    let run = try DistributionRun.measure(context, on: balancer)
                    guard run.replies.count == n else {
                        throw Balancer.Failure(
                            description: "A-2: expected \(n) replicas, /status lists \(run.replies.map(\.name))")
                    }
                    allAgree = allAgree && run.agrees
                    failed += run.result.stats.failed
                    for (name, count) in run.replies {
                        long.add(AnalysisContext.label(algorithm), n, name, count, run.served[name] ?? 0)
                    }
                    let s = run.spread
                    lines.add(
                        AnalysisContext.label(algorithm), n, LoadReport.format(s.mean, 1), s.min, s.max,
                        LoadReport.format(s.maxOverAvg, 4), LoadReport.format(s.stddevPercent, 2))
                    cells.append("\(LoadReport.format(s.maxOverAvg, 3)) / \(LoadReport.format(s.stddevPercent, 1)) %")
                }
                if algorithm != .assignment {
                    context.say("A-2: \(algorithm.rawValue), weighted, N = 4, weights \(weights)")
                    let run = try weightedRun(context, on: balancer)
                    allAgree = allAgree && run.agrees
                    failed += run.result.stats.failed
                    let total = run.replies.reduce(0) { $0 + $1.count }
                    for (index, (name, count)) in run.replies.enumerated() {
                        let share = index < weights.count ? Double(weights[index]) / Double(weights.reduce(0, +)) : 0
                        weighted.add(
                            AnalysisContext.label(algorithm), name, count, run.served[name] ?? 0,
                            LoadReport.format(share * Double(total), 1))
                    }
                    weightedTable.append("| \(AnalysisContext.label(algorithm)) | " + weightedCells(run))
                }
            }
            table.append("| \(AnalysisContext.label(algorithm)) | " + cells.joined(separator: " | ") + " |")
        }
        // An attached ds-lb that runs the assignment preset has no weighted run.
        let hasWeighted = weightedTable.count > 2
        if hasWeighted {
            try weighted.write(to: context.path("a2-weighted.csv"))
            try context.plotter.plot(
                "bars", csv: context.path("a2-weighted.csv"), png: context.path("a2-weighted.png"),
                title: "A-2: N = 4 at weights \(weights.map(String.init).joined(separator: "/")) (\(context.requests) random ids)"
            )
        }
        try long.write(to: context.path("a2-replicas.csv"))
        try lines.write(to: context.path("a2.csv"))
        try context.plotter.plot(
            "lines", csv: context.path("a2.csv"), png: context.path("a2.png"),
            title: "A-2: load per replica as N grows (\(context.requests) random ids per N)")
        let summary = """
            # A-2: scaling from N = 2 to 6

            \(context.url.map { "The running ds-lb at \($0) is scaled to 2 replicas and grows by `POST /add` to 6 (then back to its size);" } ?? "For each algorithm one ds-lb starts with 2 local replicas and grows by `POST /add` to 6;") at each N it serves \(context.requests) `GET /home` requests with the same random 6-digit ids (seed \(context.seed)). Cells: max/avg / standard deviation of the per-replica counts (as % of the mean); the mean load per replica is \(context.requests)/N for every algorithm, so the spread is what differs.

            \(table.joined(separator: "\n"))

            \(hasWeighted ? weightedSection(weightedTable) : "")Failed requests over all runs: \(failed). ds-bench's per-replica counts \(allAgree ? "match" : "do NOT all match") ds-lb's `/status` counters. Chart: `a2.png`; numbers: `a2.csv` (per N), `a2-replicas.csv` (per replica).
            """
        try (summary + "\n").write(toFile: context.path("a2.md"), atomically: true, encoding: .utf8)
        return summary
    }

    /// Scales to N = 4, sets `weights`, measures, and sets every weight back to 1 (an attached
    /// ds-lb keeps its pool as it was).
    private static func weightedRun(_ context: AnalysisContext, on balancer: Balancer) throws -> DistributionRun {
        try balancer.scale(to: weights.count)
        let names = (try balancer.status()["replicas"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            .sorted(by: LoadReport.naturalLess)
        defer {
            for name in names { try? balancer.setWeight(1, of: name) }
        }
        for (name, weight) in zip(names, weights) { try balancer.setWeight(weight, of: name) }
        return try DistributionRun.measure(context, on: balancer)
    }

    private static func weightedSection(_ table: [String]) -> String {
        """
        Weighted (N = 4, `PATCH /weight` to \(weights.map(String.init).joined(separator: "/")), the same ids): each replica's share of the replies, with its weight's share (w / \(weights.reduce(0, +))) in brackets; the assignment preset ignores weights and is left out. Chart: `a2-weighted.png`; numbers: `a2-weighted.csv`.

        \(table.joined(separator: "\n"))


        """
    }

    /// "share % (weight's share %)" per replica, then the largest relative deviation.
    private static func weightedCells(_ run: DistributionRun) -> String {
        let total = Double(max(1, run.replies.reduce(0) { $0 + $1.count }))
        let weightTotal = Double(weights.reduce(0, +))
        var worst = 0.0
        var cells: [String] = []
        for (index, reply) in run.replies.enumerated() {
            let share = Double(reply.count) / total
            let expected = index < weights.count ? Double(weights[index]) / weightTotal : 0
            if expected > 0 { worst = max(worst, abs(share / expected - 1)) }
            cells.append("\(LoadReport.format(share * 100, 1)) % (\(LoadReport.format(expected * 100, 1)) %)")
        }
        return cells.joined(separator: " | ") + " | \(LoadReport.format(worst * 100, 1)) % |"
    }
}
