import XCTest

@testable import DSProxy

/// The queue that holds pipelined requests behind fresh ones (so that non-reading, pipelining
/// clients cannot starve the rest): FIFO order, a limit on requests in progress, one turn per
/// iteration.
final class PipelineQueueTests: XCTestCase {
    /// Records its turns; `finishAtOnce` releases the slot inside the turn and queues again, as a
    /// connection does whose pipelined request is answered without waiting for a replica.
    final class Connection: PipelinedConnection {
        let name: Int
        var closed = false
        var finishAtOnce = false
        unowned var queue: PipelineQueue<Connection>
        var log: Log

        final class Log { var turns: [Int] = [] }

        init(_ name: Int, _ queue: PipelineQueue<Connection>, _ log: Log) {
            self.name = name
            self.queue = queue
            self.log = log
        }

        func resumePipelined() {
            log.turns.append(name)
            if finishAtOnce {
                queue.slotReleased()
                queue.hold(self)
            }
        }
    }

    func testStartsInArrivalOrderUpToTheLimitThenOneMorePerReleasedSlot() {
        let queue = PipelineQueue<Connection>(maxInProgress: 3)
        let log = Connection.Log()
        let connections = (0..<5).map { Connection($0, queue, log) }
        connections.forEach(queue.hold)
        XCTAssertEqual(queue.waitingCount, 5)
        // Every slot is taken: nothing to come back for at once, the slots' owners will call.
        XCTAssertFalse(queue.run())
        XCTAssertEqual(log.turns, [0, 1, 2])
        XCTAssertEqual(queue.inProgress, 3)
        XCTAssertEqual(queue.waitingCount, 2)
        XCTAssertFalse(queue.run(), "no slot was released")
        XCTAssertEqual(log.turns, [0, 1, 2])
        queue.slotReleased()
        XCTAssertFalse(queue.run())
        XCTAssertEqual(log.turns, [0, 1, 2, 3])
        queue.slotReleased()
        queue.slotReleased()
        XCTAssertFalse(queue.run(), "the queue is empty")
        XCTAssertEqual(log.turns, [0, 1, 2, 3, 4])
        XCTAssertEqual(queue.waitingCount, 0)
    }

    func testClosedConnectionsAreSkippedWithoutTakingASlot() {
        let queue = PipelineQueue<Connection>(maxInProgress: 2)
        let log = Connection.Log()
        let connections = (0..<4).map { Connection($0, queue, log) }
        connections.forEach(queue.hold)
        connections[0].closed = true
        connections[2].closed = true
        _ = queue.run()
        XCTAssertEqual(log.turns, [1, 3])
        XCTAssertEqual(queue.inProgress, 2)
        XCTAssertEqual(queue.waitingCount, 0)
    }

    /// A connection whose next request is answered at once queues again; it gets its next turn
    /// in the next iteration, not in this one: one pipelining client cannot hold the loop.
    func testAConnectionThatQueuesAgainWaitsForTheNextIteration() {
        let queue = PipelineQueue<Connection>(maxInProgress: 4)
        let log = Connection.Log()
        let a = Connection(1, queue, log)
        a.finishAtOnce = true
        queue.hold(a)
        XCTAssertTrue(queue.run(), "it queued again with slots free: the loop must not block")
        XCTAssertEqual(log.turns, [1])
        XCTAssertTrue(queue.run())
        XCTAssertEqual(log.turns, [1, 1])
        XCTAssertEqual(queue.inProgress, 0)
    }

    /// `--pipeline-slots 0`: no queue. Connections do not hold (`isOn` is false); those a reload
    /// left waiting all start at the next turn, however many are in progress.
    func testZeroSlotsIsNoQueueAndStartsEveryoneStillWaiting() {
        let queue = PipelineQueue<Connection>(maxInProgress: 1)
        XCTAssertTrue(queue.isOn)
        let log = Connection.Log()
        (0..<5).map { Connection($0, queue, log) }.forEach(queue.hold)
        XCTAssertFalse(queue.run())
        XCTAssertEqual(log.turns, [0])
        queue.maxInProgress = 0
        XCTAssertFalse(queue.isOn)
        XCTAssertFalse(queue.run(), "nothing left to come back for")
        XCTAssertEqual(log.turns, [0, 1, 2, 3, 4])
        XCTAssertEqual(queue.inProgress, 5)
        XCTAssertEqual(queue.waitingCount, 0)
    }

    /// A reload that raises or lowers the limit applies at the next turn; slots already taken
    /// stay taken until released.
    func testAChangedLimitAppliesAtTheNextTurn() {
        let queue = PipelineQueue<Connection>(maxInProgress: 1)
        let log = Connection.Log()
        (0..<6).map { Connection($0, queue, log) }.forEach(queue.hold)
        _ = queue.run()
        XCTAssertEqual(log.turns, [0])
        queue.maxInProgress = 3
        XCTAssertFalse(queue.run())
        XCTAssertEqual(log.turns, [0, 1, 2])
        queue.maxInProgress = 1
        queue.slotReleased()
        queue.slotReleased()
        XCTAssertFalse(queue.run(), "one slot still taken: the lower limit is full")
        XCTAssertEqual(log.turns, [0, 1, 2])
        queue.slotReleased()
        XCTAssertFalse(queue.run())
        XCTAssertEqual(log.turns, [0, 1, 2, 3])
    }

    /// The storage is reused: a long run of turns does not keep what it has served.
    func testServedEntriesAreDropped() {
        let queue = PipelineQueue<Connection>(maxInProgress: 1)
        let log = Connection.Log()
        for i in 0..<3000 { queue.hold(Connection(i, queue, log)) }
        for _ in 0..<2999 {
            _ = queue.run()
            queue.slotReleased()
        }
        XCTAssertEqual(queue.waitingCount, 1)
        XCTAssertEqual(log.turns.count, 2999)
        XCTAssertEqual(log.turns.last, 2998)
        _ = queue.run()
        XCTAssertEqual(log.turns.last, 2999)
        XCTAssertEqual(queue.waitingCount, 0)
    }
}
