import DSHTTP1
import DSProxy
import DSSystem
import Logging

/// A change to the pool an admin request asks for, its body already understood. The control
/// loop runs these one at a time, in arrival order.
enum AdminCommand: Sendable {
    /// `POST /add`.
    case add(ScaleCommand)
    /// `DELETE /rm?id=K`.
    case removeNumber(Int)
    /// `DELETE /rm` with a body (or none).
    case remove(ScaleCommand)
    /// `PATCH /weight` (or `POST /weight`).
    case reweight(ScaleCommand)
}

/// The control loop's answer to an `AdminCommand`.
enum AdminAnswer: Sendable {
    /// Done: the pool is now these replicas (the `/rep` body).
    case pool([String])
    /// Refused or failed: nothing changed.
    case failure(HTTPStatus, String)
}

/// The admin API's HTTP side (docs/ARCHITECTURE.md §5): it turns a request into a read of the
/// published view (`/rep`, `/status`, `/metrics`, answered on the calling worker's thread) or
/// into an `AdminCommand` for the control loop, and the answer into a JSON body with its
/// status. Every request is logged here, whoever answered it.
package final class AdminRouter: AdminHandler {
    package static let paths: Set<Substring> = [
        "/rep", "/add", "/rm", "/status", "/metrics", "/dashboard", "/events", "/keyspace", "/weight",
    ]

    private let view: PublishedView
    private let metrics: ProxyMetrics
    private let logger: Logger
    private let perform: @Sendable (AdminCommand, @escaping @Sendable (AdminAnswer) -> Void) -> Void
    /// `/dashboard`, `/events` and `/keyspace` (nil: those paths answer 404).
    let dashboard: Dashboard?

    init(
        view: PublishedView, metrics: ProxyMetrics, logger: Logger, dashboard: Dashboard? = nil,
        perform: @escaping @Sendable (AdminCommand, @escaping @Sendable (AdminAnswer) -> Void) -> Void
    ) {
        self.view = view
        self.metrics = metrics
        self.logger = logger
        self.dashboard = dashboard
        self.perform = perform
    }

    /// Asked for every proxied request whose path is no longer than the longest admin path: the
    /// UTF-8 bytes are compared with each admin path of the same length, which costs far less
    /// than hashing the path (SipHash) for a Set and comparing strings.
    /// The answers are the same: nothing but these bytes is canonically equivalent to an admin
    /// path (no character decomposes to a lowercase ASCII letter or "/").
    package func isAdminPath(_ path: Substring) -> Bool {
        isAdminPath(utf8: path.utf8)
    }

    /// The same comparison straight on the request's bytes.
    package func isAdminPath(bytes path: UnsafeRawBufferPointer) -> Bool {
        isAdminPath(utf8: path)
    }

    @inline(__always)
    private func isAdminPath<Bytes: Collection<UInt8>>(utf8 path: Bytes) -> Bool {
        let count = path.count
        guard hasAdminPath(ofLength: count) else { return false }
        for admin in pathBytes where admin.count == count {
            if admin.elementsEqual(path) { return true }
        }
        return false
    }

    /// Most short proxied paths have a length no admin path has: one bit test answers for them.
    @inline(__always)
    private func hasAdminPath(ofLength count: Int) -> Bool {
        count < 64 && adminPathLengths & (1 << UInt64(count)) != 0
    }

    // Instance constants rather than statics: a static is reached through a `swift_once` check,
    // and these are asked for every proxied request with a short path.
    private let pathBytes = AdminRouter.paths.map { Array($0.utf8) }
    /// Bit n is set when an admin path is n bytes long (every one is shorter than 64).
    private let adminPathLengths = AdminRouter.paths.reduce(UInt64(0)) { $0 | 1 << UInt64($1.utf8.count) }
    package let longestAdminPath = AdminRouter.paths.map(\.utf8.count).max() ?? 0

    /// Any thread. Reads are answered at once from the published view; commands go to the
    /// control loop and are answered when it is done with them.
    package func submit(_ request: AdminRequest, reply: @escaping @Sendable (AdminResponse) -> Void) {
        let answer: @Sendable (AdminResponse) -> Void = { [self] response in
            logAdmin(
                method: request.method, path: request.path, client: request.client, status: response.status,
                reason: response.status.isError ? response.body : nil)
            reply(response)
        }
        switch route(request) {
        case .answered(let response):
            answer(response)
        case .command(let command):
            perform(command) { answer(Self.response(to: $0)) }
        }
    }

    /// Any thread. Workers report the admin requests they refused themselves.
    package func refused(method: String, path: String, client: String, status: HTTPStatus, reason: String) {
        logAdmin(method: method, path: path, client: client, status: status, reason: reason)
    }

    enum Route {
        case answered(AdminResponse)
        case command(AdminCommand)
    }

    func route(_ request: AdminRequest) -> Route {
        if let answered = dashboardRoute(request) { return .answered(answered) }
        switch (request.path, request.method) {
        case ("/rep", "GET"), ("/rep", "HEAD"):
            return .answered(Self.response(to: .pool(view.latest().poolNames)))
        case ("/status", "GET"), ("/status", "HEAD"):
            return .answered(AdminResponse(status: .ok, body: Self.statusBody(view.latest())))
        case ("/metrics", "GET"), ("/metrics", "HEAD"):
            return .answered(
                AdminResponse(status: .ok, body: metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        case ("/add", "POST"):
            do { return .command(.add(try ScaleCommand.parse(request.body))) } catch {
                return .answered(.failure(.badRequest, error.message))
            }
        case ("/rm", "DELETE"):
            let id: String?
            do { id = try request.queryParameter("id") } catch {
                return .answered(.failure(.badRequest, error.message))
            }
            if let id {
                guard let number = Int(id), number > 0 else {
                    return .answered(.failure(.badRequest, "<Error> 'id' must be a positive integer, got '\(id)'"))
                }
                // Two ways of naming what to remove, and they may disagree: refuse rather than
                // pick one silently.
                guard ScaleCommand.isBlank(request.body) else {
                    return .answered(
                        .failure(.badRequest, "<Error> Name the replica either as ?id= or in the body, not both"))
                }
                return .command(.removeNumber(number))
            }
            do { return .command(.remove(try ScaleCommand.parse(request.body))) } catch {
                return .answered(.failure(.badRequest, error.message))
            }
        case ("/weight", "PATCH"), ("/weight", "POST"):
            do { return .command(.reweight(try ScaleCommand.parse(request.body))) } catch {
                return .answered(.failure(.badRequest, error.message))
            }
        case ("/weight", _): return Self.notAllowed(request, use: ["PATCH", "POST"])
        case ("/rep", _), ("/status", _), ("/metrics", _): return Self.notAllowed(request, use: ["GET"])
        case ("/add", _): return Self.notAllowed(request, use: ["POST"])
        case ("/rm", _): return Self.notAllowed(request, use: ["DELETE"])
        default:
            return .answered(.failure(.notFound, "<Error> '\(request.path)' is not an admin endpoint"))
        }
    }

    /// 405 for `request`, naming the methods its path takes in the message and in `Allow`.
    private static func notAllowed(_ request: AdminRequest, use methods: [String]) -> Route {
        .answered(methodNotAllowed(request, use: methods))
    }

    /// The 405 answer itself, for the routes that answer without a `Route`.
    static func methodNotAllowed(_ request: AdminRequest, use methods: [String]) -> AdminResponse {
        .failure(
            .methodNotAllowed,
            "<Error> Method \(request.method) not allowed on \(request.path); use \(methods.joined(separator: " or "))",
            extraHeaders: "Allow: \(methods.joined(separator: ", "))\r\n")
    }

    static func response(to answer: AdminAnswer) -> AdminResponse {
        switch answer {
        case .pool(let names):
            let message = JSONValue.object([
                ("N", .int(names.count)),
                ("replicas", .array(names.map { .string($0) })),
            ])
            return AdminResponse(
                status: .ok, body: JSONValue.object([("message", message), ("status", .string("successful"))]).serialized)
        case .failure(let status, let message):
            return .failure(status, message)
        }
    }

    static func statusBody(_ view: SupervisorView) -> String {
        let replicas: [JSONValue] = view.replicas.map { replica in
            var fields: [(String, JSONValue)] = [
                ("name", .string(replica.name)),
                ("id", .int(replica.id)),
                ("address", .string(replica.address)),
                ("state", .string(replica.state)),
                ("weight", .int(replica.weight)),
            ]
            fields += replica.details
            fields += [
                ("last_check", replica.lastCheck.map { .string($0) } ?? .null),
                ("last_check_code", replica.lastCheckCode.map { .string($0) } ?? .null),
                ("last_check_ms", .double(Double(replica.lastCheckNanoseconds / 1000) / 1000)),
                ("checks", .int(replica.checks)),
                ("consecutive_failures", .int(replica.consecutiveFailures)),
                ("restarts", .int(replica.restarts)),
                ("failed_restarts", .int(replica.failedRestarts)),
                ("requests", .int(replica.counters.served)),
                ("in_flight", .int(replica.counters.inFlight)),
                ("failed_requests", .int(replica.counters.failures)),
                ("marked_down", .bool(replica.markedDown)),
            ]
            if let node = replica.node { fields.append(("node", .string(node))) }
            return .object(fields)
        }
        var message: [(String, JSONValue)] = [
            ("generation", .int(Int(view.generation))),
            ("algorithm", .string(view.algorithm)),
            ("driver", .string(view.driver)),
            ("uptime_s", .double(Double((monotonicNanoseconds() - view.startedAt) / 1_000_000) / 1000)),
            ("heartbeat_interval", .string(DurationText.format(view.heartbeatInterval))),
            ("N", .int(replicas.count)),
            ("replicas", .array(replicas)),
        ]
        if let cluster = view.cluster { message.append(("cluster", clusterBody(cluster))) }
        return JSONValue.object([("message", .object(message)), ("status", .string("successful"))]).serialized
    }

    private static func clusterBody(_ cluster: SupervisorView.ClusterStatus) -> JSONValue {
        .object([
            ("node", .string(cluster.node)),
            ("store", .string(cluster.storeUp ? "up" : "down")),
            ("store_problem", cluster.storeProblem.map { .string($0) } ?? .null),
            ("revision", .int(Int(cluster.revision))),
            (
                "nodes",
                .array(
                    cluster.nodes.map { node in
                        .object([
                            ("name", .string(node.name)),
                            ("address", .string(node.address)),
                            ("lease", .int(Int(node.lease))),
                            ("state", .string(node.state)),
                            ("replicas", .array(node.replicas.map { .string($0) })),
                        ])
                    })
            ),
        ])
    }

    /// One line per admin request with the client's address. Reads (GET/HEAD, e.g. a
    /// metrics scraper) log at debug so they do not drown the heartbeat log; everything that
    /// changes the pool, and every refusal, at info or above.
    private func logAdmin(method: String, path: String, client: String, status: HTTPStatus, reason: String?) {
        let level: Logger.Level = status.isError ? .warning : (method == "GET" || method == "HEAD") ? .debug : .info
        var line = "[admin] \(method) \(path) from \(client): \(status)"
        if let reason { line += " \(reason)" }
        logger.log(level: level, "\(line)", metadata: ["event": "admin", "client": "\(client)", "status": "\(status)"])
    }
}
