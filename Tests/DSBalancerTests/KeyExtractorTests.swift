import DSBalancer
import XCTest

final class KeyExtractorTests: XCTestCase {
    func testValidChains() throws {
        let cases: [(String, [KeyExtractor.Source])] = [
            ("query:id", [.query("id")]),
            ("query:id,client-ip", [.query("id"), .clientIP]),
            ("header:X-User-ID", [.header("x-user-id")]),
            ("cookie:Session", [.cookie("Session")]),
            ("path", [.path]),
            ("client-ip", [.clientIP]),
            ("random", [.random]),
            ("query:id,random", [.query("id"), .random]),
            ("header:x-user,RANDOM", [.header("x-user"), .random]),
            ("QUERY:Id,Header:X-A,Cookie:c,PATH,Client-IP", [.query("Id"), .header("x-a"), .cookie("c"), .path, .clientIP]),
            ("  query:id ,  path  ", [.query("id"), .path]),
            ("query:a:b", [.query("a:b")]),
            (
                "header:x,header:y,query:id,cookie:s,path,client-ip",
                [.header("x"), .header("y"), .query("id"), .cookie("s"), .path, .clientIP]
            ),
        ]
        for (text, sources) in cases {
            let parsed = try KeyExtractor(parsing: text)
            XCTAssertEqual(parsed.sources, sources, text)
            XCTAssertEqual(try KeyExtractor(parsing: parsed.description).sources, sources, "description round trip of \(text)")
        }
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("", "empty key source"),
            ("query", "needs a name"),
            ("query:", "needs a name"),
            ("header:", "needs a name"),
            ("cookie", "needs a name"),
            ("bogus", "unknown key source"),
            ("ip", "unknown key source"),
            ("query:id,", "empty key source"),
            (",path", "empty key source"),
            ("query:id,,path", "empty key source"),
            ("path:x", "takes no name"),
            ("client-ip:x", "takes no name"),
            ("random:6", "takes no name"),
            ("body:id", "unknown key source"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try KeyExtractor(parsing: text), text) { error in
                let message = (error as? KeyExtractor.ParseError)?.description ?? "\(error)"
                XCTAssertTrue(message.contains(fragment), "'\(text)' gave '\(message)'")
                XCTAssertTrue(message.hasPrefix("--hash-key"), message)
            }
        }
    }

    func testDefault() {
        XCTAssertEqual(KeyExtractor.default.sources, [.query("id"), .random])
        XCTAssertEqual(KeyExtractor.default.description, "query:id,random")
    }

    func testSpacesAroundSourcesAreIgnoredButNotInsideNames() throws {
        XCTAssertEqual(try KeyExtractor(parsing: "  query:id ,  random  ").sources, [.query("id"), .random])
        XCTAssertEqual(try KeyExtractor(parsing: "header:x user").sources, [.header("x user")])
    }
}
