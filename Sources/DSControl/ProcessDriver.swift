#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSHTTP1
import DSSystem

/// Replicas as local `ds-server` children on 127.0.0.1, each on its own port. Children get
/// PR_SET_PDEATHSIG, so they die with ds-lb even on SIGKILL. Control thread only — and that
/// thread must live as long as the process, since the death signal follows the forking thread.
package final class ProcessDriver: ReplicaDriver {
    package let name = "process"
    package let canCreate = true
    private let serverBinary: String
    private let host = "127.0.0.1"
    private let stopGraceNanoseconds: UInt64

    private struct Child {
        let backend: Backend
        let process: ChildProcess
        /// Set once asked to stop: SIGKILL follows at this time.
        var killAt: UInt64?
    }

    private var children: [String: Child] = [:]
    /// Children asked to stop, kept until reaped so no zombie is left.
    private var stopping: [Child] = []

    package init(serverBinary: String, stopGrace: Duration = .seconds(5)) {
        self.serverBinary = serverBinary
        self.stopGraceNanoseconds = nanoseconds(of: stopGrace)
    }

    package func initialBackends() -> [Backend] { [] }

    package func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        if children[replica.name] != nil { throw DriverError("replica \(replica.name) is already running") }
        let port = try previous.map(\.port) ?? freePort()
        let process = try ChildProcess.spawn(
            path: serverBinary,
            arguments: ["--id", String(replica.number), "--host", host, "--port", String(port)],
            environment: childEnvironment(id: replica.number, port: port))
        let backend = Backend(name: replica.name, number: replica.number, host: host, port: port)
        children[replica.name] = Child(backend: backend, process: process)
        return backend
    }

    package func stop(_ backend: Backend) {
        retire(backend)()
    }

    package func retire(_ backend: Backend) -> () -> Void {
        guard let child = children.removeValue(forKey: backend.name) else { return {} }
        // Reaped by poll() from now on, but not reported as an unexpected exit.
        stopping.append(child)
        let pid = child.process.pid
        return { [weak self] in
            guard let self else { return }
            guard let i = self.stopping.firstIndex(where: { $0.process.pid == pid }) else { return }
            self.stopping[i].process.signal(SIGTERM)
            self.stopping[i].killAt = monotonicNanoseconds() + self.stopGraceNanoseconds
        }
    }

    package func kill(_ backend: Backend) {
        guard let child = children.removeValue(forKey: backend.name) else { return }
        child.process.signal(SIGKILL)
        var status: Int32 = 0
        _ = waitpid(child.process.pid, &status, 0)
    }

    package func poll() -> [(Backend, String)] {
        let now = monotonicNanoseconds()
        stopping.removeAll { child in
            if child.process.reap() != nil { return true }
            if let killAt = child.killAt, now > killAt { child.process.signal(SIGKILL) }
            return false
        }
        var exited: [(Backend, String)] = []
        for (name, child) in children {
            guard let status = child.process.reap() else { continue }
            children[name] = nil
            exited.append((child.backend, Self.describe(status)))
        }
        return exited
    }

    package func details(of backend: Backend) -> [(String, JSONValue)] {
        guard let child = children[backend.name] else { return [("pid", .null)] }
        return [("pid", .int(Int(child.process.pid)))]
    }

    package func stopAll() {
        let all = Array(children.values) + stopping
        children.removeAll()
        stopping.removeAll()
        for child in all { child.process.signal(SIGTERM) }
        for child in all { child.process.terminate(grace: .seconds(2)) }
    }

    // MARK: helpers

    /// Asks the kernel for a free port by binding port 0. Another process could take the port
    /// before the child binds it; the child then exits and the supervisor reports it.
    private func freePort() throws -> UInt16 {
        let fd = FileDescriptor(adopting: try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 1))
        return try Socket.localAddress(fd.rawValue).port
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

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit status \((status >> 8) & 0xff)" }
        return "killed by signal \(signal)"
    }
}
