// Zero heap allocations per request in steady state (docs/ARCHITECTURE.md §7), counted by
// ds-alloc-count: one ds-lb worker in its own process with malloc wrapped, counting on the
// worker's thread only.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class AllocationTests: IntegrationTestCase {
    /// The probe to run: $DSLB_ALLOC_COUNT_BIN (e.g. `.build/release/ds-alloc-count`) when set,
    /// else the one next to the other binaries under test.
    private func probe() throws -> String {
        if let path = ProcessInfo.processInfo.environment["DSLB_ALLOC_COUNT_BIN"], !path.isEmpty {
            // Relative to where the tests were started (make test passes one), not to the
            // directory of the binaries under test, which `launch` uses for bare names.
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            guard Binaries.isExecutable(absolute) else {
                throw Binaries.NotFound(description: "DSLB_ALLOC_COUNT_BIN=\(path) is not executable (\(absolute))")
            }
            return absolute
        }
        return try Binaries.path("ds-alloc-count")
    }

    private func run(_ arguments: [String]) throws -> (allocations: Int, requests: Int, build: String) {
        // Started like every other binary under test, so it cannot outlive a killed test process.
        let process = try launch(try probe(), arguments, name: "ds-alloc-count")
        let timeout: TimeInterval = 300
        guard let termination = process.waitForExit(timeout: timeout) else {
            throw Binaries.NotFound(
                description:
                    "ds-alloc-count \(arguments.joined(separator: " ")) did not finish in \(timeout) s\n\(process.outputTail())")
        }
        // The readers may still be draining the pipes right after exit.
        let deadline = Date().addingTimeInterval(5)
        while !(process.stdout.isEOF && process.stderr.isEOF) && Date() < deadline { usleep(10_000) }
        let line = process.stdout.allLines.joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(termination, .exited(0), "\(line)\n\(process.outputTail())")
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        guard let allocations = fields["allocations"].flatMap(Int.init), let requests = fields["requests"].flatMap(Int.init),
            let build = fields["build"]
        else {
            throw Binaries.NotFound(description: "unexpected ds-alloc-count output: '\(line)'")
        }
        return (allocations, requests, build)
    }

    func testSmallKeepAliveRequestsAllocateNothingOnTheWorker() throws {
        // Under a sanitizer (tests/sanitize.sh) malloc is the sanitizer's: nothing to count.
        if let sanitizer = ProcessInfo.processInfo.environment["DSLB_SANITIZER"] {
            throw XCTSkip("malloc is replaced by the \(sanitizer) sanitizer in this run; make test counts allocations")
        }
        // The last run goes through a weighted table and weight-proportional bounded-load caps.
        let runs: [(hashKey: String, extra: [String])] = [
            ("query:id,random", []), ("query:id,client-ip", []), ("header:x-user,cookie:session,path", []),
            ("query:id,random", ["--weights", "1,1,2,4", "--balance-factor", "1.25"]),
        ]
        for (hashKey, extra) in runs {
            // The warm-up lets the worker's tables (timer heap, dictionaries) reach their size.
            let result = try run(["--requests", "3000", "--warmup", "6000", "--hash-key", hashKey] + extra)
            XCTAssertEqual(result.requests, 3000)
            guard result.build == "release" else {
                let why =
                    "ds-alloc-count is a debug build (\(result.allocations) allocations in \(result.requests) requests: unspecialized generic code allocates); run with DSLB_ALLOC_COUNT_BIN=<release build of ds-alloc-count>, as make test does"
                // CI runs make test, which passes a release probe: a skip there would hide the check.
                if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(why); return }
                throw XCTSkip(why)
            }
            XCTAssertEqual(
                result.allocations, 0,
                "\(result.allocations) heap allocations in \(result.requests) requests with --hash-key \(hashKey) \(extra.joined(separator: " "))"
            )
        }
    }
}
