import DSBalancer
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
        XCTAssertEqual(try parse(#"{"n": 2.0}"#), ScaleCommand(n: 2))
        XCTAssertEqual(try parse(#"{"\u006e": 1}"#), ScaleCommand(n: 1), "keys are compared after unescaping")
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
            (#"{"n": null}"#, "'n' must be a positive integer"),
            (#"{"hostnames": null}"#, "'hostnames' must be a list of strings"),
            (#"{"n": 1, "n": 2}"#, "Key 'n' is given more than once"),
            (#"{"n": 1, "\u006e": 2}"#, "Key 'n' is given more than once"),
            (#"{"hostnames": ["a"], "hostnames": ["b"]}"#, "Key 'hostnames' is given more than once"),
            (#"{"n": 1, "force": true}"#, "Unknown key 'force'"),
            (#"{"N": 1}"#, "Unknown key 'N'"),
            (#"{"n": 1} x"#, "not valid JSON"),
        ]
        for (body, fragment) in cases {
            XCTAssertThrowsError(try parse(body), body) { error in
                let message = (error as? ScaleCommand.Invalid)?.message ?? "\(error)"
                XCTAssertTrue(message.contains(fragment), "\(body) → \(message)")
                XCTAssertTrue(message.hasPrefix("<Error>"), message)
            }
        }
    }

    func testWeightIsAnIntegerAndItsTypeIsChecked() throws {
        XCTAssertEqual(try parse(#"{"hostnames": ["big"], "weight": 2}"#), ScaleCommand(hostnames: ["big"], weight: 2))
        XCTAssertEqual(try parse(#"{"weight": 4.0}"#), ScaleCommand(weight: 4))
        // The range is the planner's (it also knows the pool's total): parsing keeps the value.
        XCTAssertEqual(try parse(#"{"weight": -1}"#), ScaleCommand(weight: -1))
        for body in [#"{"weight": "x"}"#, #"{"weight": null}"#, #"{"weight": 1.5}"#, #"{"weight": true}"#, #"{"weight": [2]}"#] {
            XCTAssertThrowsError(try parse(body), body) { error in
                XCTAssertEqual(
                    (error as? ScaleCommand.Invalid)?.message, "<Error> 'weight' must be an integer from 0 to 256", body)
            }
        }
    }

    func testNamesMustBeContainerNames() {
        for name in ["server-1", "S5", "a", "A_b.c-d", String(repeating: "x", count: 63), "9lives"] {
            XCTAssertTrue(ReplicaName.isValid(name), name)
        }
        for name in ["", "-a", "_a", ".a", "a b", "a/b", "ä", String(repeating: "x", count: 64), "a:b", "../../x"] {
            XCTAssertFalse(ReplicaName.isValid(name), name)
        }
    }

    func testNamesAreCaseInsensitive() {
        XCTAssertEqual(
            ReplicaName.check(["SERVER-37"], existing: ["server-1", "server-37"]), .taken(index: 0, existing: "server-37"))
        XCTAssertEqual(ReplicaName.check(["a", "S5", "s5"], existing: []), .repeated(index: 2, first: 1))
        XCTAssertEqual(ReplicaName.check(["ok", "../../x"], existing: []), .invalid(index: 1))
        XCTAssertNil(ReplicaName.check(["S6", "server-2"], existing: ["S5", "server-1"]))
        let taken = [DSBalancerBackend.make("SERVER-3", 1)]
        XCTAssertEqual(PoolReconciler.numberFor(name: "Server-7", taken: taken), 7)
        XCTAssertEqual(
            PoolReconciler.numberFor(name: "custom", taken: taken + [DSBalancerBackend.make("x", 2)]), 4,
            "server-3 is taken as SERVER-3")
    }

    /// Static backends were all number 0 ("Server 0" in every log line): each gets its own,
    /// `server-K` its K, the others the smallest free ones.
    func testStaticBackendsGetDistinctNumbers() {
        let given = ["a", "server-1", "b", "server-4"].map { Backend(name: $0, number: 0, host: "127.0.0.1", port: 1) }
        let numbers = StaticDriver(backends: given).initialBackends().map { "\($0.name)=\($0.number)" }
        XCTAssertEqual(numbers, ["a=2", "server-1=1", "b=3", "server-4=4"])
    }

    func testNumbersForNames() {
        let taken = [DSBalancerBackend.make("server-1", 1), DSBalancerBackend.make("S5", 2)]
        XCTAssertEqual(PoolReconciler.numberFor(name: "server-7", taken: taken), 7)
        XCTAssertEqual(PoolReconciler.numberFor(name: "server-1", taken: taken), 3, "server-1's number is taken")
        XCTAssertEqual(PoolReconciler.numberFor(name: "custom", taken: taken), 3)
    }
}
