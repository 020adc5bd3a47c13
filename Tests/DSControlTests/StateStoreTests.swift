import DSBalancer
import Foundation
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

final class StateStoreTests: XCTestCase {
    private var directories: [String] = []
    private var mounts: [String] = []

    override func tearDown() {
        for path in mounts.reversed() { _ = umount2(path, Int32(MNT_DETACH)) }
        for path in directories.reversed() { try? FileManager.default.removeItem(atPath: path) }
        super.tearDown()
    }

    private func temporaryDirectory() throws -> String {
        var template = Array("/tmp/ds-lb-state-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw XCTSkip("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        directories.append(String(cString: made))
        return String(cString: made)
    }

    /// A small tmpfs of its own (root only), unmounted in tearDown.
    private func tmpfs(size: String = "64k") throws -> String {
        guard geteuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        let path = try temporaryDirectory()
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(size),mode=0700") == 0 else {
            throw XCTSkip("cannot mount a tmpfs: \(String(cString: strerror(errno)))")
        }
        mounts.append(path)
        return path
    }

    private func write(_ text: String, to store: StateStore) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: store.path))
    }

    private let pool = (1...3).map { Backend(name: "server-\($0)", number: $0, host: "127.0.0.1", port: UInt16(20000 + $0)) }

    func testSavedPoolLoadsBack() throws {
        let store = StateStore(directory: try temporaryDirectory() + "/state")
        XCTAssertNil(try store.load(driver: "process"))
        try store.save(pool, driver: "process")
        XCTAssertEqual(try store.load(driver: "process"), pool)
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.path + ".tmp"))
    }

    /// Weights are kept (also through the etcd store, which writes the same document); a pool
    /// without weights is written as before, and a document without them loads at weight 1.
    func testWeightsRoundTripAndADocumentWithoutThemLoadsAtWeightOne() throws {
        let weighted = [
            Backend(name: "big", number: 1, host: "127.0.0.1", port: 20001, weight: 4),
            Backend(name: "drained", number: 2, host: "127.0.0.1", port: 20002, weight: 0),
            Backend(name: "server-3", number: 3, host: "127.0.0.1", port: 20003),
        ]
        let store = StateStore(directory: try temporaryDirectory() + "/state")
        try store.save(weighted, driver: "process", revision: 5)
        let loaded = try XCTUnwrap(try store.loadWithRevision(driver: "process"))
        XCTAssertEqual(loaded.replicas.map(\.weight), [4, 0, 1])
        XCTAssertEqual(loaded.revision, 5)
        let document = try String(contentsOfFile: store.path, encoding: .utf8)
        XCTAssertEqual(document.components(separatedBy: "\"weight\"").count - 1, 2, "weight 1 is left out: \(document)")

        let plain = try StateStore.encode(pool, driver: "process", revision: 1)
        XCTAssertFalse(String(decoding: plain, as: UTF8.self).contains("weight"))
        for version in [1, 2] {
            let revision = version == 1 ? "" : #""revision": 3, "#
            let old =
                #"{"version": \#(version), \#(revision)"driver": "process", "replicas": [{"name": "server-1", "id": 1, "host": "127.0.0.1", "port": 20001}]}"#
            let replicas = try StateStore.decode(Array(old.utf8), driver: "process", source: "test").replicas
            XCTAssertEqual(replicas.map(\.weight), [1], old)
        }
        for bad in ["-1", "257", #""x""#, "null", "1.5"] {
            let text =
                #"{"version": 2, "revision": 1, "driver": "process", "replicas": [{"name": "s", "id": 1, "host": "h", "port": 1, "weight": \#(bad)}]}"#
            XCTAssertThrowsError(try StateStore.decode(Array(text.utf8), driver: "process", source: "test"), bad) { error in
                XCTAssertTrue("\(error)".contains("'weight' must be an integer from 0 to 256"), "\(error)")
            }
        }
    }

    /// A full disk: the save fails with ENOSPC, the old file is intact, no temporary file is left.
    func testFullDiskKeepsTheOldFileAndLeavesNoTemporaryFile() throws {
        let store = StateStore(directory: try tmpfs())
        try store.save(pool, driver: "process")
        let filler = store.directory + "/filler"
        XCTAssertTrue(FileManager.default.createFile(atPath: filler, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: filler))
        XCTAssertThrowsError(try handle.write(contentsOf: Data(count: 1 << 20)), "the tmpfs must fill up")
        try? handle.close()
        let bigger =
            pool + (4...40).map { Backend(name: "server-\($0)", number: $0, host: "127.0.0.1", port: UInt16(20000 + $0)) }
        XCTAssertThrowsError(try store.save(bigger, driver: "process")) { error in
            let failure = error as? StateStore.Failure
            XCTAssertEqual(failure?.isOutOfSpace, true, "\(error)")
            XCTAssertTrue("\(error)".contains("No space left on device"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.path + ".tmp"), "the temporary file must be removed")
        XCTAssertEqual(try store.load(driver: "process"), pool)
    }

    func testReadOnlyDirectoryFailsWithTheReason() throws {
        let store = StateStore(directory: try tmpfs())
        try store.save(pool, driver: "process")
        XCTAssertEqual(mount(nil, store.directory, nil, UInt(MS_REMOUNT | MS_RDONLY), nil), 0, String(cString: strerror(errno)))
        XCTAssertThrowsError(try store.save(Array(pool.prefix(1)), driver: "process")) { error in
            XCTAssertEqual((error as? StateStore.Failure)?.isOutOfSpace, false)
            XCTAssertTrue("\(error)".contains("Read-only file system"), "\(error)")
        }
        XCTAssertEqual(try store.load(driver: "process"), pool)
    }

    /// Each hand-edited mistake is refused with the file, the entry and the problem.
    func testInvalidEntriesNameTheFileTheEntryAndTheProblem() throws {
        let store = StateStore(directory: try temporaryDirectory())
        func entry(_ name: String, _ id: Any, _ port: Any, host: String = "127.0.0.1") -> String {
            #"{"name": "\#(name)", "id": \#(id), "host": "\#(host)", "port": \#(port)}"#
        }
        func file(_ entries: [String]) -> String {
            #"{"version": 1, "driver": "process", "replicas": [\#(entries.joined(separator: ", "))]}"#
        }
        let cases: [(String, String)] = [
            (file([entry("a", 1, 20001), entry("b", 1, 20002)]), "replicas[1] (b): id 1 is already used by replicas[0] (a)"),
            (
                file([entry("a", 1, 20001), entry("b", 2, 20001)]),
                "replicas[1] (b): address 127.0.0.1:20001 is already used by replicas[0] (a)"
            ),
            (file([entry("../../x", 1, 20001)]), "replicas[0] (../../x): invalid name"),
            (
                file([entry("S5", 1, 20001), entry("s5", 2, 20002)]),
                "replicas[1] (s5): the name is already used by replicas[0] (S5)"
            ),
            (file([entry("a", -5, 70000)]), "replicas[0] (a): 'id' must be a positive integer, not -5"),
            (file([entry("a", 5, 70000)]), "replicas[0] (a): 'port' must be an integer from 0 to 65535, not 70000"),
            (file([entry("a", 5, "\"80\"")]), "replicas[0] (a): 'port' must be an integer from 0 to 65535, not \"80\""),
            (file([entry("a", 1, 20001, host: "")]), "replicas[0] (a): 'host' must be a non-empty string"),
            (file([#"{"name": "a", "id": 1, "host": "h", "port": 1, "colour": 2}"#]), "replicas[0]: unknown key 'colour'"),
            (file([#"{"name": "a", "id": 1, "port": 1}"#]), "replicas[0]: missing 'host'"),
            (#"{"version": 1, "driver": "process", "replicas": [], "replicas": []}"#, "key \"replicas\" appears twice"),
            (#"{"version": 1, "driver": "proc"#, "not valid JSON at byte"),
            ("[]", "the file must be a JSON object"),
        ]
        for (text, expected) in cases {
            try write(text, to: store)
            XCTAssertThrowsError(try store.load(driver: "process"), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("state file \(store.path) is corrupt: "), message)
                XCTAssertTrue(message.contains(expected), "\(text)\n→ \(message)\nwanted: \(expected)")
                XCTAssertFalse(message.contains("\n"), "one line: \(message)")
            }
        }
        try write(
            file([
                entry("a", 1, 0), entry("b", 2, 0), entry("c", 3, 8080, host: "172.17.0.2"),
                entry("d", 4, 8080, host: "172.17.0.3"),
            ]), to: store)
        XCTAssertEqual(
            try store.load(driver: "process")?.map(\.name), ["a", "b", "c", "d"],
            "port 0 (address not yet known) may repeat; one port on two hosts is two addresses")
    }

    func testADirectoryInPlaceOfTheFileIsNamed() throws {
        let store = StateStore(directory: try temporaryDirectory())
        try FileManager.default.createDirectory(atPath: store.path, withIntermediateDirectories: false)
        XCTAssertThrowsError(try store.load(driver: "process")) { error in
            XCTAssertEqual(
                "\(error)", "state file \(store.path) is a directory, not a file; remove it, or start with --reset-state")
        }
    }
}
