import DSBalancer
import DSReactor
import DSSystem
import Dispatch
import XCTest

@testable import DSProxy

final class GracefulDrainTests: XCTestCase {
    /// A worker whose loop ended before the stop began is not waited for: the drain is done at
    /// once, where it counted the worker (1, its drain never to run) until the stop's timeout.
    func testAWorkerWhoseLoopEndedIsNotWaitedFor() throws {
        let drain = GracefulDrain()
        var config = ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow())
        config.drain = drain
        let publisher = SnapshotPublisher(initial: Snapshot(generation: 0, backends: [], algorithm: .rendezvous), workers: 2)
        let exited = DispatchSemaphore(value: 0)
        var loops: [EventLoop] = []
        for index in 0..<2 {
            loops.append(
                try Worker.start(
                    index: index, listenFD: nil, publisher: publisher, config: config, admin: nil, metrics: ProxyMetrics(),
                    onUnreachable: { _ in }, onExit: { exited.signal() }))
        }
        loops[1].stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "worker 1's loop did not end")

        drain.begin()
        // Worker 0 drains on its loop (nothing open: it counts 0 then); worker 1 must count 0 now.
        let deadline = DispatchTime.now() + 20
        while drain.remaining != 0 && DispatchTime.now() < deadline { usleep(1_000) }
        XCTAssertEqual(drain.remaining, 0, "the drain still waits for a worker whose loop ended")

        loops[0].stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "worker 0's loop did not end")
        XCTAssertEqual(drain.remaining, 0)
    }

    /// The accounting on both sides of `begin()`: a worker told before its loop ended, one whose
    /// drain ran with connections left open, and one that left before the stop began.
    func testAWithdrawnWorkerCountsWhatItStillCountedAndNoMore() {
        let drain = GracefulDrain()
        let neverTold = drain.enroll {}
        let drained = drain.enroll {}
        let leftEarly = drain.enroll {}
        drain.withdraw(leftEarly, counted: 1)
        drain.begin()
        XCTAssertEqual(drain.remaining, 2, "a worker that left before begin() is counted")
        // `drained` ran its drain with 3 connections open, one closed, then its loop ended
        // with the other 2.
        drain.adjust(3 - 1)
        drain.adjust(-1)
        XCTAssertEqual(drain.remaining, 3)
        drain.withdraw(drained, counted: 2)
        XCTAssertEqual(drain.remaining, 1)
        drain.withdraw(neverTold, counted: 1)
        XCTAssertEqual(drain.remaining, 0)
        // Withdrawing twice changes nothing.
        drain.withdraw(neverTold, counted: 1)
        XCTAssertEqual(drain.remaining, 0)
    }
}
