import Foundation

/// Certificates made for a test with `openssl req` in a temporary directory, removed by
/// `remove()`.
final class TestCertificates {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "ds-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { directory + "/" + name }

    /// A self-signed certificate for `names` (the first is the CN): `<base>.crt`, `<base>.key`.
    /// `ecdsa`: a P-256 key, else RSA 2048. `days` < 0: expired that long ago.
    @discardableResult
    func make(_ base: String, names: [String], ecdsa: Bool = false, days: Int = 30) throws -> (cert: String, key: String) {
        let cert = path(base + ".crt")
        let key = path(base + ".key")
        let newKey = ecdsa ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"]
        let san = "subjectAltName=" + names.map { "DNS:" + $0 }.joined(separator: ",")
        if days > 0 {
            try run(
                ["req", "-x509"] + newKey + [
                    "-nodes", "-keyout", key, "-out", cert, "-days", "\(days)", "-subj", "/CN=\(names[0])", "-addext", san,
                ])
        } else {
            let request = path(base + ".csr")
            try run(["req", "-new"] + newKey + ["-nodes", "-keyout", key, "-out", request, "-subj", "/CN=\(names[0])"])
            try run(["x509", "-req", "-in", request, "-signkey", key, "-days", "\(days)", "-out", cert])
        }
        return (cert, key)
    }

    private func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "openssl \(arguments.joined(separator: " "))", code: Int(process.terminationStatus))
        }
    }
}
