import DSBalancer
import DSHTTP1
import DSHTTPClient
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// One `GET /heartbeat` to one replica, non-blocking on the control loop, with one deadline for
/// connect + response (a hung replica costs the supervisor nothing but a timer). The answer's
/// head decides: the body is not waited for. Control loop only.
final class HeartbeatProbe {
    private var exchange: HTTPClientExchange?
    private var completion: ((CheckResult, UInt64) -> Void)?
    private let started = monotonicNanoseconds()
    private static let options = HTTPClientOptions(limits: HTTPLimits(maxHeadBytes: 16 * 1024, maxHeaderCount: 100))

    /// Starts the check; `completion` runs exactly once, on the loop, with the result and the
    /// latency in nanoseconds.
    init(backend: Backend, loop: EventLoop, timeoutNanoseconds: UInt64, completion: @escaping (CheckResult, UInt64) -> Void) {
        self.completion = completion
        let address: SocketAddress
        do { address = try SocketAddress.parse(backend.address) } catch {
            // Deliver on the next turn, never from inside init: the caller expects a later callback.
            loop.schedule(afterNanoseconds: 0) { [self] in finish(.l4Connection("\(error)")) }
            return
        }
        let request = HTTPClientRequest(
            method: "GET", target: "/heartbeat", host: backend.name,
            headers: [("User-Agent", "ds-lb-health")], keepAlive: false)
        // The probe lives as long as its exchange (the loop holds the connection, which holds
        // these callbacks), as it did when it owned the socket itself.
        exchange = HTTPClient(loop: loop, address: .tcp(address), options: Self.options)
            .stream(
                request, timeout: .nanoseconds(Int64(clamping: timeoutNanoseconds)),
                onHead: { [self] head in finish((200..<300).contains(head.status) ? .l7OK : .l7Status(head.status)) },
                onBody: { _ in },
                onEnd: { [self] result in
                    // A head ends the probe first: an end is only ever an error here.
                    if case .failure(let error) = result { finish(Self.result(of: error)) }
                })
    }

    static func result(of error: HTTPClientError) -> CheckResult {
        switch error {
        case .connectFailed(let cause):
            // Out of descriptors here (socket() failed): the replica is not at fault.
            let reason = String(cString: strerror(cause.errno))
            return cause.isLocalResourceExhaustion ? .skipped(reason) : .l4Connection(reason)
        case .connectTimedOut: return .l4Timeout
        case .timedOut: return .l7Timeout
        case .sendFailed: return .l4Connection("write failed")
        case .receiveFailed(let cause): return .l7Response(String(cString: strerror(cause.errno)))
        case .malformedHead(let cause), .badFraming(let cause), .malformedChunkedBody(let cause):
            return .l7Response(cause.message)
        case .closedBeforeHead: return .l7Response("connection closed before a response")
        case .invalidRequest, .bodyTooLarge, .bodyCutShort: return .l7Response("\(error)")
        }
    }

    private func finish(_ result: CheckResult) {
        guard let completion else { return }
        self.completion = nil
        exchange?.cancel()
        exchange = nil
        completion(result, monotonicNanoseconds() - started)
    }
}
