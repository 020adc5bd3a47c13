/// What the command line says about the configuration: which options it sets (they override the
/// file) and which file to read.
package enum CommandLineFlags {
    /// Long option names given in `arguments` (`--fall 3` and `--fall=3` both give `fall`).
    package static func names(in arguments: [String]) -> Set<String> {
        var names: Set<String> = []
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--"), argument.count > 2 else { continue }
            names.insert(String(argument.dropFirst(2).prefix { $0 != "=" }))
        }
        return names
    }

    /// The value of `--name VALUE` or `--name=VALUE` (the last one, as the parser takes it).
    package static func value(of name: String, in arguments: [String]) -> String? {
        var found: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { break }
            if argument == "--" + name, index + 1 < arguments.count {
                found = arguments[index + 1]
                index += 1
            } else if argument.hasPrefix("--" + name + "=") {
                found = String(argument.dropFirst(name.count + 3))
            }
            index += 1
        }
        return found
    }
}
