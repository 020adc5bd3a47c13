import DSReactor

/// The one HTTP/1.1 client of the project's control side (heartbeats, the Docker engine, etcd's
/// JSON gateway), on our reactor: non-blocking, every request bounded by a deadline, over TCP or
/// a unix socket, with kept-alive connections reused and a streamed mode that hands on a body
/// as it arrives (`/events`, watches). The data plane's upstream exchanges stay specialised.
///
/// Loop thread only (asserted in debug builds), callbacks included; each request calls back exactly once, never from inside
/// `send`/`stream`, unless cancelled. A client holds at most `maxIdleConnections` idle
/// connections for reuse; dropping the client closes them (requests in flight still finish).
package final class HTTPClient {
    package let loop: EventLoop
    package let address: HTTPClientAddress
    package let options: HTTPClientOptions
    private var idle: [HTTPClientConnection] = []
    private var nextID: UInt64 = 1

    package init(loop: EventLoop, address: HTTPClientAddress, options: HTTPClientOptions = HTTPClientOptions()) {
        self.loop = loop
        self.address = address
        self.options = options
    }

    deinit {
        let connections = idle
        idle = []
        for connection in connections { connection.close() }
    }

    /// Idle connections held for reuse (for tests).
    package var idleConnectionCount: Int { idle.count }

    /// Sends `request` and delivers the whole response, body de-chunked, or the error. `timeout`
    /// bounds the whole exchange (from connected, when `options.connectTimeout` is set).
    @discardableResult
    package func send(
        _ request: HTTPClientRequest, timeout: Duration,
        completion: @escaping (Result<HTTPClientResponse, HTTPClientError>) -> Void
    ) -> HTTPClientExchange {
        start(request, timeout: timeout, mode: .whole(completion))
    }

    /// Sends `request` and hands on the response as it comes: `onHead` once, `onBody` for each
    /// piece of body (de-chunked) as it arrives, then `onEnd` once — success when the body ended
    /// by its framing (or the server closed an until-close body), else the error (`onEnd` alone
    /// when no head came). `timeout` bounds the head only: a stream then lasts until its end or
    /// `cancel()`.
    @discardableResult
    package func stream(
        _ request: HTTPClientRequest, timeout: Duration, onHead: @escaping (HTTPClientResponseHead) -> Void,
        onBody: @escaping ([UInt8]) -> Void,
        onEnd: @escaping (Result<Void, HTTPClientError>) -> Void
    ) -> HTTPClientExchange {
        start(request, timeout: timeout, mode: .stream(onHead: onHead, onBody: onBody, onEnd: onEnd))
    }

    private func start(_ request: HTTPClientRequest, timeout: Duration, mode: HTTPClientConnection.Mode) -> HTTPClientExchange {
        assert(loop.isInLoop)
        let id = nextID
        nextID += 1
        var connection: HTTPClientConnection?
        while let candidate = idle.popLast() {
            if candidate.isReusable {
                connection = candidate
                break
            }
            candidate.close()
        }
        let chosen = connection ?? HTTPClientConnection(loop: loop, address: address, options: options)
        chosen.pool = self
        chosen.start(id: id, request: request, timeout: timeout.clientNanoseconds, mode: mode)
        return HTTPClientExchange(connection: chosen, id: id)
    }

    /// A connection whose exchange ended with both sides keeping it: false when the pool is full.
    func takeBack(_ connection: HTTPClientConnection) -> Bool {
        guard idle.count < options.maxIdleConnections else { return false }
        idle.append(connection)
        return true
    }

    func forget(_ connection: HTTPClientConnection) {
        idle.removeAll { $0 === connection }
    }
}

/// A request in progress. `cancel()` ends it without a callback and closes its connection.
/// Loop thread only.
package struct HTTPClientExchange {
    private weak var connection: HTTPClientConnection?
    private let id: UInt64

    init(connection: HTTPClientConnection, id: UInt64) {
        self.connection = connection
        self.id = id
    }

    package func cancel() {
        connection?.cancel(id: id)
    }
}
