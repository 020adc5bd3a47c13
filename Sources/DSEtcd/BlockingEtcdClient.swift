import DSHTTPClient
import DSReactor

/// An `EtcdClient` for code on no loop (start-up, tools, tests): it runs on the loop thread of a
/// `BlockingHTTPClient`, and each call blocks the caller until the client's deadline-bounded
/// answer. Any thread but that loop's.
package final class BlockingEtcdClient: Sendable {
    private let thread: BlockingHTTPClient
    private let slot: LoopLocal<EtcdClient>

    package init(endpoints: [EtcdEndpoint], timeout: Duration = .seconds(5), threadName: String = "ds-lb-etcd") throws {
        precondition(!endpoints.isEmpty, "BlockingEtcdClient needs at least one endpoint")
        thread = try BlockingHTTPClient(address: .tcp(endpoints[0].address), threadName: threadName)
        let loop = thread.loop
        slot = LoopLocal(loop: loop) { EtcdClient(loop: loop, endpoints: endpoints, timeout: timeout) }
    }

    deinit {
        let slot = self.slot
        slot.loop.execute { slot.drop() }
    }

    package func range(_ key: [UInt8], rangeEnd: [UInt8]? = nil) throws(EtcdError) -> (kvs: [EtcdKeyValue], revision: Int64) {
        let slot = self.slot
        return try thread.wait { done in
            slot.loop.execute { slot.value().range(key, rangeEnd: rangeEnd) { done(Sendably($0)) } }
        }.value.get()
    }

    package func put(_ key: [UInt8], value: [UInt8], lease: Int64 = 0) throws(EtcdError) -> Int64 {
        let slot = self.slot
        return try thread.wait { done in
            slot.loop.execute { slot.value().put(key, value: value, lease: lease) { done($0) } }
        }.get()
    }

    package func txn(
        compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []
    ) throws(EtcdError) -> EtcdTxnResult {
        let slot = self.slot
        return try thread.wait { done in
            slot.loop.execute { slot.value().txn(compare: compare, success: success, failure: failure) { done($0) } }
        }.get()
    }

    package func grantLease(ttl: Int64) throws(EtcdError) -> (id: Int64, ttl: Int64) {
        let slot = self.slot
        return try thread.wait { done in
            slot.loop.execute { slot.value().grantLease(ttl: ttl) { done(Sendably($0)) } }
        }.value.get()
    }

    package func keepAlive(lease id: Int64) throws(EtcdError) -> Int64 {
        let slot = self.slot
        return try thread.wait { done in
            slot.loop.execute { slot.value().keepAlive(lease: id) { done($0) } }
        }.get()
    }

    package func revokeLease(_ id: Int64) throws(EtcdError) {
        let slot = self.slot
        try thread.wait { done in
            slot.loop.execute { slot.value().revokeLease(id) { done($0) } }
        }.get()
    }
}

/// A tuple result crossing from the loop thread to the waiting one: its parts are all Sendable.
private struct Sendably<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
