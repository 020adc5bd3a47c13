import DSConfig
import XCTest

final class ConfigFileTests: XCTestCase {
    let path = "/etc/ds-lb/ds-lb.toml"

    func parse(_ text: String) throws -> ConfigFile {
        try ConfigFile(path: path, text: text)
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            XCTAssertEqual((error as? ConfigError)?.description, expected, file: file, line: line)
        }
    }

    func testEveryKindBecomesTheOptionsItStandsFor() throws {
        let config = try parse(
            """
            # comments and blank lines are fine

            listen = "127.0.0.1:5000"
            heartbeat-interval = "1s"
            fall = 3
            balance-factor = 1.25
            reset-state = true
            admin-allow = ["127.0.0.0/8", "10.0.0.0/8"]
            backend = ["a=127.0.0.1:1", "b=127.0.0.1:2"]
            """)
        XCTAssertEqual(
            config.arguments(before: []),
            [
                "--admin-allow", "127.0.0.0/8,10.0.0.0/8",
                "--backend", "a=127.0.0.1:1", "--backend", "b=127.0.0.1:2",
                "--balance-factor", "1.25",
                "--fall", "3",
                "--heartbeat-interval", "1s",
                "--listen", "127.0.0.1:5000",
                "--reset-state",
            ])
        XCTAssertEqual(config["fall"]?.text, "3")
        XCTAssertEqual(config["backend"]?.text, #"["a=127.0.0.1:1", "b=127.0.0.1:2"]"#)
    }

    func testAnIntegerIsANumberAndFalseLeavesTheFlagOff() throws {
        let config = try parse("balance-factor = 2\nreset-state = false\nadmin-allow = \"127.0.0.1/32\"")
        XCTAssertEqual(config.arguments(before: []), ["--admin-allow", "127.0.0.1/32", "--balance-factor", "2"])
    }

    func testAnEmptyOrAllCommentedFileSetsNothing() throws {
        XCTAssertEqual(try parse("").settings, [])
        XCTAssertEqual(try parse("# fall = 2\n# listen = \"0.0.0.0:5000\"\n").settings, [])
    }

    func testTheCommandLineOverridesTheFile() throws {
        let config = try parse("fall = 3\nrise = 2\nbackend = [\"a=127.0.0.1:1\"]\n")
        XCTAssertEqual(
            config.arguments(before: ["--fall", "5", "--backend=b=127.0.0.1:2"]),
            ["--rise", "2", "--fall", "5", "--backend=b=127.0.0.1:2"])
    }

    func testUnknownKeysNameTheKeyTheValueAndTheFile() {
        assertError(
            "heartbeat_interval = \"1s\"",
            "\(path): unknown key 'heartbeat_interval' = \"1s\" (did you mean 'heartbeat-interval'?)")
        assertError("colour = 3", "\(path): unknown key 'colour' = 3")
        assertError(
            "[heartbeat]\ninterval = \"1s\"",
            "\(path): unknown key 'heartbeat' = {interval = \"1s\"} (there are no sections: every key goes at the top level)")
    }

    func testValuesOfTheWrongTypeNameTheKeyTheValueAndTheFile() {
        assertError("fall = \"3\"", "\(path): fall = \"3\": expected an integer")
        assertError("fall = 2.5", "\(path): fall = 2.5: expected an integer")
        assertError(
            "heartbeat-interval = 5",
            "\(path): heartbeat-interval = 5: expected a duration as a string with its unit, e.g. \"500ms\", \"5s\", \"1m\"")
        assertError("listen = 5000", "\(path): listen = 5000: expected a string")
        assertError("reset-state = \"yes\"", "\(path): reset-state = \"yes\": expected true or false")
        assertError("backend = [1, 2]", "\(path): backend = [1, 2]: expected an array of strings")
        assertError("admin-allow = 10", "\(path): admin-allow = 10: expected a string or an array of strings")
    }

    func testAMessageStaysOnOneLine() {
        assertError("listen = 5\nhash = 7", "\(path): hash = 7: expected a string")
        XCTAssertThrowsError(try parse("hash-key = [\"a\\nb\"]")) { error in
            XCTAssertFalse("\(error)".contains("\n"), "\(error)")
            XCTAssertTrue("\(error)".contains(#""a\nb""#), "\(error)")
        }
    }

    func testSyntaxErrorsGiveTheLineAndColumn() {
        XCTAssertThrowsError(try parse("fall = 2\nrise = \n")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("\(path): line 2, column "), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }

    func testAValidationMessageIsBlamedOnTheFileWhenTheFileSetTheOption() throws {
        let config = try parse("fall = 0\nheartbeat-interval = \"soon\"\n")
        XCTAssertEqual(
            config.blame("--fall must be 1...100, got 0", commandLine: [])?.description,
            "\(path): fall = 0: must be 1...100, got 0")
        XCTAssertEqual(
            config.blame("--heartbeat-interval: invalid duration 'soon' (use e.g. 500ms, 5s, 1m)", commandLine: [])?.description,
            "\(path): heartbeat-interval = \"soon\": invalid duration 'soon' (use e.g. 500ms, 5s, 1m)")
        // The command line set it: the message is the command line's.
        XCTAssertNil(config.blame("--fall must be 1...100, got 0", commandLine: ["--fall", "0"]))
        // An option the file does not set.
        XCTAssertNil(config.blame("--rise must be 1...100, got 0", commandLine: []))
        XCTAssertNil(config.blame("no option named here", commandLine: []))
    }

    func testChangesLeaveOutTheCommandLinesOptions() throws {
        let old = try parse("heartbeat-interval = \"5s\"\nfall = 2\nlisten = \"127.0.0.1:1\"")
        let new = try parse("heartbeat-interval = \"1s\"\nfall = 2\nrise = 3\nlisten = \"127.0.0.1:2\"")
        let changes = ConfigFile.changes(from: old, to: new, commandLine: ["--listen", "127.0.0.1:9"])
        // In the key table's order.
        XCTAssertEqual(changes.map(\.description), ["heartbeat-interval \"5s\" → \"1s\"", "rise (default) → 3"])
        XCTAssertEqual(Set(changes.map(\.key.name)), ["rise", "heartbeat-interval"])
        XCTAssertEqual(ConfigFile.changes(from: nil, to: nil, commandLine: []), [])
    }

    func testCommandLineFlags() {
        XCTAssertEqual(CommandLineFlags.names(in: ["--fall", "3", "--listen=x", "-h", "--", "--rise"]), ["fall", "listen"])
        XCTAssertEqual(CommandLineFlags.value(of: "config", in: ["--config", "/a", "--config=/b"]), "/b")
        XCTAssertEqual(CommandLineFlags.value(of: "config", in: ["--config", "/a"]), "/a")
        XCTAssertNil(CommandLineFlags.value(of: "config", in: ["--configure", "/a"]))
    }

    /// `pipeline-slots` (`--pipeline-slots`): an integer a reload applies; the range is serve's
    /// to check, and its message is blamed on the file.
    func testPipelineSlotsIsALiveIntegerKey() throws {
        let key = try XCTUnwrap(ServeConfigKeys.key(named: "pipeline-slots"))
        XCTAssertEqual(key.kind, .integer)
        XCTAssertEqual(key.reload, .live)
        XCTAssertEqual(try parse("pipeline-slots = 0").arguments(before: []), ["--pipeline-slots", "0"])
        XCTAssertEqual(try parse("pipeline-slots = 8").arguments(before: ["--pipeline-slots", "1"]), ["--pipeline-slots", "1"])
        assertError("pipeline-slots = \"two\"", "\(path): pipeline-slots = \"two\": expected an integer")
        assertError("pipeline-slots = 1.5", "\(path): pipeline-slots = 1.5: expected an integer")
        let config = try parse("pipeline-slots = -1")
        XCTAssertEqual(config.arguments(before: []), ["--pipeline-slots", "-1"])
        XCTAssertEqual(
            config.blame("--pipeline-slots must be 0...1024, got -1", commandLine: [])?.description,
            "\(path): pipeline-slots = -1: must be 0...1024, got -1")
    }

    func testTheKeyTableHasOneEntryPerName() {
        let names = ServeConfigKeys.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertTrue(ServeConfigKeys.commandLineOnly.isDisjoint(with: names))
    }
}
