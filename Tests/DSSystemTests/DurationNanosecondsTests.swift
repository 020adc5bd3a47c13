import DSSystem
import XCTest

final class DurationNanosecondsTests: XCTestCase {
    func testWholeNanosecondsOfADuration() {
        XCTAssertEqual(nanoseconds(of: .seconds(2)), 2_000_000_000)
        XCTAssertEqual(nanoseconds(of: .milliseconds(1500)), 1_500_000_000)
        XCTAssertEqual(nanoseconds(of: .microseconds(250)), 250_000)
        XCTAssertEqual(nanoseconds(of: .nanoseconds(7)), 7)
        XCTAssertEqual(nanoseconds(of: .zero), 0)
        // Below a nanosecond is dropped, not rounded up.
        XCTAssertEqual(nanoseconds(of: .nanoseconds(7) + .nanoseconds(0.9)), 7)
    }

    func testNegativeIsZeroAndTooLongSaturates() {
        XCTAssertEqual(nanoseconds(of: .nanoseconds(-1)), 0)
        XCTAssertEqual(nanoseconds(of: .seconds(-5)), 0)
        XCTAssertEqual(nanoseconds(of: .seconds(Int64.max)), UInt64.max)
        XCTAssertEqual(nanoseconds(of: .seconds(18_446_744_073)), 18_446_744_073_000_000_000)
        XCTAssertEqual(nanoseconds(of: .seconds(18_446_744_074)), UInt64.max)
    }
}
