import DSSystem
import XCTest

@testable import DSProxy

/// The fields added to a forwarded head, kept as one form per connection: every combination is
/// exact whichever form was built before it, and the address in it is the `client-ip` key.
final class ForwardedFieldFormTests: XCTestCase {
    private typealias Kind = ForwardedFieldForm.Kind

    /// The fields as the proxy has always written them.
    private func expected(_ address: String, https: Bool, upgrading: Bool, http10: Bool, proto: Bool) -> String {
        let connection = upgrading ? "Connection: Upgrade\r\n" : http10 ? "Connection: keep-alive\r\n" : ""
        let forwardedProto = proto ? "X-Forwarded-Proto: \(https ? "https" : "http")\r\n" : ""
        return "X-Forwarded-For: \(address)\r\n\(forwardedProto)\(connection)\r\n"
    }

    /// Every (upgrading, http10, proto) combination; upgrading wins over http10.
    private let combinations: [(upgrading: Bool, http10: Bool, proto: Bool)] = [false, true].flatMap { upgrading in
        [false, true].flatMap { http10 in [false, true].map { proto in (upgrading, http10, proto) } }
    }

    func testEveryFormIsExactAfterEveryOther() throws {
        let peers: [(SocketAddress?, String)] = [
            (try SocketAddress.parse("127.0.0.7:40000"), "127.0.0.7"),
            (try SocketAddress.parse("[2001:db8::17]:443"), "2001:db8::17"),
            (nil, "unknown"),
        ]
        for (peer, address) in peers {
            for https in [false, true] {
                for first in combinations {
                    for second in combinations {
                        var form = ForwardedFieldForm()
                        XCTAssertFalse(form.isBuilt)
                        for (upgrading, http10, proto) in [first, second, first] {
                            form.build(Kind(upgrading: upgrading, http10: http10, proto: proto), peer: peer, https: https)
                            XCTAssertEqual(
                                String(decoding: form.bytes, as: UTF8.self),
                                expected(address, https: https, upgrading: upgrading, http10: http10, proto: proto),
                                "after \(first), then \(second)")
                            XCTAssertEqual(form.kind, Kind(upgrading: upgrading, http10: http10, proto: proto))
                            XCTAssertEqual(Array(form.clientKey), peer == nil ? [] : Array(address.utf8))
                        }
                    }
                }
            }
        }
    }

    func testTheLongestAddressFits() throws {
        let peer = try SocketAddress.parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:1")
        var form = ForwardedFieldForm()
        form.build(Kind(upgrading: false, http10: true, proto: true), peer: peer, https: true)
        form.build(Kind(upgrading: true, http10: false, proto: false), peer: peer, https: true)
        XCTAssertEqual(Array(form.clientKey), Array(peer.host.utf8))
        XCTAssertEqual(
            String(decoding: form.bytes, as: UTF8.self), "X-Forwarded-For: \(peer.host)\r\nConnection: Upgrade\r\n\r\n")
    }

    /// Going back to a form the array already had room for writes over the tail in place.
    func testSwitchingBackToABuiltFormKeepsTheStorage() throws {
        var form = ForwardedFieldForm()
        let peer = try SocketAddress.parse("10.1.2.3:5")
        let long = Kind(upgrading: false, http10: true, proto: true)
        let short = Kind(upgrading: false, http10: false, proto: false)
        form.build(long, peer: peer, https: false)
        form.build(short, peer: peer, https: false)
        let storage = form.bytes.withUnsafeBufferPointer { $0.baseAddress }
        form.build(long, peer: peer, https: false)
        form.build(short, peer: peer, https: false)
        XCTAssertEqual(form.bytes.withUnsafeBufferPointer { $0.baseAddress }, storage)
    }
}
