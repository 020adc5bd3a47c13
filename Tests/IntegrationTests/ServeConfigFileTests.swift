// The configuration file of `ds-lb serve`, black-box: every serve option has a key
// (and a commented default in systemd/ds-lb.toml), the file's errors name the file, the key and
// the value on one line, command-line options override the file, and README lists every option
// with its default.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ServeConfigFileTests: IntegrationTestCase {
    /// Runs a binary to its end; its exit and output lines.
    func runToExit(
        _ binary: String, _ arguments: [String], environment: [String: String?] = [:],
        timeout: TimeInterval = 30
    ) throws -> (termination: Termination?, stdout: [String], stderr: [String]) {
        let process = try launch(binary, arguments, environment: environment)
        let termination = process.waitForExit(timeout: timeout)
        let deadline = Date().addingTimeInterval(2)
        while !(process.stdout.isEOF && process.stderr.isEOF) && Date() < deadline { usleep(10_000) }
        return (termination, process.stdout.allLines, process.stderr.allLines)
    }

    /// `ds-lb serve`'s options by long name (without `--help`), from its own help dump.
    func serveOptions() throws -> [(name: String, defaultValue: String?)] {
        let options = try options(of: "serve")
        XCTAssertGreaterThan(options.count, 20, "the help dump lists too few options: \(options)")
        return options
    }

    /// A `ds-lb` subcommand's options by long name (without `--help`), from its own help dump.
    func options(of subcommand: String) throws -> [(name: String, defaultValue: String?)] {
        let run = try runToExit("ds-lb", [subcommand, "--experimental-dump-help"])
        XCTAssertEqual(run.termination, .exited(0), run.stderr.joined(separator: "\n"))
        let json = try JSONSerialization.jsonObject(with: Data(run.stdout.joined(separator: "\n").utf8)) as? [String: Any]
        let arguments = (json?["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
        var options: [(String, String?)] = []
        for argument in arguments {
            guard let kind = argument["kind"] as? String, kind == "option" || kind == "flag" else { continue }
            let names = (argument["names"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "long" }
            guard let name = names.first?["name"] as? String, name != "help" else { continue }
            options.append((name, argument["defaultValue"] as? String))
        }
        return options
    }

    /// `ds-lb config --keys`: name → (TOML type, live/restart).
    func configKeys() throws -> [String: (type: String, reload: String)] {
        let run = try runToExit("ds-lb", ["config", "--keys"])
        XCTAssertEqual(run.termination, .exited(0), run.stderr.joined(separator: "\n"))
        var keys: [String: (String, String)] = [:]
        for line in run.stdout where !line.isEmpty {
            let object = JSON.object(from: Array(line.utf8))
            guard let name = object?["name"] as? String, let type = object?["type"] as? String,
                let reload = object?["reload"] as? String
            else {
                XCTFail("not a key line: \(line)")
                continue
            }
            keys[name] = (type, reload)
        }
        return keys
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func testEveryServeOptionHasAConfigKey() throws {
        let options = Set(try serveOptions().map(\.name)).subtracting(["config"])
        let keys = Set(try configKeys().keys)
        XCTAssertEqual(
            options.subtracting(keys).sorted(), [],
            "serve options without a key in the configuration file: add them to Sources/DSConfig/ServeConfigKeys.swift and systemd/ds-lb.toml"
        )
        XCTAssertEqual(keys.subtracting(options).sorted(), [], "keys for options serve does not have")
    }

    /// README's Options table has one row per serve option, `| `--name ...` | default | reload |
    /// what |`, and nothing else: a new option, a changed default or a key that moved between
    /// live and restart fails here until README says so. The other subcommands' options must
    /// at least be named.
    func testTheReadmeListsEveryOptionWithItsDefault() throws {
        let readme = try String(contentsOfFile: Self.repositoryRoot + "/README.md", encoding: .utf8)
        var rows: [String: (defaultValue: String, reload: String)] = [:]
        for line in readme.split(separator: "\n") where line.hasPrefix("| `--") {
            // `\|` inside a cell is an escaped bar (`auto\|process`), not a column.
            let cells = line.replacingOccurrences(of: "\\|", with: "/").split(separator: "|").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count == 4 else {
                XCTFail("README option row without 4 columns: \(line)")
                continue
            }
            let name = String(cells[0].dropFirst(3).prefix { $0 != " " && $0 != "`" })
            XCTAssertNil(rows[name], "README lists --\(name) twice")
            rows[name] = (cells[1], cells[2])
        }
        let keys = try configKeys()
        let serve = try serveOptions()
        XCTAssertEqual(
            Set(rows.keys).subtracting(serve.map(\.name)).sorted(), [], "README lists options serve does not have")
        for (name, defaultValue) in serve {
            guard let row = rows[name] else {
                XCTFail("README's Options table has no row for --\(name)")
                continue
            }
            if let defaultValue {
                XCTAssertTrue(
                    row.defaultValue.contains("`\(defaultValue)`"),
                    "README: --\(name)'s default is `\(defaultValue)`, the table says \(row.defaultValue)")
            }
            XCTAssertEqual(row.reload, keys[name]?.reload ?? "—", "README: whether a reload applies --\(name)")
        }
        for subcommand in ["ring", "status", "config"] {
            for (name, _) in try options(of: subcommand) {
                XCTAssertTrue(readme.contains("--\(name)"), "README does not mention ds-lb \(subcommand) --\(name)")
            }
        }
    }

    func testTheDefaultFileListsEveryKeyWithItsDefaultAndServeAcceptsThem() throws {
        let path = Self.repositoryRoot + "/systemd/ds-lb.toml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let keys = try configKeys()
        var commented: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# ") {
            let parts = line.dropFirst(2).split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            if keys[name] != nil { commented[name] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        for (name, defaultValue) in try serveOptions() where name != "config" {
            guard let value = commented[name] else {
                XCTFail("systemd/ds-lb.toml has no commented '# \(name) = ...' line")
                continue
            }
            guard let defaultValue, let type = keys[name]?.type else { continue }
            let expected: String
            switch type {
            case "integer", "number": expected = defaultValue
            case "boolean": expected = defaultValue == "true" ? "true" : "false"
            case "list":
                expected = "[" + defaultValue.split(separator: ",").map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            default: expected = "\"\(defaultValue)\""
            }
            XCTAssertEqual(value, expected, "systemd/ds-lb.toml: '# \(name) = ...' is not serve's default")
        }
        // Uncommented (all but the static driver's backends), the file is one serve accepts; the
        // admin token file and the certificate it names must exist, so it points at ones made here.
        let directory = try temporaryDirectory()
        try "0123456789abcdef0123456789abcdef\n".write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        let certificate = try makeCertificate(in: directory, "tls", names: ["example.com"])
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("# "), !line.hasPrefix("# backend"),
                let name = line.dropFirst(2).split(separator: "=").first?.trimmingCharacters(in: .whitespaces),
                commented[name] != nil
            else { return String(line) }
            if name == "admin-token-file" { return "admin-token-file = \"\(directory)/token\"" }
            if name == "tls-cert" { return "tls-cert = [\"\(certificate.cert)\"]" }
            if name == "tls-key" { return "tls-key = [\"\(certificate.key)\"]" }
            return String(line.dropFirst(2))
        }.joined(separator: "\n")
        try uncommented.write(toFile: directory + "/all.toml", atomically: true, encoding: .utf8)
        let check = try runToExit("ds-lb", ["config", "--config", directory + "/all.toml"])
        XCTAssertEqual(
            check.termination, .exited(0),
            "ds-lb config on the uncommented default file:\n\(check.stderr.joined(separator: "\n"))")
        XCTAssertEqual(check.stdout.first, "\(directory)/all.toml: OK, \(commented.count - 1) keys set")
    }

    func testErrorsNameTheFileTheKeyAndTheValueOnOneLine() throws {
        let directory = try temporaryDirectory()
        let cases: [(file: String, expected: String)] = [
            ("fall = 0", "fall = 0: must be 1...100, got 0"),
            ("pipeline-slots = 5000", "pipeline-slots = 5000: must be 0...1024, got 5000"),
            ("heartbeat-interval = \"soon\"", "heartbeat-interval = \"soon\": invalid duration 'soon' (use e.g. 500ms, 5s, 1m)"),
            ("heartbeat_interval = \"1s\"", "unknown key 'heartbeat_interval' = \"1s\" (did you mean 'heartbeat-interval'?)"),
            ("replicas = \"3\"", "replicas = \"3\": expected an integer"),
            ("hash = \"sha1\"", "hash = \"sha1\": unknown algorithm 'sha1'"),
            ("tls-max-handshakes = 0", "tls-max-handshakes = 0: must be at least 1, got 0"),
            ("tls-max-handshakes = -5", "tls-max-handshakes = -5: must be at least 1, got -5"),
            (
                "tls-ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_BOGUS\"",
                "tls-ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_BOGUS\": unknown TLS 1.3 suite 'TLS_BOGUS'"
            ),
            ("admin-listen = \"nowhere\"", "admin-listen = \"nowhere\": "),
            ("fall = ", "line 1, column "),
        ]
        for (index, item) in cases.enumerated() {
            let path = "\(directory)/bad-\(index).toml"
            try item.file.write(toFile: path, atomically: true, encoding: .utf8)
            let run = try runToExit(
                "ds-lb", ["serve", "--config", path, "--listen", "127.0.0.1:0", "--driver", "process", "--replicas", "0"],
                environment: ["STATE_DIRECTORY": directory])
            XCTAssertNotEqual(run.termination, .exited(0), "\(item.file): ds-lb started")
            XCTAssertNotNil(run.termination, "\(item.file): ds-lb still runs")
            let errors = run.stderr.filter { !$0.isEmpty }
            XCTAssertEqual(errors.count, 1, "\(item.file): one line expected, got \(errors)")
            XCTAssertTrue(
                errors.first?.hasPrefix("Error: \(path): \(item.expected)") == true,
                "\(item.file): got \(errors), expected 'Error: \(path): \(item.expected)...'")
        }
        // An explicit --config that does not exist is an error, not a silent default.
        let missing = try runToExit("ds-lb", ["serve", "--config", directory + "/missing.toml", "--listen", "127.0.0.1:0"])
        XCTAssertNotEqual(missing.termination, .exited(0))
        XCTAssertEqual(
            missing.stderr.filter { !$0.isEmpty }, ["Error: \(directory)/missing.toml: cannot read: No such file or directory"])
        // A bad value given on the command line is the command line's error, as before.
        try "fall = 3".write(toFile: directory + "/ok.toml", atomically: true, encoding: .utf8)
        let cli = try runToExit("ds-lb", ["serve", "--config", directory + "/ok.toml", "--fall", "0"])
        XCTAssertNotEqual(cli.termination, .exited(0))
        XCTAssertEqual(cli.stderr.first, "Error: --fall must be 1...100, got 0")
    }

    /// `--cpu-affinity`: none or auto; anything else stops ds-lb naming the value.
    func testABadCPUAffinityStopsDSLBNamingIt() throws {
        let run = try runToExit(
            "ds-lb",
            ["serve", "--listen", "127.0.0.1:0", "--driver", "process", "--replicas", "0", "--cpu-affinity", "all"],
            environment: ["STATE_DIRECTORY": try temporaryDirectory()])
        XCTAssertNotNil(run.termination, "ds-lb still runs")
        XCTAssertNotEqual(run.termination, .exited(0), "ds-lb started")
        XCTAssertEqual(run.stderr.first, "Error: --cpu-affinity must be none or auto, got 'all'")
    }

    /// `--pipeline-slots` / `pipeline-slots`: default 2, 0...1024 (0: no queue), and a bad
    /// value stops ds-lb with an error that names it, from the command line or the file.
    func testPipelineSlotsValuesAndErrors() throws {
        let options = try serveOptions()
        XCTAssertEqual(options.first { $0.name == "pipeline-slots" }?.defaultValue, "2")
        let directory = try temporaryDirectory()
        let cli: [(value: String, error: String)] = [
            ("-1", "Error: --pipeline-slots must be 0...1024, got -1"),
            ("1025", "Error: --pipeline-slots must be 0...1024, got 1025"),
            ("two", "Error: The value 'two' is invalid for '--pipeline-slots <pipeline-slots>'"),
            (
                "99999999999999999999",
                "Error: The value '99999999999999999999' is invalid for '--pipeline-slots <pipeline-slots>'"
            ),
        ]
        for item in cli {
            let run = try runToExit(
                "ds-lb",
                [
                    "serve", "--listen", "127.0.0.1:0", "--driver", "process", "--replicas", "0",
                    "--pipeline-slots", item.value,
                ], environment: ["STATE_DIRECTORY": directory])
            XCTAssertNotNil(run.termination, "--pipeline-slots \(item.value): ds-lb still runs")
            XCTAssertNotEqual(run.termination, .exited(0), "--pipeline-slots \(item.value): ds-lb started")
            XCTAssertEqual(run.stderr.first, item.error, "--pipeline-slots \(item.value)")
        }
        let files: [(text: String, output: String)] = [
            ("pipeline-slots = 0", "OK, 1 key set"),
            ("pipeline-slots = 1024", "OK, 1 key set"),
            ("pipeline-slots = -1", "pipeline-slots = -1: must be 0...1024, got -1"),
            ("pipeline-slots = 1025", "pipeline-slots = 1025: must be 0...1024, got 1025"),
            ("pipeline-slots = \"2\"", "pipeline-slots = \"2\": expected an integer"),
        ]
        for (index, item) in files.enumerated() {
            let path = "\(directory)/slots-\(index).toml"
            try item.text.write(toFile: path, atomically: true, encoding: .utf8)
            let run = try runToExit("ds-lb", ["config", "--config", path])
            if item.output.hasPrefix("OK") {
                XCTAssertEqual(run.termination, .exited(0), "\(item.text): \(run.stderr)")
                XCTAssertEqual(run.stdout.first, "\(path): \(item.output)")
            } else {
                XCTAssertNotEqual(run.termination, .exited(0), item.text)
                XCTAssertEqual(run.stderr.filter { !$0.isEmpty }, ["Error: \(path): \(item.output)"])
            }
        }
    }

    func testTheCommandLineOverridesTheFile() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/ds-lb.toml"
        try """
        listen = "127.0.0.1:0"
        driver = "process"
        replicas = 1
        heartbeat-interval = "7s"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let lb = try startLoadBalancer(["--config", path, "--replicas", "2"])
        XCTAssertEqual(try lb.replicaState().replicas, ["server-1", "server-2"], "--replicas 2 overrides replicas = 1")
        let status = try lb.request("GET", "/status")
        let message = status.jsonObject?["message"] as? [String: Any]
        XCTAssertEqual(message?["heartbeat_interval"] as? String, "7s", "the file's heartbeat-interval: \(status)")
    }
}
