import DSSystem

/// What one `ds-bench load` run does, already validated: the target, how many requests (or for
/// how long), how many connections and threads, closed loop or a fixed rate, and the ids.
/// A plain value shared read-only by every load thread.
struct LoadPlan: Sendable {
    var target: TargetURL
    /// Stop after this many requests (nil: run for `duration`).
    var requests: Int?
    /// Stop issuing after this many nanoseconds (nil: run for `requests`).
    var durationNanoseconds: UInt64?
    var concurrency: Int
    var threads: Int
    /// Requests per second over all threads (open loop), or nil for closed loop.
    var rate: Double?
    var ids: IDSpec
    var seed: UInt64
    /// A request with no complete answer after this is an error of kind `timeout`.
    var timeoutNanoseconds: UInt64
    /// Width of the timeline buckets, or nil for no timeline (A-3 asks for one).
    var timelineBucketNanoseconds: UInt64?

    /// Requests (or the share of the rate) of thread `index`: spread as evenly as integers allow.
    func share(of total: Int, thread index: Int) -> Int {
        total / threads + (index < total % threads ? 1 : 0)
    }
}

/// An `http://HOST:PORT/path?query` URL split into what the request template needs.
struct TargetURL: Sendable, CustomStringConvertible {
    var address: SocketAddress
    /// The Host header value as the user wrote it.
    var authority: String
    /// Path and query as given (`/home?id=1`).
    var pathAndQuery: String

    var description: String { "http://\(authority)\(pathAndQuery)" }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Plain http only, and an IP literal or `localhost` as the host: a load generator resolving
    /// names would measure the resolver too.
    static func parse(_ text: String) throws -> TargetURL {
        guard text.hasPrefix("http://") else {
            throw Invalid(description: "--url must start with http:// (got '\(text)')")
        }
        let rest = text.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var pathAndQuery = String(rest[slash...])
        if pathAndQuery.isEmpty { pathAndQuery = "/" }
        if pathAndQuery.hasPrefix("?") { pathAndQuery = "/" + pathAndQuery }
        guard !authority.isEmpty else { throw Invalid(description: "--url has no host: '\(text)'") }
        var hostPort = authority
        if !hostPort.hasSuffix("]") && !hostPort.contains(":") || hostPort.hasSuffix("]") { hostPort += ":80" }
        if hostPort.hasPrefix("localhost:") { hostPort = "127.0.0.1" + hostPort.dropFirst(9) }
        do {
            return TargetURL(address: try SocketAddress.parse(hostPort), authority: authority, pathAndQuery: pathAndQuery)
        } catch {
            throw Invalid(description: "--url '\(text)': \(error) (use an IP address or localhost)")
        }
    }

    /// The request line's target with `id=` set to a placeholder: the bytes before and after it.
    /// An existing `id=` parameter is replaced; otherwise one is appended.
    func template(forID: Bool) -> (prefix: String, suffix: String) {
        let tail = " HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: ds-bench\r\n\r\n"
        guard forID else { return ("GET \(pathAndQuery)", tail) }
        let parts = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        var params = parts.count > 1 ? parts[1].split(separator: "&").map(String.init) : []
        params.removeAll { $0 == "id" || $0.hasPrefix("id=") }
        let before = params.isEmpty ? "" : params.joined(separator: "&") + "&"
        return ("GET \(path)?\(before)id=", tail)
    }
}
