import DSSystem
import Foundation
import Glibc
import XCTest

@testable import DSReactor

/// Out of descriptors, the listener pauses accepting and retries from a timer (no
/// spinning on EMFILE), and accepts the waiting connections once descriptors are free again.
final class ListenerExhaustionTests: XCTestCase {
    /// Descriptor numbers open in this process now.
    private func openDescriptors() -> Set<Int32> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(names.compactMap { Int32($0) })
    }

    func testPausesOnEMFILEAndRecoversWhenDescriptorsFree() throws {
        let h = try LoopHarness(name: "emfile-loop")
        defer { XCTAssertTrue(h.stop()) }
        let listenFD = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let bound = try Socket.localAddress(listenFD)

        // Six connections wait in the backlog before anyone accepts.
        var clients: [Int32] = []
        for _ in 0..<6 { clients.append(try Socket.connect(to: bound).fd) }
        let accepted = Locked<[Int32]>([])
        defer {
            for fd in clients { Socket.close(fd) }
            for fd in accepted.get { Socket.close(fd) }
        }

        // Earlier tests' loop threads may still be closing their descriptors: wait until the
        // set of open descriptors holds still, or the room left below would grow under us.
        var previous = openDescriptors()
        var still = 0
        for _ in 0..<200 where still < 5 {
            usleep(10_000)
            let now = openDescriptors()
            still = now == previous ? still + 1 : 0
            previous = now
        }

        // Out of descriptors but two: lower the soft limit a little above what is open, fill
        // every free number below it with duplicates (EMFILE tells when), then free two.
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        var lowered = saved
        lowered.rlim_cur = rlim_t((previous.max() ?? 64) + 16)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        var fillers: [Int32] = []
        var failure: Int32 = 0
        while failure == 0 {
            let fd = dup(listenFD)
            if fd < 0 { failure = errno } else { fillers.append(fd) }
        }
        XCTAssertEqual(failure, EMFILE)
        for fd in fillers.suffix(2) { close(fd) }
        fillers.removeLast(min(2, fillers.count))
        var restored = false
        func restore() {
            guard !restored else { return }
            restored = true
            for fd in fillers { close(fd) }
            XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        }
        defer { restore() }

        let listener = Locked<Listener?>(nil)
        try h.sync {
            listener.withLock {
                $0 = try? Listener(fd: listenFD, loop: h.loop) { fd, _ in
                    let raw = fd.release(); accepted.withLock { $0.append(raw) }
                }
            }
        }
        defer {
            try? h.sync {
                listener.withLock {
                    $0?.stop(); $0 = nil
                }
            }
        }
        XCTAssertTrue(waitUntil(30) { try! h.sync { listener.withLock { $0!.isPaused } } }, "accepting never paused")
        let before = accepted.get.count
        XCTAssertTrue((1...3).contains(before), "accepted \(before) before EMFILE, expected about 2")

        // At the limit: accept is retried from a timer (100 ms doubling to 1 s), not in a spin.
        // Two more pauses after this point take two timer periods, the second at least 200 ms
        // (the first may have been armed before now); a spinning loop would count them at once.
        // Timers never fire early, so a slow machine can only make the wait longer.
        let seen = try h.sync { listener.withLock { $0!.pauses } }
        let seenAt = monotonicNanos()
        XCTAssertTrue(
            waitUntil(30) { ((try? h.sync { listener.withLock { $0!.pauses } }) ?? 0) >= seen + 2 },
            "accept must be retried from a timer")
        let retriedAfter = monotonicNanos() - seenAt
        let paused = try h.sync { listener.withLock { $0!.isPaused } }
        XCTAssertEqual(accepted.get.count, before, "accepted while out of descriptors")
        XCTAssertTrue(paused, "accepting must be paused at the descriptor limit")
        XCTAssertGreaterThanOrEqual(retriedAfter, 150_000_000, "two retries within \(retriedAfter) ns: spinning on EMFILE")

        // Descriptors back: the waiting connections are accepted without a new connection's edge.
        restore()
        XCTAssertTrue(waitUntil(30) { accepted.get.count == 6 }, "accepted \(accepted.get.count) of 6 after the limit rose")
        XCTAssertTrue(waitUntil(30) { !(try! h.sync { listener.withLock { $0!.isPaused } }) }, "accepting stayed paused")

        // And new connections are accepted on their edge as before.
        clients.append(try Socket.connect(to: bound).fd)
        XCTAssertTrue(waitUntil(30) { accepted.get.count == 7 }, "a new connection after recovery was not accepted")
    }
}
