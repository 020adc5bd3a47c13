import CLinux
import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// Replicas as local `ds-server` children on 127.0.0.1 (in cluster mode, on the node's
/// advertise address, so other hosts reach them), each on its own port. Children get
/// PR_SET_PDEATHSIG, so they die with ds-lb even on SIGKILL. Control thread only — and that
/// thread must live as long as the process, since the death signal follows the forking thread.
///
/// Each child's pidfd is registered on the control loop, so its exit is reaped and reported
/// in the loop iteration after it happened, not at the next poll.
package final class ProcessDriver: ReplicaDriver {
    package let name = "process"
    package let canCreate = true
    private let serverBinary: String
    private let host: String
    private let stopGrace: Duration

    /// One child and its exit watch. `live` ones are reported when they exit; the others were
    /// asked to stop and are only reaped, so no zombie is left.
    private final class Child: EventHandler {
        let backend: Backend
        let process: ChildProcess
        /// Its pidfd, registered on (and owned by) the control loop; -1 where there is none (a
        /// kernel before 5.3 has no pidfd_open): the child is then reaped by a timer.
        var pidfd: Int32 = -1
        var live = true
        var killTimer: TimerID?
        weak var driver: ProcessDriver?

        init(backend: Backend, process: ChildProcess, driver: ProcessDriver) {
            self.backend = backend
            self.process = process
            self.driver = driver
        }

        func handle(_ events: IOEvents) {
            // The pidfd is readable once the child exited, so it can be reaped now; should it
            // not be (the edge is spent either way), the timer keeps looking.
            guard let driver, !driver.reap(self) else { return }
            driver.watchByTimer(self)
        }
    }

    private var children: [String: Child] = [:]
    /// Children asked to stop, kept until reaped.
    private var stopping: [Child] = []
    private var loop: EventLoop?
    private var report: (DriverEvent) -> Void = { _ in }

    package init(serverBinary: String, host: String = "127.0.0.1", stopGrace: Duration = .seconds(5)) {
        self.serverBinary = serverBinary
        self.host = host
        self.stopGrace = stopGrace
    }

    package func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {
        self.loop = loop
        self.report = report
    }

    package func initialBackends() -> [Backend] { [] }

    package func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        if children[replica.name] != nil { throw DriverError("replica \(replica.name) is already running") }
        guard let loop else { throw DriverError("the process driver is not attached to a control loop") }
        let port = try previous.map(\.port) ?? freePort(on: host, avoiding: Set(children.values.map(\.backend.port)))
        let process = try ChildProcess.spawn(
            path: serverBinary,
            arguments: ["--id", String(replica.number), "--host", host, "--port", String(port)],
            environment: childEnvironment(id: replica.number, port: port))
        let backend = Backend(name: replica.name, number: replica.number, host: host, port: port)
        let child = Child(backend: backend, process: process, driver: self)
        children[replica.name] = child
        // Opened right after the fork: the child is unreaped until this driver waits for it, so
        // the pid cannot name another process yet.
        let pidfd = cl_pidfd_open(process.pid)
        if pidfd >= 0, let registered = try? loop.register(FileDescriptor(adopting: pidfd), handler: child) {
            child.pidfd = registered
        } else {
            watchByTimer(child)
        }
        // Reported from the loop, not from inside `launch`: the supervisor is not re-entered.
        loop.schedule(after: .zero) { [weak self] in self?.report(.started(backend)) }
        return backend
    }

    /// Without a pidfd (an old kernel), a child is looked at every 100 ms instead.
    private func watchByTimer(_ child: Child) {
        loop?.schedule(after: .milliseconds(100)) { [weak self, weak child] in
            guard let self, let child, self.isWatched(child) else { return }
            if !self.reap(child) { self.watchByTimer(child) }
        }
    }

    private func isWatched(_ child: Child) -> Bool {
        children[child.backend.name] === child || stopping.contains { $0 === child }
    }

    /// Reaps `child` if it exited (and reports it if it was live); returns whether it did.
    @discardableResult
    private func reap(_ child: Child) -> Bool {
        guard let status = child.process.reap() else { return false }
        forget(child)
        if child.live {
            report(.exited(child.backend, reason: Self.describe(status)))
        }
        return true
    }

    /// Drops `child` from every list and closes its watch (it was reaped or is being waited for).
    private func forget(_ child: Child) {
        if children[child.backend.name] === child { children[child.backend.name] = nil }
        stopping.removeAll { $0 === child }
        if let timer = child.killTimer { loop?.cancel(timer); child.killTimer = nil }
        guard child.pidfd >= 0 else { return }
        loop?.close(child.pidfd, of: child)
        child.pidfd = -1
    }

    package func stop(_ backend: Backend) {
        retire(backend)()
    }

    package func retire(_ backend: Backend) -> () -> Void {
        guard let child = children.removeValue(forKey: backend.name) else { return {} }
        // Reaped when it exits from now on, but not reported as an unexpected exit.
        child.live = false
        stopping.append(child)
        return { [weak self, weak child] in
            guard let self, let child, self.stopping.contains(where: { $0 === child }) else { return }
            child.process.signal(SIGTERM)
            child.killTimer = self.loop?.schedule(after: self.stopGrace) { [weak child] in
                child?.killTimer = nil
                child?.process.signal(SIGKILL)
            }
        }
    }

    package func kill(_ backend: Backend) {
        guard let child = children[backend.name] else { return }
        child.live = false
        forget(child)
        child.process.signal(SIGKILL)
        var status: Int32 = 0
        _ = waitpid(child.process.pid, &status, 0)
    }

    package func details(of backend: Backend) -> [(String, JSONValue)] {
        guard let child = children[backend.name] else { return [("pid", .null)] }
        return [("pid", .int(Int(child.process.pid)))]
    }

    package func stopAll() {
        let all = Array(children.values) + stopping
        for child in all {
            child.live = false
            forget(child)
        }
        for child in all { child.process.signal(SIGTERM) }
        for child in all { child.process.terminate(grace: .seconds(2)) }
    }

    // MARK: helpers

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
