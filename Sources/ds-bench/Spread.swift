/// How evenly a set of per-replica counts is spread: the figures every analysis reports.
struct Spread {
    let counts: [Int]

    var total: Int { counts.reduce(0, +) }
    var mean: Double { counts.isEmpty ? 0 : Double(total) / Double(counts.count) }
    var min: Int { counts.min() ?? 0 }
    var max: Int { counts.max() ?? 0 }
    /// max / avg: 1 is perfectly even; the busiest replica's load over the fair share.
    var maxOverAvg: Double { mean > 0 ? Double(max) / mean : 0 }
    /// Population standard deviation of the counts as a percentage of their mean.
    var stddevPercent: Double {
        guard mean > 0 else { return 0 }
        let variance = counts.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(counts.count)
        return variance.squareRoot() / mean * 100
    }
}
