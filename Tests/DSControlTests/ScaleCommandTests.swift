import XCTest
@testable import DSControl

final class ScaleCommandTests: XCTestCase {
    private func parse(_ text: String) throws -> ScaleCommand { try ScaleCommand.parse(Array(text.utf8)) }

    func testValidBodies() throws {
        XCTAssertEqual(try parse(""), ScaleCommand())
        XCTAssertEqual(try parse("  \n"), ScaleCommand())
        XCTAssertEqual(try parse("{}"), ScaleCommand())
        XCTAssertEqual(try parse(#"{"n": 2, "hostnames": ["S5", "S4"]}"#), ScaleCommand(n: 2, hostnames: ["S5", "S4"]))
        XCTAssertEqual(try parse(#"{"n": 3}"#), ScaleCommand(n: 3, hostnames: nil))
        XCTAssertEqual(try parse(#"{"hostnames": []}"#), ScaleCommand(n: nil, hostnames: []))
        XCTAssertEqual(try parse(#"{"n": null}"#), ScaleCommand(), "null is the same as absent")
    }

    func testInvalidBodiesSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("{", "not valid JSON"),
            ("n=2", "not valid JSON"),
            (#"{"n": "2"}"#, "'n' must be a positive integer"),
            (#"{"n": true}"#, "'n' must be a positive integer"),
            (#"{"n": 1.5}"#, "'n' must be a positive integer"),
            (#"{"n": 99999999999999999999}"#, "'n' must be a positive integer"),
            (#"{"hostnames": "S1"}"#, "'hostnames' must be a list of strings"),
            (#"{"hostnames": [1, 2]}"#, "'hostnames' must be a list of strings"),
            ("[1, 2]", "JSON object"),
        ]
        for (body, fragment) in cases {
            XCTAssertThrowsError(try parse(body), body) { error in
                let message = (error as? ScaleCommand.Invalid)?.message ?? "\(error)"
                XCTAssertTrue(message.contains(fragment), "\(body) → \(message)")
                XCTAssertTrue(message.hasPrefix("<Error>"), message)
            }
        }
    }

    func testNamesMustBeContainerNames() {
        for name in ["server-1", "S5", "a", "A_b.c-d", String(repeating: "x", count: 63), "9lives"] {
            XCTAssertTrue(ScaleCommand.isValidName(name), name)
        }
        for name in ["", "-a", "_a", ".a", "a b", "a/b", "ä", String(repeating: "x", count: 64), "a:b"] {
            XCTAssertFalse(ScaleCommand.isValidName(name), name)
        }
    }

    func testNumbersForNames() {
        let taken = [DSBalancerBackend.make("server-1", 1), DSBalancerBackend.make("S5", 2)]
        XCTAssertEqual(Supervisor.numberFor(name: "server-7", taken: taken), 7)
        XCTAssertEqual(Supervisor.numberFor(name: "server-1", taken: taken), 3, "server-1's number is taken")
        XCTAssertEqual(Supervisor.numberFor(name: "custom", taken: taken), 3)
    }
}
