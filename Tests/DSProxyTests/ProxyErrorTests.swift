import DSHTTP1
import XCTest

@testable import DSProxy

/// Every `ProxyError` against the status, metric label, fault, retry verdict and client text it
/// must produce: the texts are the ones clients and the integration tests match on.
final class ProxyErrorTests: XCTestCase {
    private struct Row {
        let error: ProxyError
        let status: HTTPStatus
        let kind: ProxyMetrics.ErrorKind
        let fault: ProxyError.Fault
        let retry: ProxyError.Retry
        let message: String
        let line: UInt
    }

    private func row(
        _ error: ProxyError, _ status: HTTPStatus, _ kind: ProxyMetrics.ErrorKind, _ fault: ProxyError.Fault,
        _ retry: ProxyError.Retry, _ message: String, line: UInt = #line
    ) -> Row {
        Row(error: error, status: status, kind: kind, fault: fault, retry: retry, message: message, line: line)
    }

    private var table: [Row] {
        [
            row(
                .badRequest(HTTPParseError(.requestHeaderFieldsTooLarge, "Request head too large")),
                .requestHeaderFieldsTooLarge, .badRequest, .client, .never, "Request head too large"),
            row(
                .badRequest(HTTPParseError(.badRequest, "Invalid chunk size")), .badRequest, .badRequest, .client,
                .never, "Invalid chunk size"),
            row(
                .headTimeout(seconds: 10), .requestTimeout, .badRequest, .client, .never,
                "Request header not received within 10 s"),
            row(
                .bodyStalled(seconds: 30), .requestTimeout, .badRequest, .client, .never,
                "Request body stalled for 30 s"),
            row(
                .unsupportedExpectation, .expectationFailed, .badRequest, .client, .never,
                "Only the expectation 100-continue is supported"),
            row(
                .bodyTooLarge(length: 2048, limit: 1024), .contentTooLarge, .badRequest, .client, .never,
                "Request body of 2048 bytes is larger than the limit of 1024 bytes"),
            row(
                .noReplica(poolEmpty: true), .serviceUnavailable, .noReplica, .balancer, .never,
                "No replica available: the pool is empty"),
            row(
                .noReplica(poolEmpty: false), .serviceUnavailable, .noReplica, .balancer, .never,
                "No healthy replica available"),
            row(
                .localResources(reason: "socket: Too many open files"), .serviceUnavailable, .localResources,
                .balancer, .never, "ds-lb cannot open a connection to a replica now: socket: Too many open files"),
            row(
                .connectFailed(replica: "server-1", reason: "Connection refused"), .badGateway, .connect, .replica,
                .always, "Server server-1 is unreachable: Connection refused"),
            row(
                .connectTimeout(replica: "server-2"), .badGateway, .connect, .replica, .always,
                "Server server-2 did not accept the connection in time"),
            row(
                .connectionLost(replica: "server-3", reason: "connection closed before a response"), .badGateway,
                .connect, .replica, .ifIdempotent, "Server server-3 is unreachable: connection closed before a response"),
            row(
                .responseTimeout(replica: "server-1"), .gatewayTimeout, .timeout, .replica, .never,
                "Server server-1 did not answer in time"),
            row(
                .invalidResponse(replica: "server-1", .incompleteHead), .badGateway, .invalidResponse, .replica,
                .ifIdempotent, "Server server-1 sent an incomplete response head"),
            row(
                .invalidResponse(replica: "server-1", .invalidHead("Invalid status line")), .badGateway,
                .invalidResponse, .replica, .ifIdempotent, "Server server-1 sent an invalid response: Invalid status line"),
            row(
                .invalidResponse(replica: "server-1", .invalidChunkedFraming("Invalid chunk size")), .badGateway,
                .invalidResponse, .replica, .ifIdempotent, "Server server-1 sent invalid chunked framing: Invalid chunk size"),
            row(
                .invalidResponse(replica: "server-1", .unrequestedUpgrade), .badGateway, .invalidResponse, .replica,
                .never, "Server server-1 switched protocols without being asked to"),
        ]
    }

    func testEveryErrorMapsToItsStatusKindFaultRetryAndText() {
        for row in table {
            XCTAssertEqual(row.error.status, row.status, "status of \(row.error)", line: row.line)
            XCTAssertEqual(row.error.kind, row.kind, "kind of \(row.error)", line: row.line)
            XCTAssertEqual(row.error.fault, row.fault, "fault of \(row.error)", line: row.line)
            XCTAssertEqual(row.error.retry, row.retry, "retry of \(row.error)", line: row.line)
            XCTAssertEqual(row.error.message, row.message, "message of \(row.error)", line: row.line)
            XCTAssertEqual(
                row.error.description, "\(row.status.code) \(row.kind.rawValue) (\(row.fault.rawValue)): \(row.message)",
                line: row.line)
        }
    }

    /// Every metric label an error can be counted under is reached by some error (`retried` is
    /// counted by the failover itself, not by an error).
    func testTheTableCoversEveryErrorKind() {
        let reached = Set(table.map(\.error.kind))
        XCTAssertEqual(reached, Set(ProxyMetrics.ErrorKind.allCases).subtracting([.retried]))
        XCTAssertEqual(Set(table.map(\.error.fault)), Set(ProxyError.Fault.allCases))
    }

    func testTheRetryVerdictAgainstTheMethod() {
        XCTAssertFalse(ProxyError.Retry.never.allows(idempotent: true))
        XCTAssertFalse(ProxyError.Retry.never.allows(idempotent: false))
        XCTAssertTrue(ProxyError.Retry.always.allows(idempotent: false))
        XCTAssertTrue(ProxyError.Retry.ifIdempotent.allows(idempotent: true))
        XCTAssertFalse(ProxyError.Retry.ifIdempotent.allows(idempotent: false))
    }
}
