import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

extension IntegrationTestCase {
    /// Starts an etcd member on free 127.0.0.1 ports (stopped by PID in teardown) and waits
    /// until it serves reads; returns its client URL.
    func startEtcdMember() throws -> String {
        guard access("/usr/bin/etcd", X_OK) == 0 else {
            throw XCTSkip("/usr/bin/etcd is missing: scripts/install-deps.sh test installs etcd-server")
        }
        let directory = try temporaryDirectory()
        let client = try SocketAddress.freeLoopbackPort()
        let peer = try SocketAddress.freeLoopbackPort()
        let etcd = try launch(
            "/usr/bin/etcd",
            [
                "--name", "m0", "--data-dir", "\(directory)/m0.etcd",
                "--listen-client-urls", "http://127.0.0.1:\(client)", "--advertise-client-urls", "http://127.0.0.1:\(client)",
                "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                "--initial-cluster", "m0=http://127.0.0.1:\(peer)", "--logger", "zap", "--log-outputs", "\(directory)/etcd.log",
            ], name: "etcd")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let ended = etcd.pollTermination() { throw ChildProcess.LaunchError(description: "etcd \(ended)") }
            if let connection = try? HTTPConnection(port: client, timeout: 2) {
                defer { connection.close() }
                if let response = try? connection.request("POST", "/v3/kv/range", body: #"{"key": "L3JlYWR5"}"#),
                    response.status == 200
                {
                    return "http://127.0.0.1:\(client)"
                }
            }
            usleep(100_000)
        }
        throw ChildProcess.LaunchError(description: "etcd does not serve reads after 30 s")
    }
}
