import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs bench/plot.py (matplotlib) on a CSV ds-bench wrote. The interpreter is Debian's
/// /usr/bin/python3 when it has matplotlib (scripts/install-deps.sh installs python3-matplotlib
/// there), else whatever `python3` is on PATH; `--python` overrides both.
struct Plotter {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let python: String
    let script: String

    /// Finds the script and an interpreter that imports matplotlib, or says what to install.
    static func locate(python: String?, script: String?) throws -> Plotter {
        let script = try script ?? findScript()
        let candidates = python.map { [$0] } ?? ["/usr/bin/python3", "python3"]
        for python in candidates where (try? run([python, "-c", "import matplotlib"])) == 0 {
            return Plotter(python: python, script: script)
        }
        throw Failure(
            description:
                "no Python with matplotlib (tried \(candidates.joined(separator: ", "))): run scripts/install-deps.sh bench (apt python3-matplotlib) or pass --python"
        )
    }

    /// bench/plot.py next to the source tree the binary was built from (…/.build*/…/ds-bench),
    /// or under the working directory.
    private static func findScript() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.executablePath).deletingLastPathComponent()
        var tried: [String] = []
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("bench/plot.py").path
            tried.append(candidate)
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        let local = FileManager.default.currentDirectoryPath + "/bench/plot.py"
        if FileManager.default.fileExists(atPath: local) { return local }
        throw Failure(
            description:
                "bench/plot.py not found (looked at \(tried.first ?? "?") and its parents, and \(local)); pass --plot-script")
    }

    /// plot.py KIND CSV PNG --title TITLE [extra…]; throws with its stderr when it fails.
    func plot(_ kind: String, csv: String, png: String, title: String, extra: [String] = []) throws {
        let status = try Self.run([python, script, kind, csv, png, "--title", title] + extra)
        guard status == 0 else { throw Failure(description: "\(script) \(kind) \(csv) failed (exit \(status))") }
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

extension CommandLine {
    /// The running binary (/proc/self/exe), for finding its siblings and the source tree.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
    }
}

/// A CSV file: a header and rows, quoted only when a field needs it (RFC 4180).
struct CSVTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ fields: CustomStringConvertible...) {
        rows.append(fields.map(\.description))
    }

    func write(to path: String) throws {
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let text = ([header] + rows).map { $0.map(quote).joined(separator: ",") }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
