import DSSystem
import Prometheus
import Synchronization

/// What the data plane counts, for `/metrics` (Prometheus text format) and `/status`.
///
/// Every worker writes only counters of its own (a `Shard` per replica, one `WorkerCounters`),
/// so an update is a relaxed load and store of memory no other thread writes: no lock, no
/// read-modify-write, no cache line that moves between workers on the request path. Whoever
/// reads (`/metrics`, `/status`, the supervisor, bounded loads) sums over the workers, as
/// HAProxy and Envoy do. The supervisor's own series are in `registry`; `render` adds these.
package final class ProxyMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry

    /// The response-time buckets: upper bounds in nanoseconds, and their `le` labels.
    static let bucketBounds: [UInt64] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000].map {
        $0 * 1_000_000
    }
    static let bucketLabels = [
        "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
    ]
    /// The buckets with the one past the last bound (`+Inf` only).
    fileprivate typealias Buckets = InlineArray<14, Atomic<Int>>

    /// One worker's counts for one replica. Written by that worker's loop thread only (hence
    /// `add`: a load and a store, no atomic read-modify-write); read by any thread. Made on that
    /// thread (from its own malloc arena), and padded, so no other worker's counters share its
    /// cache lines.
    package final class Shard: Sendable {
        fileprivate let inFlight = Atomic<Int>(0)
        fileprivate let served = Atomic<Int>(0)
        fileprivate let failures = Atomic<Int>(0)
        fileprivate let latencyNanoseconds = Atomic<Int>(0)
        /// Answers per bucket, each counted in its own bucket only (made cumulative when read).
        fileprivate let buckets = Buckets { _ in Atomic(0) }
        /// The next shard of the same replica (readers walk the chain without a lock).
        fileprivate let next = Atomic<Unmanaged<Shard>?>(nil)
        /// `ProxyMetrics.bucketBounds`, held here: the static is reached through a `swift_once`
        /// check, and `end` reads the bounds for every request.
        private let bucketBounds = ProxyMetrics.bucketBounds
        private let padding = CacheLinePadding()

        func begin() {
            add(1, to: inFlight)
        }

        func end(answered: Bool, nanoseconds: UInt64) {
            add(-1, to: inFlight)
            guard answered else { return }
            add(1, to: served)
            add(Int(clamping: nanoseconds), to: latencyNanoseconds)
            var bucket = 0
            let bounds = bucketBounds
            while bucket < bounds.count && nanoseconds > bounds[bucket] { bucket += 1 }
            add(1, to: buckets[bucket])
        }

        func countFailure() {
            add(1, to: failures)
        }
    }

    /// One replica's counts over all workers: the handle the supervisor and `/status` read.
    package final class Replica: Sendable {
        let name: String
        private let retiredFlag = Atomic<Bool>(false)
        /// Every shard made for the replica, kept alive here; `first` chains the same shards for
        /// readers that must not take the lock (bounded loads read `inFlight` per request).
        private let shards = Locked<[Shard]>([])
        private let first = Atomic<Unmanaged<Shard>?>(nil)

        init(name: String) {
            self.name = name
        }

        /// A shard for the calling worker to write. A worker asks once per handle and keeps it.
        func makeShard() -> Shard {
            shards.withLock { all in
                let shard = Shard()
                all.append(shard)
                // Linked in complete at the head: a reader sees the chain before or after, both whole.
                shard.next.store(first.load(ordering: .relaxed), ordering: .relaxed)
                first.store(Unmanaged.passUnretained(shard), ordering: .releasing)
                return shard
            }
        }

        /// The sum of `value` over the shards. The chain is walked without retaining a shard, so
        /// a reader writes nothing to a worker's memory (not even a reference count).
        fileprivate func sum(_ value: (Shard) -> Int) -> Int {
            var total = 0
            var cursor = first.load(ordering: .acquiring)
            while let shard = cursor {
                shard._withUnsafeGuaranteedRef { shard in
                    total &+= value(shard)
                    cursor = shard.next.load(ordering: .acquiring)
                }
            }
            return total
        }

        package var served: Int { sum { $0.served.load(ordering: .relaxed) } }
        package var inFlight: Int { sum { $0.inFlight.load(ordering: .relaxed) } }
        /// Requests the replica failed since it was first seen: invalid responses, refused or
        /// dropped connections, timeouts (a total: the supervisor takes differences over its
        /// window, so workers only add, with no lock and no clock read).
        package var failures: Int { sum { $0.failures.load(ordering: .relaxed) } }

        /// Its series are off `/metrics` (`forget`): it still counts, for whoever holds it, but
        /// a replica under this name that joins again needs a fresh handle.
        package var isRetired: Bool { retiredFlag.load(ordering: .relaxed) }

        fileprivate func retire() {
            retiredFlag.store(true, ordering: .relaxed)
        }

        /// Per bucket the answers at or under its bound (the last is `+Inf`), and the sum of the
        /// response times in nanoseconds.
        fileprivate func latency() -> (cumulative: [Int], nanoseconds: Int) {
            var cumulative = [Int](repeating: 0, count: Buckets.count)
            var running = 0
            for bucket in 0..<Buckets.count {
                running += sum { $0.buckets[bucket].load(ordering: .relaxed) }
                cumulative[bucket] = running
            }
            return (cumulative, sum { $0.latencyNanoseconds.load(ordering: .relaxed) })
        }
    }

    /// One worker's counts that are not per replica. Written by that worker's loop thread only;
    /// made on it (`Worker.init`) and padded, like `Shard`.
    package final class WorkerCounters: Sendable {
        fileprivate let errors = InlineArray<7, Atomic<Int>> { _ in Atomic(0) }
        fileprivate let boundedMoves = Atomic<Int>(0)
        fileprivate let splicedRequestBytes = Atomic<Int>(0)
        fileprivate let splicedResponseBytes = Atomic<Int>(0)
        private let padding = CacheLinePadding()

        func count(_ kind: ErrorKind) {
            add(1, to: errors[kind.ordinal])
        }

        func countBoundedMove() {
            add(1, to: boundedMoves)
        }

        /// Body bytes moved by splice(2): the evidence that the zero-copy path ran (tests read
        /// it), and how much of the traffic it carries.
        func countSpliced(request: Bool, bytes: Int) {
            if request { add(bytes, to: splicedRequestBytes) } else { add(bytes, to: splicedResponseBytes) }
        }
    }

    /// Why a request was not answered by a replica.
    package enum ErrorKind: String, Sendable, CaseIterable {
        case badRequest = "bad_request"
        case noReplica = "no_replica"
        case connect
        case timeout
        case invalidResponse = "invalid_response"
        case retried
        /// ds-lb itself was out of descriptors or memory.
        case localResources = "local_resources"

        /// Its position in `allCases`: its counter's index.
        var ordinal: Int {
            switch self {
            case .badRequest: return 0
            case .noReplica: return 1
            case .connect: return 2
            case .timeout: return 3
            case .invalidResponse: return 4
            case .retried: return 5
            case .localResources: return 6
            }
        }
    }

    /// `dslb_<name>_<unit>` with its help text.
    package static func name(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "dslb", metricName: name, unitName: unit, helpText: help)
    }

    private let replicas = Locked<[String: Replica]>([:])
    private let workers = Locked<[WorkerCounters]>([])

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        assert(Self.bucketBounds.count + 1 == Buckets.count && Self.bucketLabels.count == Self.bucketBounds.count)
        assert(ErrorKind.allCases.enumerated().allSatisfy { $0.offset == $0.element.ordinal })
    }

    /// Counters for a new worker to write (taken once, when it starts).
    func makeWorkerCounters() -> WorkerCounters {
        workers.withLock { all in
            let counters = WorkerCounters()
            all.append(counters)
            return counters
        }
    }

    /// Any thread (takes a lock: callers cache the result).
    package func replica(_ name: String) -> Replica {
        replicas.withLock { all in
            if let existing = all[name] { return existing }
            let created = Replica(name: name)
            all[name] = created
            return created
        }
    }

    /// Any thread. Takes the replica's series off `/metrics` (it left the pool). Requests still in
    /// flight on it end on the old handle; the next `replica(name)` makes a new one, counting
    /// from zero.
    package func forget(_ name: String) {
        replicas.withLock { all in
            all.removeValue(forKey: name)?.retire()
        }
    }

    /// The Prometheus text exposition of the registry's series and the data plane's, summed
    /// over the workers.
    package func render() -> String {
        var text = registry.emitToString()
        let replicas = self.replicas.withLock { $0.values.sorted { $0.name < $1.name } }
        let workers = self.workers.withLock { $0 }
        func total(_ value: (WorkerCounters) -> Int) -> Int { workers.reduce(0) { $0 + value($1) } }
        func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }

        family("dslb_replica_requests_total", "counter", "Requests answered by the replica (any status)")
        for replica in replicas {
            text += "dslb_replica_requests_total{replica=\"\(Self.escaped(replica.name))\"} \(replica.served)\n"
        }
        family("dslb_replica_in_flight_requests", "gauge", "Requests sent to the replica and not yet answered")
        for replica in replicas {
            text += "dslb_replica_in_flight_requests{replica=\"\(Self.escaped(replica.name))\"} \(replica.inFlight)\n"
        }
        let histogram = "dslb_replica_response_seconds"
        family(histogram, "histogram", "Time from choosing the replica to the end of its response")
        for replica in replicas {
            let label = "replica=\"\(Self.escaped(replica.name))\""
            let (cumulative, nanoseconds) = replica.latency()
            for (bucket, bound) in Self.bucketLabels.enumerated() {
                text += "\(histogram)_bucket{\(label),le=\"\(bound)\"} \(cumulative[bucket])\n"
            }
            let count = cumulative[cumulative.count - 1]
            text += "\(histogram)_bucket{\(label),le=\"+Inf\"} \(count)\n"
            text += "\(histogram)_sum{\(label)} \(Double(nanoseconds) / 1e9)\n"
            text += "\(histogram)_count{\(label)} \(count)\n"
        }
        family("dslb_errors_total", "counter", "Requests ds-lb answered itself with an error, or retried, by kind")
        for kind in ErrorKind.allCases {
            text += "dslb_errors_total{kind=\"\(kind.rawValue)\"} \(total { $0.errors[kind.ordinal].load(ordering: .relaxed) })\n"
        }
        family("dslb_bounded_load_moved_total", "counter", "Requests bounded loads sent past their first-choice replica")
        text += "dslb_bounded_load_moved_total \(total { $0.boundedMoves.load(ordering: .relaxed) })\n"
        family(
            "dslb_spliced_body_bytes_total", "counter",
            "Body bytes moved by splice(2) without entering user space, by direction")
        text += "dslb_spliced_body_bytes_total{direction=\"request\"} "
        text += "\(total { $0.splicedRequestBytes.load(ordering: .relaxed) })\n"
        text += "dslb_spliced_body_bytes_total{direction=\"response\"} "
        text += "\(total { $0.splicedResponseBytes.load(ordering: .relaxed) })\n"
        return text
    }

    /// A label value as the text format wants it (backslash, quote and newline escaped).
    static func escaped(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 10 }) else {
            return value
        }
        return value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }
}

/// A cache line's worth of bytes after a worker's counters: whatever the allocator puts next
/// cannot share a line with them.
private struct CacheLinePadding: Sendable {
    let bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}

/// `counter += amount` for a counter with one writer: a relaxed load and store, which on x86 and
/// ARM are plain moves (an atomic add would lock the bus). Readers see whole values, possibly a
/// moment old.
@inline(__always)
private func add(_ amount: Int, to counter: borrowing Atomic<Int>) {
    counter.store(counter.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
}
