import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// Whether this kernel can take over TLS records (kTLS): `setsockopt(TCP_ULP, "tls")` on an
/// established loopback connection. ENOENT: no `tls` module (CONFIG_TLS off). Probed once per
/// process; with it, bodies can keep going through splice(2), without it every byte goes
/// through SSL_read/SSL_write.
package enum KernelTLS {
    package struct Probe: Sendable, Equatable {
        package let available: Bool
        /// What the probe found, for the log line.
        package let detail: String
    }

    package static let probe: Probe = run()

    private static func run() -> Probe {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { return Probe(available: false, detail: "socket: \(String(cString: strerror(errno)))") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { return Probe(available: false, detail: "loopback listener: \(String(cString: strerror(errno)))") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { return Probe(available: false, detail: "socket: \(String(cString: strerror(errno)))") }
        defer { close(client) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        guard connected else { return Probe(available: false, detail: "loopback connect: \(String(cString: strerror(errno)))") }
        let tcpULP: Int32 = 31 // linux/tcp.h TCP_ULP
        let result = "tls".withCString { setsockopt(client, Int32(IPPROTO_TCP), tcpULP, $0, 3) }
        if result == 0 { return Probe(available: true, detail: "TCP_ULP tls accepted") }
        return Probe(available: false, detail: "TCP_ULP tls: \(String(cString: strerror(errno)))")
    }
}
