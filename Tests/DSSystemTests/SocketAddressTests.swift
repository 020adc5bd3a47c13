import DSSystem
import Glibc
import XCTest

final class SocketAddressTests: XCTestCase {
    private func roundTrip(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> SocketAddress {
        let address = try SocketAddress.parse(text)
        XCTAssertEqual(address.description, text, file: file, line: line)
        XCTAssertEqual(try SocketAddress.parse(address.description), address, file: file, line: line)
        return address
    }

    func testIPv4RoundTrip() throws {
        let address = try roundTrip("10.1.2.3:8080")
        XCTAssertEqual(address, .v4(ip: 0x0a01_0203, port: 8080))
        XCTAssertEqual(address.host, "10.1.2.3")
        XCTAssertEqual(address.port, 8080)
        XCTAssertEqual(address.family, AF_INET)
    }

    func testPortsZeroAndMaximum() throws {
        XCTAssertEqual(try roundTrip("127.0.0.1:0").port, 0)
        XCTAssertEqual(try roundTrip("255.255.255.255:65535"), .v4(ip: 0xffff_ffff, port: 65535))
        XCTAssertEqual(try roundTrip("[::1]:0").port, 0)
        XCTAssertEqual(try roundTrip("[::1]:65535").port, 65535)
    }

    func testIPv6InBrackets() throws {
        let loopback = try roundTrip("[::1]:443")
        XCTAssertEqual(loopback, .v6(ip: [UInt8](repeating: 0, count: 15) + [1], port: 443))
        XCTAssertEqual(loopback.host, "::1")
        XCTAssertEqual(loopback.family, AF_INET6)

        let doc = try roundTrip("[2001:db8::1]:8443")
        XCTAssertEqual(doc, .v6(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 8443))
        _ = try roundTrip("[::ffff:1.2.3.4]:80")
        _ = try roundTrip("[::]:80")
    }

    func testIPv6IsPrintedInCanonicalForm() throws {
        XCTAssertEqual(try SocketAddress.parse("[2001:0DB8:0000:0000:0000:0000:0000:0001]:80").description, "[2001:db8::1]:80")
    }

    func testMissingHostMeansAllIPv4Interfaces() throws {
        for text in ["8080", ":8080", "*:8080", "0.0.0.0:8080"] {
            XCTAssertEqual(try SocketAddress.parse(text), .v4(ip: 0, port: 8080), text)
        }
    }

    func testLocalhostIsTheIPv4Loopback() throws {
        XCTAssertEqual(try SocketAddress.parse("localhost:5000"), .v4(ip: 0x7f00_0001, port: 5000))
    }

    func testBadPortIsRejected() {
        let reason = "port must be a number from 0 to 65535"
        for text in [
            "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1: 80", "[::1]:99999", "[::1]:", "",
        ] {
            assertThrows(try SocketAddress.parse(text), text: "invalid address '\(text)': \(reason)")
        }
    }

    func testBadBracketsAreRejected() {
        assertThrows(try SocketAddress.parse("[::1"), text: "invalid address '[::1': missing ']'")
        assertThrows(try SocketAddress.parse("[::1]"), text: "invalid address '[::1]': missing ':port'")
        assertThrows(try SocketAddress.parse("[::1]80"), text: "invalid address '[::1]80': missing ':port'")
    }

    func testNamesAndBadAddressesAreRejected() {
        assertThrows(
            try SocketAddress.parse("example.com:80"),
            text: "invalid address 'example.com:80': 'example.com' is not a numeric IPv4 or IPv6 address")
        assertThrows(
            try SocketAddress.parse("10.0.0.256:80"),
            text: "invalid address '10.0.0.256:80': '10.0.0.256' is not a numeric IPv4 or IPv6 address")
        assertThrows(
            try SocketAddress.parse("[fe80::1%eth0]:80"),
            text: "invalid address '[fe80::1%eth0]:80': 'fe80::1%eth0' is not a numeric IPv4 or IPv6 address")
    }

    func testNumericParsersRejectJunk() {
        XCTAssertEqual(SocketAddress.parseIPv4("192.0.2.1"), 0xc000_0201)
        XCTAssertNil(SocketAddress.parseIPv4("192.0.2"))
        XCTAssertNil(SocketAddress.parseIPv4("::1"))
        XCTAssertNil(SocketAddress.parseIPv4(""))
        XCTAssertEqual(SocketAddress.parseIPv6("::1")?.count, 16)
        XCTAssertNil(SocketAddress.parseIPv6("1.2.3.4"))
        XCTAssertNil(SocketAddress.parseIPv6(":::"))
    }

    func testWithPortKeepsTheHost() throws {
        XCTAssertEqual(try SocketAddress.parse("10.0.0.1:80").withPort(81), try SocketAddress.parse("10.0.0.1:81"))
        XCTAssertEqual(try SocketAddress.parse("[::1]:80").withPort(0), try SocketAddress.parse("[::1]:0"))
    }

    func testIsLoopback() throws {
        XCTAssertTrue(try SocketAddress.parse("127.0.0.1:1").isLoopback)
        XCTAssertTrue(try SocketAddress.parse("127.255.255.254:1").isLoopback)
        XCTAssertFalse(try SocketAddress.parse("128.0.0.1:1").isLoopback)
        XCTAssertFalse(try SocketAddress.parse("126.255.255.255:1").isLoopback)
        XCTAssertTrue(try SocketAddress.parse("[::1]:1").isLoopback)
        XCTAssertFalse(try SocketAddress.parse("[::2]:1").isLoopback)
        XCTAssertFalse(try SocketAddress.parse("[::]:1").isLoopback)
    }

    /// What `withSockAddr` hands the kernel decodes back to the same address.
    private func decoded(_ address: SocketAddress) -> SocketAddress? {
        address.withSockAddr { sa, length in
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(length))) }
            return withUnsafePointer(to: &storage) { SocketAddress(storage: $0) }
        }
    }

    func testSockaddrRoundTrip() throws {
        for text in ["127.0.0.1:0", "10.1.2.3:65535", "[::1]:443", "[2001:db8::1]:1"] {
            let address = try SocketAddress.parse(text)
            XCTAssertEqual(decoded(address), address, text)
        }
        try SocketAddress.parse("10.1.2.3:258").withSockAddr { sa, length in
            XCTAssertEqual(Int(length), MemoryLayout<sockaddr_in>.size)
            let sin = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
            XCTAssertEqual(sin.sin_port, UInt16(258).bigEndian)
            XCTAssertEqual(sin.sin_addr.s_addr, UInt32(0x0a01_0203).bigEndian)
        }
    }

    func testIPv4MappedSockaddrDecodesAsIPv4() throws {
        XCTAssertEqual(decoded(try SocketAddress.parse("[::ffff:127.0.0.1]:8080")), .v4(ip: 0x7f00_0001, port: 8080))
    }

    func testUnknownFamilyDecodesToNil() {
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(AF_UNIX)
        XCTAssertNil(withUnsafePointer(to: &storage) { SocketAddress(storage: $0) })
    }
}
