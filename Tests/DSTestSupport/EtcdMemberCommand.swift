import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How the tests start an etcd member (Debian's etcd-server): one command line for the
/// single-member fixture, the multi-member cluster and the members in network namespaces, so
/// they cannot drift apart. Data and log live in `directory` under the member's name.
package enum EtcdMemberCommand {
    package static let executable = "/usr/bin/etcd"

    /// Why a test that needs etcd cannot run here.
    package static let missing = "\(executable) is missing: scripts/install-deps.sh test installs etcd-server"

    package static var isInstalled: Bool { access(executable, X_OK) == 0 }

    /// The arguments of member `name` of `initialCluster` (`name=peerURL,...`). A member started
    /// again on its data directory rejoins from it and ignores the initial-cluster flags.
    package static func arguments(
        name: String, directory: String, clientURL: String, peerURL: String, initialCluster: String,
        newCluster: Bool = true, token: String
    ) -> [String] {
        [
            "--name", name, "--data-dir", "\(directory)/\(name).etcd",
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", initialCluster, "--initial-cluster-state", newCluster ? "new" : "existing",
            "--initial-cluster-token", token,
            "--logger", "zap", "--log-outputs", "\(directory)/\(name).log",
        ]
    }

    /// The log of member `name` started with `arguments(directory:)`, its last `limit` characters.
    package static func log(of name: String, in directory: String, limit: Int = 2000) -> String {
        let text = (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? ""
        return String(text.suffix(limit))
    }
}
