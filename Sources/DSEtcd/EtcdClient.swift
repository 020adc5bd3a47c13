import DSHTTPClient
import DSReactor
import DSSystem
import Foundation

/// One key as etcd holds it. Revisions are cluster-wide: `modRevision` is the revision of the
/// write that last changed the key, `version` counts the writes since it was created.
package struct EtcdKeyValue: Sendable, Equatable {
    package var key: [UInt8]
    package var value: [UInt8]
    package var createRevision: Int64
    package var modRevision: Int64
    package var version: Int64
    package var lease: Int64
}

/// A transaction's guard. etcd reads an absent key as revision and version 0, so
/// `.modRevision(key, equals: 0)` means "the key does not exist".
package enum EtcdCompare: Sendable {
    case modRevision(key: [UInt8], equals: Int64)
    case version(key: [UInt8], equals: Int64)
}

/// One operation of a transaction.
package enum EtcdOperation: Sendable {
    /// `lease` 0: the key outlives every lease.
    case put(key: [UInt8], value: [UInt8], lease: Int64 = 0)
    /// One key, or the keys in [key, rangeEnd) when `rangeEnd` is given.
    case range(key: [UInt8], rangeEnd: [UInt8]? = nil)
    case delete(key: [UInt8])
}

/// What a transaction did: `succeeded` says whether the comparisons held (and so which branch
/// ran); `ranges` are the answers of that branch's range operations, in order.
package struct EtcdTxnResult: Sendable, Equatable {
    package var succeeded: Bool
    /// The store's revision after the transaction.
    package var revision: Int64
    package var ranges: [[EtcdKeyValue]]
}

package enum EtcdWatchEvent: Sendable, Equatable {
    case put(EtcdKeyValue)
    /// The key's `modRevision` is the revision of the delete.
    case delete(EtcdKeyValue)
}

