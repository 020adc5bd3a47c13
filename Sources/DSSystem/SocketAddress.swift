#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address, parsed from and printed as `host:port` / `[v6]:port`.
package enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(ip: UInt32, port: UInt16) // ip in host byte order
    case v6(ip: [UInt8], port: UInt16) // 16 bytes

    package struct ParseError: Error, CustomStringConvertible, Sendable {
        package let value: String
        package let reason: String
        package var description: String { "invalid address '\(value)': \(reason)" }
    }

    /// Parses `host:port`, `[v6]:port`, or `:port`/`port` (meaning 0.0.0.0). `localhost` is 127.0.0.1;
    /// other names are not resolved: a load balancer's listen and backend addresses are numeric.
    package static func parse(_ text: String) throws -> SocketAddress {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ParseError(value: text, reason: "missing ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ParseError(value: text, reason: "missing ':port'") }
            portText = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = ""
            portText = Substring(text)
        }
        guard let port = UInt16(portText) else {
            throw ParseError(value: text, reason: "port must be a number from 0 to 65535")
        }
        if host.isEmpty || host == "*" { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        if let ip = parseIPv4(host) { return .v4(ip: ip, port: port) }
        if let ip = parseIPv6(host) { return .v6(ip: ip, port: port) }
        throw ParseError(value: text, reason: "'\(host)' is not a numeric IPv4 or IPv6 address")
    }

    package static func parseIPv4(_ text: Substring) -> UInt32? {
        var addr = in_addr()
        guard String(text).withCString({ inet_pton(AF_INET, $0, &addr) }) == 1 else { return nil }
        return UInt32(bigEndian: addr.s_addr)
    }

    package static func parseIPv6(_ text: Substring) -> [UInt8]? {
        var addr = in6_addr()
        guard String(text).withCString({ inet_pton(AF_INET6, $0, &addr) }) == 1 else { return nil }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    package var port: UInt16 {
        switch self {
        case .v4(_, let port), .v6(_, let port): return port
        }
    }

    package var family: Int32 {
        switch self {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        }
    }

    /// The address without the port, as text.
    package var host: String {
        switch self {
        case .v4(let ip, _):
            return "\(ip >> 24).\((ip >> 16) & 0xff).\((ip >> 8) & 0xff).\(ip & 0xff)"
        case .v6(let ip, _):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: ip) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    package var description: String {
        switch self {
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        }
    }

    package func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .v4(let ip, _): return .v4(ip: ip, port: port)
        case .v6(let ip, _): return .v6(ip: ip, port: port)
        }
    }

    /// Calls `body` with a sockaddr pointer and its length.
    package func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch self {
        case .v4(let ip, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = ip.bigEndian
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let ip, let port):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: ip) }
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// Decodes a sockaddr filled in by the kernel (accept, getsockname).
    package init?(storage: UnsafePointer<sockaddr_storage>) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(storage).load(as: sockaddr_in.self)
            self = .v4(ip: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            var sin6 = UnsafeRawPointer(storage).load(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
            // An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is reported as the IPv4 address it is.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                let ip = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
                self = .v4(ip: ip, port: UInt16(bigEndian: sin6.sin6_port))
            } else {
                self = .v6(ip: bytes, port: UInt16(bigEndian: sin6.sin6_port))
            }
        default:
            return nil
        }
    }

    package var isLoopback: Bool {
        switch self {
        case .v4(let ip, _): return ip >> 24 == 127
        case .v6(let ip, _): return ip == [UInt8](repeating: 0, count: 15) + [1]
        }
    }
}
