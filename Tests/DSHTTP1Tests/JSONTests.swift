import DSHTTP1
import DSTestSupport
import Foundation
import XCTest

final class JSONTests: XCTestCase {
    func testStringEscaping() {
        let cases: [(String, String)] = [
            ("plain", "\"plain\""),
            ("", "\"\""),
            ("quote \" here", "\"quote \\\" here\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("line\nfeed", "\"line\\nfeed\""),
            ("carriage\rreturn", "\"carriage\\rreturn\""),
            ("tab\there", "\"tab\\there\""),
            ("\u{0}\u{1}\u{8}\u{c}\u{1f}", "\"\\u0000\\u0001\\u0008\\u000c\\u001f\""),
            ("slash / stays", "\"slash / stays\""),
            ("DEL \u{7f} stays", "\"DEL \u{7f} stays\""),
            ("caf\u{e9} \u{1F600} \u{2028}", "\"caf\u{e9} \u{1F600} \u{2028}\""),
            ("<Error> '/x' endpoint", "\"<Error> '/x' endpoint\""),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(JSONValue.string(input).serialized, expected, input.debugDescription)
        }
    }

    func testObjectKeepsOrderAndFormatsLikeTheClassicAPI() {
        XCTAssertEqual(
            JSON.object(["message": .string("Hello from Server: 3"), "status": .string("successful")]),
            "{\"message\": \"Hello from Server: 3\", \"status\": \"successful\"}")
        XCTAssertEqual(JSON.object(["z": .int(1), "a": .int(2)]), "{\"z\": 1, \"a\": 2}")
        let rep = JSON.object([
            "message": .object([
                ("N", .int(3)), ("replicas", .array([.string("server-1"), .string("server-2"), .string("server-3")])),
            ]),
            "status": .string("successful"),
        ])
        XCTAssertEqual(
            rep, "{\"message\": {\"N\": 3, \"replicas\": [\"server-1\", \"server-2\", \"server-3\"]}, \"status\": \"successful\"}"
        )
    }

    func testScalarsAndContainers() {
        XCTAssertEqual(JSONValue.int(-42).serialized, "-42")
        XCTAssertEqual(JSONValue.bool(true).serialized, "true")
        XCTAssertEqual(JSONValue.bool(false).serialized, "false")
        XCTAssertEqual(JSONValue.null.serialized, "null")
        XCTAssertEqual(JSONValue.double(1.5).serialized, "1.5")
        XCTAssertEqual(JSONValue.double(.infinity).serialized, "null")
        XCTAssertEqual(JSONValue.double(.nan).serialized, "null")
        XCTAssertEqual(JSONValue.array([]).serialized, "[]")
        XCTAssertEqual(JSONValue.object([]).serialized, "{}")
        XCTAssertEqual(JSONValue.object([("k\"ey", .null)]).serialized, "{\"k\\\"ey\": null}")
        XCTAssertEqual(JSONValue.array([.int(1), .array([.null])]), JSONValue.array([.int(1), .array([.null])]))
        XCTAssertNotEqual(JSONValue.int(1), JSONValue.string("1"))
    }

    /// Property: any string survives a round trip through an independent JSON parser.
    func testRandomStringsRoundTripThroughFoundation() throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<300 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...24, using: &rng) {
                let pick = Int.random(in: 0..<10, using: &rng)
                let value: UInt32
                switch pick {
                case 0...2: value = UInt32.random(in: 0...0x1f, using: &rng)
                case 3: value = [0x22, 0x5c, 0x2f, 0x7f][Int.random(in: 0..<4, using: &rng)]
                case 4: value = UInt32.random(in: 0x80...0xd7ff, using: &rng)
                case 5: value = UInt32.random(in: 0x10000...0x10ffff, using: &rng)
                default: value = UInt32.random(in: 0x20...0x7e, using: &rng)
                }
                scalars.append(Unicode.Scalar(value)!)
            }
            let original = String(scalars)
            let text = JSON.object(["message": .string(original), "status": .string("failure")])
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            XCTAssertEqual(parsed?["message"] as? String, original, original.debugDescription)
            XCTAssertEqual(parsed?["status"] as? String, "failure")
        }
    }

    // MARK: parsing

    private func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    func testParsesWhatItWrites() throws {
        let value = JSONValue.object([
            ("n", .int(-3)), ("x", .double(1.5)), ("ok", .bool(true)), ("no", .bool(false)), ("z", .null),
            ("list", .array([.string("a\"b\\c\n\u{1}\u{e9}\u{1F600}"), .array([]), .object([])])),
        ])
        XCTAssertEqual(try parse(value.serialized), value)
        XCTAssertEqual(
            try parse(" \n[1e3, 0.5, -0, 12345678901234567890]\t"),
            .array([.double(1000), .double(0.5), .int(0), .double(1.2345678901234567e19)]))
        XCTAssertEqual(try parse(#""\ud83d\ude00 \u00e9 \/""#), .string("\u{1F600} \u{e9} /"))
    }

    /// Foundation keeps the last of two equal keys; a strict reader refuses them, also when
    /// only the escaped spelling differs.
    func testDuplicateKeysAreRefused() {
        XCTAssertThrowsError(try parse(#"{"n": 1, "n": 2}"#)) {
            XCTAssertEqual($0 as? JSONParseError, .duplicateKey("n", offset: 9))
        }
        XCTAssertThrowsError(try parse(#"{"a": {"n": 1, "\u006e": 2}}"#)) {
            guard case .duplicateKey("n", _)? = $0 as? JSONParseError else { return XCTFail("\($0)") }
        }
        XCTAssertNoThrow(try parse(#"[{"n": 1}, {"n": 2}]"#), "the same key in two objects is fine")
    }

    func testInvalidTextIsRefused() {
        let bad = [
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "\"a", "\"\\x\"",
            "\"\u{1}\"", "\"\\ud800\"", "\"\\udc00\"", "{a: 1}", "{\"a\" 1}", "[1 2]", "1 2", "NaN", "'a'",
        ]
        for text in bad {
            XCTAssertThrowsError(try parse(text), text.debugDescription)
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xff, 0x22]), "invalid UTF-8")
        XCTAssertThrowsError(try parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100))) {
            guard case .tooDeep? = $0 as? JSONParseError else { return XCTFail("\($0)") }
        }
    }
}
