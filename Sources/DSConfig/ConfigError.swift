/// A configuration file that cannot be used. `description` is one line that names the file, the
/// key and the value, ready to print after `Error: `.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
