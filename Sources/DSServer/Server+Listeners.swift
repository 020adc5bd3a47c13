import DSReactor
import DSSystem
import DSSystemd
import Logging

extension Server {
    /// The listening sockets: those systemd passed (`passed`), by name (`FileDescriptorName=http` and the
    /// optional `admin` in ds-lb.socket; a lone unnamed one is `http`), else ones ds-lb opens on
    /// `listen` and, when given, `admin`. Before any thread starts. Raw numbers, not
    /// `FileDescriptor`s: each is shared by every worker's loop and lives as long as the process
    /// (a passed one is systemd's, one we open also sits in systemd's FD store).
    static func listeningSockets(
        passed: [SystemdListeners.Passed], listen: SocketAddress?, admin: SocketAddress?,
        logger: Logger
    ) throws -> (http: Int32?, admin: Int32?) {
        if !passed.isEmpty {
            guard let http = SystemdListeners.pick(passed, name: "http") else {
                // HTTPS only: systemd passed the https socket and no plain one.
                if passed.contains(where: { $0.name == "https" }) {
                    let adminFD = try passed.first { $0.name == "admin" }.map(checkedPassed)
                    return (nil, try adminFD ?? admin.map { try openOwn($0, name: "admin", logger: logger) })
                }
                throw ServerError.invalid(
                    "systemd passed sockets named \(passed.map(\.name).joined(separator: ", ")), none named 'http' (FileDescriptorName=http)"
                )
            }
            let httpFD = try checkedPassed(http)
            logger.info("[i] Using the listening socket passed by systemd: \(http.name) (fd \(httpFD), \(passed.count) passed)")
            if let adminSocket = passed.first(where: { $0.name == "admin" }) {
                let fd = try checkedPassed(adminSocket)
                logger.info("[i] Using the admin socket passed by systemd: admin (fd \(fd))")
                return (httpFD, fd)
            }
            return (httpFD, try admin.map { try openOwn($0, name: "admin", logger: logger) })
        }
        return (
            try listen.map { try openOwn($0, name: "http", logger: logger) },
            try admin.map { try openOwn($0, name: "admin", logger: logger) }
        )
    }

    static func checkedPassed(_ socket: SystemdListeners.Passed) throws -> Int32 {
        guard Socket.isListeningStream(socket.fd) else {
            throw ServerError.invalid(
                "the socket passed by systemd (fd \(socket.fd), \(socket.name)) is not a listening TCP socket")
        }
        try Socket.setNonBlocking(socket.fd)
        return socket.fd
    }

    static func openOwn(_ address: SocketAddress, name: String, logger: Logger) throws -> Int32 {
        let fd = try Socket.listen(on: address)
        // Under systemd without a socket unit: keep the socket in the FD store, so the next
        // ds-lb of a restart job gets the same socket, with the connections queued meanwhile.
        if SystemdNotifier().storeFD(fd, name: name) {
            logger.info(
                "[i] Listening socket handed to systemd's FD store as \(name) (kept across restarts when FileDescriptorStoreMax= > 0)"
            )
        }
        return fd
    }
}
