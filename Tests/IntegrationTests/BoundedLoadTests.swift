// Bounded loads (--balance-factor): concurrent requests for one hot key spill to the next
// replicas once their first choice holds more than its share; without the flag they all stay.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class BoundedLoadTests: IntegrationTestCase {
    /// Sends `count` concurrent `/slow` requests for one id and returns the servers that answered.
    private func concurrentSlowRequests(_ lb: LoadBalancerUnderTest, id: Int, count: Int) throws -> [Int] {
        let port = lb.port
        let box = Unchecked(IntCollector())
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            Thread {
                let server = try? HTTPConnection(port: port, timeout: 20).request("GET", "/slow?ms=3000&id=\(id)").helloServerID
                box.value.append(server ?? -1)
                group.leave()
            }.start()
            // Each request in flight before the next is routed: waited for, since a loaded
            // machine can take longer than any fixed stagger to get a request to its replica.
            XCTAssertTrue(lb.waitForInFlight(atLeast: i + 1), "request \(i) never reached a replica")
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        return box.value.values
    }

    func testHotKeySpillsOverWithABalanceFactor() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--balance-factor", "1.0"])
        let servers = try concurrentSlowRequests(lb, id: 4242, count: 3)
        XCTAssertFalse(servers.contains(-1), "every request must succeed: \(servers)")
        XCTAssertEqual(Set(servers).count, 3, "with c = 1.0 three concurrent requests for one key use three replicas: \(servers)")
        let metrics = try lb.request("GET", "/metrics").bodyString
        XCTAssertTrue(metrics.contains("dslb_bounded_load_moved_total 2"), metrics)
    }

    func testWithoutBalanceFactorAHotKeyStaysOnItsReplica() throws {
        let lb = try startLoadBalancer()
        let servers = try concurrentSlowRequests(lb, id: 4242, count: 3)
        XCTAssertEqual(Set(servers).count, 1, "consistent hashing alone keeps one key on one replica: \(servers)")
    }

    func testBadBalanceFactorIsRefused() throws {
        let process = try launch("ds-lb", ["--listen", "127.0.0.1:0", "--balance-factor", "0.5"])
        XCTAssertNotNil(process.waitForExit(timeout: 10))
        var output = process.stderr.allLines.joined(separator: "\n")
        for _ in 0..<100 where !output.contains("--balance-factor") {
            usleep(10_000)
            output = process.stderr.allLines.joined(separator: "\n")
        }
        XCTAssertTrue(output.contains("--balance-factor") && output.contains("0.5"), output)
    }
}

final class IntCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func append(_ value: Int) { lock.lock(); items.append(value); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
}
