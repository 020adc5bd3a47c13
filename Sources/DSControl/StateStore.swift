#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import Foundation

/// The desired pool, kept on disk so a restart of ds-lb brings back the same replicas under the
/// same names, numbers and ports (and so the same keys on each). Written after every change,
/// atomically: temporary file, fsync, rename, fsync of the directory.
public struct StateStore: Sendable {
    public struct Record: Codable, Equatable, Sendable {
        public var name: String
        public var id: Int
        public var host: String
        public var port: UInt16

        public init(_ backend: Backend) {
            name = backend.name
            id = backend.number
            host = backend.host
            port = backend.port
        }

        public var backend: Backend { Backend(name: name, number: id, host: host, port: port) }
    }

    struct File: Codable, Equatable {
        var version: Int
        var driver: String
        var replicas: [Record]
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) {
        self.directory = directory
    }

    /// The saved pool, or nil when there is none. A file that exists but cannot be read or
    /// parsed is an error naming the path: silently starting empty would forget the pool.
    public func load(driver: String) throws -> [Backend]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read state file \(path): \(String(cString: strerror(errno)))")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw Failure(description: "state file \(path) is corrupt (\(Self.reason(error))); fix or delete it, or start with --reset-state")
        }
        guard file.version == 1 else {
            throw Failure(description: "state file \(path) has version \(file.version); this ds-lb reads version 1")
        }
        guard file.driver == driver else {
            throw Failure(description: "state file \(path) was written by the \(file.driver) driver, not \(driver); start with --reset-state to discard it")
        }
        return file.replicas.map(\.backend)
    }

    /// Writes the pool. Control thread only (it blocks for one fsync).
    public func save(_ backends: [Backend], driver: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(version: 1, driver: driver, replicas: backends.map(Record.init)))
        try makeDirectory()
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0 else {
            throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    public func reset() throws {
        if FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    private func makeDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(description: "cannot create state directory \(directory): \(error.localizedDescription)")
        }
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        case DecodingError.keyNotFound(let key, _): return "missing '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context): return "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.valueNotFound(_, let context): return "missing value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: return "\(error)"
        }
    }
}
