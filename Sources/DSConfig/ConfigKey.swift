/// One key of the configuration file: a `serve` option under its long name without the dashes
/// (`heartbeat-interval` is `--heartbeat-interval`), so the file and the command line read the same.
package struct ConfigKey: Sendable, Equatable {
    /// The TOML types a key takes, and how its value becomes command-line arguments.
    package enum Kind: String, Sendable {
        /// A TOML string.
        case string
        /// A TOML string with a unit: `"500ms"`, `"5s"`, `"1m"` (checked by `serve`).
        case duration
        /// A TOML integer.
        case integer
        /// A TOML float or integer.
        case number
        /// `true` gives the flag; `false` leaves it off (its default).
        case boolean
        /// A comma-separated list: a TOML string, or an array of strings joined with commas.
        case list
        /// A repeatable option: an array of strings (or one string), one option per element.
        case strings
    }

    /// When a changed value takes effect after a reload (SIGHUP).
    package enum Reload: String, Sendable {
        /// At once: the supervisor or the workers take the new value.
        case live
        /// At the next start: the running ds-lb keeps its value and says so.
        case restart
    }

    package let name: String
    package let kind: Kind
    package let reload: Reload

    package init(_ name: String, _ kind: Kind, _ reload: Reload) {
        self.name = name
        self.kind = kind
        self.reload = reload
    }

    package var flag: String { "--" + name }
}
