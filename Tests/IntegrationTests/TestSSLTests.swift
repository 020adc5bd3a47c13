// testssl.sh (Debian's package) against ds-lb's TLS listener: no finding rated HIGH or
// CRITICAL. The certificate is signed by a CA the test makes and passes to testssl, so what is
// judged is ds-lb's TLS configuration, not a self-signed test certificate.

import Foundation
import XCTest

final class TestSSLTests: IntegrationTestCase {
    static let testssl = "/usr/bin/testssl"

    func testTestSSLFindsNothingHighOrCritical() throws {
        guard access(Self.testssl, X_OK) == 0 else {
            throw XCTSkip("\(Self.testssl) is not installed (scripts/install-deps.sh test installs the testssl.sh package)")
        }
        let directory = try temporaryDirectory()
        let (leaf, ca) = try makeCASignedCertificate(in: directory)
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert", leaf.cert, "--tls-key", leaf.key,
            "--replicas", "1",
        ])
        let port = try lb.process.waitForStderrLine(matching: #"^\[i\] TLS on 127\.0\.0\.1:([0-9]+) "#, timeout: 20)[1]
        let report = directory + "/testssl.json"
        let run = try runTool(
            Self.testssl,
            [
                "--quiet", "--color", "0", "--warnings", "off", "--add-ca", ca, "--ip", "127.0.0.1", "--jsonfile", report,
                // Protocols, cipher categories, forward secrecy, the server's cipher order, its
                // certificate and defaults, known vulnerabilities: the default run without its
                // HTTP header checks (the replica's response headers, which ds-lb passes on)
                // and client simulation (which clients could connect; rated nothing), which
                // take 40 % of its time.
                "--protocols", "--std", "--fs", "--server-preference", "--server-defaults", "--vulnerable",
                "localhost:\(port)",
            ], timeout: 900)
        XCTAssertNotNil(run.status, "testssl did not finish")
        let data = try XCTUnwrap(FileManager.default.contents(atPath: report), "no JSON report: \(run.stdout.suffix(20))")
        let findings = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertGreaterThan(findings.count, 50, "testssl ran too few checks: \(run.stdout.suffix(20))")
        let severe = findings.filter { ["HIGH", "CRITICAL"].contains($0["severity"] as? String ?? "") }
        XCTAssertEqual(
            severe.map { "\($0["severity"] ?? "") \($0["id"] ?? ""): \($0["finding"] ?? "")" }, [],
            "testssl findings rated HIGH or CRITICAL")
        // The protocol floor and ALPN as testssl sees them.
        func finding(_ id: String) -> String? { findings.first { $0["id"] as? String == id }?["finding"] as? String }
        XCTAssertEqual(finding("TLS1_1"), "not offered")
        XCTAssertEqual(finding("TLS1_3"), "offered with final")
    }
}
