import COpenSSL
import DSSystem
import DSTLS
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The server context and sessions against a client SSL in the test, over a socketpair: no
/// proxy, no loop.
final class TLSServerContextTests: XCTestCase {
    var certificates: TestCertificates!

    override func setUpWithError() throws {
        certificates = try TestCertificates()
    }

    override func tearDown() {
        certificates.remove()
    }

    // MARK: loading

    func testLoadsRSAAndECDSAPairsAndTheirNames() throws {
        let rsa = try certificates.make("rsa", names: ["a.test", "www.a.test"])
        let ec = try certificates.make("ec", names: ["*.wild.test"], ecdsa: true)
        let context = try TLSServerContext(certificates: [
            TLSCertificateFiles(certificate: rsa.cert, key: rsa.key), TLSCertificateFiles(certificate: ec.cert, key: ec.key),
        ])
        XCTAssertEqual(context.names, [["a.test", "www.a.test"], ["*.wild.test"]])
        XCTAssertEqual(context.certificateIndex(for: "a.test"), 0)
        XCTAssertEqual(context.certificateIndex(for: "x.wild.test"), 1)
        XCTAssertEqual(context.certificateIndex(for: "wild.test"), 0, "a wildcard covers one label, not the bare name")
        XCTAssertEqual(context.certificateIndex(for: "a.b.wild.test"), 0, "nor two labels")
        XCTAssertEqual(context.certificateIndex(for: "unknown.test"), 0)
        // DNS names: any case, and the root's trailing dot.
        XCTAssertEqual(context.certificateIndex(for: "X.WILD.Test"), 1)
        XCTAssertEqual(context.certificateIndex(for: "x.wild.test."), 1)
        XCTAssertEqual(context.certificateIndex(for: "WWW.A.TEST."), 0)
        XCTAssertEqual(context.certificateIndex(for: "x.wild.test.."), 0, "one dot only")
        XCTAssertEqual(context.certificateIndex(for: "."), 0)
        XCTAssertEqual(context.certificateIndex(for: ""), 0)
    }

