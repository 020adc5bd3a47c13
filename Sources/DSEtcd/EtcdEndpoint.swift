import DSHTTPClient
import DSSystem
import Foundation

/// One member's client URL, `http://IP:port` (`localhost` is 127.0.0.1). Names other than
/// localhost are not resolved, like every address ds-lb parses; TLS is not spoken.
package struct EtcdEndpoint: Sendable, Equatable, CustomStringConvertible {
    package let address: SocketAddress
    /// The `Host` field of requests: the URL's authority as written.
    package let host: String

    package init(_ url: String) throws(EtcdError) {
        guard url.hasPrefix("http://") else {
            throw .invalidEndpoint("'\(url)': an etcd endpoint is http://IP:port (https is not supported)")
        }
        var authority = url.dropFirst("http://".count)
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/") else {
            throw .invalidEndpoint("'\(url)': an etcd endpoint is http://IP:port, without a path")
        }
        do { address = try SocketAddress.parse(String(authority)) } catch {
            throw .invalidEndpoint("'\(url)': \(error)")
        }
        guard address.port != 0, authority.contains(":") else {
            throw .invalidEndpoint("'\(url)': the port is missing (etcd's client port is usually 2379)")
        }
        host = String(authority)
    }

    /// A comma-separated list, as `--etcd` takes it.
    package static func list(_ text: String) throws(EtcdError) -> [EtcdEndpoint] {
        var endpoints: [EtcdEndpoint] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            endpoints.append(try EtcdEndpoint(part.trimmingCharacters(in: .whitespaces)))
        }
        return endpoints
    }

    package var description: String { "http://\(host)" }
}

/// Why an etcd call did not give an answer.
package enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No member answered within the call's deadline (each was tried in turn): the cluster is
    /// down, partitioned away, or too slow. A write may or may not have happened.
    case unreachable(String)
    /// A member answered with an error (gRPC `code` and its message), e.g. a request etcd refused.
    case failed(code: Int, message: String)
    /// The answer was not what etcd's JSON gateway sends.
    case malformedResponse(String)
    /// A watch was cancelled by etcd because the revision it asked for was compacted away.
    case compacted(revision: Int64)
    case invalidEndpoint(String)

    package var description: String {
        switch self {
        case .unreachable(let text): "etcd unreachable: \(text)"
        case .failed(let code, let message): "etcd refused the request (code \(code)): \(message)"
        case .malformedResponse(let text): "unexpected answer from etcd: \(text)"
        case .compacted(let revision): "etcd compacted the history up to revision \(revision)"
        case .invalidEndpoint(let text): "invalid etcd endpoint \(text)"
        }
    }
}
