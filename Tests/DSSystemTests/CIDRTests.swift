import DSSystem
import XCTest

final class CIDRTests: XCTestCase {
    private func v4(_ text: String) -> SocketAddress { .v4(ip: SocketAddress.parseIPv4(Substring(text))!, port: 80) }
    private func v6(_ text: String) -> SocketAddress { .v6(ip: SocketAddress.parseIPv6(Substring(text))!, port: 80) }

    func testIPv4BlockParsesAndPrints() throws {
        let block = try CIDR(parsing: "10.0.0.0/8")
        XCTAssertTrue(block.isV4)
        XCTAssertEqual(block.network, [10, 0, 0, 0])
        XCTAssertEqual(block.prefixLength, 8)
        XCTAssertEqual(block.description, "10.0.0.0/8")
    }

    /// Parses `text` as a block and checks that it holds every address in `inside` and none in
    /// `outside` (addresses of either family, written without a port).
    private func assertBlock(
        _ text: String, contains inside: [String], not outside: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let block = try CIDR(parsing: text)
        func address(_ host: String) -> SocketAddress { host.contains(":") ? v6(host) : v4(host) }
        for host in inside { XCTAssertTrue(block.contains(address(host)), "\(text) should hold \(host)", file: file, line: line) }
        for host in outside {
            XCTAssertFalse(block.contains(address(host)), "\(text) should not hold \(host)", file: file, line: line)
        }
    }

    func testIPv4ContainsAtTheEdges() throws {
        try assertBlock("10.0.0.0/8", contains: ["10.0.0.0", "10.255.255.255"], not: ["9.255.255.255", "11.0.0.0"])
        // The port is not part of the match.
        XCTAssertTrue(try CIDR(parsing: "10.0.0.0/8").contains(.v4(ip: 0x0a00_0001, port: 0)))
    }

    func testPrefixNotOnAnOctetBoundary() throws {
        try assertBlock("172.16.0.0/12", contains: ["172.16.0.0", "172.31.255.255"], not: ["172.32.0.0", "172.15.255.255"])
        try assertBlock("192.168.1.4/31", contains: ["192.168.1.4", "192.168.1.5"], not: ["192.168.1.3", "192.168.1.6"])
    }

    func testAddressWithoutPrefixIsASingleHost() throws {
        let host = try CIDR(parsing: "192.168.1.7")
        XCTAssertEqual(host.prefixLength, 32)
        XCTAssertEqual(host.description, "192.168.1.7/32")
        try assertBlock("192.168.1.7", contains: ["192.168.1.7"], not: ["192.168.1.6", "192.168.1.8"])

        let v6Host = try CIDR(parsing: "::1")
        XCTAssertEqual(v6Host.prefixLength, 128)
        XCTAssertEqual(v6Host.description, "::1/128")
    }

    func testHostBitsBeyondThePrefixAreIgnored() throws {
        try assertBlock("10.1.2.3/8", contains: ["10.200.0.1"], not: ["11.1.2.3"])
    }

    func testZeroPrefixMatchesEveryAddressOfItsFamilyOnly() throws {
        try assertBlock("0.0.0.0/0", contains: ["0.0.0.0", "255.255.255.255"], not: ["::1", "::"])
        try assertBlock("::/0", contains: ["::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"], not: ["127.0.0.1", "0.0.0.0"])
        XCTAssertFalse(try CIDR(parsing: "::/0").isV4)
    }

    func testIPv6BlocksContainsAtTheEdges() throws {
        try assertBlock("::1/128", contains: ["::1"], not: ["::2", "::", "127.0.0.1"])
        try assertBlock(
            "2001:db8::/32", contains: ["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
            not: ["2001:db9::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"])
        try assertBlock(
            "fe80::/10", contains: ["fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            not: ["fec0::", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"])
        let doc = try CIDR(parsing: "2001:db8::/32")
        XCTAssertEqual(doc.description, "2001:db8::/32")
        XCTAssertEqual(doc.network.count, 16)
    }

    func testEqualBlocksAreEqualAndHashTheSame() throws {
        XCTAssertEqual(try CIDR(parsing: "10.0.0.0/8"), try CIDR(parsing: "10.0.0.0/8"))
        XCTAssertNotEqual(try CIDR(parsing: "10.0.0.0/8"), try CIDR(parsing: "10.0.0.0/16"))
        XCTAssertEqual(Set([try CIDR(parsing: "::1/128"), try CIDR(parsing: "::1")]).count, 1)
    }

    func testPrefixOutOfRangeNamesTheRange() {
        assertThrows(try CIDR(parsing: "10.0.0.0/33"), text: "invalid address '10.0.0.0/33': prefix length must be 0...32")
        assertThrows(try CIDR(parsing: "10.0.0.0/-1"), text: "invalid address '10.0.0.0/-1': prefix length must be 0...32")
        assertThrows(try CIDR(parsing: "::/129"), text: "invalid address '::/129': prefix length must be 0...128")
    }

    func testMalformedPrefixIsRejected() {
        assertThrows(try CIDR(parsing: "10.0.0.0/"), text: "invalid address '10.0.0.0/': prefix length must be 0...32")
        assertThrows(try CIDR(parsing: "10.0.0.0/abc"), text: "invalid address '10.0.0.0/abc': prefix length must be 0...32")
        assertThrows(try CIDR(parsing: "10.0.0.0/8/9"), text: "invalid address '10.0.0.0/8/9': prefix length must be 0...32")
    }

    func testMalformedAddressIsRejected() {
        for text in ["", "/8", "10.0.0/8", "10.0.0.256/8", "localhost/8", " 10.0.0.0/8", "[::1]/128", "2001:db8:::/32"] {
            assertThrows(try CIDR(parsing: text), text: "invalid address '\(text)': not an IPv4 or IPv6 address block")
        }
    }
}
