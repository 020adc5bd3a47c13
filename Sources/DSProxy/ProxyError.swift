import DSHTTP1

/// Why ds-lb answers a request with an error of its own instead of a replica's response. The
/// status, the metric label, the text the client reads (which is also the log line's) and
/// whether the request may go to another replica are all derived from the case, so a call site
/// names what went wrong and nothing else.
package enum ProxyError: Error, Sendable, Equatable {
    /// The request head (or the chunked framing of its body) is malformed: the parser's status
    /// and text.
    case badRequest(HTTPParseError)
    /// The head did not arrive within the head timeout (seconds).
    case headTimeout(seconds: UInt64)
    /// The request body stopped arriving for the body timeout (seconds).
    case bodyStalled(seconds: UInt64)
    /// `Expect:` with anything but `100-continue`.
    case unsupportedExpectation
    /// A Content-Length over `--max-body`.
    case bodyTooLarge(length: UInt64, limit: UInt64)
    /// No replica to send the request to.
    case noReplica(poolEmpty: Bool)
    /// ds-lb is out of descriptors or memory and cannot open a connection to any replica.
    case localResources(reason: String)
    /// The replica refused or dropped the connection before anything was sent on it.
    case connectFailed(replica: String, reason: String)
    /// The replica did not accept the connection within the connect timeout.
    case connectTimeout(replica: String)
    /// The connection dropped after the request (or part of it) was sent, before the response.
    case connectionLost(replica: String, reason: String)
    /// The replica accepted the request and gave no response head within the response timeout.
    case responseTimeout(replica: String)
    /// The replica answered with something that is not a valid HTTP/1.1 response.
    case invalidResponse(replica: String, InvalidResponse)

    /// What was wrong with a replica's response.
    package enum InvalidResponse: Sendable, Equatable {
        /// The connection ended inside the response head.
        case incompleteHead
        /// The head does not parse, or its framing is invalid (the parser's text).
        case invalidHead(String)
        /// The chunked framing of its body is broken (the scanner's text).
        case invalidChunkedFraming(String)
        /// A 101 to a request that asked for no upgrade.
        case unrequestedUpgrade
    }

    /// Whose fault the error is, for the reader of a log line or a dashboard.
    package enum Fault: String, Sendable, CaseIterable {
        case client
        case replica
        /// ds-lb itself: its pool has no usable replica, or it is out of resources.
        case balancer = "ds-lb"
    }

    /// Whether the request may be sent again to another replica (`--retries`), before the
    /// exchange's own conditions (budget, head still at hand, nothing relayed yet).
    package enum Retry: Sendable, Equatable {
        /// Another replica would answer the same, or no other replica exists.
        case never
        /// Nothing reached the replica: any request may go elsewhere.
        case always
        /// The replica may have acted on the request: only an idempotent method is sent again
        /// (RFC 9110 §9.2.2).
        case ifIdempotent

        package func allows(idempotent: Bool) -> Bool {
            switch self {
            case .never: return false
            case .always: return true
            case .ifIdempotent: return idempotent
            }
        }
    }

    package var fault: Fault {
        switch self {
        case .badRequest, .headTimeout, .bodyStalled, .unsupportedExpectation, .bodyTooLarge:
            return .client
        case .noReplica, .localResources:
            return .balancer
        case .connectFailed, .connectTimeout, .connectionLost, .responseTimeout, .invalidResponse:
            return .replica
        }
    }

    package var retry: Retry {
        switch self {
        case .badRequest, .headTimeout, .bodyStalled, .unsupportedExpectation, .bodyTooLarge, .noReplica,
            .localResources:
            // ds-lb being short of descriptors or memory is not a replica's doing: none would do better.
            return .never
        case .connectFailed, .connectTimeout:
            return .always
        case .invalidResponse(_, .unrequestedUpgrade):
            // Replicas of a pool run the same code: the next one would switch protocols too.
            return .never
        case .connectionLost, .invalidResponse:
            return .ifIdempotent
        case .responseTimeout:
            // The replica may still be working on it; a second one would double the load that
            // made the first slow.
            return .never
        }
    }

    /// The status of our response.
    package var status: HTTPStatus {
        switch self {
        case .badRequest(let error): return error.status
        case .headTimeout, .bodyStalled: return .requestTimeout
        case .unsupportedExpectation: return .expectationFailed
        case .bodyTooLarge: return .contentTooLarge
        // 503, as HAProxy answers when it cannot open a connection for want of resources.
        case .noReplica, .localResources: return .serviceUnavailable
        case .connectFailed, .connectTimeout, .connectionLost, .invalidResponse: return .badGateway
        case .responseTimeout: return .gatewayTimeout
        }
    }

    /// The `dslb_errors_total{kind=…}` label it is counted under.
    package var kind: ProxyMetrics.ErrorKind {
        switch self {
        case .badRequest, .headTimeout, .bodyStalled, .unsupportedExpectation, .bodyTooLarge: return .badRequest
        case .noReplica: return .noReplica
        case .localResources: return .localResources
        case .connectFailed, .connectTimeout, .connectionLost: return .connect
        case .responseTimeout: return .timeout
        case .invalidResponse: return .invalidResponse
        }
    }

    /// The `message` of the JSON error body (clients and tests match on these texts).
    package var message: String {
        switch self {
        case .badRequest(let error): return error.message
        case .headTimeout(let seconds): return "Request header not received within \(seconds) s"
        case .bodyStalled(let seconds): return "Request body stalled for \(seconds) s"
        case .unsupportedExpectation: return "Only the expectation 100-continue is supported"
        case .bodyTooLarge(let length, let limit):
            return "Request body of \(length) bytes is larger than the limit of \(limit) bytes"
        case .noReplica(let poolEmpty):
            return poolEmpty ? "No replica available: the pool is empty" : "No healthy replica available"
        case .localResources(let reason): return "ds-lb cannot open a connection to a replica now: \(reason)"
        case .connectFailed(let replica, let reason), .connectionLost(let replica, let reason):
            return "Server \(replica) is unreachable: \(reason)"
        case .connectTimeout(let replica): return "Server \(replica) did not accept the connection in time"
        case .responseTimeout(let replica): return "Server \(replica) did not answer in time"
        case .invalidResponse(let replica, .incompleteHead): return "Server \(replica) sent an incomplete response head"
        case .invalidResponse(let replica, .invalidHead(let detail)):
            return "Server \(replica) sent an invalid response: \(detail)"
        case .invalidResponse(let replica, .invalidChunkedFraming(let detail)):
            return "Server \(replica) sent invalid chunked framing: \(detail)"
        case .invalidResponse(let replica, .unrequestedUpgrade):
            return "Server \(replica) switched protocols without being asked to"
        }
    }
}

extension ProxyError: CustomStringConvertible {
    /// The log line: `502 connect (replica): Server server-1 is unreachable: …`.
    package var description: String { "\(status) \(kind.rawValue) (\(fault.rawValue)): \(message)" }
}
