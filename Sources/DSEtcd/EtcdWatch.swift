import DSHTTPClient
import DSReactor
import Foundation

/// A watch opened by `EtcdClient.watch`: a `/v3/watch` POST whose chunked answer is one JSON
/// message per line, held open by etcd. Loop thread only; `cancel()` ends it without a callback.
package final class EtcdWatch {
    private weak var client: EtcdClient?
    private let key: [UInt8]
    private let rangeEnd: [UInt8]?
    private let onEvents: ([EtcdWatchEvent], Int64) -> Void
    private let onEnd: (EtcdError) -> Void
    /// The first revision not reported yet: where a reopened stream starts.
    package private(set) var nextRevision: Int64
    private var memberIndex: Int?
    private var exchange: HTTPClientExchange?
    /// One watch message may batch many events (etcd sends what a revision range holds at once).
    private var lines = StreamLines(maxLine: 16 * 1024 * 1024)
    private var retry: TimerID?
    private var ended = false
    /// A reopened stream waits this long first, so a cluster that is down is not hammered.
    private let retryDelay: Duration = .milliseconds(200)

    init(
        client: EtcdClient, key: [UInt8], rangeEnd: [UInt8]?, startRevision: Int64,
        onEvents: @escaping ([EtcdWatchEvent], Int64) -> Void, onEnd: @escaping (EtcdError) -> Void
    ) {
        self.client = client
        self.key = key
        self.rangeEnd = rangeEnd
        self.onEvents = onEvents
        self.onEnd = onEnd
        nextRevision = startRevision
    }

    package func cancel() {
        ended = true
        exchange?.cancel()
        exchange = nil
        if let retry, let client { client.loop.cancel(retry) }
        retry = nil
    }

    func open() {
        guard !ended, let client else { return }
        // The member that answered calls last first; after a broken stream, the next one.
        let member = client.member(after: memberIndex)
        memberIndex = member.index
        var create: [String: Any] = ["key": EtcdClient.base64(key), "start_revision": String(nextRevision)]
        if let rangeEnd { create["range_end"] = EtcdClient.base64(rangeEnd) }
        guard let body = try? JSONSerialization.data(withJSONObject: ["create_request": create]) else { return }
        let request = HTTPClientRequest(
            method: "POST", target: "/v3/watch", host: member.endpoint.host, headers: EtcdClient.headers, body: Array(body))
        lines.removeAll()
        exchange = member.client.stream(
            request, timeout: client.timeout,
            onHead: { [weak self] head in
                if head.status != 200 { self?.reopen() }
            },
            onBody: { [weak self] bytes in self?.received(bytes) },
            onEnd: { [weak self] _ in self?.reopen() })
    }

    private func reopen() {
        exchange?.cancel()
        exchange = nil
        // What is left of the old stream is not read: the new one starts at `nextRevision`.
        lines.removeAll()
        guard !ended, retry == nil, let client else { return }
        retry = client.loop.schedule(after: retryDelay) { [weak self] in
            self?.retry = nil
            self?.open()
        }
    }

    private func received(_ bytes: [UInt8]) {
        lines.append(bytes)
        // JSON escapes every newline inside a string: a raw one ends a message.
        while !ended, let line = lines.next() {
            guard !line.allSatisfy({ $0 == 32 || $0 == 13 }) else { continue }
            handle(line)
        }
        // A message that never ends is no watch message: start again elsewhere.
        if !ended && lines.isOverlong { reopen() }
    }

    private func handle(_ line: [UInt8]) {
        guard let message = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
            let result = message["result"] as? [String: Any]
        else {
            // An "error" message (the member is going away, or has had no leader for a few
            // election timeouts: `{"error":{"grpc_code":14,...,"message":"etcdserver: no leader"}}`,
            // then the body ends) or garbage: start again elsewhere.
            return reopen()
        }
        // A compact revision no etcd sends is garbage like any other: start again elsewhere.
        guard let compacted = try? EtcdClient.count(result, "compact_revision") else { return reopen() }
        if compacted > 0 {
            cancel()
            return onEnd(.compacted(revision: compacted))
        }
        if result["canceled"] as? Bool == true { return reopen() }
        var events: [EtcdWatchEvent] = []
        var last = nextRevision - 1
        for event in result["events"] as? [Any] ?? [] {
            guard let event = event as? [String: Any], let kv = try? EtcdClient.keyValue(event["kv"]) else {
                return reopen()
            }
            events.append(event["type"] as? String == "DELETE" ? .delete(kv) : .put(kv))
            last = max(last, kv.modRevision)
        }
        guard !events.isEmpty else { return }
        nextRevision = last + 1
        onEvents(events, last)
    }
}
