/// One key set by the configuration file.
public struct ConfigSetting: Sendable, Equatable {
    public let key: ConfigKey
    /// The value as written, in TOML syntax, for messages: `"5s"`, `3`, `["a=127.0.0.1:1"]`.
    public let text: String
    /// The command-line arguments it stands for: `["--fall", "3"]`; none for `false`.
    public let arguments: [String]
}

/// A key whose value a reload changed (`old`/`new` nil: not in the file, so the default).
public struct ConfigChange: Sendable, Equatable, CustomStringConvertible {
    public let key: ConfigKey
    public let old: String?
    public let new: String?

    public var description: String { "\(key.name) \(old ?? "(default)") → \(new ?? "(default)")" }
}
