import COpenSSL
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A self-signed certificate a test made with `openssl req`.
struct TestCertificate {
    let cert: String
    let key: String
}

extension IntegrationTestCase {
    /// Runs `executable` (an absolute path) to its end: its exit status and output lines.
    func runTool(
        _ executable: String, _ arguments: [String], timeout: TimeInterval = 60
    ) throws -> (
        status: Termination?, stdout: [String], stderr: [String]
    ) {
        let process = try launch(executable, arguments, name: (executable as NSString).lastPathComponent)
        let termination = process.waitForExit(timeout: timeout)
        let deadline = Date().addingTimeInterval(2)
        while !(process.stdout.isEOF && process.stderr.isEOF) && Date() < deadline { usleep(10_000) }
        return (termination, process.stdout.allLines, process.stderr.allLines)
    }

    /// A self-signed certificate for `names` (the first is also the CN) in `directory`:
    /// `<base>.crt` and `<base>.key`; ECDSA P-256 or RSA 2048; `days` < 0: expired.
    func makeCertificate(
        in directory: String, _ base: String, names: [String], ecdsa: Bool = true, days: Int = 30
    ) throws -> TestCertificate {
        let cert = "\(directory)/\(base).crt"
        let key = "\(directory)/\(base).key"
        let newKey = ecdsa ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"]
        let steps: [[String]]
        if days > 0 {
            steps = [
                ["req", "-x509"] + newKey + [
                    "-nodes", "-keyout", key, "-out", cert, "-days", "\(days)", "-subj", "/CN=\(names[0])", "-addext",
                    "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ","),
                ]
            ]
        } else {
            let request = "\(directory)/\(base).csr"
            steps = [
                ["req", "-new"] + newKey + ["-nodes", "-keyout", key, "-out", request, "-subj", "/CN=\(names[0])"],
                ["x509", "-req", "-in", request, "-signkey", key, "-days", "\(days)", "-out", cert],
            ]
        }
        for step in steps {
            let run = try runTool("/usr/bin/openssl", step)
            guard run.status == .exited(0) else {
                throw ChildProcess.LaunchError(
                    description: "openssl \(step.joined(separator: " ")): \(run.stderr.joined(separator: "\n"))")
            }
        }
        return TestCertificate(cert: cert, key: key)
    }
}

extension IntegrationTestCase {
    /// A CA (`ca.crt`) and a leaf it signed for localhost and 127.0.0.1, as a server on the
    /// internet would have one: the leaf's file holds the chain (leaf, then CA), with CRL and
    /// OCSP addresses and server-auth key usage, valid for 200 days.
    func makeCASignedCertificate(in directory: String) throws -> (leaf: TestCertificate, ca: String) {
        let ca = "\(directory)/ca.crt"
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try """
        subjectAltName=DNS:localhost,IP:127.0.0.1
        crlDistributionPoints=URI:http://127.0.0.1:9/ca.crl
        authorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp
        basicConstraints=critical,CA:FALSE
        keyUsage=critical,digitalSignature
        extendedKeyUsage=serverAuth

        """.write(toFile: "\(directory)/leaf.ext", atomically: true, encoding: .utf8)
        for step in [
            ["req", "-x509"] + ec + ["-keyout", "\(directory)/ca.key", "-out", ca, "-days", "365", "-subj", "/CN=ds-lb test CA"],
            ["req", "-new"] + ec + [
                "-keyout", "\(directory)/leaf.key", "-out", "\(directory)/leaf.csr", "-subj", "/CN=localhost",
            ],
            [
                "x509", "-req", "-in", "\(directory)/leaf.csr", "-CA", ca, "-CAkey", "\(directory)/ca.key", "-CAcreateserial",
                "-days", "200", "-extfile", "\(directory)/leaf.ext", "-out", "\(directory)/leaf-only.crt",
            ],
        ] {
            let run = try runTool("/usr/bin/openssl", step)
            guard run.status == .exited(0) else {
                throw ChildProcess.LaunchError(
                    description: "openssl \(step.joined(separator: " ")): \(run.stderr.joined(separator: "\n"))")
            }
        }
        let chain =
            try String(contentsOfFile: "\(directory)/leaf-only.crt", encoding: .utf8)
            + String(contentsOfFile: ca, encoding: .utf8)
        try chain.write(toFile: "\(directory)/leaf.crt", atomically: true, encoding: .utf8)
        return (TestCertificate(cert: "\(directory)/leaf.crt", key: "\(directory)/leaf.key"), ca)
    }
}

