import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// The sd_notify protocol (sd_notify(3)), through libsystemd. Every call is a no-op when
/// `NOTIFY_SOCKET` is unset (not run by systemd, or `Type=simple`). Any thread.
package struct SystemdNotifier: Sendable {
    package init() {}

    /// True when systemd listens for our notifications.
    package var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Startup (or a reload) finished; `status` becomes the `STATUS=` line.
    package func ready(status: String? = nil) {
        send("READY=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    package func status(_ text: String) { send("STATUS=" + Self.oneLine(text)) }

    /// Shutdown started: systemd shows the unit as deactivating while we drain.
    package func stopping(status: String? = nil) {
        send("STOPPING=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// Reload started. systemd ≥ 253 (`Type=notify-reload`) wants the monotonic time with it.
    package func reloading(status: String? = nil) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    package func watchdog() { send("WATCHDOG=1") }

    /// Hands a duplicate of `fd` to systemd's FD store under `name` (sd_notify(3)). After a
    /// restart job it comes back through `LISTEN_FDS`/`LISTEN_FDNAMES` like a socket-activated
    /// one, so a socket ds-lb opened itself keeps its backlog across `systemctl restart`. Needs
    /// `FileDescriptorStoreMax=` > 0; otherwise systemd drops it. True when the message went out.
    @discardableResult
    package func storeFD(_ fd: Int32, name: String) -> Bool {
        guard isEnabled else { return false }
        let fds = [fd]
        return sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=\(name)", fds, 1) > 0
    }

    /// `WatchdogSec=` when the watchdog is on for this process, else nil.
    package func watchdogTimeout() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(usec)
    }

    /// Sends one datagram. The environment is kept: later messages need `NOTIFY_SOCKET` too.
    package func send(_ state: String) {
        guard isEnabled else { return }
        _ = sd_notify(0, state)
    }

    /// `STATUS=` is one line; a newline would start another `KEY=VALUE` assignment.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
