import DSControl
import XCTest

final class FreePortTests: XCTestCase {
    /// Ports handed out are never handed out again while their replicas hold them, although the
    /// probe socket is closed before the replica binds. The kernel's choice of port 0 repeats
    /// well within a thousand probes on one address (the range is ~28,000 ports), so without
    /// the avoid set this fails.
    func testPortsOfRunningReplicasAreNotHandedOutAgain() throws {
        var taken = Set<UInt16>()
        for _ in 0..<1000 {
            let port = try freePort(on: "127.0.0.1", avoiding: taken)
            XCTAssertFalse(taken.contains(port), "port \(port) handed out twice")
            taken.insert(port)
        }
    }
}
