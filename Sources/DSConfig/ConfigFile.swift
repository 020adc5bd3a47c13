import TOMLKit

#if canImport(Glibc)
import Glibc
#endif

/// The configuration file of `ds-lb serve`: flat TOML, one key per option, turned into
/// the options it stands for so that one parser checks the file and the command line alike.
/// Command-line options override the file's keys.
package struct ConfigFile: Sendable, Equatable {
    package static let defaultPath = "/etc/ds-lb/ds-lb.toml"

    package let path: String
    /// In key order.
    package let settings: [ConfigSetting]

    /// Parses `text`; `path` is for messages. Throws `ConfigError` naming the file, the key and
    /// the value: unknown keys, values of the wrong TOML type, and TOML syntax errors.
    package init(path: String, text: String, keys: [ConfigKey] = ServeConfigKeys.all) throws {
        self.path = path
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(
                "\(path): line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        }
        var settings: [ConfigSetting] = []
        for name in table.keys.sorted() {
            guard let value = table[name] else { continue }
            guard let key = keys.first(where: { $0.name == name }) else {
                var hint = ""
                let dashed = name.lowercased().replacingUnderscores()
                if dashed != name, keys.contains(where: { $0.name == dashed }) {
                    hint = " (did you mean '\(dashed)'?)"
                } else if value.type == .table {
                    hint = " (there are no sections: every key goes at the top level)"
                }
                throw ConfigError("\(path): unknown key '\(name)' = \(Self.render(value))\(hint)")
            }
            settings.append(try Self.setting(key, value, path: path))
        }
        self.settings = settings
    }

    /// Reads and parses the file at `path`.
    package static func load(path: String, keys: [ConfigKey] = ServeConfigKeys.all) throws -> ConfigFile {
        try ConfigFile(path: path, text: try readText(path), keys: keys)
    }

    /// Whether a file exists at `path` (a directory or a dangling link is not one).
    package static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR
    }

    package subscript(name: String) -> ConfigSetting? {
        settings.first { $0.key.name == name }
    }

    /// The options to parse: the file's, except those `commandLine` sets, then `commandLine`.
    package func arguments(before commandLine: [String]) -> [String] {
        let given = CommandLineFlags.names(in: commandLine)
        return settings.filter { !given.contains($0.key.name) }.flatMap(\.arguments) + commandLine
    }

    /// A parse or validation message (`--fall must be 1...100, got 0`) as this file's error when
    /// the first option it names came from the file; nil when it came from the command line.
    package func blame(_ message: String, commandLine: [String]) -> ConfigError? {
        let given = CommandLineFlags.names(in: commandLine)
        for name in Self.optionNames(in: message) {
            if given.contains(name) { return nil }
            guard let setting = self[name] else { continue }
            var detail = Substring(message)
            for prefix in ["--\(name): ", "--\(name) "] where detail.hasPrefix(prefix) {
                detail = detail.dropFirst(prefix.count)
                break
            }
            return ConfigError("\(path): \(name) = \(setting.text): \(detail)")
        }
        return nil
    }

    /// The keys whose value differs between `old` and `new` (nil: no file), among `keys`,
    /// leaving out those `commandLine` sets (the command line did not change).
    package static func changes(
        from old: ConfigFile?, to new: ConfigFile?, keys: [ConfigKey] = ServeConfigKeys.all,
        commandLine: [String]
    ) -> [ConfigChange] {
        let given = CommandLineFlags.names(in: commandLine)
        return keys.compactMap { key in
            guard !given.contains(key.name) else { return nil }
            let before = old?[key.name]?.text
            let after = new?[key.name]?.text
            return before == after ? nil : ConfigChange(key: key, old: before, new: after)
        }
    }

    // MARK: values

    private static func setting(_ key: ConfigKey, _ value: TOMLValueConvertible, path: String) throws -> ConfigSetting {
        let text = render(value)
        func wrongType(_ expected: String) -> ConfigError {
            ConfigError("\(path): \(key.name) = \(text): expected \(expected)")
        }
        let arguments: [String]
        switch key.kind {
        case .string:
            guard let string = value.string else { throw wrongType("a string") }
            arguments = [key.flag, string]
        case .duration:
            guard let string = value.string else {
                throw wrongType("a duration as a string with its unit, e.g. \"500ms\", \"5s\", \"1m\"")
            }
            arguments = [key.flag, string]
        case .integer:
            guard let int = value.int else { throw wrongType("an integer") }
            arguments = [key.flag, String(int)]
        case .number:
            if let int = value.int {
                arguments = [key.flag, String(int)]
            } else if let double = value.double {
                arguments = [key.flag, String(double)]
            } else {
                throw wrongType("a number")
            }
        case .boolean:
            guard let bool = value.bool else { throw wrongType("true or false") }
            arguments = bool ? [key.flag] : []
        case .list:
            if let string = value.string {
                arguments = [key.flag, string]
            } else if let strings = stringArray(value) {
                arguments = [key.flag, strings.joined(separator: ",")]
            } else {
                throw wrongType("a string or an array of strings")
            }
        case .strings:
            if let string = value.string {
                arguments = [key.flag, string]
            } else if let strings = stringArray(value) {
                arguments = strings.flatMap { [key.flag, $0] }
            } else {
                throw wrongType("an array of strings")
            }
        }
        return ConfigSetting(key: key, text: text, arguments: arguments)
    }

    private static func stringArray(_ value: TOMLValueConvertible) -> [String]? {
        guard let array = value.array else { return nil }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else { return nil }
            strings.append(string)
        }
        return strings
    }

    /// A value in TOML syntax, for messages.
    static func render(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return quote(value.string ?? "")
        case .int: return value.int.map(String.init) ?? "?"
        case .double: return value.double.map { String($0) } ?? "?"
        case .bool: return value.bool.map { $0 ? "true" : "false" } ?? "?"
        case .array: return "[" + (value.array.map { $0.map { render($0) }.joined(separator: ", ") } ?? "") + "]"
        case .table:
            return "{"
                + (value.table.map { table in
                    table.keys.sorted().map { "\($0) = \(table[$0].map(render) ?? "")" }.joined(separator: ", ")
                } ?? "") + "}"
        default: return value.debugDescription
        }
    }

    /// A TOML basic string: backslash, quote and control characters escaped, so a value that
    /// holds a newline still gives a one-line message.
    static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `--name` tokens in a message, in order.
    static func optionNames(in message: String) -> [String] {
        var names: [String] = []
        var rest = Substring(message)
        while let range = rest.range(of: "--") {
            let after = rest[range.upperBound...]
            let name = after.prefix { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
            if !name.isEmpty && name.first != "-" { names.append(String(name)) }
            rest = after.dropFirst(max(name.count, 0))
        }
        return names
    }

    private static func readText(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigError("\(path): cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError("\(path): cannot read: \(String(cString: strerror(errno)))")
            }
            bytes += chunk[0..<n]
            guard bytes.count <= 1 << 20 else { throw ConfigError("\(path): larger than 1 MiB; not a ds-lb configuration") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError("\(path): not UTF-8 text")
        }
        return text
    }
}

extension String {
    func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
