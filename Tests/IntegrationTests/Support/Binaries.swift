// Where the binaries under test are: $DSLB_BIN_DIR when set, else the directory holding the
// running test executable (`swift test` on Linux runs `<scratch>/<triple>/debug/
// <package>PackageTests.xctest`, next to `ds-lb` and `ds-server`).

import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum Binaries {
    struct NotFound: Error, CustomStringConvertible {
        let description: String
    }

    /// Directories that may hold the binaries, best first, with where each came from.
    static var candidateDirectories: [(dir: String, source: String)] {
        var result: [(String, String)] = []
        if let dir = ProcessInfo.processInfo.environment["DSLB_BIN_DIR"], !dir.isEmpty {
            return [(dir, "DSLB_BIN_DIR")]
        }
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            result.append(((exe as NSString).deletingLastPathComponent, "/proc/self/exe"))
        }
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            let path = URL(fileURLWithPath: arg0).resolvingSymlinksInPath().path
            result.append(((path as NSString).deletingLastPathComponent, "CommandLine.arguments[0]"))
        }
        let bundle = Bundle.main.bundlePath
        result.append((bundle, "Bundle.main.bundlePath"))
        result.append(((bundle as NSString).deletingLastPathComponent, "dirname(Bundle.main.bundlePath)"))
        return result
    }

    /// The directory holding both `ds-lb` and `ds-server`, or a clear error naming every
    /// place that was looked at.
    static func directory() throws -> String {
        let candidates = candidateDirectories
        for (dir, _) in candidates where isExecutable("\(dir)/ds-lb") && isExecutable("\(dir)/ds-server") {
            return dir
        }
        let looked = candidates.map {
            "  \($0.dir) (from \($0.source)): ds-lb \(isExecutable("\($0.dir)/ds-lb") ? "found" : "missing"), ds-server \(isExecutable("\($0.dir)/ds-server") ? "found" : "missing")"
        }
        .joined(separator: "\n")
        throw NotFound(
            description: """
                The ds-lb and ds-server binaries were not found. Build them first (`swift build`; \
                `swift test` builds them too) or set DSLB_BIN_DIR to the directory that holds them. Looked in:
                \(looked)
                """)
    }

    static func path(_ name: String) throws -> String {
        let p = "\(try directory())/\(name)"
        guard isExecutable(p) else { throw NotFound(description: "\(name) is not executable at \(p)") }
        return p
    }

    static func isExecutable(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: path)
    }
}
