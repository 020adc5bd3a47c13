import ArgumentParser
import DSControl
import DSProxy
import DSSystem
import DSTLS

extension Serve {
    /// `--tls-listen`, parsed; it needs certificates.
    func tlsAddress() throws -> SocketAddress? {
        guard let tlsListen else { return nil }
        guard !tlsCerts.isEmpty else { throw ValidationError("--tls-listen needs --tls-cert and --tls-key") }
        do { return try SocketAddress.parse(tlsListen) } catch { throw ValidationError("--tls-listen: \(error)") }
    }

    /// The certificates (loaded now: a reload reads the files again), ciphers, handshake
    /// deadline and cap. A file that cannot be used stops a start, or a reload, with one line naming it.
    func tlsSettings(into config: inout ProxyConfig) throws {
        do {
            config.tlsHandshakeTimeout = try DurationText.duration(tlsHandshakeTimeout, name: "--tls-handshake-timeout")
        } catch {
            throw ValidationError("\(error)")
        }
        guard config.tlsHandshakeTimeout >= .milliseconds(1) else {
            throw ValidationError("--tls-handshake-timeout: must be at least 1ms")
        }
        guard tlsMaxHandshakes >= 1 else {
            throw ValidationError("--tls-max-handshakes must be at least 1, got \(tlsMaxHandshakes)")
        }
        config.tlsMaxHandshakes = tlsMaxHandshakes
        guard tlsCerts.count == tlsKeys.count else {
            throw ValidationError(
                "--tls-cert and --tls-key come in pairs: got \(tlsCerts.count) certificates and \(tlsKeys.count) keys")
        }
        config.redirectHTTP = redirectHTTP
        // Checked without certificates too, so a bad value in a file is refused where it is.
        do { try tlsCiphersuites.map(TLSServerContext.checkSuites) } catch { throw ValidationError("\(error)") }
        guard !tlsCerts.isEmpty else {
            config.tls = nil
            return
        }
        do {
            config.tls = try TLSServerContext(
                certificates: zip(tlsCerts, tlsKeys).map { TLSCertificateFiles(certificate: $0, key: $1) },
                ciphers: tlsCiphers, ciphersuites: tlsCiphersuites, kernelTLS: KernelTLS.probe.available)
        } catch {
            // An option's error names the option alone, so a config file's error points at its key.
            if case TLSLoadError.option = error { throw ValidationError("\(error)") }
            throw ValidationError("TLS: \(error)")
        }
    }
}
