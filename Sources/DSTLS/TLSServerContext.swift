import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// One certificate and its key, as given: PEM files, the certificate file holding the chain
/// after the leaf.
package struct TLSCertificateFiles: Sendable, Equatable {
    package let certificate: String
    package let key: String

    package init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// The server side of TLS for one configuration: an OpenSSL context per certificate, the one
/// a client gets chosen by SNI (an exact name first, then a `*.` wildcard, else the first
/// certificate: the default for clients that send no name or one no certificate has).
/// TLS 1.2 and 1.3 only, ALPN `http/1.1`, session tickets with the process's rotating keys
/// (`TicketKeys`), and OpenSSL's buffers released while a connection is idle.
///
/// Immutable once made, so any worker thread may start sessions on it (SSL_new on a shared
/// SSL_CTX is thread-safe). A reload makes a new one; sessions keep the one they began with.
///
/// Safety: the SSL_CTX pointers are made in `init`, never changed, and freed in `deinit`; every
/// session holds a strong reference to its context (`TLSSession.context`), so the unretained
/// pointer OpenSSL passes to the SNI callback is alive whenever the callback runs.
package final class TLSServerContext: @unchecked Sendable {
    /// The TLS 1.2 cipher list by default: ECDHE key exchange with AEAD ciphers only (the
    /// "intermediate" profile without DHE, which needs parameters of its own). TLS 1.3 keeps
    /// OpenSSL's suites, all of them AEAD.
    package static let defaultCiphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    /// One context per certificate, in the order given; the first is the default.
    let contexts: [OpaquePointer]
    /// The names each certificate answers for (subjectAltName DNS names, else its CN).
    package let names: [[String]]
    private let exact: [String: Int]
    private let wildcard: [String: Int]
    package let ciphers: String
    /// The TLS 1.3 suites, as given; nil: OpenSSL's.
    package let ciphersuites: String?
    /// Whether OpenSSL reads ahead (all the socket holds, not one record at a time): only
    /// without kTLS, whose receive side OpenSSL does not enable over read-ahead bytes and
    /// whose reads return one record however much is queued.
    let readAhead: Bool

    /// Loads `certificates` (at least one). `ciphers`: an OpenSSL cipher list for TLS 1.2;
    /// `ciphersuites`: TLS 1.3 suite names, `:`-separated (SSL_CTX_set_ciphersuites(3)).
    /// `kernelTLS`: let OpenSSL hand the record layer to the kernel when it can.
    package init(
        certificates: [TLSCertificateFiles], ciphers: String? = nil, ciphersuites: String? = nil, kernelTLS: Bool = false
    ) throws {
        precondition(!certificates.isEmpty, "a TLS context needs a certificate")
        let ciphers = ciphers ?? Self.defaultCiphers
        if let ciphersuites { try Self.checkSuites(ciphersuites) }
        var contexts: [OpaquePointer] = []
        var names: [[String]] = []
        do {
            for files in certificates {
                let context = try Self.makeContext(ciphers: ciphers, ciphersuites: ciphersuites, kernelTLS: kernelTLS)
                contexts.append(context)
                names.append(try Self.load(files, into: context))
            }
        } catch {
            for context in contexts { SSL_CTX_free(context) }
            throw error
        }
        var exact: [String: Int] = [:]
        var wildcard: [String: Int] = [:]
        // The first certificate that names a host wins, as the order given is the order of
        // preference.
        for (index, list) in names.enumerated() {
            for name in list {
                if name.hasPrefix("*.") {
                    if wildcard[String(name.dropFirst(2))] == nil { wildcard[String(name.dropFirst(2))] = index }
                } else if exact[name] == nil {
                    exact[name] = index
                }
            }
        }
        self.contexts = contexts
        self.names = names
        self.exact = exact
        self.wildcard = wildcard
        self.ciphers = ciphers
        self.ciphersuites = ciphersuites
        readAhead = !kernelTLS
        let me = Unmanaged.passUnretained(self).toOpaque()
        for context in contexts { ds_ctx_set_servername_callback(context, serverNameCallback, me) }
    }

    deinit {
        for context in contexts { SSL_CTX_free(context) }
    }

    /// The certificate for `serverName`: its exact name, else a wildcard one level up
    /// (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`), else
    /// the default. DNS names match without regard to case, and a fully qualified name's final
    /// dot (`example.com.`) names the same host.
    package func certificateIndex(for name: String) -> Int {
        var serverName = name.lowercased()
        if serverName.hasSuffix(".") { serverName.removeLast() }
        if let index = exact[serverName] { return index }
        if let dot = serverName.firstIndex(of: "."), let index = wildcard[String(serverName[serverName.index(after: dot)...])] {
            return index
        }
        return 0
    }

    /// Every name in `list` must be a TLS 1.3 suite OpenSSL has: it would skip an unknown one
    /// silently (a typo would drop a suite the operator meant to offer, or TLS 1.3 altogether).
    package static func checkSuites(_ list: String) throws {
        let names = list.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard let probe = SSL_CTX_new(TLS_server_method()) else {
            throw TLSLoadError.library(reason: "cannot make an OpenSSL context: \(openSSLError())")
        }
        defer { SSL_CTX_free(probe) }
        for name in names {
            guard !name.isEmpty else {
                throw TLSLoadError.option("--tls-ciphersuites", reason: "empty suite name in '\(list)'")
            }
            ERR_clear_error()
            guard SSL_CTX_set_ciphersuites(probe, name) == 1, ds_ctx_tls13_suite_count(probe) == 1 else {
                ERR_clear_error()
                throw TLSLoadError.option(
                    "--tls-ciphersuites",
                    reason: "unknown TLS 1.3 suite '\(name)' (e.g. TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256)")
            }
        }
    }

    private static func makeContext(ciphers: String, ciphersuites: String?, kernelTLS: Bool) throws -> OpaquePointer {
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw TLSLoadError.library(reason: "cannot make an OpenSSL context: \(openSSLError())")
        }
        guard ds_ctx_set_protocols(context) == 1 else {
            SSL_CTX_free(context)
            throw TLSLoadError.library(reason: "cannot limit the protocols to TLS 1.2 and 1.3: \(openSSLError())")
        }
        guard SSL_CTX_set_cipher_list(context, ciphers) == 1 else {
            SSL_CTX_free(context)
            throw TLSLoadError.option("--tls-ciphers", reason: "no usable cipher in '\(ciphers)'")
        }
        if let ciphersuites, SSL_CTX_set_ciphersuites(context, ciphersuites) != 1 {
            SSL_CTX_free(context)
            throw TLSLoadError.option("--tls-ciphersuites", reason: "no usable suite in '\(ciphersuites)'")
        }
        ds_ctx_set_modes(context, kernelTLS ? 0 : 1)
        ds_ctx_set_hardening(context)
        _ = ds_ctx_set_ktls(context, kernelTLS ? 1 : 0)
        ds_ctx_set_server_session_cache(context)
        let sessionContext: [UInt8] = Array("ds-lb".utf8)
        _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(context, ticketKeyCallback)
        SSL_CTX_set_alpn_select_cb(context, alpnCallback, nil)
        return context
    }

    /// Loads one pair into `context`; returns the names the certificate is for.
    private static func load(_ files: TLSCertificateFiles, into context: OpaquePointer) throws -> [String] {
        try checkReadable(files.certificate)
        try checkReadable(files.key)
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(context, files.certificate) == 1 else {
            throw TLSLoadError.file(files.certificate, reason: "not a PEM certificate chain (\(openSSLError()))")
        }
        guard SSL_CTX_use_PrivateKey_file(context, files.key, SSL_FILETYPE_PEM) == 1 else {
            let reason = openSSLError()
            if reason.contains("values mismatch") || reason.contains("key values mismatch") {
                throw TLSLoadError.file(files.key, reason: "key does not match the certificate \(files.certificate)")
            }
            throw TLSLoadError.file(files.key, reason: "not a PEM private key (\(reason))")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSLoadError.file(files.key, reason: "key does not match the certificate \(files.certificate)")
        }
        guard let leaf = SSL_CTX_get0_certificate(context) else {
            throw TLSLoadError.file(files.certificate, reason: "no certificate in the file")
        }
        if X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0 {
            throw TLSLoadError.file(files.certificate, reason: "expired (not after \(asn1Time(X509_get0_notAfter(leaf))))")
        }
        if X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0 {
            throw TLSLoadError.file(
                files.certificate, reason: "not valid yet (not before \(asn1Time(X509_get0_notBefore(leaf))))")
        }
        return certificateNames(leaf)
    }

    private static func checkReadable(_ path: String) throws {
        if access(path, F_OK) != 0 {
            throw TLSLoadError.file(path, reason: "missing (\(String(cString: strerror(errno))))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw TLSLoadError.file(path, reason: "unreadable (\(String(cString: strerror(errno))))") }
        var info = stat()
        let isDirectory = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        close(fd)
        if isDirectory { throw TLSLoadError.file(path, reason: "unreadable (a directory)") }
    }

    /// The DNS names in the certificate's subjectAltName, lowercased; its CN when it has none.
    static func certificateNames(_ certificate: OpaquePointer) -> [String] {
        var buffer = [CChar](repeating: 0, count: 256)
        var names: [String] = []
        let count = ds_cert_dns_name(certificate, -1, nil, 0)
        for index in 0..<max(0, count) where ds_cert_dns_name(certificate, Int32(index), &buffer, Int32(buffer.count)) > 0 {
            names.append(string(buffer).lowercased())
        }
        if names.isEmpty, ds_cert_common_name(certificate, &buffer, Int32(buffer.count)) > 0 {
            names.append(string(buffer).lowercased())
        }
        return names
    }

    private static func asn1Time(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time, let bio = BIO_new(BIO_s_mem()) else { return "?" }
        defer { BIO_free(bio) }
        guard ASN1_TIME_print(bio, time) == 1 else { return "?" }
        var buffer = [CChar](repeating: 0, count: 64)
        let n = BIO_read(bio, &buffer, Int32(buffer.count - 1))
        return n > 0 ? string(buffer) : "?"
    }
}

/// A NUL-terminated C string in `buffer`, as text.
func string(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The newest error on this thread's OpenSSL error queue, as text, and the queue cleared.
func openSSLError() -> String {
    let code = ERR_peek_last_error()
    ERR_clear_error()
    guard code != 0 else { return "unknown error" }
    if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
    return "error \(code)"
}

/// SNI: moves the session to the certificate for the name the client asked for. No name (or
/// one no certificate has) keeps the default. Safety: `arg` is the context's unretained self,
/// alive while any of its sessions runs (see `TLSServerContext`).
private let serverNameCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 =
    {
        ssl, _, arg in
        guard let ssl, let arg, let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)) else {
            return SSL_TLSEXT_ERR_OK
        }
        let context = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
        let index = context.certificateIndex(for: String(cString: name))
        if index != 0 { _ = SSL_set_SSL_CTX(ssl, context.contexts[index]) }
        return SSL_TLSEXT_ERR_OK
    }

/// ALPN: `http/1.1` when the client offers it; a client offering only other protocols goes on
/// without ALPN (it then speaks HTTP/1.1 or gives up). Safety: `input` is the client's list,
/// `inputLength` bytes, valid during the call; OpenSSL copies the selected name before `input`
/// goes away, so pointing `out` into it is allowed.
private let alpnCallback:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?, UnsafePointer<UInt8>?,
        UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, out, outLength, input, inputLength, _ in
        guard let out, let outLength, let input else { return SSL_TLSEXT_ERR_NOACK }
        let wanted: [UInt8] = Array("http/1.1".utf8)
        var offset = 0
        let length = Int(inputLength)
        while offset < length {
            let size = Int(input[offset])
            let start = offset + 1
            guard start + size <= length else { break }
            if size == wanted.count && UnsafeBufferPointer(start: input + start, count: size).elementsEqual(wanted) {
                out.pointee = input + start
                outLength.pointee = UInt8(size)
                return SSL_TLSEXT_ERR_OK
            }
            offset = start + size
        }
        return SSL_TLSEXT_ERR_NOACK
    }
