/// A configuration file that cannot be used. `description` is one line that names the file, the
/// key and the value, ready to print after `Error: `.
package struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    package let description: String

    package init(_ description: String) {
        self.description = description
    }
}
