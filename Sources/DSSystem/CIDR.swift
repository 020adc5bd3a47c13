/// An address block such as `127.0.0.0/8` or `::1/128`, for allow-lists.
package struct CIDR: Sendable, Hashable, CustomStringConvertible {
    package let network: [UInt8]
    package let prefixLength: Int
    package let isV4: Bool

    package init(parsing text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let hostText = parts[0]
        if let ip = SocketAddress.parseIPv4(hostText) {
            isV4 = true
            network = [UInt8(ip >> 24), UInt8((ip >> 16) & 0xff), UInt8((ip >> 8) & 0xff), UInt8(ip & 0xff)]
        } else if let ip = SocketAddress.parseIPv6(hostText) {
            isV4 = false
            network = ip
        } else {
            throw SocketAddress.ParseError(value: text, reason: "not an IPv4 or IPv6 address block")
        }
        let maxBits = network.count * 8
        if parts.count == 2 {
            guard let bits = Int(parts[1]), bits >= 0, bits <= maxBits else {
                throw SocketAddress.ParseError(value: text, reason: "prefix length must be 0...\(maxBits)")
            }
            prefixLength = bits
        } else {
            prefixLength = maxBits
        }
    }

    package func contains(_ address: SocketAddress) -> Bool {
        let bytes: [UInt8]
        switch address {
        case .v4(let ip, _):
            guard isV4 else { return false }
            bytes = [UInt8(ip >> 24), UInt8((ip >> 16) & 0xff), UInt8((ip >> 8) & 0xff), UInt8(ip & 0xff)]
        case .v6(let ip, _):
            guard !isV4 else { return false }
            bytes = ip
        }
        var remaining = prefixLength
        for i in 0..<bytes.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if bytes[i] & mask != network[i] & mask { return false }
            remaining -= take
        }
        return true
    }

    package var description: String {
        let host =
            isV4
            ? network.map(String.init).joined(separator: ".")
            : SocketAddress.v6(ip: network, port: 0).host
        return "\(host)/\(prefixLength)"
    }
}
