import ArgumentParser
import DSConfig

#if canImport(Glibc)
import Glibc
#endif

/// How `ds-lb serve` was started: its own command-line arguments, and the configuration
/// file they select, read when this value is made. Command-line options override the file.
struct ServeInvocation: Sendable {
    /// `serve`'s arguments as typed, without `ds-lb` and `serve`.
    let commandLine: [String]
    /// `--config PATH`, else /etc/ds-lb/ds-lb.toml when it exists, else none.
    let file: ConfigFile?

    /// Reads the file `commandLine` selects. Throws `ConfigError` (one line naming the file, the
    /// key and the value).
    init(commandLine: [String]) throws {
        self.commandLine = commandLine
        if let path = CommandLineFlags.value(of: "config", in: commandLine) {
            file = try ConfigFile.load(path: path)
        } else if ConfigFile.exists(ConfigFile.defaultPath) {
            file = try ConfigFile.load(path: ConfigFile.defaultPath)
        } else {
            file = nil
        }
    }

    private init(commandLine: [String], file: ConfigFile?) {
        self.commandLine = commandLine
        self.file = file
    }

    /// `serve` run without `main` (no command line, no file).
    static let none = ServeInvocation(commandLine: [], file: nil)

    /// What `serve` parses: the file's options, then the command line's (which win).
    var arguments: [String] { file?.arguments(before: commandLine) ?? commandLine }

    /// `arguments` parsed and validated. An error caused by a value from the file is that file's
    /// `ConfigError`; any other is `Failure` with the parser's message.
    func parse() throws -> Serve {
        do {
            return try Serve.parse(arguments)
        } catch {
            let message = Serve.message(for: error)
            if let blamed = file?.blame(message, commandLine: commandLine) { throw blamed }
            throw Failure(description: message)
        }
    }

    /// `ds-lb`'s arguments split into the subcommand prefix (`[]` or `["serve"]`) and serve's own,
    /// or nil when they ask for another subcommand or for help (which must work whatever the
    /// file says).
    static func serveArguments(_ arguments: [String]) -> (prefix: [String], serve: [String])? {
        let helpFlags: Set<String> = ["-h", "--help", "--experimental-dump-help", "--version", "--generate-completion-script"]
        guard !arguments.contains(where: { helpFlags.contains($0) || $0.hasPrefix("--generate-completion-script=") }) else {
            return nil
        }
        guard let first = arguments.first else { return ([], []) }
        if first == "serve" { return (["serve"], Array(arguments.dropFirst())) }
        return first.hasPrefix("-") ? ([], arguments) : nil
    }

    /// ds-lb's entry point: `serve` (the default command) gets its configuration file merged in
    /// front of its options; everything else goes to the parser as typed.
    static func main() -> Never {
        let all = Array(CommandLine.arguments.dropFirst())
        guard let (prefix, serve) = serveArguments(all) else {
            DSLB.main()
            exit(0)
        }
        let invocation: ServeInvocation
        do {
            invocation = try ServeInvocation(commandLine: serve)
        } catch {
            configFailure(error)
        }
        var command: ParsableCommand
        do {
            command = try DSLB.parseAsRoot(prefix + invocation.arguments)
        } catch {
            if let blamed = invocation.file?.blame(DSLB.message(for: error), commandLine: serve) { configFailure(blamed) }
            DSLB.exit(withError: error)
        }
        started = invocation
        do {
            try command.run()
        } catch {
            DSLB.exit(withError: error)
        }
        exit(0)
    }

    /// A configuration file ds-lb cannot use: one line, and EX_CONFIG, which ds-lb.service lists
    /// in RestartPreventExitStatus= (restarting cannot fix a file).
    static func configFailure(_ error: Error) -> Never {
        let line = Array("Error: \(error)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(exitConfig)
    }

    static let exitConfig: Int32 = 78

    /// The invocation `main` parsed, for `serve`'s reloads. Written once by `main` on the main
    /// thread before the command runs (and before any other thread exists), then only read.
    nonisolated(unsafe) static var started: ServeInvocation?
}
