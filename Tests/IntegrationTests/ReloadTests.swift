// SIGHUP reload of the configuration file and the admin socket, black-box: a changed
// live key is applied (seen in /status and in what the workers enforce), a key that needs a
// restart is logged as such, and a broken file changes nothing and says why.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ReloadTests: IntegrationTestCase {
    func heartbeatInterval(_ lb: LoadBalancerUnderTest) throws -> String? {
        let status = try lb.request("GET", "/status")
        return (status.jsonObject?["message"] as? [String: Any])?["heartbeat_interval"] as? String
    }

    func testSIGHUPAppliesLiveKeysAndKeepsRunningOnABrokenFile() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/ds-lb.toml"
        let base = "listen = \"127.0.0.1:0\"\ndriver = \"process\"\nreplicas = 2\nworkers = 2\n"
        try (base + "heartbeat-interval = \"5s\"\n").write(toFile: path, atomically: true, encoding: .utf8)
        let lb = try startLoadBalancer(["--config", path])
        XCTAssertEqual(try heartbeatInterval(lb), "5s")

        // Live keys: the supervisor's heartbeat interval and the workers' admin allow-list.
        try (base + "heartbeat-interval = \"1s\"\nadmin-allow = \"127.0.0.2/32\"\nlisten = \"127.0.0.1:1\"\n")
            .replacingOccurrences(of: "listen = \"127.0.0.1:0\"\n", with: "")
            .write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertTrue(lb.process.send(signal: SIGHUP))
        try lb.process.waitForStderrLine(
            matching: #"^\[i\] Reloaded .*: applied .*heartbeat-interval "5s" → "1s".*; heartbeat interval 1s$"#, timeout: 10)
        try lb.process.waitForStderrLine(
            matching: #"^\[!\] Reload: listen "127.0.0.1:0" → "127.0.0.1:1" needs a restart"#, timeout: 5)
        // Workers take the new settings on their loop, later on a loaded machine: poll.
        var refused: HTTPResponse?
        let deadline = Date().addingTimeInterval(10)
        repeat {
            refused = try lb.request("GET", "/rep", source: "127.0.0.1")
            if refused?.status == 403 { break }
            usleep(20_000)
        } while Date() < deadline
        XCTAssertEqual(refused?.status, 403, "admin-allow 127.0.0.2/32 after the reload: \(String(describing: refused))")
        XCTAssertEqual(try lb.replicaState(source: "127.0.0.2").replicas, ["server-1", "server-2"])
        let statusAfter = try lb.request("GET", "/status", source: "127.0.0.2")
        XCTAssertEqual((statusAfter.jsonObject?["message"] as? [String: Any])?["heartbeat_interval"] as? String, "1s")
        XCTAssertEqual(try lb.request("GET", "/home?id=5").status, 200, "ds-lb still listens where it started")

        // A broken file: nothing changes, the log says why, ds-lb keeps serving.
        try (base + "heartbeat-interval = \"soon\"\nadmin-allow = \"127.0.0.0/8\"\n").write(
            toFile: path, atomically: true, encoding: .utf8)
        XCTAssertTrue(lb.process.send(signal: SIGHUP))
        let escaped = NSRegularExpression.escapedPattern(for: path)
        try lb.process.waitForStderrLine(
            matching: #"^\[!\] Reload failed, keeping the running configuration: "# + escaped
                + #": heartbeat-interval = "soon": invalid duration"#,
            timeout: 10)
        XCTAssertTrue(lb.process.isRunning)
        XCTAssertEqual(
            try lb.request("GET", "/rep", source: "127.0.0.1").status, 403, "the broken file's admin-allow was not applied")
        let statusBroken = try lb.request("GET", "/status", source: "127.0.0.2")
        XCTAssertEqual((statusBroken.jsonObject?["message"] as? [String: Any])?["heartbeat_interval"] as? String, "1s")
        XCTAssertEqual(try lb.request("GET", "/home?id=5").status, 200)
    }

    func testTheAdminSocketServesOnlyTheAdminEndpoints() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--driver", "process", "--replicas", "2",
        ])
        let groups = try lb.process.waitForStderrLine(matching: #"Admin endpoints on 127\.0\.0\.1:([0-9]+) only"#, timeout: 10)
        let admin = LoadBalancerUnderTest(process: lb.process, port: try XCTUnwrap(UInt16(groups[1])))
        XCTAssertEqual(try admin.replicaState().replicas, ["server-1", "server-2"])
        assertReplicaState(
            try admin.admin("POST", "/add"), ["server-1", "server-2", "server-3"], "POST /add on the admin socket")
        assertFailure(try admin.request("GET", "/home?id=1"), 404, "GET /home on the admin socket")
        // The traffic socket routes every path, /rep included, to a replica.
        let home = try lb.request("GET", "/home?id=1")
        XCTAssertEqual(home.status, 200)
        XCTAssertNotNil(home.helloServerID, "\(home)")
        let rep = try lb.request("GET", "/rep")
        XCTAssertNil(rep.replicaState, "GET /rep on the traffic socket must not be answered by ds-lb: \(rep)")
    }
}
