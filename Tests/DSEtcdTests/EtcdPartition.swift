import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Cuts one member of an `EtcdCluster` off from the others with iptables while its client port
/// stays reachable: a network partition on loopback. Every member's connections come from
/// 127.0.0.1, so the member is told apart by the user it runs as (`EtcdCluster(users:)`): the
/// peer connections its packets belong to are marked and dropped both ways, and so is what
/// arrives at its peer port. `heal()` (also from deinit) removes the rules; rules a killed test
/// process left behind are removed by the next partition.
final class EtcdPartition {
    static var iptablesPath: String? {
        for path in ["/usr/sbin/iptables", "/sbin/iptables"] where access(path, X_OK) == 0 { return path }
        return nil
    }

    private let iptables: String
    /// Each rule as `-t table -I chain spec...`; deleted with the same spec.
    private var rules: [(table: String, chain: String, spec: [String])] = []

    /// Skips the test when the machine cannot do it (not root, no iptables, no owner or connmark match).
    init(cluster: EtcdCluster, member index: Int) throws {
        guard getuid() == 0 else { throw XCTSkip("a partition needs iptables rules: run as root") }
        guard let iptables = Self.iptablesPath else { throw XCTSkip("iptables is missing") }
        guard let user = cluster.members[index].user else {
            preconditionFailure("member \(index) must run as a user of its own: EtcdCluster(users:)")
        }
        self.iptables = iptables
        Self.removeLeftovers(iptables)
        let comment = ["-m", "comment", "--comment", "ds-lb-etcd-partition-\(getpid())"]
        let mark = String(format: "0x%x", 0x5d1b_0000 | (UInt32(getpid()) & 0xffff))
        let peerPorts = cluster.members.map { String($0.peerPort) }.joined(separator: ",")
        let wanted: [(String, String, [String])] = [
            (
                "mangle", "OUTPUT",
                ["-p", "tcp", "-m", "owner", "--uid-owner", String(user), "-m", "multiport", "--ports", peerPorts]
                    + comment + ["-j", "CONNMARK", "--set-mark", mark]
            ),
            ("filter", "INPUT", ["-p", "tcp", "-m", "connmark", "--mark", mark] + comment + ["-j", "DROP"]),
            // A connection the others open to it is not marked until it answers.
            (
                "filter", "INPUT",
                ["-p", "tcp", "-d", "127.0.0.1", "--dport", String(cluster.members[index].peerPort)] + comment + ["-j", "DROP"]
            ),
        ]
        for (table, chain, spec) in wanted {
            let (status, output) = Self.run(iptables, ["-w", "-t", table, "-I", chain] + spec)
            guard status == 0 else {
                heal()
                throw XCTSkip("iptables cannot partition here (\(output.trimmingCharacters(in: .whitespacesAndNewlines)))")
            }
            rules.append((table, chain, spec))
        }
    }

    deinit { heal() }

    func heal() {
        for rule in rules.reversed() {
            _ = Self.run(iptables, ["-w", "-t", rule.table, "-D", rule.chain] + rule.spec)
        }
        rules.removeAll()
    }

    private static func removeLeftovers(_ iptables: String) {
        let pattern = try! NSRegularExpression(pattern: #"ds-lb-etcd-partition-([0-9]+)"#)
        for table in ["mangle", "filter"] {
            let (_, listing) = run(iptables, ["-w", "-t", table, "-S"])
            for line in listing.split(separator: "\n").map(String.init) where line.hasPrefix("-A ") {
                guard let match = pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)),
                    let range = Range(match.range(at: 1), in: line), let pid = pid_t(line[range]),
                    pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
                else { continue }
                // `-S` prints each rule as it was added, quotes aside: `-A` becomes `-D`.
                let words = line.dropFirst(3).split(separator: " ").map { $0.replacingOccurrences(of: "\"", with: "") }
                _ = run(iptables, ["-w", "-t", table, "-D"] + words)
            }
        }
    }

    private static func run(_ path: String, _ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}
