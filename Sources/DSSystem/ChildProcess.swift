import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `cl_spawn`: it is killed by the kernel if we die (PR_SET_PDEATHSIG),
/// so no replica outlives ds-lb, even on SIGKILL.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked exits, so spawn only from a thread that
/// lives as long as the process (the control thread).
package struct ChildProcess: Sendable {
    package let pid: pid_t

    package static func spawn(path: String, arguments: [String], environment: [String: String]) throws -> ChildProcess {
        let argv = ([path] + arguments).map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let pid = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envBuffer in
                // Descriptors as inherited (ds-lb's own are close-on-exec), signal dispositions
                // by execve's rule, and a child that cannot exec exits 127 like any failed
                // replica, so the supervisor handles it.
                var options = cl_spawn_options(
                    fds: nil, fd_count: 0, death_signal: SIGKILL, new_group: 1,
                    default_signals: 0, ignore_sigttou: 1, report_exec_failure: 0)
                return cl_spawn(path, argvBuffer.baseAddress, envBuffer.baseAddress, &options)
            }
        }
        if pid < 0 { throw SyscallError(errno: errno, function: "fork(\(path))") }
        return ChildProcess(pid: pid)
    }

    package init(pid: pid_t) { self.pid = pid }

    package func signal(_ sig: Int32) {
        _ = kill(pid, sig)
    }

    /// Reaps the child if it has exited; returns its wait status, or nil while it runs.
    package func reap() -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid { return status }
        if rc < 0 && errno == ECHILD { return 0 }
        return nil
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILLs and reaps.
    package func terminate(grace: Duration = .seconds(2)) {
        signal(SIGTERM)
        let deadline = cl_monotonic_ns() &+ nanoseconds(of: grace)
        while cl_monotonic_ns() < deadline {
            if reap() != nil { return }
            usleep(5_000)
        }
        signal(SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}

/// The current monotonic time in nanoseconds.
@inlinable @inline(__always)
package func monotonicNanoseconds() -> UInt64 { cl_monotonic_ns() }

/// `duration` in whole nanoseconds, for deadline arithmetic on `monotonicNanoseconds()`:
/// negative is 0, longer than UInt64 holds saturates. Converted once where a duration enters a
/// module's timers (at set-up, not per request): it divides a 128-bit count of attoseconds.
package func nanoseconds(of duration: Duration) -> UInt64 {
    guard duration > .zero else { return 0 }
    let (seconds, attoseconds) = duration.components
    let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return .max }
    let (total, carry) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
    return carry ? .max : total
}