/// etcd's v3 API over its JSON gateway (`/v3/…`, etcd 3.4 and later), on `HTTPClient`: every
/// call bounded by `timeout`, and the listed members tried in turn when one does not answer.
/// Reads move on to the next member on any failure; a write moves on only when it could not
/// connect, since once sent it may have been applied (the caller's next read tells).
///
/// Loop thread only; each call completes once, on the loop, never from inside the call.
package final class EtcdClient {
    package let loop: EventLoop
    package let endpoints: [EtcdEndpoint]
    package let timeout: Duration
    private let clients: [HTTPClient]
    /// The member that answered last: tried first next time.
    private var current = 0

    package init(loop: EventLoop, endpoints: [EtcdEndpoint], timeout: Duration = .seconds(5)) {
        precondition(!endpoints.isEmpty, "EtcdClient needs at least one endpoint")
        self.loop = loop
        self.endpoints = endpoints
        self.timeout = timeout
        clients = endpoints.map { HTTPClient(loop: loop, address: .tcp($0.address)) }
    }

    // MARK: key-value

    /// The keys in [key, rangeEnd) (`rangeEnd` nil: `key` alone) and the store's revision.
    package func range(
        _ key: [UInt8], rangeEnd: [UInt8]? = nil,
        completion: @escaping (Result<(kvs: [EtcdKeyValue], revision: Int64), EtcdError>) -> Void
    ) {
        var body: [String: Any] = ["key": Self.base64(key)]
        if let rangeEnd { body["range_end"] = Self.base64(rangeEnd) }
        call("/v3/kv/range", body, idempotent: true) { result in
            completion(
                result.flatMap { json in
                    Result { () throws(EtcdError) in try Self.rangeAnswer(json) }
                })
        }
    }

    /// Writes `value` under `key` unconditionally; the revision it made.
    package func put(
        _ key: [UInt8], value: [UInt8], lease: Int64 = 0, completion: @escaping (Result<Int64, EtcdError>) -> Void
    ) {
        call("/v3/kv/put", Self.putBody(key, value, lease), idempotent: false) { result in
            completion(result.flatMap { json in Result { () throws(EtcdError) in try Self.headerRevision(json) } })
        }
    }

    /// One transaction: if every comparison holds, `success` runs, else `failure`, atomically.
    package func txn(
        compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = [],
        completion: @escaping (Result<EtcdTxnResult, EtcdError>) -> Void
    ) {
        let body: [String: Any] = [
            "compare": compare.map(Self.compareBody), "success": success.map(Self.operationBody),
            "failure": failure.map(Self.operationBody),
        ]
        let readOnly = (success + failure).allSatisfy { if case .range = $0 { return true } else { return false } }
        call("/v3/kv/txn", body, idempotent: readOnly) { result in
            completion(
                result.flatMap { json in
                    Result { () throws(EtcdError) in
                        var ranges: [[EtcdKeyValue]] = []
                        for response in json["responses"] as? [[String: Any]] ?? [] {
                            if let range = response["response_range"] as? [String: Any] {
                                ranges.append(try Self.keyValues(range["kvs"]))
                            }
                        }
                        // proto3's JSON leaves out false: an absent "succeeded" is a failed compare.
                        return EtcdTxnResult(
                            succeeded: json["succeeded"] as? Bool ?? false, revision: try Self.headerRevision(json),
                            ranges: ranges)
                    }
                })
        }
    }

    // MARK: leases

    /// A lease of `ttl` seconds: its id and the TTL etcd granted.
    package func grantLease(ttl: Int64, completion: @escaping (Result<(id: Int64, ttl: Int64), EtcdError>) -> Void) {
        call("/v3/lease/grant", ["TTL": String(ttl)], idempotent: false) { result in
            completion(
                result.flatMap { json in
                    Result { () throws(EtcdError) in try Self.grantAnswer(json) }
                })
        }
    }

    /// Renews lease `id` once: the TTL it has again, 0 or less when the lease is gone (expired or revoked).
    package func keepAlive(lease id: Int64, completion: @escaping (Result<Int64, EtcdError>) -> Void) {
        // A stream in gRPC; through the gateway one request gets one answer and the body ends.
        call("/v3/lease/keepalive", ["ID": String(id)], idempotent: true) { result in
            completion(
                result.flatMap { json in
                    Result { () throws(EtcdError) in try Self.keepAliveAnswer(json) }
                })
        }
    }

    /// Ends lease `id` now: every key under it is deleted at once, where expiry would wait out the
    /// TTL. A lease already gone counts as revoked, since what the caller wanted holds.
    package func revokeLease(_ id: Int64, completion: @escaping (Result<Void, EtcdError>) -> Void) {
        // Revoking twice ends the lease once, so a retry on another member is harmless.
        call("/v3/lease/revoke", ["ID": String(id)], idempotent: true) { result in
            switch result {
            case .success, .failure(.failed(code: Self.notFound, _)): completion(.success(()))
            case .failure(let error): completion(.failure(error))
            }
        }
    }

    /// gRPC's NOT_FOUND: etcd's answer about a lease it does not have.
    package static let notFound = 5

    // MARK: watch

    /// Reports every change to [key, rangeEnd) from `startRevision` on, in order, with the
    /// revision the events bring the watcher to. A broken stream (a member that stopped, or lost
    /// its leader: see `headers`) is reopened, on the next member, from the revision after the
    /// last one reported, so nothing is missed or repeated; `onEnd`
    /// runs only when etcd cancels the watch for good (its history compacted past what the
    /// watcher needs: read again, then watch from there).
    package func watch(
        _ key: [UInt8], rangeEnd: [UInt8]? = nil, startRevision: Int64,
        onEvents: @escaping ([EtcdWatchEvent], Int64) -> Void, onEnd: @escaping (EtcdError) -> Void
    ) -> EtcdWatch {
        let watch = EtcdWatch(
            client: self, key: key, rangeEnd: rangeEnd, startRevision: startRevision, onEvents: onEvents, onEnd: onEnd)
        watch.open()
        return watch
    }

    /// The member to try first, and the HTTP client for it (for `EtcdWatch`).
    func member(after index: Int?) -> (index: Int, client: HTTPClient, endpoint: EtcdEndpoint) {
        let chosen = index.map { ($0 + 1) % clients.count } ?? current
        return (chosen, clients[chosen], endpoints[chosen])
    }

    // MARK: calls

    /// POSTs `body` to `path`, trying the members in turn within one deadline: each attempt gets
    /// an equal share of what is left, so one silent member leaves time for the others.
    private func call(
        _ path: String, _ body: [String: Any], idempotent: Bool,
        completion: @escaping (Result<[String: Any], EtcdError>) -> Void
    ) {
        let bytes: [UInt8]
        do { bytes = Array(try JSONSerialization.data(withJSONObject: body)) } catch {
            let failure = EtcdError.malformedResponse("cannot encode the request: \(error)")
            _ = loop.schedule(after: .zero) { completion(.failure(failure)) }
            return
        }
        let deadline = monotonicNanoseconds() &+ timeout.clientNanoseconds
        attempt(path, bytes, idempotent: idempotent, index: current, tried: 0, deadline: deadline, errors: [], completion)
    }

    private func attempt(
        _ path: String, _ bytes: [UInt8], idempotent: Bool, index: Int, tried: Int, deadline: UInt64, errors: [String],
        _ completion: @escaping (Result<[String: Any], EtcdError>) -> Void
    ) {
        let now = monotonicNanoseconds()
        let untried = clients.count - tried
        guard now < deadline, untried > 0 else {
            let text = errors.isEmpty ? "no answer within \(timeout)" : errors.joined(separator: "; ")
            return completion(.failure(.unreachable(text)))
        }
        let share = (deadline - now) / UInt64(untried)
        let endpoint = endpoints[index]
        let request = HTTPClientRequest(
            method: "POST", target: path, host: endpoint.host, headers: Self.headers, body: bytes)
        // The exchange holds the client until it answers, so every call completes.
        clients[index].send(request, timeout: .nanoseconds(Int64(min(share, UInt64(Int64.max))))) { result in
            let next = { (error: String) in
                self.attempt(
                    path, bytes, idempotent: idempotent, index: (index + 1) % self.clients.count, tried: tried + 1,
                    deadline: deadline, errors: errors + ["\(endpoint): \(error)"], completion)
            }
            switch result {
            case .failure(let error):
                let sent: Bool
                switch error {
                case .connectFailed, .connectTimedOut, .invalidRequest: sent = false
                default: sent = true
                }
                if idempotent || !sent { return next("\(error)") }
                completion(.failure(.unreachable("\(endpoint): \(error)")))
            case .success(let response):
                let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
                guard response.status == 200 else {
                    let code = json.flatMap { Self.int64($0["code"]) }.map(Int.init) ?? 0
                    let message = json?["message"] as? String ?? "HTTP \(response.status)"
                    // UNAVAILABLE, or a 5xx from no gRPC method: this member cannot serve (no
                    // leader, stopping); another may. A write refused for want of a leader was
                    // not applied, so it may go on too.
                    let memberDown = code == 14 || (code == 0 && response.status >= 500)
                    if memberDown && (idempotent || message.contains("no leader")) { return next(message) }
                    return completion(.failure(.failed(code: code, message: message)))
                }
                guard let json else {
                    return completion(.failure(.malformedResponse("\(endpoint)\(path) answered with no JSON object")))
                }
                self.current = index
                completion(.success(json))
            }
        }
    }

    /// The headers of every call and watch. `Grpc-Metadata-Hasleader: true` is etcd's "require
    /// leader" option (the gateway passes `Grpc-Metadata-` headers on as gRPC metadata): a member
    /// cut off from its cluster refuses a call at once ("etcdserver: no leader", UNAVAILABLE)
    /// where it would hold it until its own request timeout, and ends a watch stream with that
    /// error a few election timeouts after it lost its leader, where it would keep it open and
    /// silent while the others go on writing.
    static let headers = [("Content-Type", "application/json"), ("Grpc-Metadata-Hasleader", "true")]

    // MARK: JSON

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The gateway writes int64 fields as JSON strings (proto3's JSON mapping), and leaves out zeros.
    static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let text as String: Int64(text)
        case let number as NSNumber: Int64(exactly: number)
        default: nil
        }
    }

    /// A revision or version: `json[field]`, 0 when left out. Each is a count etcd never makes
    /// negative, and callers add one to it (the next revision, the next version) or hold it as a
    /// UInt64, so anything else — a negative or non-numeric value, or one at or past Int64.max —
    /// is an answer no etcd sends, refused here with the field and value named rather than
    /// trapping later in a caller's arithmetic.
    static func count(_ json: [String: Any], _ field: String) throws(EtcdError) -> Int64 {
        guard let value = json[field] else { return 0 }
        guard let count = int64(value), count >= 0, count < Int64.max else {
            throw .malformedResponse("\(field) \(value) is not a count from 0 to \(Int64.max - 1)")
        }
        return count
    }

    /// A lease ID or TTL: `json[field]`, 0 when left out, any int64 else. Neither is a count: a
    /// lease ID is a name (etcd grants the one a client asks for, negative or Int64.max too, and
    /// keys carry it), and a TTL of 0 or less says the lease is gone (LeaseTimeToLive's -1).
    /// Only a value that is no int64 at all is refused.
    static func integer(_ json: [String: Any], _ field: String) throws(EtcdError) -> Int64 {
        guard let value = json[field] else { return 0 }
        guard let integer = int64(value) else { throw .malformedResponse("\(field) \(value) is not an int64") }
        return integer
    }

    static func headerRevision(_ json: [String: Any]) throws(EtcdError) -> Int64 {
        guard let header = json["header"] as? [String: Any], header["revision"] != nil else {
            throw .malformedResponse("no header revision in \(json)")
        }
        return try count(header, "revision")
    }

    /// A `/v3/lease/grant` answer: the lease's ID and TTL.
    static func grantAnswer(_ json: [String: Any]) throws(EtcdError) -> (id: Int64, ttl: Int64) {
        if let error = json["error"] as? String, !error.isEmpty { throw .failed(code: 0, message: error) }
        let id = try integer(json, "ID")
        guard id != 0 else { throw .malformedResponse("no lease ID in \(json)") }
        return (id, try integer(json, "TTL"))
    }

    /// A `/v3/lease/keepalive` answer: the TTL the lease has again, 0 or less when it is gone.
    static func keepAliveAnswer(_ json: [String: Any]) throws(EtcdError) -> Int64 {
        guard let answer = json["result"] as? [String: Any] else {
            throw .malformedResponse("no result in the keep-alive answer \(json)")
        }
        return try integer(answer, "TTL")
    }

    /// A `/v3/kv/range` answer: its keys and the store's revision.
    static func rangeAnswer(_ json: [String: Any]) throws(EtcdError) -> (kvs: [EtcdKeyValue], revision: Int64) {
        (try keyValues(json["kvs"]), try headerRevision(json))
    }

    static func keyValue(_ value: Any?) throws(EtcdError) -> EtcdKeyValue {
        guard let json = value as? [String: Any], let keyText = json["key"] as? String,
            let key = Data(base64Encoded: keyText)
        else { throw .malformedResponse("a key-value without a base64 key: \(String(describing: value))") }
        var bytes: [UInt8] = []
        if let valueText = json["value"] as? String {
            guard let data = Data(base64Encoded: valueText) else { throw .malformedResponse("a value that is not base64") }
            bytes = Array(data)
        }
        return EtcdKeyValue(
            key: Array(key), value: bytes, createRevision: try count(json, "create_revision"),
            modRevision: try count(json, "mod_revision"), version: try count(json, "version"), lease: try integer(json, "lease"))
    }

    static func keyValues(_ value: Any?) throws(EtcdError) -> [EtcdKeyValue] {
        guard let value else { return [] }
        guard let list = value as? [Any] else { throw .malformedResponse("kvs is not a list") }
        var result: [EtcdKeyValue] = []
        for item in list { result.append(try keyValue(item)) }
        return result
    }

    private static func putBody(_ key: [UInt8], _ value: [UInt8], _ lease: Int64) -> [String: Any] {
        var body: [String: Any] = ["key": base64(key), "value": base64(value)]
        if lease != 0 { body["lease"] = String(lease) }
        return body
    }

    private static func compareBody(_ compare: EtcdCompare) -> [String: Any] {
        switch compare {
        case .modRevision(let key, let revision):
            ["key": base64(key), "result": "EQUAL", "target": "MOD", "mod_revision": String(revision)]
        case .version(let key, let version):
            ["key": base64(key), "result": "EQUAL", "target": "VERSION", "version": String(version)]
        }
    }

    private static func operationBody(_ operation: EtcdOperation) -> [String: Any] {
        switch operation {
        case .put(let key, let value, let lease): ["request_put": putBody(key, value, lease)]
        case .range(let key, let rangeEnd?): ["request_range": ["key": base64(key), "range_end": base64(rangeEnd)]]
        case .range(let key, nil): ["request_range": ["key": base64(key)]]
        case .delete(let key): ["request_delete_range": ["key": base64(key)]]
        }
    }

    /// The end of the range of every key that starts with `prefix` (etcd's prefix convention).
    package static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0] // every key: etcd reads "\0" as the end of the keyspace
    }
}
