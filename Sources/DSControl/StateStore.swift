import DSBalancer
import DSHTTP1
import DSHashing
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The desired pool, kept on disk so a restart of ds-lb brings back the same replicas under the
/// same names, numbers and ports (and so the same keys on each). Written after every change,
/// atomically: temporary file, fsync, rename, fsync of the directory. The file I/O of
/// `FileStore`, which gives it the `PoolStore` interface.
///
/// Format: version 2 is `{"version": 2, "driver": …, "revision": N, "replicas": […]}`; version 1
/// (no revision, written by earlier ds-lb) still loads, as revision 1, and is rewritten as
/// version 2 at the next save. A replica's `weight` is optional in both: absent means 1, and it
/// is written only when it is not 1, so a pool without weights is the document it always was.
package struct StateStore: Sendable {
    package struct Record: Codable, Equatable, Sendable {
        package var name: String
        package var id: Int
        package var host: String
        package var port: UInt16
        /// nil: 1 (left out of the document).
        package var weight: Int?

        package init(_ backend: Backend) {
            name = backend.name
            id = backend.number
            host = backend.host
            port = backend.port
            weight = backend.weight == 1 ? nil : backend.weight
        }

        package var backend: Backend { Backend(name: name, number: id, host: host, port: port, weight: weight ?? 1) }
    }

    struct File: Encodable {
        var version: Int
        var driver: String
        var revision: UInt64
        var replicas: [Record]
    }

    /// The version `save` writes.
    static let currentVersion = 2

    package struct Failure: Error, CustomStringConvertible, Sendable {
        package let description: String
        /// The errno of the system call that failed, when one did.
        package var code: Int32 = 0

        /// The disk (or the user's quota) is full: the admin API answers 507 for this.
        package var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }
    }

    package let directory: String
    package var path: String { directory + "/state.json" }

    package init(directory: String) {
        self.directory = directory
    }

    /// The saved pool, or nil when there is none. A file that exists but cannot be read, or
    /// holds anything `/add` would refuse, is an error naming the file, the entry and the
    /// problem: silently starting empty would forget the pool, and a bad entry would fail
    /// later with a message about something else.
    package func load(driver: String) throws -> [Backend]? {
        try loadWithRevision(driver: driver)?.replicas
    }

    /// The saved pool and its revision, or nil when there is none (`load`'s errors).
    package func loadWithRevision(driver: String) throws -> (replicas: [Backend], revision: UInt64)? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        guard !isDirectory.boolValue else {
            throw Failure(description: "state file \(path) is a directory, not a file; remove it, or start with --reset-state")
        }
        return try Self.decode(try readFile(), driver: driver, source: "state file \(path)")
    }

    /// The pool in a document of `save`'s format (a file's, or an etcd key's: `source` names it
    /// in errors) and the document's revision; `load`'s errors.
    package static func decode(_ bytes: [UInt8], driver: String, source: String) throws -> (replicas: [Backend], revision: UInt64)
    {
        func corrupt(_ what: String) -> Failure {
            Failure(description: "\(source) is corrupt: \(what); fix or delete it, or start with --reset-state")
        }
        let fields: [String: JSONValue]
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw corrupt("\(error)") }
        // The version first: it says which keys the file must have.
        var version: Int?
        if case .object(let pairs) = value, case .int(let number)? = pairs.first(where: { $0.0 == "version" })?.1 {
            version = number
        }
        let required = version == 1 ? ["version", "driver", "replicas"] : ["version", "driver", "revision", "replicas"]
        do { fields = try Self.fields(of: value, required: required) } catch let problem as Problem {
            throw corrupt(problem.text)
        }
        guard let version, (1...Self.currentVersion).contains(version) else {
            throw Failure(
                description:
                    "\(source) has version \(fields["version"]?.serialized ?? "none"); this ds-lb reads versions 1 and 2"
            )
        }
        var revision: UInt64 = 1
        if version >= 2 {
            guard case .int(let number)? = fields["revision"], number > 0 else {
                throw corrupt("'revision' must be a positive integer, not \(fields["revision"]!.serialized)")
            }
            revision = UInt64(number)
        }
        guard case .string(let writer)? = fields["driver"] else { throw corrupt("'driver' must be a string") }
        guard writer == driver else {
            throw Failure(
                description:
                    "\(source) was written by the \(writer) driver, not \(driver); start with --reset-state to discard it"
            )
        }
        guard case .array(let entries)? = fields["replicas"] else { throw corrupt("'replicas' must be a list") }
        do {
            let backends = try entries.enumerated().map { try Self.backend(from: $1, index: $0) }
            try Self.validate(backends)
            return (backends, revision)
        } catch let problem as Problem {
            throw corrupt(problem.text)
        }
    }

    /// A problem with the file's content, said the way `corrupt` frames it.
    private struct Problem: Error {
        let text: String
    }

    private static func fields(
        of value: JSONValue, required: [String], optional: [String] = [], entry: String = "the file"
    ) throws -> [String: JSONValue] {
        guard case .object(let pairs) = value else { throw Problem(text: "\(entry) must be a JSON object") }
        let fields = Dictionary(pairs, uniquingKeysWith: { first, _ in first })
        if let unknown = pairs.map(\.0).first(where: { !required.contains($0) && !optional.contains($0) }) {
            throw Problem(text: "\(entry): unknown key '\(unknown)'")
        }
        if let missing = required.first(where: { fields[$0] == nil }) {
            throw Problem(text: "\(entry): missing '\(missing)'")
        }
        return fields
    }

    private static func backend(from value: JSONValue, index: Int) throws -> Backend {
        let entry = "replicas[\(index)]"
        let fields = try fields(of: value, required: ["name", "id", "host", "port"], optional: ["weight"], entry: entry)
        guard case .string(let name)? = fields["name"] else { throw Problem(text: "\(entry): 'name' must be a string") }
        let named = "\(entry) (\(name))"
        guard case .int(let id)? = fields["id"], id > 0 else {
            throw Problem(text: "\(named): 'id' must be a positive integer, not \(fields["id"]!.serialized)")
        }
        guard case .string(let host)? = fields["host"], !host.isEmpty else {
            throw Problem(text: "\(named): 'host' must be a non-empty string, not \(fields["host"]!.serialized)")
        }
        // Port 0: a container whose address was not known yet when the pool was saved.
        guard case .int(let port)? = fields["port"], (0...65535).contains(port) else {
            throw Problem(text: "\(named): 'port' must be an integer from 0 to 65535, not \(fields["port"]!.serialized)")
        }
        var weight = 1
        if let given = fields["weight"] {
            guard case .int(let number) = given, PoolReconciler.checkWeight(number) == nil else {
                throw Problem(
                    text: "\(named): 'weight' must be an integer from 0 to \(HashMember.maxWeight), not \(given.serialized)")
            }
            weight = number
        }
        return Backend(name: name, number: id, host: host, port: UInt16(port), weight: weight)
    }

    /// What `/add` would refuse (names), and what would make two replicas one (ids, addresses).
    private static func validate(_ backends: [Backend]) throws {
        func entry(_ index: Int) -> String { "replicas[\(index)] (\(backends[index].name))" }
        switch ReplicaName.check(backends.map(\.name), existing: []) {
        case .invalid(let index)?: throw Problem(text: "\(entry(index)): invalid name: \(ReplicaName.Problem.rule)")
        case .repeated(let index, let first)?:
            throw Problem(text: "\(entry(index)): the name is already used by \(entry(first)) (names are case-insensitive)")
        case .taken?, nil: break
        }
        if let refusal = PoolReconciler.checkTotal(backends.map(\.weight)) {
            throw Problem(text: String(refusal.message.trimmingPrefix("<Error> ")))
        }
        var ids: [Int: Int] = [:]
        var addresses: [String: Int] = [:]
        for (index, backend) in backends.enumerated() {
            if let first = ids.updateValue(index, forKey: backend.number) {
                throw Problem(text: "\(entry(index)): id \(backend.number) is already used by \(entry(first))")
            }
            guard backend.port != 0 else { continue }
            if let first = addresses.updateValue(index, forKey: backend.address) {
                throw Problem(text: "\(entry(index)): address \(backend.address) is already used by \(entry(first))")
            }
        }
    }

    private func readFile() throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("cannot read state file \(path)") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw Self.failure("cannot read state file \(path)") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// The failure of the system call that just returned: read `errno` before anything else runs.
    private static func failure(_ what: String, code: Int32 = errno) -> Failure {
        Failure(description: "\(what): \(String(cString: strerror(code)))", code: code)
    }

    /// Writes the pool as `revision`. Control thread only (it blocks for one fsync). On any
    /// failure the old file is untouched and the temporary one is removed.
    package func save(_ backends: [Backend], driver: String, revision: UInt64 = 1) throws {
        let data = try Self.encode(backends, driver: driver, revision: revision)
        try makeDirectory()
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("cannot write \(temporary)") }
        var failure: Failure?
        var offset = 0
        while failure == nil && offset < data.count {
            // offset < count here, so the buffer is not empty and the pointer stays inside it.
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                failure = Self.failure("cannot write \(temporary)", code: written < 0 ? errno : ENOSPC)
            } else {
                offset += written
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = Self.failure("cannot write \(temporary)") }
        if close(fd) != 0 && failure == nil && errno != EINTR { failure = Self.failure("cannot write \(temporary)") }
        if failure == nil && rename(temporary, path) != 0 { failure = Self.failure("cannot replace \(path)") }
        if let failure {
            unlink(temporary)
            throw failure
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// The document `save` writes (and `decode` reads).
    package static func encode(_ backends: [Backend], driver: String, revision: UInt64) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let file = File(version: currentVersion, driver: driver, revision: revision, replicas: backends.map(Record.init))
        return try encoder.encode(file)
    }

    package func reset() throws {
        if FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    private func makeDirectory() throws {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(description: "cannot create state directory \(directory): \(error.localizedDescription)")
        }
    }
}
