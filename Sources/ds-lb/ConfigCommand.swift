import ArgumentParser
import DSConfig

/// `ds-lb config`: checks a configuration file the way `serve` reads it (`nginx -t`), or lists the
/// keys a file may set.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a configuration file (as serve and a reload read it), or list its keys.")

    @Option(help: "The file to check.")
    var config: String = ConfigFile.defaultPath

    @Flag(
        help:
            "List the keys, one JSON object a line: name, TOML type, and whether a reload applies it (live) or it needs a restart."
    )
    var keys = false

    func run() throws {
        if keys {
            for key in ServeConfigKeys.all {
                print(#"{"name": "\#(key.name)", "type": "\#(key.kind.rawValue)", "reload": "\#(key.reload.rawValue)"}"#)
            }
            return
        }
        let invocation: ServeInvocation
        do {
            invocation = try ServeInvocation(commandLine: ["--config", config])
        } catch {
            throw Failure(description: "\(error)")
        }
        do {
            _ = try invocation.parse()
        } catch {
            throw Failure(description: "\(error)")
        }
        let settings = invocation.file?.settings ?? []
        print("\(config): OK, \(settings.count) key\(settings.count == 1 ? "" : "s") set")
        for setting in settings {
            print(
                "  \(setting.key.name) = \(setting.text)\(setting.key.reload == .restart ? "   (a change needs a restart)" : "")")
        }
    }
}
