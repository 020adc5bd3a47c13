// SIGHUP and certificates, black-box: a reload loads the certificate files again for new
// connections while open ones go on, no request fails while it happens, and a bad file keeps
// the running certificates and says why.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class TLSReloadTests: IntegrationTestCase {
    func testReloadServesNewCertificatesKeepsOpenConnectionsAndRefusesABadFile() throws {
        let directory = try temporaryDirectory()
        let first = try makeCertificate(in: directory, "first", names: ["a.test"])
        let second = try makeCertificate(in: directory, "second", names: ["a.test", "b.test"])
        let live = (cert: directory + "/live.crt", key: directory + "/live.key")
        try copy(first, to: live)
        // Clients trust both, so the swap itself fails no request.
        let bundle = directory + "/both.pem"
        try (String(contentsOfFile: first.cert, encoding: .utf8) + String(contentsOfFile: second.cert, encoding: .utf8))
            .write(toFile: bundle, atomically: true, encoding: .utf8)
        let path = directory + "/ds-lb.toml"
        try """
        listen = "127.0.0.1:0"
        tls-listen = "127.0.0.1:0"
        tls-cert = ["\(live.cert)"]
        tls-key = ["\(live.key)"]
        driver = "process"
        replicas = 1
        workers = 2

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let lb = try startLoadBalancer(["--config", path])
        let port = UInt16(try lb.process.waitForStderrLine(matching: #"^\[i\] TLS on 127\.0\.0\.1:([0-9]+) "#, timeout: 20)[1])!

        let open = try TLSTestConnection(port: port, serverName: "a.test", caFile: first.cert)
        defer { open.close() }
        try open.send("GET /home?id=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(open.readResponse()?.status, 200)

        // Requests on new connections all the while.
        let stop = Locked(false)
        let failures = Locked<[String]>([])
        let served = Locked(0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            while !stop.value {
                do {
                    let connection = try TLSTestConnection(port: port, serverName: "a.test", caFile: bundle)
                    defer { connection.close() }
                    try connection.send("GET /home?id=2 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                    let status = connection.readResponse()?.status
                    if status == 200 {
                        served.update { $0 += 1 }
                    } else {
                        failures.update { $0.append("status \(String(describing: status))") }
                    }
                } catch {
                    failures.update { $0.append("\(error)") }
                }
            }
            done.signal()
        }.start()

        try copy(second, to: live)
        XCTAssertTrue(lb.process.send(signal: SIGHUP))
        try lb.process.waitForStderrLine(matching: #"^\[i\] Reloaded "#, timeout: 10)
        // New connections get the new certificate (b.test is only in it); workers take it on
        // their loop, so poll.
        var newOne = false
        let deadline = Date().addingTimeInterval(10)
        while !newOne && Date() < deadline {
            if let connection = try? TLSTestConnection(port: port, serverName: "b.test", caFile: second.cert) {
                connection.close()
                newOne = true
            } else {
                usleep(20_000)
            }
        }
        XCTAssertTrue(newOne, "no connection got the reloaded certificate")
        // The connection opened before the reload goes on with its session.
        try open.send("GET /home?id=3 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(open.readResponse()?.status, 200, "the open connection after the reload")

        // A bad file: the running certificates stay, the log says which file and why.
        try FileManager.default.removeItem(atPath: live.key)
        XCTAssertTrue(lb.process.send(signal: SIGHUP))
        try lb.process.waitForStderrLine(
            matching: #"^\[!\] Reload failed, keeping the running configuration: TLS: "#
                + NSRegularExpression.escapedPattern(for: live.key) + ": missing",
            timeout: 10)
        let stillServed = try TLSTestConnection(port: port, serverName: "b.test", caFile: second.cert)
        stillServed.close()

        while served.value < 20 && Date() < deadline.addingTimeInterval(20) { usleep(20_000) }
        stop.update { $0 = true }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(failures.value, [], "requests failed around the reloads")
        XCTAssertGreaterThan(served.value, 0)
    }

    /// The TLS 1.3 suites and the handshake cap come from the file like the certificates: a
    /// reload applies them to new connections.
    func testReloadAppliesTheCiphersuitesAndTheHandshakeCap() throws {
        let directory = try temporaryDirectory()
        let certificate = try makeCertificate(in: directory, "a", names: ["a.test"])
        let path = directory + "/ds-lb.toml"
        func write(suite: String, cap: Int) throws {
            try """
            listen = "127.0.0.1:0"
            tls-listen = "127.0.0.1:0"
            tls-cert = ["\(certificate.cert)"]
            tls-key = ["\(certificate.key)"]
            tls-ciphersuites = "\(suite)"
            tls-max-handshakes = \(cap)
            tls-handshake-timeout = "60s"
            driver = "process"
            replicas = 1
            workers = 1

            """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write(suite: "TLS_AES_256_GCM_SHA384", cap: 256)
        let lb = try startLoadBalancer(["--config", path])
        let port = UInt16(try lb.process.waitForStderrLine(matching: #"^\[i\] TLS on 127\.0\.0\.1:([0-9]+) "#, timeout: 20)[1])!
        func negotiated() throws -> String {
            let run = try runTool(
                "/bin/sh",
                ["-c", "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -tls1_3 -servername a.test </dev/null 2>&1"])
            return run.stdout.first { $0.contains("Cipher is") } ?? run.stdout.joined(separator: "\n")
        }
        let before = try negotiated()
        XCTAssertTrue(before.contains("TLS_AES_256_GCM_SHA384"), before)

        try write(suite: "TLS_CHACHA20_POLY1305_SHA256", cap: 10)
        XCTAssertTrue(lb.process.send(signal: SIGHUP))
        try lb.process.waitForStderrLine(matching: #"^\[i\] Reloaded "#, timeout: 10)
        // The worker takes the new configuration on its loop: poll.
        var suite = ""
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            suite = try negotiated()
            if suite.contains("TLS_CHACHA20_POLY1305_SHA256") { break }
            usleep(20_000)
        }
        XCTAssertTrue(suite.contains("TLS_CHACHA20_POLY1305_SHA256"), suite)

        // 40 clients that never send a ClientHello against a cap of 10: the 30 oldest go (the
        // deadline is a minute away), and a client that handshakes is served.
        var stalled: [HTTPConnection] = []
        defer { stalled.forEach { $0.close() } }
        for _ in 0..<40 { stalled.append(try HTTPConnection(port: port)) }
        let served = try TLSTestConnection(port: port, serverName: "a.test", caFile: certificate.cert)
        defer { served.close() }
        try served.send("GET /home?id=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(served.readResponse()?.status, 200)
        let closed = stalled.prefix(30).filter { $0.isClosedByPeer(within: 10) }.count
        XCTAssertEqual(closed, 30, "the reloaded cap of 10 did not drop the oldest handshakes")
    }

    private func copy(_ certificate: TestCertificate, to live: (cert: String, key: String)) throws {
        for (from, to) in [(certificate.cert, live.cert), (certificate.key, live.key)] {
            try? FileManager.default.removeItem(atPath: to + ".tmp")
            try FileManager.default.copyItem(atPath: from, toPath: to + ".tmp")
            // rename: a reader never sees half a file.
            guard rename(to + ".tmp", to) == 0 else { throw ChildProcess.LaunchError(description: "rename \(to)") }
        }
    }
}
