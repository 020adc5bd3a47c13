// The one thread that starts every child process of the tests. A child started by cl_spawn gets
// SIGKILL from the kernel when the *thread* that forked it exits (PR_SET_PDEATHSIG follows the
// forking thread, not the process), and XCTest may run a test on any thread, some of which end
// before the test process does. This thread never ends, so the signal comes exactly when the
// test process dies: by SIGKILL, a crash or a normal exit.

import CLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

final class SpawnThread: @unchecked Sendable {
    static let shared = SpawnThread()

    /// One spawn request and, once the spawner thread ran it, its result.
    private final class Job: @unchecked Sendable {
        let path: String
        let argv: [String]
        let envp: [String]
        let descriptors: [Int32]
        let newGroup: Bool
        var result: (pid: pid_t, errno: Int32)?

        init(path: String, argv: [String], envp: [String], descriptors: [Int32], newGroup: Bool) {
            self.path = path
            self.argv = argv
            self.envp = envp
            self.descriptors = descriptors
            self.newGroup = newGroup
        }
    }

    private let condition = NSCondition()
    private var queue: [Job] = []

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "itest-spawner"
        thread.start()
    }

    /// Starts `path` with `argv` (argv[0] included) and `envp` ("KEY=value"); the child's
    /// descriptors 0, 1, 2, … are `descriptors`, nothing else. Returns the pid once the child
    /// has exec'd, or the errno that stopped it. With `newGroup` the child leads its own
    /// process group. Any thread; blocks until the spawner ran it.
    func spawn(
        path: String, argv: [String], envp: [String], descriptors: [Int32],
        newGroup: Bool = false
    ) -> (pid: pid_t, errno: Int32) {
        let job = Job(path: path, argv: argv, envp: envp, descriptors: descriptors, newGroup: newGroup)
        condition.lock()
        defer { condition.unlock() }
        queue.append(job)
        condition.broadcast()
        while job.result == nil { condition.wait() }
        return job.result!
    }

    /// The spawner thread's loop: runs jobs in order, forever.
    private func serve() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let job = queue.removeFirst()
            condition.unlock()
            let result = Self.run(job)
            condition.lock()
            job.result = result
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Spawner thread only.
    private static func run(_ job: Job) -> (pid: pid_t, errno: Int32) {
        let argv = job.argv.map { strdup($0) }
        let envp = job.envp.map { strdup($0) }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let pid = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envBuffer in
                job.descriptors.withUnsafeBufferPointer { fds in
                    // As from a shell: only the given descriptors, default signal actions; and
                    // an exec failure is the spawn's error rather than a child exiting 127.
                    var options = cl_spawn_options(
                        fds: fds.baseAddress, fd_count: Int32(fds.count), death_signal: SIGKILL,
                        new_group: job.newGroup ? 1 : 0, default_signals: 1, ignore_sigttou: 0,
                        report_exec_failure: 1)
                    return cl_spawn(job.path, argvBuffer.baseAddress, envBuffer.baseAddress, &options)
                }
            }
        }
        return pid < 0 ? (pid, errno) : (pid, 0)
    }
}
