import DSSystem

/// The fields a proxy adds to every request it forwards, and the end of the head, for one client
/// connection: X-Forwarded-For with the client's address (and X-Forwarded-Proto unless a trusted
/// proxy sent its own), then `Connection` as the request needs it, then the blank line.
///
/// One form is kept, the one the last request needed: requests on a connection nearly always
/// need the same one, and an idle connection should not carry six. Another form is written over
/// the tail in place, so once the array's capacity has room for a form, switching to it again
/// allocates nothing. The address in it doubles as the `client-ip` routing key (`clientKey`),
/// so the connection keeps its address as text once.
struct ForwardedFieldForm {
    /// Which fields follow X-Forwarded-For.
    struct Kind: Equatable {
        fileprivate let rawValue: UInt8

        /// An upgrade says `Connection: Upgrade`, an HTTP/1.0 request `Connection: keep-alive`
        /// (the connection to the replica is ours to reuse); `proto`: X-Forwarded-Proto is added.
        @inline(__always)
        init(upgrading: Bool, http10: Bool, proto: Bool) {
            rawValue = (upgrading ? 2 : http10 ? 1 : 0) + (proto ? 0 : 3)
        }

        /// No form built yet.
        fileprivate static let none = Kind(rawValue: .max)
        private init(rawValue: UInt8) { self.rawValue = rawValue }
    }

    private static let prefix = "X-Forwarded-For: "

    /// The form of `kind`, once built.
    private(set) var bytes: [UInt8] = []
    private(set) var kind = Kind.none
    /// Where the address ends in `bytes`, and the fields after it begin (after its CRLF).
    private var tailStart: UInt8 = 0
    /// The length of the client's address, the routing key (0 without a peer address).
    private var keyLength: UInt8 = 0

    var isBuilt: Bool { kind != .none }

    /// The client's address as text, the `client-ip` key: empty without a peer address.
    var clientKey: ArraySlice<UInt8> {
        let start = Self.prefix.utf8.count
        return bytes[start..<(start + Int(keyLength))]
    }

    /// Makes `bytes` the form of `kind` for a client at `peer`, over TLS or not.
    mutating func build(_ kind: Kind, peer: SocketAddress?, https: Bool) {
        let (proto, connection) = Self.tail(kind, https: https)
        if isBuilt {
            // In place, piece by piece: no string is put together, so no allocation while the
            // capacity holds the new form.
            bytes.removeSubrange(Int(tailStart)...)
            bytes.append(contentsOf: proto.utf8)
            bytes.append(contentsOf: connection.utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        } else {
            // An address is at most INET6_ADDRSTRLEN - 1 = 45 characters: the offsets fit a byte.
            let host = peer?.host ?? ""
            let address = "\(Self.prefix)\(peer == nil ? "unknown" : host)\r\n"
            bytes = Array("\(address)\(proto)\(connection)\r\n".utf8)
            tailStart = UInt8(address.utf8.count)
            keyLength = UInt8(host.utf8.count)
        }
        self.kind = kind
    }

    private static func tail(_ kind: Kind, https: Bool) -> (proto: String, connection: String) {
        let proto = kind.rawValue < 3 ? (https ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n") : ""
        switch kind.rawValue % 3 {
        case 2: return (proto, "Connection: Upgrade\r\n")
        case 1: return (proto, "Connection: keep-alive\r\n")
        default: return (proto, "")
        }
    }
}
