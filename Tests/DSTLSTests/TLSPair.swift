import COpenSSL
import DSTLS
import XCTest

#if canImport(Glibc)
import Glibc
#endif

struct TLSTestError: Error, CustomStringConvertible {
    let description: String
}

/// A server `TLSSession` and a client SSL on the two ends of a non-blocking socketpair, driven
/// by turns from one thread.
final class TLSPair {
    let server: TLSSession
    private let client: OpaquePointer
    private let clientContext: OpaquePointer
    private let fds: [Int32]

    init(
        context: TLSServerContext, caFile: String, serverName: String?, alpn: [String] = [], version: Int32? = nil,
        session: OpaquePointer? = nil
    ) throws {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0 else {
            throw TLSTestError(description: "socketpair failed")
        }
        fds = pair
        server = TLSSession(context: context, fd: pair[0])!
        clientContext = SSL_CTX_new(TLS_client_method())!
        SSL_CTX_set_verify(clientContext, SSL_VERIFY_PEER, nil)
        _ = SSL_CTX_load_verify_locations(clientContext, caFile, nil)
        // The client's own floor is lowered so that the server's is what refuses old versions.
        _ = SSL_CTX_set_cipher_list(clientContext, "DEFAULT:@SECLEVEL=0")
        client = SSL_new(clientContext)!
        _ = SSL_set_fd(client, pair[1])
        if let version { _ = ds_ssl_set_version_range(client, version, version) }
        if let serverName {
            _ = ds_ssl_set_host_name(client, serverName)
        }
        if !alpn.isEmpty {
            let wire = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            _ = SSL_set_alpn_protos(client, wire, UInt32(wire.count))
        }
        if let session { _ = SSL_set_session(client, session) }
        SSL_set_connect_state(client)
    }

    func close() {
        // A client SSL freed without a shutdown marks its session not resumable.
        _ = SSL_shutdown(client)
        SSL_free(client)
        SSL_CTX_free(clientContext)
        Glibc.close(fds[0])
        Glibc.close(fds[1])
    }

    /// Runs both handshakes by turns until both are done; throws on a failure of either.
    func handshake() throws {
        var clientDone = false
        for _ in 0..<1000 {
            if !clientDone {
                let result = SSL_do_handshake(client)
                if result == 1 {
                    clientDone = true
                } else {
                    let code = SSL_get_error(client, result)
                    guard code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE else {
                        throw TLSTestError(description: "client handshake failed: \(code)")
                    }
                }
            }
            switch server.handshake() {
            case .done:
                // TLS 1.3 tickets come after the handshake: let the client read them.
                if clientDone {
                    var byte: UInt8 = 0
                    _ = SSL_read(client, &byte, 0)
                    return
                }
            case .wantRead, .wantWrite: continue
            case .closed: throw TLSTestError(description: "server handshake: peer closed")
            case .failed(let reason): throw TLSTestError(description: "server handshake: \(reason)")
            }
        }
        throw TLSTestError(description: "handshake did not finish")
    }

    /// The DNS names of the certificate the client got.
    func peerNames() -> [String] {
        guard let certificate = SSL_get1_peer_certificate(client) else { return [] }
        defer { X509_free(certificate) }
        var buffer = [CChar](repeating: 0, count: 256)
        let count = ds_cert_dns_name(certificate, -1, nil, 0)
        return (0..<max(0, count)).compactMap { index in
            ds_cert_dns_name(certificate, Int32(index), &buffer, 256) > 0
                ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        }
    }

    var clientResumed: Bool { SSL_session_reused(client) == 1 }

    func clientSession() throws -> OpaquePointer {
        // TLS 1.3 tickets follow the handshake: a byte read after them takes them in.
        _ = try serverToClient([1])
        guard let session = SSL_get1_session(client) else { throw TLSTestError(description: "no session") }
        return session
    }

    /// Sends `bytes` with `server.write` (retrying from the same front after want*) while the
    /// client reads; returns what the client read.
    func serverToClient(_ bytes: [UInt8]) throws -> [UInt8] {
        var sent = 0
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var rounds = 0
        while received.count < bytes.count {
            rounds += 1
            if rounds > 100_000 { throw TLSTestError(description: "stalled at \(received.count)") }
            if sent < bytes.count {
                let result = bytes[sent...].withUnsafeBytes { server.write($0) }
                switch result {
                case .done(let n): sent += n
                case .wantRead, .wantWrite: break
                case .closed, .failed: throw TLSTestError(description: "server write: \(result)")
                }
            }
            let n = SSL_read(client, &chunk, Int32(chunk.count))
            if n > 0 { received += chunk[0..<Int(n)] }
        }
        return received
    }

    func clientToServer(_ bytes: [UInt8]) throws -> [UInt8] {
        guard SSL_write(client, bytes, Int32(bytes.count)) == Int32(bytes.count) else {
            throw TLSTestError(description: "client write")
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<1000 where received.count < bytes.count {
            let result = chunk.withUnsafeMutableBytes { server.read(into: $0) }
            switch result {
            case .done(let n): received += chunk[0..<n]
            case .wantRead, .wantWrite: continue
            case .closed, .failed: throw TLSTestError(description: "server read: \(result)")
            }
        }
        return received
    }

    /// Sends each of `messages` as its own record (all queued in the socket before the server
    /// reads any).
    func clientWritesRecords(_ messages: [[UInt8]]) throws {
        for message in messages where SSL_write(client, message, Int32(message.count)) != Int32(message.count) {
            throw TLSTestError(description: "client write")
        }
    }

    /// What the client's read returns once the server has shut down: 0 for close_notify.
    func clientReadAfterShutdown() -> Int32 {
        var byte: UInt8 = 0
        let n = SSL_read(client, &byte, 1)
        return n <= 0 && SSL_get_error(client, n) == SSL_ERROR_ZERO_RETURN ? 0 : n
    }
}
