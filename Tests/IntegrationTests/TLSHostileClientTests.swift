// The TLS listener against clients that do not play by the rules: plain HTTP or garbage on the
// TLS port, protocol versions below the floor, renegotiation, odd server names, a client that
// handshakes and goes quiet, one that vanishes mid-body, a ticket from other keys, a client
// certificate nobody asked for, and the descriptors all of them leave behind.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

extension TLSTests {
    /// Plain HTTP gets a 400 over plain text and a clean close (as nginx answers it), at once:
    /// its first byte already says it is not TLS, even when it is all the client sent. Bytes
    /// that are neither TLS nor HTTP are closed at once too. The handshake deadline is a minute
    /// away, so nothing here is the deadline's doing.
    func testPlainHTTPOnTheTLSPortGets400AndGarbageIsClosedAtOnce() throws {
        let tls = try startTLS(["--tls-handshake-timeout", "60s"])
        let curl = try runTool("/usr/bin/curl", ["-sS", "--max-time", "20", "-i", "http://127.0.0.1:\(tls.port)/home?id=1"])
        XCTAssertTrue(curl.stdout.first?.hasPrefix("HTTP/1.1 400 Bad Request") == true, "\(curl)")
        XCTAssertTrue(curl.stdout.joined().contains("plain HTTP request was sent to the HTTPS port"), "\(curl)")
        XCTAssertTrue(curl.stdout.contains { $0.hasPrefix("Connection: close") }, "\(curl)")

        // Any method, and only its first letters.
        for bytes in ["DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n", "GE"] {
            let client = try HTTPConnection(port: tls.port)
            defer { client.close() }
            try client.send(bytes)
            XCTAssertTrue(client.isClosedByPeer(within: 20), "\(bytes.debugDescription): still open")
            let reply = String(decoding: client.unconsumedBytes, as: UTF8.self)
            XCTAssertTrue(reply.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(bytes.debugDescription): \(reply)")
        }
        for bytes in [[0x00, 0x01, 0x02, 0x03, 0x04, 0x05], Array("\r\n\r\n".utf8)] as [[UInt8]] {
            let client = try HTTPConnection(port: tls.port)
            defer { client.close() }
            try client.send(bytes)
            XCTAssertTrue(client.isClosedByPeer(within: 20), "\(bytes): still open")
            XCTAssertEqual(client.unconsumedBytes, [], "\(bytes): no answer expected")
        }
        // A TLS record that is not a handshake, and a ClientHello that is not one: OpenSSL
        // refuses both at once.
        for bytes in [[0x17, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00], [0x16, 0x03, 0x01, 0x00, 0x04, 0xFF, 0xFF, 0xFF, 0xFF]]
            as [[UInt8]]
        {
            let client = try HTTPConnection(port: tls.port)
            defer { client.close() }
            try client.send(bytes)
            XCTAssertTrue(client.isClosedByPeer(within: 20), "\(bytes): still open")
        }
        let after = try self.curl(tls, "a.test", "/home?id=2", ca: tls.a.cert)
        XCTAssertEqual(after.status, 200, "\(after)")
    }

    /// SSLv3, TLS 1.0 and TLS 1.1 offers get a fatal alert and a close (protocol_version;
    /// handshake_failure for SSLv3, which this OpenSSL does not know at all); a TLS 1.2 client
    /// that asks to renegotiate is refused (no_renegotiation).
    func testOldProtocolOffersAndRenegotiationAreRefused() throws {
        let tls = try startTLS(["--tls-handshake-timeout", "60s"])
        for (version, alert) in [(0x0300, 40), (0x0301, 70), (0x0302, 70)] as [(UInt16, UInt8)] {
            let client = try HTTPConnection(port: tls.port)
            defer { client.close() }
            try client.send(rawClientHello(version: version))
            XCTAssertTrue(client.isClosedByPeer(within: 20), "version \(version): still open")
            // An alert record: level fatal (2), then the description.
            let reply = client.unconsumedBytes
            XCTAssertEqual(reply.first, 0x15, "version \(version): \(reply)")
            XCTAssertEqual(Array(reply.dropFirst(5).prefix(2)), [2, alert], "version \(version): \(reply)")
        }
        // s_client's R command renegotiates; stdin stays open (sleep) until the answer is in.
        let run = try runTool(
            "/bin/sh",
            [
                "-c",
                "(printf 'R\\n'; sleep 3) | /usr/bin/openssl s_client -connect 127.0.0.1:\(tls.port) -servername a.test -tls1_2 2>&1",
            ])
        let output = run.stdout.joined(separator: "\n")
        XCTAssertTrue(output.contains("RENEGOTIATING"), output)
        XCTAssertTrue(output.contains("no renegotiation"), output)
    }

    /// Server names match without regard to case or a final dot; one over 255 bytes, or with
    /// a NUL in it, is refused by OpenSSL before it is looked up, and ds-lb goes on.
    func testServerNamesAnyCaseTrailingDotHugeOrWithANul() throws {
        let tls = try startTLS()
        for name in ["X.W.TEST", "x.w.test.", "X.w.Test."] {
            let output = try sClient(tls, ["-servername", name])
            XCTAssertTrue(output.contains("CN = *.w.test"), "\(name): \(output)")
        }
        for name in [[UInt8](repeating: UInt8(ascii: "a"), count: 1000), Array("a.test".utf8) + [0] + Array("x".utf8)] {
            let client = try HTTPConnection(port: tls.port)
            defer { client.close() }
            try client.send(rawClientHello(version: 0x0303, serverName: name))
            XCTAssertTrue(client.isClosedByPeer(within: 20), "server name of \(name.count) bytes: still open")
            XCTAssertEqual(client.unconsumedBytes.first, 0x15, "server name of \(name.count) bytes: an alert expected")
        }
        let after = try curl(tls, "a.test", "/home?id=2", ca: tls.a.cert)
        XCTAssertEqual(after.status, 200, "\(after)")
    }

    /// A client that finishes its handshake and sends nothing is closed by the head timeout,
    /// as a plain one is.
    func testAQuietClientAfterTheHandshakeGetsTheHeadTimeout() throws {
        let tls = try startTLS(["--head-timeout", "500ms", "--idle-timeout", "500ms", "--tls-handshake-timeout", "60s"])
        let quiet = try TLSTestConnection(port: tls.port, serverName: "a.test", caFile: tls.a.cert, timeout: 20)
        defer { quiet.close() }
        XCTAssertTrue(quiet.isClosedByPeer(), "a client that never sent a request stayed connected")
    }

    /// A client that vanishes (no close_notify) in the middle of a Content-Length body: the
    /// replica connection that carried the partial body is not put back for the next request
    /// (the replica would take that request's bytes as the rest of the body).
    func testATruncatedBodyDoesNotLeaveItsReplicaConnectionForReuse() throws {
        let tls = try startTLS(["--workers", "1", "--response-timeout", "5s"])
        // A pooled replica connection first, so the next exchange reuses one.
        let warm = try curl(tls, "a.test", "/home?id=1", ca: tls.a.cert)
        XCTAssertEqual(warm.status, 200, "\(warm)")
        let cut = try TLSTestConnection(port: tls.port, serverName: "a.test", caFile: tls.a.cert)
        // ds-lb answers 100 Continue once the head is on its way to the replica: the exchange
        // holds the pooled connection before the body starts.
        try cut.send("POST /echo?id=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        let interim = cut.read { $0.firstRange(of: Array("\r\n\r\n".utf8)) != nil }
        XCTAssertTrue(
            String(decoding: interim, as: UTF8.self).hasPrefix("HTTP/1.1 100"), String(decoding: interim, as: UTF8.self))
        try cut.send([UInt8](repeating: UInt8(ascii: "x"), count: 1000))
        cut.close() // SSL_free and close: no close_notify
        for index in 0..<3 {
            let client = try TLSTestConnection(port: tls.port, serverName: "a.test", caFile: tls.a.cert)
            defer { client.close() }
            try client.send("GET /home?id=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            let response = client.readResponse()
            XCTAssertEqual(response?.status, 200, "request \(index) after the truncated body: \(String(describing: response))")
        }
    }

    /// A ticket sealed with keys this ds-lb does not have (another process's, as after a
    /// rotation retired them) gets a full handshake, not a failure; a client certificate
    /// nobody asked for changes nothing.
    func testAnUnknownTicketFallsBackToAFullHandshakeAndAClientCertificateIsIgnored() throws {
        let issuer = try startTLS()
        let other = try startTLS()
        let request = "GET /home?id=1 HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n"
        for version in ["-tls1_2", "-tls1_3"] {
            let (first, second) = try offerSession(from: issuer, to: other, version)
            XCTAssertTrue(first.contains("\nNew, TLSv1."), first)
            XCTAssertTrue(second.contains("\nNew, TLSv1."), "\(version): \(second)")
            XCTAssertTrue(second.contains("Hello from Server"), "\(version): \(second)")
        }
        let client = try makeCertificate(in: issuer.directory, "client", names: ["client.test"])
        let withCertificate = try sClient(
            issuer, ["-servername", "a.test", "-cert", client.cert, "-key", client.key], input: request)
        XCTAssertTrue(withCertificate.contains("Hello from Server"), withCertificate)
    }

    /// 2,000 TLS connections abandoned in every state (before the ClientHello, in the middle
    /// of it, right after the handshake, in the middle of a request head or body, none with
    /// close_notify) leave ds-lb with the descriptors it had before. 500 handshakes left half
    /// done at once, under a cap that keeps them all, do not stop a normal client either.
    func testAbandonedTLSConnectionsReleaseEveryDescriptor() throws {
        // No idle replica connections kept: every descriptor an exchange opens must close.
        let tls = try startTLS([
            "--workers", "2", "--tls-handshake-timeout", "60s", "--tls-max-handshakes", "1000", "--upstream-max-idle", "0",
        ])
        let pid = tls.lb.process.pid
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let baseline = descriptors()
        XCTAssertGreaterThan(baseline, 0)
        func wait(_ what: String, until condition: (Int) -> Bool) {
            let deadline = Date().addingTimeInterval(60)
            var count = descriptors()
            while !condition(count) && Date() < deadline {
                usleep(20_000)
                count = descriptors()
            }
            XCTAssertTrue(condition(count), "\(what): ds-lb (pid \(pid)) has \(count) descriptors, \(baseline) before")
        }
        let warm = try curl(tls, "a.test", "/home?id=1", ca: tls.a.cert)
        XCTAssertEqual(warm.status, 200, "\(warm)")
        wait("after one request", until: { $0 == baseline })

        // 500 silent, 500 with the first 20 bytes of a ClientHello: all held at once.
        var pending: [HTTPConnection] = []
        for index in 0..<1000 {
            let client = try HTTPConnection(port: tls.port)
            if index >= 500 { try client.send(Array(rawClientHello(version: 0x0303).prefix(20))) }
            pending.append(client)
        }
        wait("1000 handshakes in progress", until: { $0 >= baseline + 1000 })
        let served = try curl(tls, "a.test", "/home?id=2", ca: tls.a.cert)
        XCTAssertEqual(served.status, 200, "a normal client behind 500 half-done handshakes: \(served)")
        pending.forEach { $0.close() }
        pending = []
        wait("after the abandoned handshakes", until: { $0 == baseline })

        // 1000 that finish the handshake and leave: at once, mid-head, mid-body.
        for index in 0..<1000 {
            let client = try TLSTestConnection(port: tls.port, serverName: "a.test", caFile: tls.a.cert)
            switch index % 3 {
            case 1: try client.send("GET /home?id=\(index) HTTP/1.1\r\nHost: a.te")
            case 2: try client.send("POST /echo?id=\(index) HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5000\r\n\r\nxxxx")
            default: break
            }
            client.close() // no close_notify
        }
        wait("after the abandoned connections", until: { $0 == baseline })
        let after = try curl(tls, "a.test", "/home?id=3", ca: tls.a.cert)
        XCTAssertEqual(after.status, 200, "\(after)")
        wait("after the last request", until: { $0 == baseline })
    }
}
