import DSSystem
import Prometheus
import Synchronization

/// What the data plane counts, for `/metrics` (Prometheus text format) and `/status`.
/// Any thread: counters are atomics inside swift-prometheus; workers cache the per-replica
/// handles so the hot path never takes the registry's lock.
package final class ProxyMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry

    /// Per-replica handles: counters for `/metrics`, plain atomics for `/status`.
    package final class Replica: Sendable {
        package let requests: Counter
        package let latency: DurationHistogram
        let inFlightGauge: Gauge
        private let servedCount = Atomic<Int>(0)
        private let inFlightCount = Atomic<Int>(0)
        private let failureCount = Atomic<Int>(0)
        private let retiredFlag = Atomic<Bool>(false)

        init(registry: PrometheusCollectorRegistry, name: String) {
            requests = registry.makeCounter(
                descriptor: ProxyMetrics.name(
                    "replica_requests", unit: "total", help: "Requests answered by the replica (any status)"),
                labels: [("replica", name)])
            latency = registry.makeDurationHistogram(
                descriptor: ProxyMetrics.name(
                    "replica_response", unit: "seconds",
                    help: "Time from choosing the replica to the end of its response"),
                labels: [("replica", name)],
                buckets: [
                    .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                    .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                    .seconds(2.5), .seconds(5), .seconds(10),
                ])
            inFlightGauge = registry.makeGauge(
                descriptor: ProxyMetrics.name(
                    "replica_in_flight", unit: "requests", help: "Requests sent to the replica and not yet answered"),
                labels: [("replica", name)])
        }

        package var served: Int { servedCount.load(ordering: .relaxed) }
        package var inFlight: Int { inFlightCount.load(ordering: .relaxed) }
        /// Requests the replica failed since it was first seen: invalid responses, refused or
        /// dropped connections, timeouts (a total: the supervisor takes differences over its
        /// window, so workers only add, with no lock and no clock read).
        package var failures: Int { failureCount.load(ordering: .relaxed) }

        func countFailure() {
            failureCount.add(1, ordering: .relaxed)
        }

        /// Its series are off `/metrics` (`forget`): it still counts, for whoever holds it, but
        /// a replica under this name that joins again needs a fresh handle.
        package var isRetired: Bool { retiredFlag.load(ordering: .relaxed) }

        fileprivate func unregister(from registry: PrometheusCollectorRegistry) {
            retiredFlag.store(true, ordering: .relaxed)
            registry.unregisterCounter(requests)
            registry.unregisterDurationHistogram(latency)
            registry.unregisterGauge(inFlightGauge)
        }

        func begin() {
            inFlightCount.add(1, ordering: .relaxed)
            inFlightGauge.increment()
        }

        func end(answered: Bool, nanoseconds: UInt64) {
            inFlightCount.subtract(1, ordering: .relaxed)
            inFlightGauge.decrement()
            guard answered else { return }
            servedCount.add(1, ordering: .relaxed)
            requests.increment()
            latency.recordNanoseconds(Int64(clamping: nanoseconds))
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
    }

    /// `dslb_<name>_<unit>` with its help text.
    package static func name(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "dslb", metricName: name, unitName: unit, helpText: help)
    }

    private let replicas = Locked<[String: Replica]>([:])
    private let errors: [ErrorKind: Counter]
    private let boundedMoves: Counter
    /// Body bytes moved by splice(2) (socket → pipe → socket), per direction: the evidence that
    /// the zero-copy path ran (tests read it), and how much of the traffic it carries.
    private let splicedRequestBytes: Counter
    private let splicedResponseBytes: Counter

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var errors: [ErrorKind: Counter] = [:]
        for kind in ErrorKind.allCases {
            errors[kind] = registry.makeCounter(
                descriptor: ProxyMetrics.name(
                    "errors", unit: "total", help: "Requests ds-lb answered itself with an error, or retried, by kind"),
                labels: [("kind", kind.rawValue)])
        }
        self.errors = errors
        boundedMoves = registry.makeCounter(
            descriptor: ProxyMetrics.name(
                "bounded_load_moved", unit: "total", help: "Requests bounded loads sent past their first-choice replica"))
        let spliced = ProxyMetrics.name(
            "spliced_body_bytes", unit: "total",
            help: "Body bytes moved by splice(2) without entering user space, by direction")
        splicedRequestBytes = registry.makeCounter(descriptor: spliced, labels: [("direction", "request")])
        splicedResponseBytes = registry.makeCounter(descriptor: spliced, labels: [("direction", "response")])
    }

    package func countBoundedMove() {
        boundedMoves.increment()
    }

    /// Any thread (takes a lock: callers cache the result).
    package func replica(_ name: String) -> Replica {
        replicas.withLock { all in
            if let existing = all[name] { return existing }
            let created = Replica(registry: registry, name: name)
            all[name] = created
            return created
        }
    }

    /// Any thread. Takes the replica's series off `/metrics` (it left the pool). Requests still in
    /// flight on it end on the old handle; the next `replica(name)` registers new series. Under
    /// the lock of `replica(_:)`, so a handle made at the same moment is not unregistered with
    /// the old one (the registry hands out the registered series for a known label set).
    package func forget(_ name: String) {
        replicas.withLock { all in
            all.removeValue(forKey: name)?.unregister(from: registry)
        }
    }

    /// Loop thread of any worker (an atomic add, nothing allocated).
    func countSpliced(request: Bool, bytes: Int) {
        (request ? splicedRequestBytes : splicedResponseBytes).increment(by: Int64(bytes))
    }

    package func count(_ kind: ErrorKind) {
        errors[kind]?.increment()
    }

    /// The Prometheus text exposition of everything registered.
    package func render() -> String {
        registry.emitToString()
    }
}
