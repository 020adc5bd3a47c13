import COpenSSL

/// What a non-blocking TLS call did. `wantRead` / `wantWrite`: nothing moved, and the call must
/// be made again once the socket is readable / writable (a read may need to write, during a
/// handshake or a key update, and a write may need to read).
package enum TLSResult: Equatable {
    case done(Int)
    case wantRead
    case wantWrite
    /// The peer closed the TLS stream (close_notify, or the TCP connection ended).
    case closed
    case failed(String)
}

/// The server end of one TLS connection over a non-blocking socket it does not own (the
/// caller closes the descriptor after `shutdown`). One thread at a time: the worker loop that
/// owns the connection.
///
/// Safety: `ssl` is made in `init` and freed only in `deinit`; the buffers passed to `read` and
/// `write` are used only during the call (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets a write that
/// wants a retry be retried from another address holding the same bytes).
package final class TLSSession {
    private let ssl: OpaquePointer
    /// Keeps the context, and so the SNI callback's argument, alive for this session's life.
    package let context: TLSServerContext
    package private(set) var handshakeDone = false
    private var shutDown = false

    /// Whether the socket BIO's read during the last `read` returned fewer bytes than it asked
    /// for (its read callback writes it); 0 when that `read` made no recv, and always without
    /// read-ahead, where reads ask for exact lengths.
    private let lastReadShort: UnsafeMutablePointer<Int32>

    package init?(context: TLSServerContext, fd: Int32) {
        guard let ssl = SSL_new(context.contexts[0]) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.context = context
        lastReadShort = .allocate(capacity: 1)
        lastReadShort.initialize(to: 0)
        // The BIO writes through the pointer only during this session's SSL calls, and the
        // BIO is freed with `ssl` before the pointer is.
        if context.readAhead { ds_ssl_note_short_reads(ssl, lastReadShort) }
    }

    deinit {
        SSL_free(ssl)
        lastReadShort.deallocate()
    }

    /// Whether the last `read`, which brought bytes, emptied the socket with its own recv and
    /// OpenSSL holds none it has not handed out: then nothing more can be read before the
    /// socket's next readable edge (with read-ahead a recv asks for all the buffer's room, so a
    /// short one took everything the socket held).
    package var drainedSocket: Bool { lastReadShort.pointee != 0 && SSL_has_pending(ssl) == 0 }

    /// One step of the handshake: `.done(0)` once it is complete.
    package func handshake() -> TLSResult {
        if handshakeDone { return .done(0) }
        clearErrors()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            handshakeDone = true
            return .done(0)
        }
        return outcome(of: result)
    }

    /// Decrypts into `buffer`: `.done(n)` with n > 0, or why nothing came.
    package func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSResult {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .done(0) }
        clearErrors()
        // A read served from OpenSSL's buffer makes no recv: a short recv before it says nothing
        // about bytes that arrived since, whose edge may already have been taken.
        lastReadShort.pointee = 0
        var n = 0
        if SSL_read_ex(ssl, base, buffer.count, &n) == 1 { return .done(n) }
        return outcome(of: 0)
    }

    /// Encrypts and sends `bytes` (a record or more): `.done(n)`, the first n of them went.
    /// After `wantRead`/`wantWrite`, call again with the same bytes at the front.
    package func write(_ bytes: UnsafeRawBufferPointer) -> TLSResult {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .done(0) }
        clearErrors()
        var n = 0
        if SSL_write_ex(ssl, base, bytes.count, &n) == 1 { return .done(n) }
        return outcome(of: 0)
    }

    /// Sends close_notify once, without waiting for the peer's (best effort: the descriptor
    /// is closed right after).
    package func shutdown() {
        guard !shutDown, handshakeDone else { return }
        shutDown = true
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// Whether OpenSSL moved the record layer into the kernel both ways (kTLS): then plain
    /// bytes may be spliced to and from the socket.
    package var kernelTLS: Bool { handshakeDone && ds_ssl_ktls_both(ssl) == 1 }

    /// The protocol ALPN chose, or nil.
    package var alpn: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The negotiated cipher in OpenSSL's name ("TLS_AES_128_GCM_SHA256"), or nil before one is.
    package var cipher: String? {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return nil }
        return String(cString: name)
    }

    /// "TLSv1.3", "TLSv1.2".
    package var version: String { String(cString: SSL_get_version(ssl)) }

    /// SSL_get_error reads the thread's error queue, which must be empty before each call.
    /// Looking costs a fraction of clearing its sixteen slots, and it is almost always empty
    /// (every failure path here drains it).
    @inline(__always)
    private func clearErrors() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    private func outcome(of result: Int32) -> TLSResult {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            // EOF without close_notify, or a socket error: the stream is over either way.
            ERR_clear_error()
            return .closed
        default:
            return .failed(openSSLError())
        }
    }
}
