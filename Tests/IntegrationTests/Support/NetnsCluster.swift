// A ds-lb cluster on three "hosts" of this machine: network namespaces the fixture creates,
// joined by a bridge it creates in the root namespace, with one etcd member and one ds-lb node
// (`--etcd`, process driver, replicas on the host's address) in each. Addresses come from a
// TEST-NET block (RFC 5737, never routed) that nothing on the machine uses, so no packet leaves
// it. Every process is started by `ip netns exec`, which execs: the PID we hold is the etcd's or
// the ds-lb's own, stopped by that PID. `shutdown()` (also from deinit) removes everything:
// processes, namespaces, bridge, the firewall rule, the temporary directory.

import DSTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct ClusterFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class NetnsCluster: @unchecked Sendable {
    /// One host: its namespace, address and the two processes it runs.
    struct Host {
        let index: Int
        let namespace: String
        let address: String
        /// The root-namespace end of the host's veth pair.
        let veth: String
        var etcd: ChildProcess?
        var node: ChildProcess?
        var nodeName: String { "n\(index)" }
        var etcdName: String { "e\(index)" }
    }

    static let etcdClientPort: UInt16 = 2379
    static let etcdPeerPort: UInt16 = 2380
    /// Each host has a network stack of its own, so every node can listen on the same port.
    static let nodePort: UInt16 = 8080

    let leaseSeconds: Int
    let initialReplicas: Int
    let directory: String
    let subnet: String
    let bridge: String
    let bridgeAddress: String
    private(set) var hosts: [Host] = []
    private let ip: String
    private let binaries: String
    private var firewallRule: [String]?
    private var namespacesCreated: [String] = []
    private var bridgeCreated = false
    private var isShutDown = false

    var etcdEndpoints: String {
        hosts.map { "http://\($0.address):\(Self.etcdClientPort)" }.joined(separator: ",")
    }

    /// Creates the hosts, starts the etcd cluster and one node per host, and waits until every
    /// node serves the same pool with every replica up. Throws (after removing what it made)
    /// with a message that says what is missing when the machine cannot do it.
    init(hosts count: Int = 3, leaseSeconds: Int = 2, replicas: Int = 3) throws {
        guard getuid() == 0 else {
            throw ClusterFixtureError(
                "the cluster tests create network namespaces and a bridge: run them as root (CI does)")
        }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: Binaries.isExecutable) else {
            throw ClusterFixtureError("the cluster tests need `ip` (iproute2): scripts/install-deps.sh test installs it")
        }
        guard EtcdMemberCommand.isInstalled else { throw ClusterFixtureError(EtcdMemberCommand.missing) }
        self.ip = ip
        self.leaseSeconds = leaseSeconds
        self.initialReplicas = replicas
        binaries = try Binaries.directory()
        let tag = "dslb\(getpid())"
        bridge = "\(tag)br"
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        Self.removeLeftovers(ip: ip, base: base)
        subnet = try Self.unusedTestNet(ip: ip)
        bridgeAddress = "\(subnet).254"
        directory = "\(base)/ds-lb-cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for index in 1...count {
            hosts.append(
                Host(index: index, namespace: "\(tag)h\(index)", address: "\(subnet).\(index)", veth: "\(tag)h\(index)"))
        }
        do {
            try createNetwork()
            for index in hosts.indices { try startEtcd(index, newCluster: true) }
            for index in hosts.indices { try waitUntilEtcdServes(index) }
            for index in hosts.indices { try startNode(index) }
            try waitUntilConverged(timeout: 60)
        } catch {
            shutdown()
            throw error
        }
    }

    deinit { shutdown() }

    // MARK: Network

    /// The first TEST-NET /24 that no address or route of this machine touches.
    private static func unusedTestNet(ip: String) throws -> String {
        let addresses = (try? capture(ip, ["-4", "-o", "addr", "show"])) ?? ""
        let routes = (try? capture(ip, ["-4", "route", "show", "table", "all"])) ?? ""
        for candidate in ["192.0.2", "198.51.100", "203.0.113"] {
            let prefix = "\(candidate)."
            if !addresses.contains(prefix) && !routes.contains(prefix) { return candidate }
        }
        throw ClusterFixtureError(
            "every TEST-NET block (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) is in use on this machine:\n\(addresses)\(routes)"
        )
    }

    /// Namespaces, bridges and directories of fixtures whose test process is gone (it was
    /// killed before its teardown ran): their processes died with it, the rest did not.
    private static func removeLeftovers(ip: String, base: String) {
        let pattern = try! NSRegularExpression(pattern: #"^(?:dslb|ds-lb-cluster-)([0-9]+)(h[0-9]+|br|-[0-9]+)$"#)
        func ownerIsGone(_ name: String) -> Bool {
            guard let match = pattern.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)),
                let range = Range(match.range(at: 1), in: name), let pid = pid_t(name[range])
            else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        let namespaces = ((try? capture(ip, ["netns", "list"])) ?? "").split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
        for namespace in namespaces where ownerIsGone(namespace) {
            _ = try? capture(ip, ["netns", "delete", namespace])
        }
        let links = ((try? capture(ip, ["-o", "link", "show", "type", "bridge"])) ?? "").split(separator: "\n")
            .compactMap { $0.split(separator: ":").dropFirst().first?.trimmingCharacters(in: .whitespaces) }
        for link in links where ownerIsGone(link) {
            _ = try? capture(ip, ["link", "delete", link])
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where ownerIsGone(entry) {
            try? FileManager.default.removeItem(atPath: "\(base)/\(entry)")
        }
    }

    private func createNetwork() throws {
        try run(ip, ["link", "add", bridge, "type", "bridge"])
        bridgeCreated = true
        try run(ip, ["addr", "add", "\(bridgeAddress)/24", "dev", bridge])
        try run(ip, ["link", "set", bridge, "up"])
        for host in hosts {
            try run(ip, ["netns", "add", host.namespace])
            namespacesCreated.append(host.namespace)
            try run(ip, ["link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
            try run(ip, ["link", "set", host.veth, "master", bridge, "up"])
            try run(ip, ["-n", host.namespace, "addr", "add", "\(host.address)/24", "dev", "eth0"])
            try run(ip, ["-n", host.namespace, "link", "set", "eth0", "up"])
            try run(ip, ["-n", host.namespace, "link", "set", "lo", "up"])
        }
        // With br_netfilter loaded, frames between two ports of a bridge pass the root
        // namespace's FORWARD chain, whose policy is DROP once Docker has run: let ours through.
        if let iptables = ["/usr/sbin/iptables", "/sbin/iptables"].first(where: Binaries.isExecutable) {
            let rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
            if (try? run(iptables, ["-w", "-I"] + rule)) != nil { firewallRule = [iptables] + rule }
        }
    }

    // MARK: etcd

    /// Starts host `index`'s etcd member. A member that ran before keeps its data directory,
    /// from which it rejoins (the initial-cluster flags are then ignored).
    func startEtcd(_ index: Int, newCluster: Bool = false) throws {
        let host = hosts[index]
        let client = "http://\(host.address):\(Self.etcdClientPort)"
        let peer = "http://\(host.address):\(Self.etcdPeerPort)"
        let initial = hosts.map { "\($0.etcdName)=http://\($0.address):\(Self.etcdPeerPort)" }.joined(separator: ",")
        hosts[index].etcd = try ChildProcess(
            name: "etcd-\(host.etcdName)", executable: ip,
            arguments: ["netns", "exec", host.namespace, EtcdMemberCommand.executable]
                + EtcdMemberCommand.arguments(
                    name: host.etcdName, directory: directory, clientURL: client, peerURL: peer, initialCluster: initial,
                    newCluster: newCluster, token: "ds-lb-cluster-\(getpid())"))
    }

    /// Polls a (linearizable) read on member `index` until it answers: it has joined and there
    /// is a leader.
    func waitUntilEtcdServes(_ index: Int, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            if let ended = hosts[index].etcd?.pollTermination() {
                throw ClusterFixtureError("etcd \(hosts[index].etcdName) \(ended):\n\(etcdLog(index))")
            }
            do {
                let response = try etcdCall(index, "/v3/kv/range", ["key": Self.base64("/ready")], timeout: 2)
                if response.status == 200 { return }
                last = "\(response)"
            } catch {
                last = "\(error)"
            }
            usleep(100_000)
        }
        throw ClusterFixtureError(
            "etcd \(hosts[index].etcdName) does not serve reads after \(timeout) s (\(last)):\n\(etcdLog(index))")
    }

    /// The index of the member that is the etcd leader now, as a majority of the running
    /// members report it, or nil.
    func etcdLeader() -> Int? {
        var ids: [Int: String] = [:]
        var votes: [String: Int] = [:]
        for index in hosts.indices where hosts[index].etcd != nil {
            guard let response = try? etcdCall(index, "/v3/maintenance/status", [:], timeout: 2),
                response.status == 200, let object = response.jsonObject,
                let header = object["header"] as? [String: Any],
                let member = header["member_id"].map({ "\($0)" }), let leader = object["leader"].map({ "\($0)" })
            else { continue }
            ids[index] = member
            votes[leader, default: 0] += 1
        }
        guard let (leader, count) = votes.max(by: { $0.value < $1.value }), count >= 2 else { return nil }
        return ids.first { $0.value == leader }?.key
    }

    /// SIGKILLs member `index` (a crash) and reaps it.
    func killEtcd(_ index: Int) {
        hosts[index].etcd?.forceStop()
        hosts[index].etcd?.stopReaders()
        hosts[index].etcd = nil
    }

    /// Stops member `index` as an operator would (SIGTERM; SIGKILL after 10 s) and reaps it.
    func stopEtcd(_ index: Int) {
        guard let etcd = hosts[index].etcd else { return }
        etcd.send(signal: SIGTERM)
        if etcd.waitForExit(timeout: 10) == nil { etcd.forceStop() }
        etcd.stopReaders()
        hosts[index].etcd = nil
    }

    private func etcdCall(
        _ index: Int, _ path: String, _ json: [String: Any], timeout: TimeInterval
    ) throws
        -> HTTPResponse
    {
        let connection = try HTTPConnection(host: hosts[index].address, port: Self.etcdClientPort, timeout: timeout)
        defer { connection.close() }
        return try connection.request("POST", path, body: JSON.bytes(json))
    }

    private func etcdLog(_ index: Int) -> String {
        EtcdMemberCommand.log(of: hosts[index].etcdName, in: directory, limit: 3000)
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    // MARK: ds-lb nodes

    /// Starts host `index`'s ds-lb node and waits until it answers `GET /rep`.
    func startNode(_ index: Int) throws {
        let host = hosts[index]
        let state = "\(directory)/\(host.nodeName)"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let process = try ChildProcess(
            name: "ds-lb-\(host.nodeName)", executable: ip,
            arguments: [
                "netns", "exec", host.namespace, "\(binaries)/ds-lb", "serve",
                "--listen", "\(host.address):\(Self.nodePort)",
                "--admin-allow", "\(subnet).0/24",
                "--etcd", etcdEndpoints, "--node-name", host.nodeName, "--advertise-address", host.address,
                "--node-lease", "\(leaseSeconds)s", "--replicas", "\(initialReplicas)",
                "--driver", "process", "--server-binary", "\(binaries)/ds-server", "--state-dir", state,
                "--heartbeat-interval", "500ms", "--heartbeat-timeout", "1s", "--workers", "2",
            ],
            environment: [
                "STATE_DIRECTORY": state,
                // No engine answers: the process driver is the one under test.
                "DOCKER_HOST": "unix:///nonexistent/ds-lb-itest-no-docker.sock",
            ])
        hosts[index].node = process
        let deadline = Date().addingTimeInterval(60)
        var last = ""
        while Date() < deadline {
            if let ended = process.pollTermination() {
                throw ClusterFixtureError("ds-lb \(host.nodeName) \(ended) at start\n\(process.outputTail())")
            }
            do {
                let response = try request(index, "GET", "/rep", timeout: 2)
                if response.status == 200 { return }
                last = "\(response)"
            } catch {
                last = "\(error)"
            }
            usleep(100_000)
        }
        throw ClusterFixtureError("ds-lb \(host.nodeName) does not answer /rep after 60 s (\(last))\n\(process.outputTail())")
    }

    /// SIGKILLs node `index` and reaps it: its replicas die with it (PR_SET_PDEATHSIG), as on
    /// a host that goes down.
    func killNode(_ index: Int) {
        hosts[index].node?.forceStop()
        hosts[index].node?.stopReaders()
        hosts[index].node = nil
    }

    func signalNode(_ index: Int, _ signal: Int32) {
        hosts[index].node?.send(signal: signal)
    }

    /// One request to node `index` on a new connection.
    func request(
        _ index: Int, _ method: String, _ target: String, json: Any? = nil, timeout: TimeInterval = 5
    ) throws -> HTTPResponse {
        let connection = try HTTPConnection(host: hosts[index].address, port: Self.nodePort, timeout: timeout)
        defer { connection.close() }
        return try connection.request(method, target, body: json.map(JSON.bytes))
    }

    /// A keep-alive client of node `index`.
    func client(_ index: Int, timeout: TimeInterval = 5) -> KeepAliveClient {
        KeepAliveClient(host: hosts[index].address, port: Self.nodePort, timeout: timeout)
    }

    /// Node `index`'s `/rep` replicas, or nil when it does not answer 200 in the /rep format.
    func pool(_ index: Int) -> [String]? {
        guard let response = try? request(index, "GET", "/rep", timeout: 3), response.status == 200 else { return nil }
        return response.replicaState?.replicas
    }

    /// Node `index`'s `/status` message, or nil.
    func status(_ index: Int) -> [String: Any]? {
        guard let response = try? request(index, "GET", "/status", timeout: 3), response.status == 200 else { return nil }
        return response.jsonObject?["message"] as? [String: Any]
    }

    // MARK: Replicas on the hosts

    /// The replica processes (ds-server) running in the hosts' namespaces, by their `--id`:
    /// id → the indices of the hosts running one. Found by namespace, not by parent, so a
    /// replica that outlived its node is counted too.
    func replicaProcesses() -> [Int: [Int]] {
        var inode: [UInt64: Int] = [:]
        for host in hosts {
            var info = stat()
            if stat("/run/netns/\(host.namespace)", &info) == 0 { inode[UInt64(info.st_ino)] = host.index - 1 }
        }
        var result: [Int: [Int]] = [:]
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [:] }
        for pid in entries.compactMap({ pid_t($0) }) {
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"),
                let host = Self.namespaceInode(link).flatMap({ inode[$0] }),
                let argv = ProcFS.cmdline(pid), let program = argv.first, program.hasSuffix("ds-server"),
                let stat = ProcFS.stat(pid), stat.state != "Z",
                let id = ProcFS.argument(after: "--id", of: pid).flatMap({ Int($0) })
            else { continue }
            result[id, default: []].append(host)
        }
        return result
    }

    /// `net:[4026532301]` → 4026532301.
    private static func namespaceInode(_ link: String) -> UInt64? {
        guard let open = link.firstIndex(of: "["), let close = link.lastIndex(of: "]") else { return nil }
        return UInt64(link[link.index(after: open)..<close])
    }

    // MARK: Convergence

    /// Why the cluster has not converged, or nil when it has: every node (of `nodes`) runs and
    /// answers `/rep` with the same pool and `/status` with every replica of it up, etcd up and
    /// exactly those nodes live; each replica of the pool runs exactly once across the hosts,
    /// on the node `/status` names.
    func divergence(nodes: [Int]? = nil) -> String? {
        let indices = nodes ?? Array(hosts.indices)
        var pools: [String: [String]] = [:]
        for index in indices {
            guard hosts[index].node?.isRunning == true else { return "node \(hosts[index].nodeName) is not running" }
            guard let pool = pool(index) else { return "node \(hosts[index].nodeName) does not answer /rep" }
            pools[hosts[index].nodeName] = pool
        }
        guard Set(pools.values.map { $0.sorted() }).count == 1, let pool = pools.values.first else {
            return "the nodes list different pools: \(pools)"
        }
        var ids: Set<Int>?
        var placements: [Int: String] = [:]
        for index in indices {
            guard let status = status(index), let replicas = status["replicas"] as? [[String: Any]] else {
                return "node \(hosts[index].nodeName) does not answer /status"
            }
            let names = replicas.compactMap { $0["name"] as? String }
            guard names.sorted() == pool.sorted() else {
                return "node \(hosts[index].nodeName): /status lists \(names.sorted()), /rep \(pool.sorted())"
            }
            let down = replicas.filter { ($0["state"] as? String)?.uppercased() != "UP" }
            if !down.isEmpty {
                return "node \(hosts[index].nodeName): not up: \(down.map { "\($0["name"] ?? "?")=\($0["state"] ?? "?")" })"
            }
            guard let cluster = status["cluster"] as? [String: Any], let nodes = cluster["nodes"] as? [[String: Any]] else {
                return "node \(hosts[index].nodeName): /status has no cluster.nodes"
            }
            if cluster["store"] as? String != "up" {
                return "node \(hosts[index].nodeName): store \(cluster["store"] ?? "?") (\(cluster["store_problem"] ?? ""))"
            }
            let live = nodes.filter { $0["state"] as? String == "live" }.compactMap { $0["name"] as? String }
            if live.sorted() != indices.map({ hosts[$0].nodeName }) {
                return "node \(hosts[index].nodeName): /status lists the live nodes \(live.sorted())"
            }
            let statusIDs = Set(replicas.compactMap { $0["id"] as? Int })
            if let ids, ids != statusIDs { return "the nodes' /status ids differ: \(ids) and \(statusIDs)" }
            ids = statusIDs
            placements = Dictionary(
                replicas.compactMap { replica in
                    (replica["id"] as? Int).map { ($0, replica["node"] as? String ?? "none") }
                }, uniquingKeysWith: { first, _ in first })
        }
        let running = replicaProcesses()
        for id in (ids ?? []).sorted() {
            guard let running = running[id], running.count == 1 else {
                return "replica id \(id) runs \(running[id]?.count ?? 0) times (hosts \(running[id] ?? []))"
            }
            // Where it runs is where /status says it does.
            if placements[id] != hosts[running[0]].nodeName {
                return "replica id \(id) runs on \(hosts[running[0]].nodeName), /status says \(placements[id] ?? "nowhere")"
            }
        }
        let extra = Set(running.keys).subtracting(ids ?? [])
        if !extra.isEmpty { return "replicas not in the pool still run: ids \(extra.sorted())" }
        return nil
    }

    /// Polls `divergence` until it is nil; throws with the last reason and the nodes' logs.
    func waitUntilConverged(nodes: [Int]? = nil, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: String? = "not checked"
        while Date() < deadline {
            last = divergence(nodes: nodes)
            if last == nil { return }
            usleep(100_000)
        }
        throw ClusterFixtureError("the cluster did not converge within \(timeout) s: \(last ?? "")\n\(logs())")
    }

    /// Puts the cluster back to every host running its etcd member and its node (a test that
    /// failed half-way may have left one stopped), then waits for convergence.
    func restore() throws {
        for index in hosts.indices {
            if hosts[index].etcd?.isRunning != true {
                hosts[index].etcd = nil
                try startEtcd(index)
            }
        }
        for index in hosts.indices { try waitUntilEtcdServes(index) }
        for index in hosts.indices {
            hosts[index].node?.send(signal: SIGCONT)
            if hosts[index].node?.isRunning != true {
                hosts[index].node = nil
                try startNode(index)
            }
        }
        try waitUntilConverged(timeout: 60)
    }

    /// The last lines of every node's output, for failure messages.
    func logs(lines: Int = 25) -> String {
        hosts.compactMap { $0.node?.outputTail(lines) }.joined(separator: "\n")
    }

    // MARK: Teardown

    /// Stops every process by PID, then removes the namespaces, the bridge, the firewall rule
    /// and the directory. Idempotent.
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        for index in hosts.indices {
            if let node = hosts[index].node {
                let replicas = ProcFS.descendants(of: node.pid).compactMap(ProcFS.identity)
                node.send(signal: SIGCONT)
                node.forceStop()
                replicas.forEach(ProcFS.kill)
                _ = ProcFS.waitUntilGone(replicas, timeout: 3)
                node.stopReaders()
            }
            hosts[index].node = nil
        }
        for index in hosts.indices { killEtcd(index) }
        for namespace in namespacesCreated { _ = try? run(ip, ["netns", "delete", namespace]) }
        if bridgeCreated { _ = try? run(ip, ["link", "delete", bridge]) }
        if let firewallRule { _ = try? run(firewallRule[0], ["-w", "-D"] + firewallRule.dropFirst()) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Commands

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        try Self.capture(executable, arguments)
    }

    /// Runs a command to its end; its stdout, or an error with its output when it fails.
    @discardableResult
    static func capture(_ executable: String, _ arguments: [String]) throws -> String {
        let process = try ChildProcess(
            name: (executable as NSString).lastPathComponent, executable: executable, arguments: arguments)
        defer { process.stopReaders() }
        guard let ended = process.waitForExit(timeout: 30) else {
            process.forceStop()
            throw ClusterFixtureError("\(executable) \(arguments.joined(separator: " ")) did not end within 30 s")
        }
        guard ended == .exited(0) else {
            throw ClusterFixtureError(
                "\(executable) \(arguments.joined(separator: " ")) \(ended): \(process.stderr.allLines.joined(separator: " "))")
        }
        return process.stdout.allLines.joined(separator: "\n")
    }
}
