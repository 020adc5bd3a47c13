import DSHashing

#if canImport(Glibc)
import Glibc
#endif

/// How the `id` query parameter of each request is chosen (`--ids`).
///
/// - `random6`: uniform 6-digit ids 100000…999999, the classic analysis's workload.
/// - `sequential`: 100000, 100001, … (ids 100000…109999 are the assignment's golden vectors).
/// - `zipf:S`: ids 100000…999999 where the k-th id has probability ∝ 1/k^S: a few hot keys, as
///   real traffic has, to show what a hot key does to one replica.
/// - `fixed`: the URL as given (what wrk sends), for comparing with wrk.
enum IDSpec: Sendable, Equatable, CustomStringConvertible {
    case random6
    case sequential
    case zipf(Double)
    case fixed

    static let first: UInt64 = 100_000
    static let count: UInt64 = 900_000

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> IDSpec {
        switch text {
        case "random6": return .random6
        case "sequential": return .sequential
        case "fixed": return .fixed
        default:
            if text.hasPrefix("zipf:"), let s = Double(text.dropFirst(5)), s > 0, s <= 10 {
                return .zipf(s)
            }
            throw Invalid(description: "--ids: '\(text)' is not random6, sequential, fixed or zipf:S with 0 < S ≤ 10")
        }
    }

    var description: String {
        switch self {
        case .random6: return "random6"
        case .sequential: return "sequential"
        case .fixed: return "fixed"
        case .zipf(let s): return "zipf:\(s)"
        }
    }
}

/// One thread's id stream. Sequential ids are interleaved by thread (thread t of T takes
/// first + t, first + t + T, …) so the run as a whole sends each id once, without a shared counter.
struct IDGenerator {
    private let spec: IDSpec
    private var random: SplitMix64
    private var next: UInt64
    private let stride: UInt64
    /// Cumulative probabilities of the zipf ranks, shared read-only.
    private let zipfCDF: ZipfTable?

    init(spec: IDSpec, seed: UInt64, thread: Int, threads: Int, zipf: ZipfTable?) {
        self.spec = spec
        random = SplitMix64(seed: seed &+ UInt64(thread) &* 0x9E37_79B9)
        next = IDSpec.first + UInt64(thread)
        stride = UInt64(threads)
        zipfCDF = zipf
    }

    mutating func nextID() -> UInt64 {
        switch spec {
        case .random6, .fixed:
            return IDSpec.first + random.next() % IDSpec.count
        case .sequential:
            defer { next += stride }
            return next
        case .zipf:
            return IDSpec.first + UInt64(zipfCDF!.rank(uniform: Double(random.next() >> 11) * 0x1p-53))
        }
    }
}

/// The zipf distribution over 900,000 ranks as a cumulative table, built once per run (7 MB);
/// a draw is one binary search.
final class ZipfTable: Sendable {
    let cdf: [Double]

    init(exponent s: Double, ranks: Int = Int(IDSpec.count)) {
        var cdf = [Double](repeating: 0, count: ranks)
        var total = 0.0
        for k in 0..<ranks {
            total += 1 / pow(Double(k + 1), s)
            cdf[k] = total
        }
        for k in 0..<ranks { cdf[k] /= total }
        self.cdf = cdf
    }

    /// The 0-based rank whose cumulative probability first reaches `u` ∈ [0, 1).
    func rank(uniform u: Double) -> Int {
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
