import DSEtcd
import DSReactor
import DSSystem
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class EtcdClientTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testAPutIsReadBackWithItsRevisionAndAPrefixRangeListsItsKeys() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        let client = try BlockingEtcdClient(endpoints: cluster.endpoints)
        // Not valid UTF-8: keys and values are bytes, base64 on the wire.
        let value: [UInt8] = [0, 0xFF, 0x80, 10, 13, 34]
        let revision = try client.put(bytes("/t/a"), value: value)
        _ = try client.put(bytes("/t/b"), value: bytes("b"))
        _ = try client.put(bytes("/u"), value: bytes("u"))

        let one = try client.range(bytes("/t/a"))
        XCTAssertEqual(one.kvs.map(\.value), [value])
        XCTAssertEqual(one.kvs.first?.modRevision, revision)
        XCTAssertEqual(one.kvs.first?.version, 1)
        XCTAssertEqual(try client.range(bytes("/none")).kvs, [])
        let prefix = try client.range(bytes("/t/"), rangeEnd: EtcdClient.prefixEnd(bytes("/t/")))
        XCTAssertEqual(prefix.kvs.map(\.key), [bytes("/t/a"), bytes("/t/b")])
        XCTAssertGreaterThanOrEqual(prefix.revision, revision + 2)
    }

    func testATxnComparingTheModRevisionWritesOnlyWhileTheKeyIsUnchanged() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        let client = try BlockingEtcdClient(endpoints: cluster.endpoints)
        let key = bytes("/cas")
        // Revision 0 compares as "absent".
        let created = try client.txn(
            compare: [.modRevision(key: key, equals: 0)], success: [.put(key: key, value: bytes("1"))],
            failure: [.range(key: key)])
        XCTAssertTrue(created.succeeded)

        let updated = try client.txn(
            compare: [.modRevision(key: key, equals: created.revision)], success: [.put(key: key, value: bytes("2"))],
            failure: [.range(key: key)])
        XCTAssertTrue(updated.succeeded)
        XCTAssertGreaterThan(updated.revision, created.revision)

        // The revision this writer read is stale now: nothing is written, and the failure branch
        // says what the key holds.
        let stale = try client.txn(
            compare: [.modRevision(key: key, equals: created.revision)], success: [.put(key: key, value: bytes("3"))],
            failure: [.range(key: key)])
        XCTAssertFalse(stale.succeeded)
        XCTAssertEqual(stale.ranges.first?.first?.modRevision, updated.revision)
        XCTAssertEqual(stale.ranges.first?.first?.value, bytes("2"))
        XCTAssertEqual(try client.range(key).kvs.first?.value, bytes("2"))
    }

    func testALeaseIsGrantedAndKeptAliveAndAnUnknownOneReadsAsGone() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        let client = try BlockingEtcdClient(endpoints: cluster.endpoints)
        let lease = try client.grantLease(ttl: 30)
        XCTAssertEqual(lease.ttl, 30)
        _ = try client.put(bytes("/node"), value: bytes("n1"), lease: lease.id)
        XCTAssertEqual(try client.range(bytes("/node")).kvs.first?.lease, lease.id)
        XCTAssertGreaterThan(try client.keepAlive(lease: lease.id), 0)
        XCTAssertEqual(try client.keepAlive(lease: lease.id &+ 12345), 0)
    }

    func testARevokedLeaseTakesItsKeysAtOnceAndRevokingItAgainIsNoError() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        let client = try BlockingEtcdClient(endpoints: cluster.endpoints)
        let lease = try client.grantLease(ttl: 60)
        _ = try client.put(bytes("/held"), value: bytes("x"), lease: lease.id)
        try client.revokeLease(lease.id)
        XCTAssertEqual(try client.range(bytes("/held")).kvs, [])
        XCTAssertEqual(try client.keepAlive(lease: lease.id), 0)
        XCTAssertNoThrow(try client.revokeLease(lease.id))
    }

    func testAWatchReportsChangesMadeByAnotherClientInOrder() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        let writer = try BlockingEtcdClient(endpoints: cluster.endpoints)
        let start = try writer.put(bytes("/w/before"), value: bytes("0")) + 1
        let loop = try TestLoop()
        defer { loop.stop() }
        let seen = Locked<[EtcdWatchEvent]>([])
        let two = expectation(description: "two events")
        let client = try loop.keep { EtcdClient(loop: loop.loop, endpoints: cluster.endpoints) }
        let watch = try loop.keep {
            client.value.watch(
                Array("/w/".utf8), rangeEnd: EtcdClient.prefixEnd(Array("/w/".utf8)), startRevision: start,
                onEvents: { events, _ in
                    if seen.withLock({
                        $0 += events; return $0.count
                    }) == 2 {
                        two.fulfill()
                    }
                },
                onEnd: { XCTFail("the watch ended: \($0)") })
        }
        let put = try writer.put(bytes("/w/x"), value: bytes("x"))
        _ = try writer.txn(compare: [], success: [.delete(key: bytes("/w/x"))])
        wait(for: [two], timeout: 20)
        let events = seen.withLock { $0 }
        guard case .put(let kv) = events.first, case .delete(let gone) = events.last else {
            return XCTFail("expected a put then a delete, got \(events)")
        }
        XCTAssertEqual(kv.value, bytes("x"))
        XCTAssertEqual(kv.modRevision, put)
        XCTAssertEqual(gone.key, bytes("/w/x"))
        loop.sync { watch.value.cancel() }
    }

    func testCallsAndAWatchFailOverToTheNextMemberWhenTheFirstIsDown() throws {
        let cluster = try EtcdCluster(size: 3)
        defer { cluster.stopAll() }
        let client = try BlockingEtcdClient(endpoints: cluster.endpoints, timeout: .seconds(10))
        let start = try client.put(bytes("/f"), value: bytes("before")) + 1
        // The watch's stream is on the first member, the one about to go.
        let loop = try TestLoop()
        defer { loop.stop() }
        let seen = Locked<[[UInt8]]>([])
        let reported = expectation(description: "the change made after the failover")
        let watching = try loop.keep { EtcdClient(loop: loop.loop, endpoints: cluster.endpoints) }
        let watch = try loop.keep {
            watching.value.watch(
                Array("/f".utf8), startRevision: start,
                onEvents: { events, _ in
                    for case .put(let kv) in events { seen.withLock { $0.append(kv.value) } }
                    reported.fulfill()
                },
                onEnd: { XCTFail("the watch ended: \($0)") })
        }
        cluster.stop(0)
        // Two of three members remain: a quorum, so the cluster serves through them once it has
        // a leader. The killed member may have been the leader, and a write sent during the
        // election may time out (etcd cannot say whether it will apply): wait for the election.
        try cluster.waitUntilServing(1)
        let written = try client.put(bytes("/f"), value: bytes("after"))
        let read = try client.range(bytes("/f"))
        XCTAssertEqual(read.kvs.first?.value, bytes("after"))
        XCTAssertEqual(read.kvs.first?.modRevision, written)
        wait(for: [reported], timeout: 20)
        XCTAssertEqual(seen.withLock { $0 }, [bytes("after")])
        loop.sync { watch.value.cancel() }
    }

    func testAWatchAndCallsOnAMemberCutOffFromItsClusterMoveToAMemberWithALeader() throws {
        guard getuid() == 0 else { throw XCTSkip("a partition needs iptables rules: run as root") }
        // Member 0 runs as nobody, so the firewall can tell its packets apart.
        let cluster = try EtcdCluster(size: 3, users: [0: 65534])
        defer { cluster.stopAll() }
        let writer = try BlockingEtcdClient(endpoints: [cluster.endpoints[1]], timeout: .seconds(10))
        let start = try writer.put(bytes("/p"), value: bytes("before")) + 1
        let loop = try TestLoop()
        defer { loop.stop() }
        let seen = Locked<[[UInt8]]>([])
        let open = expectation(description: "a change made before the partition")
        let after = expectation(description: "the change made through another member during the partition")
        let watching = try loop.keep { EtcdClient(loop: loop.loop, endpoints: cluster.endpoints) }
        // The stream is on member 0, the first listed.
        let watch = try loop.keep {
            watching.value.watch(
                Array("/p".utf8), startRevision: start,
                onEvents: { events, _ in
                    for case .put(let kv) in events {
                        seen.withLock { $0.append(kv.value) }
                        if kv.value == Array("open".utf8) { open.fulfill() }
                        if kv.value == Array("after".utf8) { after.fulfill() }
                    }
                },
                onEnd: { XCTFail("the watch ended: \($0)") })
        }
        _ = try writer.put(bytes("/p"), value: bytes("open"))
        wait(for: [open], timeout: 20)

        let partition = try EtcdPartition(cluster: cluster, member: 0)
        defer { partition.heal() }
        // Members 1 and 2 are a quorum: once they have a leader (member 0 may have been it),
        // they take writes while member 0 keeps its streams open and hears nothing.
        try cluster.waitUntilServing(1, seconds: 60)
        _ = try writer.put(bytes("/p"), value: bytes("after"))
        // etcd ends a require-leader watch a few election timeouts after its member lost the
        // leader; then the stream is reopened on the next member.
        wait(for: [after], timeout: 60)
        XCTAssertEqual(seen.withLock { $0 }, [bytes("open"), bytes("after")])

        // Member 0 has no leader now: it refuses a write at once, which then goes to the next
        // member, where it would hold the write past the call's share of the deadline.
        let through = try BlockingEtcdClient(endpoints: cluster.endpoints, timeout: .seconds(10))
        let written = try through.put(bytes("/p2"), value: bytes("w"))
        XCTAssertEqual(try writer.range(bytes("/p2")).kvs.first?.modRevision, written)
        loop.sync { watch.value.cancel() }
    }

    func testAMemberWithoutALeaderIsPassedOverAndARefusalIsTyped() throws {
        let cluster = try EtcdCluster()
        defer { cluster.stopAll() }
        // What a member cut off from its cluster answers.
        let leaderless = try AnsweringListener(
            status: "503 Service Unavailable",
            body: #"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#)
        defer { leaderless.close() }
        let client = try BlockingEtcdClient(
            endpoints: [try EtcdEndpoint("http://127.0.0.1:\(leaderless.port)")] + cluster.endpoints, timeout: .seconds(10))
        let written = try client.put(bytes("/l"), value: bytes("v"))
        XCTAssertEqual(try client.range(bytes("/l")).kvs.first?.modRevision, written)
        XCTAssertGreaterThanOrEqual(leaderless.answered.withLock { $0 }, 1)

        // A member answering with no gRPC code at all (a proxy in front of it, say): reads go on.
        let broken = try AnsweringListener(status: "502 Bad Gateway", body: "{}")
        defer { broken.close() }
        let reader = try BlockingEtcdClient(
            endpoints: [try EtcdEndpoint("http://127.0.0.1:\(broken.port)")] + cluster.endpoints, timeout: .seconds(10))
        XCTAssertEqual(try reader.range(bytes("/l")).kvs.first?.modRevision, written)
        XCTAssertGreaterThanOrEqual(broken.answered.withLock { $0 }, 1)

        // A request etcd refuses is its answer: no other member is asked.
        let refusing = try AnsweringListener(
            status: "400 Bad Request",
            body: #"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#)
        defer { refusing.close() }
        let strict = try BlockingEtcdClient(
            endpoints: [try EtcdEndpoint("http://127.0.0.1:\(refusing.port)")] + cluster.endpoints, timeout: .seconds(10))
        XCTAssertThrowsError(try strict.range(bytes("/l"))) { error in
            XCTAssertEqual(error as? EtcdError, .failed(code: 3, message: "etcdserver: key is not provided"))
        }
    }

    func testAClusterThatDoesNotAnswerIsUnreachableWithinTheDeadline() throws {
        // One endpoint accepts connections but never answers (a hung member), the other refuses.
        let silent = try SilentListener()
        defer { silent.close() }
        let refused = try EtcdCluster.freePorts(1)[0]
        let endpoints = [
            try EtcdEndpoint("http://127.0.0.1:\(silent.port)"), try EtcdEndpoint("http://127.0.0.1:\(refused)"),
        ]
        let client = try BlockingEtcdClient(endpoints: endpoints, timeout: .seconds(1))
        let started = Date()
        XCTAssertThrowsError(try client.range(bytes("/x"))) { error in
            guard case .unreachable(let text) = error as? EtcdError else { return XCTFail("not unreachable: \(error)") }
            XCTAssertTrue(text.contains("127.0.0.1:\(silent.port)"), text)
            XCTAssertTrue(text.contains("127.0.0.1:\(refused)"), text)
        }
        XCTAssertThrowsError(try client.put(bytes("/x"), value: [])) { error in
            guard case .unreachable = error as? EtcdError else { return XCTFail("not unreachable: \(error)") }
        }
        // Bounded by the deadline (1 s each), with room for a loaded machine.
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testEndpointsAreParsedAndBadOnesNamed() throws {
        let list = try EtcdEndpoint.list("http://127.0.0.1:2379, http://localhost:22379/")
        XCTAssertEqual(list.map(\.description), ["http://127.0.0.1:2379", "http://localhost:22379"])
        for bad in ["127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1", "http://h1:2379", "http://1.2.3.4:1/v3"] {
            XCTAssertThrowsError(try EtcdEndpoint(bad), bad) { error in
                XCTAssertTrue("\(error)".contains(bad), "\(error)")
            }
        }
    }
}

/// A TCP listener on 127.0.0.1 that never accepts: connects succeed (the kernel's backlog),
/// requests get no answer.
final class SilentListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = self.fd
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard ok else { throw EtcdClusterError("silent listener: errno \(errno)") }
        port = UInt16(bigEndian: address.sin_port)
    }

    func close() { _ = Glibc.close(fd) }
}

/// A TCP listener on 127.0.0.1 that answers every request with `status` and `body`, on a thread
/// of its own, and counts the answers.
final class AnsweringListener: @unchecked Sendable {
    let port: UInt16
    let answered = Locked(0)
    private let listener: SilentListener

    init(status: String, body: String) throws {
        listener = try SilentListener()
        port = listener.port
        let fd = listener.fd
        let answered = self.answered
        let response = Array(
            "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                .utf8)
        Thread.detachNewThread {
            while true {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }
                // The request's head and its small body arrive together; the answer does not depend on them.
                var pfd = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                var scratch = [UInt8](repeating: 0, count: 65536)
                if poll(&pfd, 1, 5000) > 0 { _ = scratch.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) } }
                // Counted before the answer leaves: the client may act on it at once.
                answered.withLock { $0 += 1 }
                _ = response.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                _ = Glibc.close(connection)
            }
        }
    }

    /// Closing the listening socket ends the thread's accept.
    func close() { _ = shutdown(listener.fd, Int32(SHUT_RDWR)); listener.close() }
}
