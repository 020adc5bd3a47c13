import XCTest

@testable import DSProxy

final class AdminTokenTests: XCTestCase {
    let secret = "s3cr3t-token_value.0123456789"

    func testAcceptsBearerWithTheTokenInAnyCaseOfTheScheme() throws {
        let token = try AdminToken(secret)
        XCTAssertTrue(token.accepts(authorization: Array("Bearer \(secret)".utf8)))
        XCTAssertTrue(token.accepts(authorization: Array("bearer \(secret)".utf8)))
        XCTAssertTrue(token.accepts(authorization: Array("BEARER   \(secret)  ".utf8)))
    }

    func testRefusesOtherSchemesWrongTokensAndPrefixes() throws {
        let token = try AdminToken(secret)
        for value in [
            "", "Bearer", "Bearer ", "Basic \(secret)", "Bearer\(secret)", "Bearer \(secret)x",
            "Bearer \(secret.dropLast())", "Bearer x\(secret)", "Token \(secret)",
            "Bearer \(secret.uppercased())",
        ] {
            XCTAssertFalse(token.accepts(authorization: Array(value.utf8)), "accepted \(value.debugDescription)")
        }
    }

    func testTrimsTheFileNewlineAndRefusesWeakOrMalformedTokens() throws {
        XCTAssertEqual(try AdminToken("\(secret)\n"), try AdminToken(secret))
        XCTAssertThrowsError(try AdminToken("short")) { error in
            XCTAssertTrue("\(error)".contains("at least 16"), "\(error)")
        }
        XCTAssertThrowsError(try AdminToken("has a space inside it ok?"))
        XCTAssertThrowsError(try AdminToken(String(repeating: "a", count: AdminToken.maximumLength + 1)))
    }

    func testLoadsTheFirstLineOfAFileAndNamesTheFileWhenItCannot() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ds-lb-token-\(getpid())").path
        defer { unlink(path) }
        try "\(secret)\nignored second line\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try AdminToken.load(path: path), try AdminToken(secret))
        XCTAssertThrowsError(try AdminToken.load(path: path + ".missing")) { error in
            XCTAssertTrue("\(error)".contains(path + ".missing"), "\(error)")
        }
        try "tiny\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AdminToken.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testConstantTimeEqualityIsEquality() {
        XCTAssertTrue(AdminToken.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(AdminToken.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(AdminToken.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertFalse(AdminToken.constantTimeEqual([], [0]))
        XCTAssertTrue(AdminToken.constantTimeEqual([], []))
    }
}
