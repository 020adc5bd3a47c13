import XCTest

@testable import DSControl

final class DurationTextTests: XCTestCase {
    func testValidDurations() throws {
        let cases: [(String, UInt64)] = [
            ("500ms", 500_000_000), ("5s", 5_000_000_000), ("1m", 60_000_000_000), ("2h", 7_200_000_000_000),
            ("1.5s", 1_500_000_000), ("250us", 250_000), ("0s", 0), (" 3s ", 3_000_000_000), ("100ns", 100),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try DurationText.nanoseconds(text, name: "--x"), expected, text)
        }
    }

    func testInvalidDurationsNameTheFlagAndValue() {
        for text in ["", "5", "s", "-1s", "5 s", "5sec", "1e3ms", "ms500", "1..5s", "abc"] {
            XCTAssertThrowsError(try DurationText.nanoseconds(text, name: "--heartbeat-interval"), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("--heartbeat-interval"), message)
                XCTAssertTrue(message.contains("'\(text)'"), message)
            }
        }
    }

    func testFormat() {
        XCTAssertEqual(DurationText.format(5_000_000_000), "5s")
        XCTAssertEqual(DurationText.format(1_500_000_000), "1.5s")
        XCTAssertEqual(DurationText.format(500_000_000), "500ms")
        XCTAssertEqual(DurationText.format(120_000_000_000), "2m")
    }

    /// The `Duration` forms other modules' settings use: the same values and the same text.
    func testDurationForms() throws {
        XCTAssertEqual(try DurationText.duration("1.5s", name: "--x"), .milliseconds(1500))
        XCTAssertEqual(try DurationText.duration("250us", name: "--x"), .microseconds(250))
        XCTAssertThrowsError(try DurationText.duration("5", name: "--drain-timeout"))
        XCTAssertEqual(DurationText.format(Duration.seconds(5)), "5s")
        XCTAssertEqual(DurationText.format(Duration.milliseconds(1500)), "1.5s")
        XCTAssertEqual(DurationText.format(Duration.seconds(120)), "2m")
    }
}
