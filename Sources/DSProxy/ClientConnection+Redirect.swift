import DSHTTP1
import DSSystem

extension ClientConnection {
    /// `--redirect-http`: answers a request that came in the clear with 308 to the same URL
    /// over https (308 keeps the method and body, unlike 301). The host is the request's own
    /// (absolute-form authority, else `Host`, both checked by the parser), its port replaced by
    /// the TLS listener's; a request without one gets the address it reached.
    func redirectToHTTPS(_ head: RequestHeadInfo, bodyLength: UInt64, port: UInt16) {
        let bytes = input.readable
        let hostRange = head.authority ?? head.firstField(named: "host", in: bytes)?.valueRange
        var host = hostRange.map { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0]), as: UTF8.self) } ?? ""
        if host.isEmpty {
            let local = (try? Socket.localAddress(fd))?.host ?? "localhost"
            host = local.contains(":") ? "[\(local)]" : local
        } else {
            host = Self.withoutPort(host)
        }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[head.originTarget]), as: UTF8.self)
        let location = "https://\(host)\(port == 443 ? "" : ":\(port)")\(target.isEmpty ? "/" : target)"
        let keepAlive = head.wantsKeepAlive
        input.consume(head.length)
        // A body not read would be taken for the next request: the connection ends after it.
        respond(
            status: .permanentRedirect, message: "Use \(location)", close: bodyLength > 0 || !keepAlive,
            extraHeaders: "Location: \(location)\r\n")
    }

    /// `host[:port]` or `[v6][:port]` without the port.
    static func withoutPort(_ host: String) -> String {
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return host }
            return String(host[...end])
        }
        guard let colon = host.lastIndex(of: ":") else { return host }
        return String(host[..<colon])
    }
}
