import XCTest

@testable import DSProxy

/// `--redirect-http`'s Location keeps the request's host and drops its port (the TLS
/// listener's replaces it), IPv6 literals included.
final class RedirectHostTests: XCTestCase {
    func testThePortIsDroppedFromNamesIPv4AndIPv6Literals() {
        XCTAssertEqual(ClientConnection.withoutPort("example.com"), "example.com")
        XCTAssertEqual(ClientConnection.withoutPort("example.com:8080"), "example.com")
        XCTAssertEqual(ClientConnection.withoutPort("10.0.0.1:80"), "10.0.0.1")
        XCTAssertEqual(ClientConnection.withoutPort("[::1]:5000"), "[::1]")
        XCTAssertEqual(ClientConnection.withoutPort("[2001:db8::1]"), "[2001:db8::1]")
    }
}
