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

    func testIPv4ContainsAtTheEdges() throws {
        let block = try CIDR(parsing: "10.0.0.0/8")
        XCTAssertTrue(block.contains(v4("10.0.0.0")))
        XCTAssertTrue(block.contains(v4("10.255.255.255")))
        XCTAssertFalse(block.contains(v4("9.255.255.255")))
        XCTAssertFalse(block.contains(v4("11.0.0.0")))
        // The port is not part of the match.
        XCTAssertTrue(block.contains(.v4(ip: 0x0a00_0001, port: 0)))
    }

    func testPrefixNotOnAnOctetBoundary() throws {
        let block = try CIDR(parsing: "172.16.0.0/12")
        XCTAssertTrue(block.contains(v4("172.16.0.0")))
        XCTAssertTrue(block.contains(v4("172.31.255.255")))
        XCTAssertFalse(block.contains(v4("172.32.0.0")))
        XCTAssertFalse(block.contains(v4("172.15.255.255")))

        let narrow = try CIDR(parsing: "192.168.1.4/31")
        XCTAssertTrue(narrow.contains(v4("192.168.1.4")))
        XCTAssertTrue(narrow.contains(v4("192.168.1.5")))
        XCTAssertFalse(narrow.contains(v4("192.168.1.3")))
        XCTAssertFalse(narrow.contains(v4("192.168.1.6")))
    }

    func testAddressWithoutPrefixIsASingleHost() throws {
        let host = try CIDR(parsing: "192.168.1.7")
        XCTAssertEqual(host.prefixLength, 32)
        XCTAssertEqual(host.description, "192.168.1.7/32")
        XCTAssertTrue(host.contains(v4("192.168.1.7")))
        XCTAssertFalse(host.contains(v4("192.168.1.6")))
        XCTAssertFalse(host.contains(v4("192.168.1.8")))

        let v6Host = try CIDR(parsing: "::1")
        XCTAssertEqual(v6Host.prefixLength, 128)
        XCTAssertEqual(v6Host.description, "::1/128")
    }

    func testHostBitsBeyondThePrefixAreIgnored() throws {
        let block = try CIDR(parsing: "10.1.2.3/8")
        XCTAssertTrue(block.contains(v4("10.200.0.1")))
        XCTAssertFalse(block.contains(v4("11.1.2.3")))
    }

    func testZeroPrefixMatchesEveryAddressOfItsFamilyOnly() throws {
        let all4 = try CIDR(parsing: "0.0.0.0/0")
        XCTAssertTrue(all4.contains(v4("0.0.0.0")))
        XCTAssertTrue(all4.contains(v4("255.255.255.255")))
        XCTAssertFalse(all4.contains(v6("::1")))

        let all6 = try CIDR(parsing: "::/0")
        XCTAssertFalse(all6.isV4)
        XCTAssertTrue(all6.contains(v6("::")))
        XCTAssertTrue(all6.contains(v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
        XCTAssertFalse(all6.contains(v4("127.0.0.1")))
    }

    func testIPv6BlocksContainsAtTheEdges() throws {
        let loopback = try CIDR(parsing: "::1/128")
        XCTAssertTrue(loopback.contains(v6("::1")))
        XCTAssertFalse(loopback.contains(v6("::2")))
        XCTAssertFalse(loopback.contains(v6("::")))
        XCTAssertFalse(loopback.contains(v4("127.0.0.1")))

        let doc = try CIDR(parsing: "2001:db8::/32")
        XCTAssertEqual(doc.description, "2001:db8::/32")
        XCTAssertEqual(doc.network.count, 16)
        XCTAssertTrue(doc.contains(v6("2001:db8::")))
        XCTAssertTrue(doc.contains(v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")))
        XCTAssertFalse(doc.contains(v6("2001:db9::")))
        XCTAssertFalse(doc.contains(v6("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")))

        let linkLocal = try CIDR(parsing: "fe80::/10")
        XCTAssertTrue(linkLocal.contains(v6("fe80::")))
        XCTAssertTrue(linkLocal.contains(v6("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
        XCTAssertFalse(linkLocal.contains(v6("fec0::")))
        XCTAssertFalse(linkLocal.contains(v6("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
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
