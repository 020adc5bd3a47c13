import ArgumentParser
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// ds-server: one replica behind ds-lb.
struct DSServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-server",
        abstract: "A ds-lb replica: GET /home and GET /heartbeat.")

    @Option(help: "The server's ID, shown by /home (default: $SERVER_ID, else a random number).")
    var id: String?

    @Option(help: "Port to listen on (default: $PORT, else 5000; 0 picks a free one).")
    var port: Int?

    @Option(help: "Address to listen on.")
    var host: String = "0.0.0.0"

    func validate() throws {
        if let port, !(0...65535).contains(port) {
            throw ValidationError("--port must be 0...65535, got \(port)")
        }
    }

    func run() throws {
        let environment = ProcessEnvironment()
        let serverID = id ?? environment["SERVER_ID"] ?? String(Int.random(in: 100_000...999_999))
        var chosenPort = port ?? 5000
        if port == nil, let text = environment["PORT"] {
            guard let value = Int(text), (0...65535).contains(value) else {
                throw ValidationError("PORT must be 0...65535, got '\(text)'")
            }
            chosenPort = value
        }
        let address: SocketAddress
        do {
            address = try SocketAddress.parse(
                host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(chosenPort)" : "\(host):\(chosenPort)")
        } catch {
            throw ValidationError("--host: \(error)")
        }

        let loop = try EventLoop()
        let listenFD = FileDescriptor(adopting: try Socket.listen(on: address))
        let bound = try Socket.localAddress(listenFD.rawValue)
        let server = try ReplicaServer(id: serverID, listenFD: listenFD.rawValue, loop: loop)
        _ = try SignalWatcher(signals: [SIGTERM, SIGINT], loop: loop) { _ in
            server.shutdown()
            loop.stop()
        }
        signal(SIGPIPE, SIG_IGN)
        log("Server \(serverID) Listening on \(bound)")
        loop.run()
        listenFD.close()
        log("Server \(serverID) stopped")
    }

    private func log(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// Environment lookup without Foundation.
struct ProcessEnvironment {
    subscript(name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}

DSServer.main()