    func testLoadErrorsNameTheFileAndTheReason() throws {
        let good = try certificates.make("good", names: ["a.test"])
        let other = try certificates.make("other", names: ["b.test"])
        let expired = try certificates.make("expired", names: ["old.test"], days: -1)
        let missing = certificates.path("nothing.crt")
        func error(_ cert: String, _ key: String) -> String {
            do {
                _ = try TLSServerContext(certificates: [TLSCertificateFiles(certificate: cert, key: key)])
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(error(missing, good.key).hasPrefix("\(missing): missing"), error(missing, good.key))
        XCTAssertTrue(error(good.cert, other.key).hasPrefix("\(other.key): key does not match"), error(good.cert, other.key))
        XCTAssertTrue(error(expired.cert, expired.key).hasPrefix("\(expired.cert): expired"), error(expired.cert, expired.key))
        XCTAssertTrue(error(good.key, good.key).hasPrefix("\(good.key): not a PEM certificate"), error(good.key, good.key))
        if getuid() != 0 {
            chmod(good.key, 0)
            XCTAssertTrue(error(good.cert, good.key).hasPrefix("\(good.key): unreadable"), error(good.cert, good.key))
        }
        XCTAssertFalse(error(good.cert, good.key).contains("\n"))
    }

    func testRefusesACipherListWithNothingUsable() throws {
        let good = try certificates.make("good", names: ["a.test"])
        XCTAssertThrowsError(
            try TLSServerContext(certificates: [TLSCertificateFiles(certificate: good.cert, key: good.key)], ciphers: "NOPE")
        ) { XCTAssertTrue("\($0)".contains("--tls-ciphers"), "\($0)") }
    }

    func testCiphersuitesPinTheTLS13SuiteAndAnUnknownNameIsRefusedByName() throws {
        let good = try certificates.make("good", names: ["a.test"])
        let files = [TLSCertificateFiles(certificate: good.cert, key: good.key)]
        for suite in ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"] {
            let context = try TLSServerContext(certificates: files, ciphersuites: suite)
            let pair = try TLSPair(context: context, caFile: good.cert, serverName: "a.test", version: ds_tls1_3_version())
            defer { pair.close() }
            try pair.handshake()
            XCTAssertEqual(pair.server.cipher, suite)
        }
        for (list, bad) in [
            ("TLS_AES_999", "TLS_AES_999"), ("TLS_AES_128_GCM_SHA256:nope", "nope"),
            ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        ] {
            XCTAssertThrowsError(try TLSServerContext(certificates: files, ciphersuites: list)) {
                XCTAssertTrue("\($0)".hasPrefix("--tls-ciphersuites: unknown TLS 1.3 suite '\(bad)'"), "\($0)")
            }
        }
        XCTAssertThrowsError(try TLSServerContext(certificates: files, ciphersuites: "")) {
            XCTAssertTrue("\($0)".hasPrefix("--tls-ciphersuites: empty suite name"), "\($0)")
        }
    }

    // MARK: handshakes

    func testSNIPicksTheCertificateAndALPNIsHTTP11() throws {
        let a = try certificates.make("a", names: ["a.test"])
        let b = try certificates.make("b", names: ["b.test"], ecdsa: true)
        let wild = try certificates.make("wild", names: ["*.wild.test"])
        let context = try TLSServerContext(certificates: [
            TLSCertificateFiles(certificate: a.cert, key: a.key), TLSCertificateFiles(certificate: b.cert, key: b.key),
            TLSCertificateFiles(certificate: wild.cert, key: wild.key),
        ])
        for (name, expected, caFile) in [
            ("b.test", "b.test", b.cert), ("x.wild.test", "*.wild.test", wild.cert), (nil, "a.test", a.cert),
            ("other.test", "a.test", a.cert),
        ] as [(String?, String, String)] {
            let pair = try TLSPair(context: context, caFile: caFile, serverName: name, alpn: ["h2", "http/1.1"])
            defer { pair.close() }
            try pair.handshake()
            XCTAssertEqual(pair.peerNames(), [expected], "SNI \(name ?? "none")")
            XCTAssertEqual(pair.server.alpn, "http/1.1")
            XCTAssertEqual(pair.server.version, "TLSv1.3")
        }
    }

    func testTLS11IsRefusedAndTLS12Works() throws {
        let a = try certificates.make("a", names: ["a.test"])
        let context = try TLSServerContext(certificates: [TLSCertificateFiles(certificate: a.cert, key: a.key)])
        let old = try TLSPair(context: context, caFile: a.cert, serverName: "a.test", version: ds_tls1_1_version())
        defer { old.close() }
        XCTAssertThrowsError(try old.handshake())
        let tls12 = try TLSPair(context: context, caFile: a.cert, serverName: "a.test", version: ds_tls1_2_version())
        defer { tls12.close() }
        try tls12.handshake()
        XCTAssertEqual(tls12.server.version, "TLSv1.2")
    }

    /// A pair with one ECDSA certificate for a.test, its handshake done.
    private func handshakenPair() throws -> TLSPair {
        let a = try certificates.make("a", names: ["a.test"], ecdsa: true)
        let context = try TLSServerContext(certificates: [TLSCertificateFiles(certificate: a.cert, key: a.key)])
        let pair = try TLSPair(context: context, caFile: a.cert, serverName: "a.test")
        do {
            try pair.handshake()
        } catch {
            pair.close()
            throw error
        }
        return pair
    }

    func testBytesBothWaysAndCloseNotify() throws {
        let pair = try handshakenPair()
        defer { pair.close() }
        // More than a record and more than the socket buffer: writes must come back wantWrite
        // and go on once the client reads.
        let message = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let received = try pair.serverToClient(message)
        XCTAssertEqual(received, message)
        let request = Array("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".utf8)
        XCTAssertEqual(try pair.clientToServer(request), request)
        pair.server.shutdown()
        XCTAssertEqual(pair.clientReadAfterShutdown(), 0, "close_notify reached the client")
    }

    /// A small request, one record when the client sends it alone.
    private func request(_ number: Int) -> [UInt8] { Array("GET /\(number) HTTP/1.1\r\n\r\n".utf8) }

    /// What one server read returns, nil when it brings no bytes.
    private func serverRead(_ pair: TLSPair) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16384)
        guard case .done(let n) = buffer.withUnsafeMutableBytes({ pair.server.read(into: $0) }) else { return nil }
        return Array(buffer[0..<n])
    }

    /// One recv takes every queued record (read-ahead), and the session tells a read whose recv
    /// emptied the socket from one that left records in OpenSSL's buffer: the connection skips
    /// the read that would only get EAGAIN after the first, never after the second (nor after
    /// a read served from the buffer: see the next test).
    func testReadsAheadAndSaysWhenTheSocketIsEmpty() throws {
        let pair = try handshakenPair()
        defer { pair.close() }
        let first = request(1)
        let second = request(2)
        try pair.clientWritesRecords([first, second])
        func read() -> [UInt8]? { serverRead(pair) }
        XCTAssertEqual(read(), first)
        XCTAssertFalse(pair.server.drainedSocket, "the second record is buffered: more to read without a new edge")
        XCTAssertEqual(read(), second)
        XCTAssertFalse(pair.server.drainedSocket, "served from the buffer: no recv looked at the socket")
        var buffer = [UInt8](repeating: 0, count: 16384)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { pair.server.read(into: $0) }, .wantRead)
        try pair.clientWritesRecords([first])
        XCTAssertEqual(read(), first)
        XCTAssertTrue(pair.server.drainedSocket)
    }

    /// A read served from OpenSSL's buffer makes no recv, so it says nothing about the socket:
    /// bytes that arrived since the last recv (their edge already taken while the connection
    /// was not reading) must still be read without a new edge.
    func testAReadFromTheBufferDoesNotSayTheSocketIsEmpty() throws {
        let pair = try handshakenPair()
        defer { pair.close() }
        let first = request(1)
        let second = request(2)
        let third = request(3)
        try pair.clientWritesRecords([first, second])
        func read() -> [UInt8]? { serverRead(pair) }
        XCTAssertEqual(read(), first)
        try pair.clientWritesRecords([third])
        XCTAssertEqual(read(), second)
        XCTAssertFalse(pair.server.drainedSocket, "the third record waits in the socket")
        XCTAssertEqual(read(), third)
        XCTAssertTrue(pair.server.drainedSocket)
    }

    func testSessionTicketsResumeAndRotatedKeysStillOpenThem() throws {
        let a = try certificates.make("a", names: ["a.test"])
        let context = try TLSServerContext(certificates: [TLSCertificateFiles(certificate: a.cert, key: a.key)])
        for version in [ds_tls1_2_version(), ds_tls1_3_version()] {
            let first = try TLSPair(context: context, caFile: a.cert, serverName: "a.test", version: version)
            try first.handshake()
            let session = try first.clientSession()
            first.close()
            let second = try TLSPair(context: context, caFile: a.cert, serverName: "a.test", version: version, session: session)
            try second.handshake()
            XCTAssertTrue(second.clientResumed, "resumed with a ticket (version \(version))")
            second.close()
            SSL_SESSION_free(session)
        }
    }

    func testTicketKeysRotate() {
        let keys = TicketKeys(rotationNanoseconds: 1000, count: 3, now: 0)
        let first = keys.sealingKey(now: 10)
        XCTAssertEqual(keys.sealingKey(now: 999), first)
        let second = keys.sealingKey(now: 1000)
        XCTAssertNotEqual(second, first, "a new key seals after a rotation")
        second.name.withUnsafeBytes { XCTAssertEqual(keys.openingKey(named: $0, now: 1500)?.renew, false) }
        first.name.withUnsafeBytes { name in
            let opened = keys.openingKey(named: name, now: 1500)
            XCTAssertEqual(opened?.0, first)
            XCTAssertEqual(opened?.renew, true, "an older key still opens, and the ticket is renewed")
            XCTAssertNil(keys.openingKey(named: name, now: 3000), "retired after count - 1 rotations")
        }
    }

    func testKernelTLSProbeSaysWhy() {
        let probe = KernelTLS.probe
        XCTAssertFalse(probe.detail.isEmpty)
        if !probe.available { XCTAssertTrue(probe.detail.contains("TCP_ULP tls"), probe.detail) }
    }
}
