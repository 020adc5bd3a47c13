import Foundation
import XCTest

/// `--cpu-affinity`: with `auto` each worker thread may run on one CPU only, worker i on the
/// i-th CPU ds-lb may use (wrapping around); with the default, `none`, the workers keep the whole
/// mask they were started with. What the kernel holds is read from /proc.
final class CPUAffinityTests: IntegrationTestCase {
    /// The CPUs in a `Cpus_allowed_list` value such as `0-3,6`.
    static func cpus(_ list: String) -> [Int] {
        list.split(separator: ",").flatMap { part -> [Int] in
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = bounds.first else { return [] }
            return Array(first...(bounds.last ?? first))
        }
    }

    /// `Cpus_allowed_list` of a thread (or of this process, for `self`).
    static func allowedCPUs(_ path: String) throws -> [Int] {
        let status = try String(contentsOfFile: path + "/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        return cpus(String(line.dropFirst("Cpus_allowed_list:".count)))
    }

    /// The worker threads of `pid` by name (`ds-lb-w0`, ...), each with its allowed CPUs.
    static func workers(of pid: pid_t) throws -> [String: [Int]] {
        var found: [String: [Int]] = [:]
        for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
            let path = "/proc/\(pid)/task/\(tid)"
            let name = try String(contentsOfFile: path + "/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
            if name.hasPrefix("ds-lb-w") { found[name] = try allowedCPUs(path) }
        }
        return found
    }

    func testAutoPinsWorkerIToTheIthAllowedCPUAndNoneLeavesTheMask() throws {
        // ds-lb inherits this process's mask.
        let mask = try Self.allowedCPUs("/proc/self")
        let pinned = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "0", "--workers", "3", "--cpu-affinity", "auto",
        ])
        _ = try pinned.process.waitForStderrLine(matching: #"Workers pinned \(--cpu-affinity auto\)"#, timeout: 30)
        XCTAssertEqual(try pinned.request("GET", "/rep").status, 200)
        let pinnedWorkers = try Self.workers(of: pinned.process.pid)
        XCTAssertEqual(pinnedWorkers.count, 3, "\(pinnedWorkers)")
        for i in 0..<3 {
            XCTAssertEqual(pinnedWorkers["ds-lb-w\(i)"], [mask[i % mask.count]], "worker \(i) of \(pinnedWorkers)")
        }

        let free = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "0", "--workers", "2"])
        XCTAssertEqual(try free.request("GET", "/rep").status, 200)
        let freeWorkers = try Self.workers(of: free.process.pid)
        XCTAssertEqual(freeWorkers.count, 2, "\(freeWorkers)")
        for (name, cpus) in freeWorkers { XCTAssertEqual(cpus, mask, name) }
    }
}
