import DSHashing
import Foundation

/// Hash functions (A-4): the assignment's H and Φ beside modified slot functions and the
/// production algorithms, computed offline (the same routing code, without sockets): balance and
/// churn over every 6-digit id, and the A-1/A-2 views (N = 3 bars, N = 2…6 lines) on the ids
/// A-1/A-2 send.
enum HashFunctionsAnalysis {
    /// One way of mapping an id to a replica number.
    struct Candidate {
        let name: String
        let route: ([Int]) -> (UInt64) -> Int

        static func slots(_ f: SlotRing.Functions) -> Candidate {
            Candidate(name: f.name) { numbers in
                let ring = SlotRing(f, replicas: numbers)
                return { ring.owner($0) }
            }
        }

        static func production(_ algorithm: HashAlgorithm) -> Candidate {
            Candidate(name: AnalysisContext.label(algorithm)) { numbers in
                let table = algorithm.build(numbers.map { HashMember(name: "server-\($0)", number: $0) })
                let members = table.members
                return { id in
                    let key = table.key(String(id))
                    return table.lookup(key).map { members[$0].number } ?? -1
                }
            }
        }
    }

    static var candidates: [Candidate] {
        [.slots(SlotRing.assignment), .slots(SlotRing.spacedPhi), .slots(SlotRing.fibonacci), .slots(SlotRing.xxhashLarge)]
            + [HashAlgorithm.rendezvous, .ring, .maglev].map(Candidate.production)
    }

    static let allIDs: [UInt64] = Array(IDSpec.first..<(IDSpec.first + IDSpec.count))

    static func counts(_ route: (UInt64) -> Int, _ numbers: [Int], _ ids: [UInt64]) -> [Int] {
        var index: [Int: Int] = [:]
        for (k, n) in numbers.enumerated() { index[n] = k }
        var counts = [Int](repeating: 0, count: numbers.count)
        for id in ids { if let k = index[route(id)] { counts[k] += 1 } }
        return counts
    }

    /// Fractions of `ids` whose owner differs between two routings: all of them, and the
    /// collateral ones (moved between two replicas that are in both memberships; `changed` is the
    /// replica removed or added, which must gain or lose keys).
    static func moved(
        _ a: (UInt64) -> Int, _ b: (UInt64) -> Int, changed: Int, _ ids: [UInt64]
    ) -> (all: Double, collateral: Double) {
        var n = 0, collateral = 0
        for id in ids {
            let x = a(id), y = b(id)
            if x != y {
                n += 1
                if x != changed && y != changed { collateral += 1 }
            }
        }
        return (Double(n) / Double(ids.count), Double(collateral) / Double(ids.count))
    }

