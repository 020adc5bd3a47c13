#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSSystem

/// Replicas as local `ds-server` children on 127.0.0.1, each on its own free port. Children get
/// PR_SET_PDEATHSIG, so they die with ds-lb even on SIGKILL. Control thread only — and that
/// thread must live as long as the process, since the death signal follows the forking thread.
public final class ProcessDriver: ReplicaDriver {
    public let name = "process"
    public let canCreate = true
    private let serverBinary: String
    private let host = "127.0.0.1"
    private let readyTimeoutNanoseconds: UInt64
    private var children: [String: (backend: Backend, process: ChildProcess)] = [:]

    public init(serverBinary: String, readyTimeoutNanoseconds: UInt64 = 10_000_000_000) {
        self.serverBinary = serverBinary
        self.readyTimeoutNanoseconds = readyTimeoutNanoseconds
    }

    public func initialBackends() -> [Backend] { [] }

    public func start(_ replicas: [ReplicaSpec]) throws -> [Backend] {
        var started: [(Backend, ChildProcess)] = []
        do {
            for replica in replicas {
                let port = try freePort()
                let process = try ChildProcess.spawn(
                    path: serverBinary,
                    arguments: ["--id", String(replica.number), "--host", host, "--port", String(port)],
                    environment: childEnvironment(id: replica.number, port: port))
                started.append((Backend(name: replica.name, number: replica.number, host: host, port: port), process))
            }
            try waitUntilReady(started)
        } catch {
            for (_, process) in started { process.terminate() }
            throw error
        }
        for (backend, process) in started { children[backend.name] = (backend, process) }
        return started.map(\.0)
    }

    public func stop(_ backend: Backend) {
        guard let child = children.removeValue(forKey: backend.name) else { return }
        child.process.terminate()
    }

    public func poll() -> [(Backend, String)] {
        var exited: [(Backend, String)] = []
        for (name, child) in children {
            guard let status = child.process.reap() else { continue }
            children[name] = nil
            exited.append((child.backend, Self.describe(status)))
        }
        return exited
    }

    /// The pid of a running replica (for logs and tests).
    public func pid(of name: String) -> pid_t? { children[name]?.process.pid }

    public func stopAll() {
        for (_, child) in children { child.process.signal(SIGTERM) }
        for (_, child) in children { child.process.terminate(graceNanoseconds: 2_000_000_000) }
        children.removeAll()
    }

    // MARK: helpers

    /// Asks the kernel for a free port by binding port 0. Another process could take the port
    /// before the child binds it; the child then fails to start and the command reports it.
    private func freePort() throws -> UInt16 {
        let fd = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 1)
        defer { Socket.close(fd) }
        return try Socket.localAddress(fd).port
    }

    private func childEnvironment(id: Int, port: UInt16) -> [String: String] {
        var environment: [String: String] = [:]
        for name in ["PATH", "HOME", "LANG", "TZ"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        environment["SERVER_ID"] = String(id)
        environment["PORT"] = String(port)
        return environment
    }

    /// Waits until every started child accepts a TCP connection, or one of them exits.
    private func waitUntilReady(_ started: [(Backend, ChildProcess)]) throws {
        var pending = started
        let deadline = monotonicNanoseconds() + readyTimeoutNanoseconds
        while !pending.isEmpty {
            pending = try pending.filter { backend, process in
                if let status = process.reap() {
                    throw DriverError("replica \(backend.name) exited during start-up (\(Self.describe(status)))")
                }
                return !accepts(backend)
            }
            if pending.isEmpty { break }
            if monotonicNanoseconds() > deadline {
                throw DriverError("replica \(pending[0].0.name) did not accept connections within \(readyTimeoutNanoseconds / 1_000_000_000) s")
            }
            usleep(10_000)
        }
    }

    private func accepts(_ backend: Backend) -> Bool {
        guard let address = try? SocketAddress.parse(backend.address),
              let (fd, connected) = try? Socket.connect(to: address) else { return false }
        defer { Socket.close(fd) }
        if connected { return true }
        var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard Glibc.poll(&poll, 1, 200) == 1 else { return false }
        return Socket.connectResult(fd) == 0
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)"
    }
}
