#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket playing systemd's part of the notify protocol; sets `NOTIFY_SOCKET`.
final class NotifySink {
    let fd: Int32
    let path: String

    init() {
        path = "/tmp/ds-lb-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        precondition(bound == 0)
        setenv("NOTIFY_SOCKET", path, 1)
    }

    deinit {
        unsetenv("NOTIFY_SOCKET")
        close(fd)
        unlink(path)
    }

    /// The next message, or "" after `timeoutMilliseconds`.
    func receive(timeoutMilliseconds: Int32 = 2000) -> String {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    /// Discards what has arrived so far.
    func drain() {
        while !receive(timeoutMilliseconds: 0).isEmpty {}
    }

    /// Waits until `count` messages equal to `message` have arrived, at most `milliseconds`;
    /// returns how many did (other messages are discarded).
    func wait(for count: Int, of message: String, milliseconds: Int = 10_000) -> Int {
        let end = Self.nowMilliseconds() + milliseconds
        var seen = 0
        while seen < count {
            let left = end - Self.nowMilliseconds()
            guard left > 0 else { break }
            if receive(timeoutMilliseconds: Int32(left)) == message { seen += 1 }
        }
        return seen
    }

    private static func nowMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }

    /// Every message that arrives within `milliseconds`.
    func collect(forMilliseconds milliseconds: Int) -> [String] {
        var messages: [String] = []
        let end = Self.nowMilliseconds() + milliseconds
        while true {
            let left = end - Self.nowMilliseconds()
            guard left > 0 else { return messages }
            let message = receive(timeoutMilliseconds: Int32(left))
            if !message.isEmpty { messages.append(message) }
        }
    }
}