/// A blocking TLS client over one TCP connection to 127.0.0.1, for tests that send raw bytes
/// through TLS (curl only sends well-formed requests). Verifies the server against `caFile`.
final class TLSTestConnection {
    private let fd: Int32
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    init(port: UInt16, serverName: String, caFile: String, timeout: TimeInterval = 20) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChildProcess.LaunchError(description: "socket failed") }
        self.fd = fd
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = try SocketAddress.ipv4("127.0.0.1", port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        context = SSL_CTX_new(TLS_client_method())!
        ssl = SSL_new(context)!
        guard connected == 0 else {
            close()
            throw ChildProcess.LaunchError(description: "connect to \(port): \(String(cString: strerror(errno)))")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        _ = SSL_CTX_load_verify_locations(context, caFile, nil)
        _ = SSL_set_fd(ssl, fd)
        _ = ds_ssl_set_host_name(ssl, serverName)
        guard SSL_connect(ssl) == 1 else {
            close()
            throw ChildProcess.LaunchError(description: "TLS handshake with \(serverName) failed")
        }
    }

    func close() {
        SSL_free(ssl)
        SSL_CTX_free(context)
        Glibc.close(fd)
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard n > 0 else { throw ChildProcess.LaunchError(description: "TLS write failed") }
            sent += Int(n)
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Sends each of `messages` as its own TLS record, all in one TCP segment (corked), so one
    /// recv of the server takes them all.
    func sendRecordsTogether(_ messages: [String]) throws {
        // TCP_CORK (netinet/tcp.h), which Glibc's module does not export.
        let cork: Int32 = 3
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), cork, &on, socklen_t(MemoryLayout<Int32>.size))
        defer {
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_TCP), cork, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        for message in messages { try send(message) }
    }

    /// Reads until `done` says the bytes are enough, or the stream ends (nil on a timeout).
    func read(until done: ([UInt8]) -> Bool = { _ in false }) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n <= 0 { break }
            received += chunk[0..<Int(n)]
        }
        return received
    }

    /// Whether the server ends the stream (close_notify, EOF or a reset) before the receive
    /// timeout given at `init`; what it sends meanwhile is read and dropped.
    func isClosedByPeer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n > 0 { continue }
            let code = SSL_get_error(ssl, n)
            if code == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
            return true
        }
    }

    /// Reads one response whose body has a Content-Length (or none): status and body.
    func readResponse() -> (status: Int, head: String, body: [UInt8])? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = bytes.firstRange(of: separator) {
                let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
                let length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if bytes.count - end.upperBound >= length {
                    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                    return (status, head, Array(bytes[end.upperBound..<end.upperBound + length]))
                }
            }
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n <= 0 { return nil }
            bytes += chunk[0..<Int(n)]
        }
    }
}

/// A ClientHello built by hand, for offers OpenSSL's client no longer makes: a protocol
/// version below TLS 1.2 (SSLv3 is 0x0300), a server name no library would send (over 255
/// bytes, a NUL inside).
func rawClientHello(version: UInt16, serverName: [UInt8]? = nil) -> [UInt8] {
    func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    var body = u16(Int(version)) + (0..<32).map { UInt8($0) } + [0]
    body += u16(4) + [0xC0, 0x2F, 0x00, 0x2F] + [1, 0]
    if let serverName {
        let entry = [0] + u16(serverName.count) + serverName
        let list = u16(entry.count) + entry
        let extensions = [0, 0] + u16(list.count) + list
        body += u16(extensions.count) + extensions
    }
    let handshake = [1, 0] + u16(body.count) + body
    return [0x16] + u16(Int(min(version, 0x0301))) + u16(handshake.count) + handshake
}
