import DSSystem
import Dispatch
import Glibc
import XCTest

final class LockedTests: XCTestCase {
    private struct Counters {
        var total = 0
        var perThread: [Int]
        var holders = 0
        var overlaps = 0
    }

    func testIncrementsFromSeveralThreadsAddUp() {
        let threads = 8, increments = 5_000
        let counters = Locked(Counters(perThread: Array(repeating: 0, count: threads)))
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for i in 0..<increments {
                counters.withLock {
                    if $0.holders != 0 { $0.overlaps += 1 }
                    $0.holders += 1
                    let total = $0.total
                    // Gives up the CPU inside the critical section now and then, so that without
                    // mutual exclusion another thread would run between this read and the write.
                    if i % 16 == 0 { sched_yield() }
                    $0.total = total + 1
                    $0.perThread[thread] += 1
                    $0.holders -= 1
                }
            }
        }
        counters.withLock {
            XCTAssertEqual($0.overlaps, 0)
            XCTAssertEqual($0.total, threads * increments)
            XCTAssertEqual($0.perThread, Array(repeating: increments, count: threads))
        }
    }

    func testReturnsTheBodysResult() {
        let locked = Locked([1, 2, 3])
        XCTAssertEqual(
            locked.withLock { values -> Int in
                values.append(4); return values.count
            }, 4)
        XCTAssertEqual(locked.withLock { $0 }, [1, 2, 3, 4])
    }

    private struct Refused: Error {}

    func testAThrowingBodyRethrowsKeepsItsChangesAndUnlocks() {
        let locked = Locked(0)
        XCTAssertThrowsError(
            try locked.withLock { value -> Void in
                value = 1
                throw Refused()
            }
        ) { XCTAssertTrue($0 is Refused) }
        // Another thread must be able to take the lock now.
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            locked.withLock { $0 += 1 }
            done.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "the lock stayed held after the throw")
        XCTAssertEqual(locked.withLock { $0 }, 2)
    }
}
