import DSEtcd
import DSReactor
import DSSystem
import DSTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Real etcd members (Debian's etcd-server) on free 127.0.0.1 ports, in a temporary directory:
/// started by a test, ready once every member answers a read, stopped by PID.
final class EtcdCluster {
    struct Member {
        let name: String
        let clientPort: UInt16
        let peerPort: UInt16
        /// The user the member runs as; nil: ours.
        let user: uid_t?
        var process: ChildProcess?
        var endpoint: EtcdEndpoint { try! EtcdEndpoint("http://127.0.0.1:\(clientPort)") }
    }

    let directory: String
    private(set) var members: [Member] = []
    private var initialCluster = ""

    var endpoints: [EtcdEndpoint] { members.map(\.endpoint) }

    /// Where `setpriv` (util-linux) is: it runs a member as another user, then execs etcd.
    static let setpriv = "/usr/bin/setpriv"

    /// Starts `size` members forming one cluster and waits until each serves reads. The members
    /// in `users` run as the user given (as root only): the firewall tells their packets apart
    /// by owner (`EtcdPartition`), since every member's connections come from 127.0.0.1.
    init(size: Int = 1, users: [Int: uid_t] = [:]) throws {
        guard EtcdMemberCommand.isInstalled else { throw EtcdClusterError(EtcdMemberCommand.missing) }
        directory = NSTemporaryDirectory() + "ds-lb-etcd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = try Self.freePorts(2 * size)
        for index in 0..<size {
            members.append(
                Member(name: "m\(index)", clientPort: ports[2 * index], peerPort: ports[2 * index + 1], user: users[index]))
        }
        initialCluster = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        do {
            for index in members.indices { try spawn(index) }
            for index in members.indices { try waitUntilServing(index) }
        } catch {
            stopAll()
            throw error
        }
    }

    deinit { stopAll() }

    /// Polls a read on member `index` until it answers (it has joined and there is a leader).
    func waitUntilServing(_ index: Int, seconds: Double = 30) throws {
        let client = try BlockingEtcdClient(endpoints: [members[index].endpoint], timeout: .seconds(1))
        let deadline = Date().addingTimeInterval(seconds)
        var last: EtcdError?
        while Date() < deadline {
            if let status = members[index].process?.reap() {
                throw EtcdClusterError("etcd \(members[index].name) exited (status \(status)): \(log(index))")
            }
            do {
                _ = try client.range(Array("/ready".utf8))
                return
            } catch {
                last = error
                usleep(50_000)
            }
        }
        throw EtcdClusterError(
            "etcd \(members[index].name) not serving after \(seconds) s (\(String(describing: last))): \(log(index))")
    }

    /// Starts member `index` again after `stop`, on its ports and data: it rejoins with what it
    /// had, leases included. Waits until it serves.
    func restart(_ index: Int) throws {
        precondition(members[index].process == nil, "etcd \(members[index].name) is running")
        try spawn(index)
        try waitUntilServing(index)
    }

    private func spawn(_ index: Int) throws {
        let member = members[index]
        let client = "http://127.0.0.1:\(member.clientPort)"
        let peer = "http://127.0.0.1:\(member.peerPort)"
        let arguments = EtcdMemberCommand.arguments(
            name: member.name, directory: directory, clientURL: client, peerURL: peer,
            initialCluster: initialCluster, token: "ds-lb-test-\(getpid())")
        guard let user = member.user else {
            members[index].process = try ChildProcess.spawn(
                path: EtcdMemberCommand.executable, arguments: arguments, environment: ["PATH": "/usr/bin:/bin"])
            return
        }
        guard access(Self.setpriv, X_OK) == 0 else {
            throw EtcdClusterError("\(Self.setpriv) is missing (util-linux): it runs a member as another user")
        }
        // The member writes its data directory and log as that user.
        for path in ["\(directory)/\(member.name).etcd", "\(directory)/\(member.name).log"] {
            if !FileManager.default.fileExists(atPath: path) {
                let made =
                    path.hasSuffix(".log")
                    ? FileManager.default.createFile(atPath: path, contents: nil)
                    : (try? FileManager.default.createDirectory(
                        atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])) != nil
                guard made else { throw EtcdClusterError("cannot create \(path)") }
            }
            guard chown(path, user, user) == 0 else { throw EtcdClusterError("chown \(path): errno \(errno)") }
        }
        // setpriv execs, so the PID is etcd's; a change of user clears the parent-death signal,
        // which `--pdeathsig` sets again.
        members[index].process = try ChildProcess.spawn(
            path: Self.setpriv,
            arguments: [
                "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--pdeathsig", "KILL", EtcdMemberCommand.executable,
            ]
                + arguments,
            environment: ["PATH": "/usr/bin:/bin"])
    }

    /// Kills member `index` (SIGKILL: as a crash) and reaps it.
    func stop(_ index: Int) {
        guard let process = members[index].process else { return }
        process.signal(SIGKILL)
        var status: Int32 = 0
        _ = waitpid(process.pid, &status, 0)
        members[index].process = nil
    }

    func stopAll() {
        for index in members.indices { stop(index) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func log(_ index: Int) -> String {
        EtcdMemberCommand.log(of: members[index].name, in: directory)
    }

    /// Ports the kernel hands out for 127.0.0.1, all held open together so they differ.
    static func freePorts(_ count: Int) throws -> [UInt16] {
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var ports: [UInt16] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw EtcdClusterError("socket: errno \(errno)") }
            fds.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
                }
            }
            guard bound else { throw EtcdClusterError("bind: errno \(errno)") }
            ports.append(UInt16(bigEndian: address.sin_port))
        }
        return ports
    }
}

struct EtcdClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A value handed to the loop thread and back: the tests touch it on one thread at a time
/// (the loop's, or the test's while the loop waits for nothing of it).
final class LoopBound<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// An object of the loop's, held by a test that must never drop it (the loop does, in `stop`).
final class LoopRef<T: AnyObject>: @unchecked Sendable {
    unowned let value: T
    init(_ value: T) { self.value = value }
}

/// An `EventLoop` on a thread of its own for a test; `stop()` drops what it keeps, on the loop
/// (loop objects are released where they live), and ends it.
final class TestLoop: @unchecked Sendable {
    let loop: EventLoop
    private var kept: [AnyObject] = []

    init() throws {
        loop = try EventLoop()
        let loop = self.loop
        LoopThread.start(name: "etcd-test-loop") { loop.run() }
    }

    /// Runs `body` on the loop and waits for it.
    func sync<T>(_ body: @escaping () -> T) -> T {
        let box = LoopBound<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let work = LoopBound(body)
        loop.execute {
            box.value = work.value()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    /// Makes an object on the loop and keeps it there until `stop`.
    func keep<T: AnyObject>(_ make: @escaping () throws -> T) throws -> LoopRef<T> {
        let made = try sync { Result { try make() } }.get()
        sync { self.kept.append(made) }
        return LoopRef(made)
    }

    func stop() {
        sync { self.kept.removeAll() }
        loop.stop()
    }
}

/// A test case with one etcd member and one loop, both new for each test and stopped after it.
class EtcdLoopTestCase: XCTestCase {
    var cluster: EtcdCluster!
    var loop: TestLoop!

    override func setUpWithError() throws {
        cluster = try EtcdCluster()
        loop = try TestLoop()
    }

    override func tearDown() {
        loop?.stop()
        cluster?.stopAll()
    }
}
