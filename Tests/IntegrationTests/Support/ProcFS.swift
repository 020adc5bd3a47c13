// Reading /proc: a process's children, its command line, environment and state. Used to find
// the replicas ds-lb spawned and to check that none outlives it.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum ProcFS {
    /// Fields of /proc/<pid>/stat that the tests use (proc(5)).
    struct Stat: Equatable {
        var state: Character
        var ppid: pid_t
        /// The process group.
        var pgrp: pid_t
        /// Clock ticks after boot; with the PID it identifies one process across PID reuse.
        var startTime: UInt64
    }

    /// A process identity that survives PID reuse: PID plus start time.
    struct Identity: Equatable, CustomStringConvertible {
        var pid: pid_t
        var startTime: UInt64
        var description: String { "pid \(pid) (start \(startTime))" }
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return Array(data)
    }

    static func stat(_ pid: pid_t) -> Stat? {
        guard let bytes = read("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // The command name (field 2) is in parentheses and may contain spaces: split after
        // the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] = state (field 3), [1] = ppid (4), [2] = pgrp (5), [19] = starttime (22).
        guard fields.count > 19, let state = fields[0].first, let ppid = pid_t(fields[1]),
            let pgrp = pid_t(fields[2]), let start = UInt64(fields[19])
        else { return nil }
        return Stat(state: state, ppid: ppid, pgrp: pgrp, startTime: start)
    }

    static func identity(_ pid: pid_t) -> Identity? {
        stat(pid).map { Identity(pid: pid, startTime: $0.startTime) }
    }

    /// The argument vector from /proc/<pid>/cmdline (empty for zombies), or nil if gone.
    static func cmdline(_ pid: pid_t) -> [String]? {
        guard let bytes = read("/proc/\(pid)/cmdline") else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// The argument that follows `flag` in the process's command line (`--id 2` → "2").
    static func argument(after flag: String, of pid: pid_t) -> String? {
        guard let argv = cmdline(pid), let i = argv.firstIndex(of: flag), i + 1 < argv.count else { return nil }
        return argv[i + 1]
    }

    /// The environment from /proc/<pid>/environ (readable for our own user/root).
    static func environment(_ pid: pid_t) -> [String: String]? {
        guard let bytes = read("/proc/\(pid)/environ") else { return nil }
        var env: [String: String] = [:]
        for entry in bytes.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if let eq = text.firstIndex(of: "=") {
                env[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
        }
        return env
    }

    /// The resolved path of the process's executable.
    static func executablePath(_ pid: pid_t) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    /// Direct children of `pid`: from /proc/<pid>/task/*/children when the kernel has it
    /// (CONFIG_PROC_CHILDREN), else by scanning every /proc/<n>/stat for ppid == pid.
    static func children(of pid: pid_t) -> [pid_t] {
        let taskDir = "/proc/\(pid)/task"
        if let tasks = try? FileManager.default.contentsOfDirectory(atPath: taskDir) {
            var found: [pid_t] = []
            var haveChildrenFiles = false
            for task in tasks {
                guard let bytes = read("\(taskDir)/\(task)/children") else { continue }
                haveChildrenFiles = true
                found += String(decoding: bytes, as: UTF8.self).split(separator: " ")
                    .compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            if haveChildrenFiles { return found.sorted() }
        }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { pid_t($0) }.filter { stat($0)?.ppid == pid }.sorted()
    }

    /// All descendants of `pid` (children, grandchildren, ...).
    static func descendants(of pid: pid_t) -> [pid_t] {
        var result: [pid_t] = []
        var queue = children(of: pid)
        while let next = queue.first {
            queue.removeFirst()
            result.append(next)
            queue += children(of: next)
        }
        return result
    }

    /// True when the process is gone: no /proc entry, a different process now holds the
    /// PID, or it is a zombie whose parent is not us (it has exited; reaping it is someone
    /// else's job).
    static func isGone(_ identity: Identity) -> Bool {
        guard let s = stat(identity.pid) else { return true }
        if s.startTime != identity.startTime { return true }
        return (s.state == "Z" || s.state == "X") && s.ppid != getpid()
    }

    /// Waits up to `timeout` seconds for all `identities` to be gone; returns those still alive.
    static func waitUntilGone(_ identities: [Identity], timeout: TimeInterval) -> [Identity] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let alive = identities.filter { !isGone($0) }
            if alive.isEmpty || Date() >= deadline { return alive }
            usleep(20_000)
        }
    }

    /// SIGKILLs the process if it is still the same one (start time matches) and alive.
    static func kill(_ identity: Identity) {
        guard !isGone(identity) else { return }
        _ = Glibc.kill(identity.pid, SIGKILL)
    }

    /// TCP ports on which `pid` holds a listening IPv4/IPv6 socket: the LISTEN rows of
    /// /proc/net/tcp{,6} whose socket inode is among the process's open fds.
    static func listeningPorts(of pid: pid_t) -> Set<UInt16> {
        Set(tcpSockets(of: pid).filter { $0.state == "0A" }.map(\.localPort))
    }

    /// The IPv4/IPv6 TCP sockets `pid` holds: ports and the kernel's state in hex as
    /// /proc/net/tcp shows it ("0A" LISTEN, "08" CLOSE_WAIT, ...).
    static func tcpSockets(of pid: pid_t) -> [(localPort: UInt16, remotePort: UInt16, state: String)] {
        var inodes = Set<String>()
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
            for fd in fds {
                if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    link.hasPrefix("socket:[")
                {
                    inodes.insert(String(link.dropFirst("socket:[".count).dropLast()))
                }
            }
        }
        var sockets: [(localPort: UInt16, remotePort: UInt16, state: String)] = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let bytes = read(table) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard cols.count > 9, inodes.contains(String(cols[9])),
                    let localHex = cols[1].split(separator: ":").last, let localPort = UInt16(localHex, radix: 16),
                    let remoteHex = cols[2].split(separator: ":").last, let remotePort = UInt16(remoteHex, radix: 16)
                else { continue }
                sockets.append((localPort, remotePort, String(cols[3])))
            }
        }
        return sockets
    }

    static func describe(_ pid: pid_t) -> String {
        let cmd = cmdline(pid)?.joined(separator: " ") ?? "?"
        let st = stat(pid).map { "state \($0.state), ppid \($0.ppid)" } ?? "gone"
        return "pid \(pid) [\(st)] \(cmd)"
    }
}
