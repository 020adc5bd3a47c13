import DSBalancer
import DSHTTP1
import DSHashing
import DSProxy
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// What the dashboard (`/dashboard`) reads besides `/status`: the event stream (`/events`) and the
/// key space shares (`/keyspace`). Any thread: subscribers are sinks the workers own, kept under
/// a lock; the counters are rendered once a second on the control loop, and only while someone
/// listens.
package final class Dashboard: ResponseStream {
    private struct State {
        var subscribers: [StreamSink] = []
        var ticking = false
        /// The last events (their JSON), for a page that connects after them: its timeline
        /// starts filled, as `history` frames, which say what happened but not what is now.
        var history: [String] = []
        /// `/keyspace` for one generation: sampling is redone only when the pool changes.
        var shares: (generation: UInt64, body: String)?
    }

    /// Events a new subscriber is sent first.
    static let historyLength = 200
    /// Keys sampled for the shares: the owner's share is within ±0.5 % of the exact one.
    static let sampleKeys = 20_000

    private let state = Locked(State())
    private let loop: EventLoop
    private let view: PublishedView
    private let publisher: SnapshotPublisher
    private let metrics: ProxyMetrics

    init(loop: EventLoop, view: PublishedView, publisher: SnapshotPublisher, metrics: ProxyMetrics) {
        self.loop = loop
        self.view = view
        self.publisher = publisher
        self.metrics = metrics
    }

    // MARK: the event stream

    /// Worker loop (`ResponseStream`). The reconnect delay, the events so far and the counters,
    /// then whatever happens.
    package func attach(_ sink: StreamSink) {
        let (history, startTicking) = state.withLock { state -> ([String], Bool) in
            state.subscribers.append(sink)
            defer { state.ticking = true }
            return (state.history, !state.ticking)
        }
        var first = Array("retry: 1000\n\n".utf8)
        for event in history { first += Self.frame("history", event) }
        first += Self.frame("counters", countersJSON())
        sink.send(first)
        if startTicking { loop.execute { [self] in scheduleTick() } }
    }

    /// Any thread. One supervisor event (`Supervisor.logEvent`) for every subscriber.
    func publish(event: String, line: String, backend: String) {
        let data = JSONValue.object([
            ("type", .string(event)),
            ("time", .int(Self.wallClockMilliseconds())),
            ("backend", .string(backend)),
            ("message", .string(line)),
        ])
        let json = data.serialized
        let subscribers = state.withLock { state -> [StreamSink] in
            state.history.append(json)
            if state.history.count > Self.historyLength { state.history.removeFirst(state.history.count - Self.historyLength) }
            return state.subscribers
        }
        send(Self.frame("replica", json), to: subscribers)
    }

    /// Control loop. The counters every second while anyone listens; the last one to leave stops it.
    private func scheduleTick() {
        _ = loop.schedule(after: .seconds(1)) { [weak self] in
            guard let self else { return }
            let subscribers = state.withLock { state -> [StreamSink] in
                state.subscribers.removeAll { $0.isClosed }
                if state.subscribers.isEmpty { state.ticking = false }
                return state.subscribers
            }
            guard !subscribers.isEmpty else { return }
            send(Self.frame("counters", countersJSON()), to: subscribers)
            scheduleTick()
        }
    }

    private func send(_ frame: [UInt8], to subscribers: [StreamSink]) {
        var gone = false
        for sink in subscribers where !sink.send(frame) { gone = true }
        if gone { state.withLock { $0.subscribers.removeAll { $0.isClosed } } }
    }

    /// `/status`'s view, the errors by kind and each replica's response-time histogram
    /// (cumulative counts per bucket bound, for the page to take percentiles over its window).
    func countersJSON() -> String {
        let series = PrometheusText(metrics.render())
        let errors = JSONValue.object(
            ProxyMetrics.ErrorKind.allCases.map { ($0.rawValue, .int(series.value("dslb_errors_total", ["kind": $0.rawValue]))) })
        let latest = view.latest()
        let buckets = JSONValue.object(
            latest.replicas.map { replica in
                (
                    replica.name,
                    .array(
                        series.buckets("dslb_replica_response_seconds_bucket", replica: replica.name).map {
                            .array([.double($0.bound), .int($0.count)])
                        })
                )
            })
        let time = Self.wallClockMilliseconds()
        return "{\"time\":\(time),\"status\":\(AdminRouter.statusBody(latest)),\"errors\":\(errors.serialized),"
            + "\"latency\":\(buckets.serialized)}"
    }

    static func frame(_ event: String, _ json: String) -> [UInt8] {
        Array("event: \(event)\ndata: \(json)\n\n".utf8)
    }

    static func wallClockMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    // MARK: the key space

    /// `/keyspace`: each replica's share of the keys under the current algorithm, sampled, as the
    /// table assigns them (`share`) and as they are routed now that down replicas are skipped
    /// (`routed`).
    func keyspaceBody() -> String {
        let snapshot = publisher.latest()
        if let cached = state.withLock({ $0.shares }), cached.generation == snapshot.generation { return cached.body }
        var owned = [Int](repeating: 0, count: snapshot.backends.count)
        var routed = owned
        var unrouted = 0
        if !snapshot.isEmpty {
            HashAnalysis.KeySet(count: Self.sampleKeys, seed: 1).forEach { bytes in
                let key = snapshot.key(bytes)
                if let owner = snapshot.table.lookup(key) { owned[owner] += 1 }
                if let chosen = snapshot.candidate(hashedKey: key) { routed[chosen] += 1 } else { unrouted += 1 }
            }
        }
        let total = Double(Self.sampleKeys)
        let members: [JSONValue] = snapshot.backends.indices.map { index in
            .object([
                ("name", .string(snapshot.backends[index].name)),
                ("id", .int(snapshot.backends[index].number)),
                ("share", .double(Double(owned[index]) / total)),
                ("routed", .double(Double(routed[index]) / total)),
                ("healthy", .bool(snapshot.healthy[index])),
            ])
        }
        let message = JSONValue.object([
            ("generation", .int(Int(snapshot.generation))),
            ("algorithm", .string(snapshot.algorithm.rawValue)),
            ("sample_keys", .int(Self.sampleKeys)),
            ("unrouted", .double(snapshot.isEmpty ? 0 : Double(unrouted) / total)),
            ("replicas", .array(members)),
        ])
        let body = JSONValue.object([("message", message), ("status", .string("successful"))]).serialized
        state.withLock { $0.shares = (snapshot.generation, body) }
        return body
    }
}

