import DSHashing

/// One distribution measurement on a live ds-lb: the load's replies per replica, checked against
/// what ds-lb's `/status` says each replica served during the run. Shared by.
struct DistributionRun {
    /// Replica name (`server-K`) → replies counted by ds-bench, in natural name order.
    var replies: [(name: String, count: Int)]
    /// Replica name → requests ds-lb's /status counted during the run.
    var served: [String: Int]
    var result: LoadResult

    var spread: Spread { Spread(counts: replies.map(\.count)) }
    var agrees: Bool { replies.allSatisfy { served[$0.name] == $0.count } }

    static func measure(_ context: AnalysisContext, on balancer: Balancer) throws -> DistributionRun {
        let before = try balancer.servedByReplica()
        let result = try context.distributionLoad(on: balancer)
        let after = try balancer.servedByReplica()
        let status = try balancer.status()
        // The body names the replica by its id; /status maps ids to names.
        var nameOfID: [String: String] = [:]
        for r in status["replicas"] as? [[String: Any]] ?? [] {
            if let name = r["name"] as? String, let id = r["id"] as? Int { nameOfID[String(id)] = name }
        }
        var counts: [String: Int] = [:]
        for name in after.keys { counts[name] = 0 }
        for (id, count) in result.stats.replicas { counts[nameOfID[id] ?? "id-\(id)", default: 0] += count }
        var served: [String: Int] = [:]
        for (name, total) in after { served[name] = total - (before[name] ?? 0) }
        let replies = counts.keys.sorted(by: LoadReport.naturalLess).map { ($0, counts[$0]!) }
        return DistributionRun(replies: replies, served: served, result: result)
    }
}