    static func run(_ context: AnalysisContext) throws -> String {
        let sample = context.distributionIDs(count: context.requests)
        let five = Array(1...5)
        var bars = CSVTable("group", "replica", "requests")
        var lines = CSVTable("group", "n", "mean", "min", "max", "max_over_avg", "stddev_pct")
        var table = [
            "| function | slots H can hit | max/avg N = 3 | max/avg N = 5 | std dev N = 5 | moved on remove (N = 5) | collateral | moved on add (5 → 6) | collateral |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        var csv = CSVTable(
            "function", "max_over_avg_n3", "max_over_avg_n5", "stddev_pct_n5", "moved_remove_over_ideal",
            "collateral_remove_pct", "moved_add_over_ideal", "collateral_add_pct")
        var assignmentSlots = ""
        for candidate in candidates {
            context.say("A-4: \(candidate.name)")
            let three = candidate.route([1, 2, 3])
            for (k, c) in counts(three, [1, 2, 3], sample).enumerated() { bars.add(candidate.name, "server-\(k + 1)", c) }
            for n in ScalingAnalysis.sizes {
                let s = Spread(counts: counts(candidate.route(Array(1...n)), Array(1...n), sample))
                lines.add(
                    candidate.name, n, LoadReport.format(s.mean, 1), s.min, s.max, LoadReport.format(s.maxOverAvg, 4),
                    LoadReport.format(s.stddevPercent, 2))
            }
            let all3 = Spread(counts: counts(three, [1, 2, 3], allIDs))
            let route5 = candidate.route(five)
            let all5 = Spread(counts: counts(route5, five, allIDs))
            var removeMoved = 0.0, removeCollateral = 0.0
            for r in five {
                let m = moved(route5, candidate.route(five.filter { $0 != r }), changed: r, allIDs)
                removeMoved += m.all / 5
                removeCollateral += m.collateral / 5
            }
            let removeRatio = removeMoved / (1.0 / 5)
            let add = moved(route5, candidate.route(Array(1...6)), changed: 6, allIDs)
            let addRatio = add.all / (1.0 / 6)
            let slotsUsed = slotsHitByH(candidate)
            if candidate.name == SlotRing.assignment.name { assignmentSlots = slotsUsed }
            table.append(
                "| \(candidate.name) | \(slotsUsed) | \(LoadReport.format(all3.maxOverAvg, 3)) | \(LoadReport.format(all5.maxOverAvg, 3)) | \(LoadReport.format(all5.stddevPercent, 1)) % | \(LoadReport.format(removeRatio, 2)) × ideal | \(LoadReport.format(removeCollateral * 100, 2)) % | \(LoadReport.format(addRatio, 2)) × ideal | \(LoadReport.format(add.collateral * 100, 2)) % |"
            )
            csv.add(
                candidate.name, LoadReport.format(all3.maxOverAvg, 4), LoadReport.format(all5.maxOverAvg, 4),
                LoadReport.format(all5.stddevPercent, 2), LoadReport.format(removeRatio, 3),
                LoadReport.format(removeCollateral * 100, 3),
                LoadReport.format(addRatio, 3), LoadReport.format(add.collateral * 100, 3))
        }
        let agrees = assignmentMatchesDSHashing()
        let live = compareWithA1(context, offline: bars)
        try bars.write(to: context.path("a4-bars.csv"))
        try lines.write(to: context.path("a4-lines.csv"))
        try csv.write(to: context.path("a4.csv"))
        try context.plotter.plot(
            "bars", csv: context.path("a4-bars.csv"), png: context.path("a4-bars.png"),
            title: "A-4: N = 3, \(context.requests) random ids, per hash function",
            extra: ["--xlabel", "hash function / algorithm"])
        try context.plotter.plot(
            "lines", csv: context.path("a4-lines.csv"), png: context.path("a4-lines.png"),
            title: "A-4: N = 2…6 per hash function (\(context.requests) random ids per N)")
        let summary = """
            # A-4: hash functions

            The assignment's request slot H(i) = (i² + 2i + 17) mod 512 and virtual-server slot Φ(i, j) = (i² + j² + 2j + 25) mod 512 (K = 9, linear probing, first virtual server clockwise) beside modified slot functions — "H, spaced Φ": the same H with Φ(i, j) = i² + 25 + 56·j, a replica's virtual servers evenly spaced; "Fibonacci H, Φ": both replaced by multiplicative hashing, H(i) = ⌊(i · 2⁶⁴/φ mod 2⁶⁴) / 2⁵⁵⌋ and Φ(i, j) the same of 64·i + j, same M = 512 and K = 9; "xxHash64": H and Φ by xxHash64 on a circle of M = 65536 slots with K = 100 virtual servers each — and the production algorithms ds-lb ships (the same routing code, run offline on replicas server-1 … server-N). Balance and churn are over all \(allIDs.count) 6-digit ids (no sampling noise); "moved" is the fraction of ids whose replica changed, over the ideal 1/N (remove: each of the 5 replicas in turn, averaged; add: a sixth). "slots used by H" is how many of the circle's slots any request id can land on.

            \(table.joined(separator: "\n"))

            - H(i) = (i² + 2i + 17) = (i + 1)² + 16 mod 512 can only take the values of a square mod 512 plus 16: the 900,000 ids land on \(assignmentSlots) slots, so most virtual servers never see a request whatever Φ does (the "H, spaced Φ" row is no better). A well-mixed H (Fibonacci hashing, xxHash64) reaches every slot; a bigger circle with more virtual servers narrows the spread further, and the production algorithms narrow it to sampling noise.
            - "moved on remove" is ≈ 1 × ideal for every ring-shaped function because, averaged over which replica goes, the keys that must move are exactly the removed replica's; the columns that tell them apart are "on add" (a new replica that gets far less than 1/(N+1) of the keys was placed badly) and "collateral" (keys moved between replicas that stayed: zero for a consistent ring or rendezvous, small but not zero for Maglev's table).
            - Check: the slot-ring model with the assignment's H and Φ routes all \(allIDs.count) ids exactly as DSHashing's `assignment` table ds-lb runs: \(agrees ? "yes" : "NO").
            \(live.map { "- \($0)" } ?? "")

            Charts: `a4-bars.png` (N = 3, the A-1 view), `a4-lines.png` (N = 2…6, the A-2 view); numbers: `a4.csv`, `a4-bars.csv`, `a4-lines.csv`.
            """
        try (summary + "\n").write(toFile: context.path("a4.md"), atomically: true, encoding: .utf8)
        return summary
    }

    /// Distinct slots H maps the 6-digit ids to ("—" for the production algorithms, which have no
    /// request slot).
    static func slotsHitByH(_ candidate: Candidate) -> String {
        let functions = [SlotRing.assignment, SlotRing.spacedPhi, SlotRing.fibonacci, SlotRing.xxhashLarge].first {
            $0.name == candidate.name
        }
        guard let f = functions else { return "—" }
        var seen = Set<UInt64>()
        for id in allIDs { seen.insert(f.request(id) % UInt64(f.slots)) }
        return "\(seen.count) of \(f.slots)"
    }

    /// When A-1 ran into the same directory: are its live per-replica counts the offline ones?
    /// (Same ids, same routing code; a difference would mean ds-lb routes differently.)
    static func compareWithA1(_ context: AnalysisContext, offline: CSVTable) -> String? {
        guard let text = try? String(contentsOfFile: context.path("a1.csv"), encoding: .utf8) else { return nil }
        var liveCounts: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            if f.count >= 3 { liveCounts[f[0] + "/" + f[1]] = f[2] }
        }
        let assignmentName = SlotRing.assignment.name
        var compared = Set<String>(), differing: [String] = []
        for row in offline.rows {
            let group = row[0] == assignmentName ? "assignment" : row[0]
            guard let live = liveCounts[group + "/" + row[1]] else { continue }
            compared.insert(group)
            if live != row[2] { differing.append("\(group) \(row[1]): live \(live), offline \(row[2])") }
        }
        guard !compared.isEmpty else { return nil }
        return differing.isEmpty
            ? "The N = 3 counts of \(compared.sorted().joined(separator: ", ")) equal A-1's live counts through ds-lb (a1.csv): same ids, same routing."
            : "The N = 3 counts differ from A-1's live ones: \(differing.joined(separator: "; "))."
    }

    /// SlotRing with the assignment's functions must route like DSHashing's Assignment.
    static func assignmentMatchesDSHashing() -> Bool {
        let numbers = [1, 2, 3, 4, 5]
        let model = SlotRing(SlotRing.assignment, replicas: numbers)
        let table = Assignment(members: numbers.map { HashMember(name: "server-\($0)", number: $0) })
        return allIDs.allSatisfy { id in table.lookup(id).map { table.members[$0].number } == model.owner(id) }
    }
}
