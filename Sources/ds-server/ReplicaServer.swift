import DSHTTP1
import DSReactor
import DSSystem

/// The replica the load balancer fronts: `/home` and `/heartbeat`, the endpoints of the classic
/// assignment, on the same reactor ds-lb uses.
final class ReplicaServer {
    let id: String
    let loop: EventLoop
    let parser = HeadParser()
    private var listener: Listener?
    private var connections: [ObjectIdentifier: ReplicaConnection] = [:]

    init(id: String, listenFD: Int32, loop: EventLoop) throws {
        self.id = id
        self.loop = loop
        listener = try Listener(fd: listenFD, loop: loop) { [unowned self] fd, _ in
            let connection = ReplicaConnection(fd: fd.rawValue, server: self)
            // The loop owns the descriptor from here (it closes it if this fails).
            guard (try? self.loop.register(fd, handler: connection)) != nil else { return }
            self.connections[ObjectIdentifier(connection)] = connection
        }
    }

    func respond(to head: RequestHead, close: Bool, path routedPath: Substring? = nil) -> [UInt8] {
        let path = routedPath ?? head.path
        let headOnly = head.isHead
        switch path {
        case "/home" where head.method == "GET" || headOnly:
            let body = JSON.object(["message": .string("Hello from Server: \(id)"), "status": .string("successful")])
            return ResponseWriter.response(status: .ok, body: body, close: close, headOnly: headOnly)
        case "/heartbeat" where head.method == "GET" || headOnly:
            return ResponseWriter.response(status: .ok, contentType: nil, body: "", close: close)
        default:
            let body = JSON.object([
                "message": .string("<Error> '\(path)' endpoint does not exist in server replicas"),
                "status": .string("failure"),
            ])
            return ResponseWriter.response(status: .badRequest, body: body, close: close, headOnly: headOnly)
        }
    }

    func forget(_ connection: ReplicaConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Stops accepting and closes every connection; the loop can then end.
    func shutdown() {
        listener?.stop()
        listener = nil
        for connection in Array(connections.values) { connection.close() }
    }
}