/// The few series the dashboard needs, read back from the Prometheus text ds-lb renders (the
/// registry keeps its counters to itself): `name{label="value",…} number` lines.
struct PrometheusText {
    private struct Sample {
        let name: Substring
        let labels: [Substring: Substring]
        let value: Double
    }

    private let samples: [Sample]

    init(_ text: String) {
        samples = text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
                let value = Double(line[line.index(after: space)...])
            else { return nil }
            let series = line[..<space]
            guard let open = series.firstIndex(of: "{") else {
                return Sample(name: series, labels: [:], value: value)
            }
            var labels: [Substring: Substring] = [:]
            // Label values here are replica names, kinds and numbers: no quote or comma inside.
            for pair in series[series.index(after: open)...].dropLast().split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[parts[0]] = parts[1].dropFirst().dropLast()
            }
            return Sample(name: series[..<open], labels: labels, value: value)
        }
    }

    func value(_ name: String, _ labels: [String: String]) -> Int {
        let sample = samples.first { sample in
            sample.name == name && labels.allSatisfy { sample.labels[Substring($0.key)] == Substring($0.value) }
        }
        return sample.map { Int($0.value) } ?? 0
    }

    /// A histogram's cumulative buckets for one replica, by bound (+Inf as infinity).
    func buckets(_ name: String, replica: String) -> [(bound: Double, count: Int)] {
        samples.compactMap { sample -> (bound: Double, count: Int)? in
            guard sample.name == name, sample.labels["replica"] == Substring(replica), let le = sample.labels["le"] else {
                return nil
            }
            return (le == "+Inf" ? .infinity : Double(le) ?? .infinity, Int(sample.value))
        }.sorted { $0.bound < $1.bound }
    }
}
