import Synchronization
import XCTest

@testable import DSProxy

final class StreamSinkTests: XCTestCase {
    private final class WakeCounter: Sendable {
        let count = Atomic<Int>(0)
    }

    func testWritesBetweenTakesWakeTheLoopOnceAndArriveInOrder() {
        let wakes = WakeCounter()
        let sink = StreamSink(limit: 1024) { wakes.count.add(1, ordering: .relaxed) }
        XCTAssertTrue(sink.send(Array("a".utf8)))
        XCTAssertTrue(sink.send(Array("b".utf8)))
        XCTAssertEqual(wakes.count.load(ordering: .relaxed), 1, "one wake-up for writes the loop has not taken yet")
        let taken = sink.take()
        XCTAssertEqual(taken.bytes, Array("ab".utf8))
        XCTAssertFalse(taken.ended)
        XCTAssertTrue(sink.send(Array("c".utf8)))
        XCTAssertEqual(wakes.count.load(ordering: .relaxed), 2, "a write after a take wakes the loop again")
    }

    func testAReaderThatFallsBehindIsDroppedNotBuffered() {
        let sink = StreamSink(limit: 100) {}
        XCTAssertTrue(sink.send([UInt8](repeating: 1, count: 60)))
        XCTAssertFalse(sink.send([UInt8](repeating: 2, count: 60)), "over the limit: the stream ends")
        XCTAssertTrue(sink.isClosed)
        let taken = sink.take()
        XCTAssertEqual(taken.bytes, [], "what was pending is dropped with the reader")
        XCTAssertTrue(taken.ended)
        XCTAssertFalse(sink.send([3]), "nothing is queued after the end")
    }

    func testCloseEndsTheStreamAfterWhatWasSent() {
        let wakes = WakeCounter()
        let sink = StreamSink(limit: 100) { wakes.count.add(1, ordering: .relaxed) }
        sink.send([1, 2])
        _ = sink.take()
        sink.send([3])
        sink.close()
        let taken = sink.take()
        XCTAssertEqual(taken.bytes, [3])
        XCTAssertTrue(taken.ended)
        XCTAssertFalse(sink.send([4]))
        XCTAssertEqual(wakes.count.load(ordering: .relaxed), 2)
    }
}
