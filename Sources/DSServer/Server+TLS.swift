import DSSystem
import DSSystemd
import DSTLS
import Logging

extension Server {
    /// The TLS listening socket: systemd's socket named `https` when it passed one, else one
    /// ds-lb opens on `listen` (`--tls-listen`), else none. Whether ds-lb opened it (and so
    /// closes it) comes with it.
    static func tlsListeningSocket(
        passed: [SystemdListeners.Passed], listen: SocketAddress?, logger: Logger
    ) throws -> (fd: Int32?, owned: Bool) {
        if let https = passed.first(where: { $0.name == "https" }) {
            let fd = try checkedPassed(https)
            logger.info("[i] Using the TLS socket passed by systemd: https (fd \(fd))")
            return (fd, false)
        }
        guard let listen else { return (nil, false) }
        return (try openOwn(listen, name: "https", logger: logger), true)
    }

    /// Once at start: where TLS listens, the certificates, and which record path it takes
    /// (kernel TLS with splice, or SSL_read/SSL_write through the buffers).
    func logTLS(_ fd: Int32) {
        let bound = (try? Socket.localAddress(fd))?.description ?? configuration.tlsListen?.description ?? "https"
        let names = proxyConfig.tls?.names.map { $0.joined(separator: ",") }.joined(separator: "; ") ?? ""
        logger.info("[i] TLS on \(bound) (certificates for: \(names))")
        let probe = KernelTLS.probe
        if probe.available {
            logger.info("[i] TLS records: kernel TLS where OpenSSL can use it (\(probe.detail)); bodies splice")
        } else {
            logger.info(
                "[i] TLS records: SSL_read/SSL_write, no kernel TLS (\(probe.detail)): bodies to TLS clients go through the buffers, not splice"
            )
        }
    }
}
