import DSTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

extension IntegrationTestCase {
    /// Starts an etcd member on free 127.0.0.1 ports (stopped by PID in teardown) and waits
    /// until it serves reads; returns its client URL.
    func startEtcdMember() throws -> String {
        guard EtcdMemberCommand.isInstalled else { throw XCTSkip(EtcdMemberCommand.missing) }
        let directory = try temporaryDirectory()
        let clientPort = try SocketAddress.freeLoopbackPort()
        let client = "http://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(try SocketAddress.freeLoopbackPort())"
        let etcd = try launch(
            EtcdMemberCommand.executable,
            EtcdMemberCommand.arguments(
                name: "m0", directory: directory, clientURL: client, peerURL: peer, initialCluster: "m0=\(peer)",
                token: "ds-lb-test-\(getpid())"),
            name: "etcd")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let ended = etcd.pollTermination() { throw ChildProcess.LaunchError(description: "etcd \(ended)") }
            if let connection = try? HTTPConnection(port: clientPort, timeout: 2) {
                defer { connection.close() }
                if let response = try? connection.request("POST", "/v3/kv/range", body: #"{"key": "L3JlYWR5"}"#),
                    response.status == 200
                {
                    return client
                }
            }
            usleep(100_000)
        }
        throw ChildProcess.LaunchError(description: "etcd does not serve reads after 30 s")
    }
}
