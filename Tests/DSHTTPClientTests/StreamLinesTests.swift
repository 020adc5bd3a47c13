import DSHTTPClient
import XCTest

final class StreamLinesTests: XCTestCase {
    func testALineSplitAcrossPiecesIsHandedOnOnceWholeAndEmptyLinesStay() {
        var lines = StreamLines()
        lines.append(Array("{\"a\":".utf8))
        XCTAssertNil(lines.next())
        lines.append(Array("1}\n\n{\"b\"".utf8))
        XCTAssertEqual(lines.next(), Array("{\"a\":1}".utf8))
        XCTAssertEqual(lines.next(), [])
        XCTAssertNil(lines.next())
        lines.append(Array(":2}\n".utf8))
        XCTAssertEqual(lines.next(), Array("{\"b\":2}".utf8))
        XCTAssertFalse(lines.isOverlong)
    }

    func testOnlyAnUnfinishedLineOverTheLimitIsOverlong() {
        var lines = StreamLines(maxLine: 8)
        lines.append(Array("0123456789abcdef\nxy".utf8))
        XCTAssertEqual(lines.next(), Array("0123456789abcdef".utf8))
        XCTAssertFalse(lines.isOverlong, "whole lines are taken before the check")
        lines.append(Array("0123456".utf8))
        XCTAssertTrue(lines.isOverlong)
        lines.removeAll()
        XCTAssertFalse(lines.isOverlong)
        XCTAssertNil(lines.next())
    }
}
