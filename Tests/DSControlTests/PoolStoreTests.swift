import DSBalancer
import Foundation
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// `FileStore`: the desired pool in state.json with a revision, written by compare-and-swap.
final class PoolStoreTests: XCTestCase {
    private let pool = (1...3).map { Backend(name: "server-\($0)", number: $0, host: "127.0.0.1", port: UInt16(20000 + $0)) }

    private func directory() throws -> String {
        let path = NSTemporaryDirectory() + "/ds-lb-pool-\(getpid())-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The store's answer to one write (a file store answers before `write` returns).
    private func write(_ store: FileStore, _ replicas: [Backend], ifRevision: UInt64) -> Result<UInt64, PoolStoreError>? {
        var answer: Result<UInt64, PoolStoreError>?
        store.write(replicas, ifRevision: ifRevision) { answer = $0 }
        return answer
    }

    private func fileFields(_ store: FileStore) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: store.location))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testEachWriteMakesTheNextRevisionAndReportsIt() throws {
        let store = FileStore(file: StateStore(directory: try directory()), driver: "process")
        var changes: [PoolStoreEvent] = []
        store.watch { changes.append($0) }
        XCTAssertEqual(try store.load(), StoredPool(replicas: [], revision: 0), "nothing saved yet")
        XCTAssertEqual(write(store, pool, ifRevision: 0), .success(1))
        XCTAssertEqual(write(store, Array(pool.prefix(2)), ifRevision: 1), .success(2))
        XCTAssertEqual(try store.load(), StoredPool(replicas: Array(pool.prefix(2)), revision: 2))
        XCTAssertEqual(
            changes,
            [
                .changed(StoredPool(replicas: pool, revision: 1)),
                .changed(StoredPool(replicas: Array(pool.prefix(2)), revision: 2)),
            ])
        let fields = try fileFields(store)
        XCTAssertEqual(fields["version"] as? Int, 2)
        XCTAssertEqual(fields["revision"] as? Int, 2)
        XCTAssertEqual(fields["driver"] as? String, "process")
    }

    /// Two writers of one file: the one that read an older revision loses, and nothing of its
    /// write reaches the file.
    func testAWriteAtAnOlderRevisionFailsWithAConflictAndChangesNothing() throws {
        let path = try directory()
        let first = FileStore(file: StateStore(directory: path), driver: "process")
        let second = FileStore(file: StateStore(directory: path), driver: "process")
        XCTAssertEqual(try second.load().revision, 0)
        XCTAssertEqual(write(first, pool, ifRevision: 0), .success(1))
        var reported: [PoolStoreEvent] = []
        second.watch { reported.append($0) }
        XCTAssertEqual(write(second, Array(pool.prefix(1)), ifRevision: 0), .failure(.conflict(expected: 0, current: 1)))
        XCTAssertEqual(try first.load(), StoredPool(replicas: pool, revision: 1))
        XCTAssertEqual(reported, [], "a lost write is no change")
        let conflict = PoolStoreError.conflict(expected: 0, current: 1)
        XCTAssertEqual("\(conflict)", "the pool was changed by another writer (now at revision 1, this ds-lb had revision 0)")
        // Read again, it applies.
        XCTAssertEqual(write(second, Array(pool.prefix(1)), ifRevision: 1), .success(2))
    }

    /// A state.json written before revisions (version 1) loads as revision 1 and is rewritten as
    /// version 2 by the next write.
    func testAVersion1FileLoadsAsRevision1AndMigratesAtTheNextWrite() throws {
        let path = try directory()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let store = FileStore(file: StateStore(directory: path), driver: "process")
        let entries = pool.map { #"{"name": "\#($0.name)", "id": \#($0.number), "host": "127.0.0.1", "port": \#($0.port)}"# }
        try Data(#"{"version": 1, "driver": "process", "replicas": [\#(entries.joined(separator: ", "))]}"#.utf8)
            .write(to: URL(fileURLWithPath: store.location))
        XCTAssertEqual(try store.load(), StoredPool(replicas: pool, revision: 1))
        XCTAssertEqual(
            write(store, pool, ifRevision: 0), .failure(.conflict(expected: 0, current: 1)), "a version 1 file is a revision")
        XCTAssertEqual(write(store, pool, ifRevision: 1), .success(2))
        XCTAssertEqual(try fileFields(store)["version"] as? Int, 2)
        XCTAssertEqual(try store.load(), StoredPool(replicas: pool, revision: 2))
        // Version 1 never had a revision; version 2 must.
        try Data(#"{"version": 1, "driver": "process", "revision": 3, "replicas": []}"#.utf8).write(
            to: URL(fileURLWithPath: store.location))
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("unknown key 'revision'"), "\($0)") }
        for (revision, problem) in [
            ("0", "'revision' must be a positive integer, not 0"), ("\"7\"", "'revision' must be a positive integer, not \"7\""),
        ] {
            try Data(#"{"version": 2, "driver": "process", "revision": \#(revision), "replicas": []}"#.utf8).write(
                to: URL(fileURLWithPath: store.location))
            XCTAssertThrowsError(try store.load()) { error in
                XCTAssertEqual(
                    error as? PoolStoreError,
                    .failed("state file \(store.location) is corrupt: \(problem); fix or delete it, or start with --reset-state"))
            }
        }
        try Data(#"{"version": 2, "driver": "process", "replicas": []}"#.utf8).write(to: URL(fileURLWithPath: store.location))
        XCTAssertThrowsError(try store.load()) { XCTAssertTrue("\($0)".contains("missing 'revision'"), "\($0)") }
        try Data(#"{"version": 3, "driver": "process", "revision": 1, "replicas": []}"#.utf8).write(
            to: URL(fileURLWithPath: store.location))
        XCTAssertThrowsError(try store.load()) {
            XCTAssertTrue("\($0)".contains("has version 3; this ds-lb reads versions 1 and 2"), "\($0)")
        }
    }

    /// A write that fails (here the temporary file cannot be created) leaves the file, its
    /// revision and the next compare-and-swap as they were.
    func testAFailedWriteLeavesThePoolAndItsRevisionIntact() throws {
        let path = try directory()
        let store = FileStore(file: StateStore(directory: path), driver: "process")
        XCTAssertEqual(write(store, pool, ifRevision: 0), .success(1))
        try FileManager.default.createDirectory(atPath: store.location + ".tmp", withIntermediateDirectories: false)
        guard case .failure(.failed(let reason))? = write(store, Array(pool.prefix(1)), ifRevision: 1) else {
            return XCTFail("the write must fail")
        }
        XCTAssertTrue(reason.contains("cannot write \(store.location).tmp: Is a directory"), reason)
        XCTAssertEqual(try store.load(), StoredPool(replicas: pool, revision: 1))
        try FileManager.default.removeItem(atPath: store.location + ".tmp")
        XCTAssertEqual(write(store, Array(pool.prefix(1)), ifRevision: 1), .success(2))
    }
}
