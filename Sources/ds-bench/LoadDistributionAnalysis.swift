import DSHashing
import Foundation

/// Load distribution (A-1): `requests` requests with random 6-digit ids on N = 3, one ds-lb per
/// algorithm (the assignment preset beside the default): a grouped bar chart of the requests per
/// replica.
enum LoadDistributionAnalysis {
    static func run(_ context: AnalysisContext) throws -> String {
        let algorithms = try context.attachedAlgorithm().map { [$0] } ?? AnalysisContext.algorithms
        var csv = CSVTable("group", "replica", "requests", "status_requests")
        var table: [String] = []
        var notes: [String] = []
        for algorithm in algorithms {
            context.say("A-1: \(algorithm.rawValue), N = 3, \(context.requests) requests")
            let run = try context.withBalancer(replicas: 3, algorithm: algorithm) { try DistributionRun.measure(context, on: $0) }
            for (name, count) in run.replies {
                csv.add(AnalysisContext.label(algorithm), name, count, run.served[name] ?? 0)
            }
            let s = run.spread
            if table.isEmpty {
                // Launched ds-lbs all name their replicas server-1…3; a `--url` one may not.
                table = [
                    "| algorithm | " + run.replies.map(\.name).joined(separator: " | ")
                        + " | total | max/avg | std dev | failed | /status agrees |",
                    "|---|" + String(repeating: "---:|", count: run.replies.count + 4) + "---|",
                ]
            }
            table.append(
                "| \(AnalysisContext.label(algorithm)) | " + run.replies.map { String($0.count) }.joined(separator: " | ")
                    + " | \(s.total) | \(LoadReport.format(s.maxOverAvg, 3)) | \(LoadReport.format(s.stddevPercent, 1)) % | \(run.result.stats.failed) | \(run.agrees ? "yes" : "NO") |"
            )
            if !run.agrees { notes.append("- \(algorithm.rawValue): ds-bench counted \(run.replies), /status \(run.served)") }
        }
        try csv.write(to: context.path("a1.csv"))
        try context.plotter.plot(
            "bars", csv: context.path("a1.csv"), png: context.path("a1.png"),
            title: "A-1: \(context.requests) requests with random 6-digit ids on N = 3 replicas")
        let summary = """
            # A-1: load distribution on N = 3

            \(context.requests) `GET /home?id=…` requests with random 6-digit ids (seed \(context.seed), the same ids for every algorithm), \(context.concurrency) keep-alive connections, \(context.url.map { "the running ds-lb at \($0) scaled to 3 replicas" } ?? "one fresh ds-lb with 3 local replicas per algorithm"). Replies are counted by the replica named in the body; "/status agrees" compares them with the requests ds-lb's `/status` says each replica served during the run.

            \(table.joined(separator: "\n"))
            \(notes.isEmpty ? "" : "\nDisagreements:\n" + notes.joined(separator: "\n") + "\n")
            max/avg is the busiest replica's share over the even share (1.000 = perfect); std dev is the standard deviation of the counts as a percentage of their mean. Chart: `a1.png`; numbers: `a1.csv`.
            """
        try (summary + "\n").write(toFile: context.path("a1.md"), atomically: true, encoding: .utf8)
        return summary
    }
}
