/// One key set by the configuration file.
package struct ConfigSetting: Sendable, Equatable {
    package let key: ConfigKey
    /// The value as written, in TOML syntax, for messages: `"5s"`, `3`, `["a=127.0.0.1:1"]`.
    package let text: String
    /// The command-line arguments it stands for: `["--fall", "3"]`; none for `false`.
    package let arguments: [String]
}

/// A key whose value a reload changed (`old`/`new` nil: not in the file, so the default).
package struct ConfigChange: Sendable, Equatable, CustomStringConvertible {
    package let key: ConfigKey
    package let old: String?
    package let new: String?

    package var description: String { "\(key.name) \(old ?? "(default)") → \(new ?? "(default)")" }
}
